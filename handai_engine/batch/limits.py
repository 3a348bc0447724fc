"""What the providers' Batch APIs accept, and what they charge.

Limits per input file (each run's cells are split into files within them):
- OpenAI: "up to 50,000 requests, and input files can be up to 200 MB in size"
  (platform.openai.com/docs/guides/batch, "Rate limits" / "Batch API").
- Azure OpenAI global batch: 100,000 requests and 200 MB per file
  (learn.microsoft.com/azure/ai-foundry/openai/how-to/batch, "Global batch limits").
- Anthropic Message Batches: "limited to either 100,000 Message requests or 256 MB in size,
  whichever is reached first" (docs.anthropic.com, "Batch processing", batch limitations); the
  requests travel inline in the create call, so the bytes are those of the request lines.
Price: all three bill a batch at 50 % of the listed real-time price ("50% lower costs" on the OpenAI
Batch guide; "50% less cost than global standard" on Azure's; "reducing costs by 50%" on
Anthropic's), so a batch run's cost is the price `providers.price_for` gives (the table,
OpenRouter's list or the user's own entry), halved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from providers import Price

# A provider batch's own states, in OpenAI's words (Anthropic's are mapped to them): a batch's
# life at the provider, never a run's or a row's status.
BATCH_COMPLETED = "completed"
BATCH_FAILED = "failed"
BATCH_EXPIRED = "expired"
BATCH_CANCELLED = "cancelled"

MB = 1024 * 1024
# provider -> (requests, bytes) per input file
FILE_LIMITS: dict[str, tuple[int, int]] = {
    "openai": (50_000, 200 * MB),
    "azure": (100_000, 200 * MB),
    "anthropic": (100_000, 256 * MB),
}
# The `url` of every line and the batch's `endpoint`: Azure's API routes by the line's model (its deployment).
# Anthropic's is where its batches live (its requests name no URL).
ENDPOINTS = {"openai": "/v1/chat/completions", "azure": "/chat/completions", "anthropic": "/v1/messages/batches"}
# Anthropic requires max_tokens on every request; a run that set none sends this, as its real-time
# calls do (providers/capabilities.py).
DEFAULT_MAX_TOKENS = 4096
BATCH_DISCOUNT = 0.5
COMPLETION_WINDOW = "24h"
DEFAULT_POLL_SECONDS = 30.0


def batch_price(price: Price | None) -> Price | None:
    """What a reply costs when it comes through a batch: half the real-time price."""
    if price is None:
        return None
    return replace(
        price,
        prompt=price.prompt * BATCH_DISCOUNT,
        completion=price.completion * BATCH_DISCOUNT,
        source=f"{price.source}, batch",
    )


@dataclass(frozen=True)
class BatchOptions:
    """How often a batch is polled, and (for tests and odd accounts) smaller file limits.
    HANDAI_BATCH_POLL_SECONDS, HANDAI_BATCH_MAX_REQUESTS and HANDAI_BATCH_MAX_BYTES set them for a process."""

    poll_seconds: float = DEFAULT_POLL_SECONDS
    max_requests: int | None = None
    max_bytes: int | None = None

    @classmethod
    def from_env(cls) -> BatchOptions:
        def number(name: str) -> float | None:
            value = os.environ.get(name)
            return float(value) if value else None

        requests, size = number("HANDAI_BATCH_MAX_REQUESTS"), number("HANDAI_BATCH_MAX_BYTES")
        return cls(
            poll_seconds=number("HANDAI_BATCH_POLL_SECONDS") or DEFAULT_POLL_SECONDS,
            max_requests=int(requests) if requests else None,
            max_bytes=int(size) if size else None,
        )

    def limits(self, provider: str) -> tuple[int, int]:
        """Requests and bytes per file for this provider: its own limits, or smaller ones set here."""
        requests, size = FILE_LIMITS[provider]
        return min(requests, self.max_requests or requests), min(size, self.max_bytes or size)
