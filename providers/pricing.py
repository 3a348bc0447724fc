"""Prices per model, in USD per million tokens, so a run's cost can be shown before and after.

List prices change; the table holds the published prices of the curated models when it was
written, OpenRouter's live model list overrides it for OpenRouter, and the user's own entries
(Settings) override both. Local servers cost nothing. An unknown model has no price: its cost is
shown as unknown, never as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .registry import PROVIDERS


@dataclass(frozen=True)
class Price:
    prompt: float  # USD per 1M input tokens
    completion: float  # USD per 1M output tokens
    source: str = "table"

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.prompt + tokens_out * self.completion) / 1_000_000


# Published list prices (USD per 1M tokens: input, output).
LIST_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-opus-4-1": (15.00, 75.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "llama-3.3-70b-versatile": (0.59, 0.79),
    "llama-3.1-8b-instant": (0.05, 0.08),
    "openai/gpt-oss-120b": (0.15, 0.60),
    "openai/gpt-oss-20b": (0.075, 0.30),
    "meta-llama/Llama-3.3-70B-Instruct-Turbo": (0.88, 0.88),
    "deepseek-ai/DeepSeek-V3": (1.25, 1.25),
}


def price_for(provider: str, model: str, *, overrides: Mapping[str, Mapping[str, float]] | None = None) -> Price | None:
    """The price for a model: the user's entry, OpenRouter's live list, the table, or None."""
    user = (overrides or {}).get(f"{provider}/{model}") or (overrides or {}).get(model)
    if user and user.get("prompt") is not None and user.get("completion") is not None:
        return Price(float(user["prompt"]), float(user["completion"]), "yours")
    config = PROVIDERS.get(provider)
    if config is not None and config.local:
        return Price(0.0, 0.0, "local")
    if provider == "openrouter":
        from .models import cached_model_info

        info = cached_model_info(model)
        if info is not None and info.prompt_price is not None and info.completion_price is not None:
            return Price(info.prompt_price, info.completion_price, "OpenRouter")
    listed = LIST_PRICES.get(model)
    return Price(*listed) if listed else None
