"""What a run will cost in tokens, dollars and time, before it is paid for.

A test run on the same file and model is the best predictor (real tokens, real latency); without
one, the estimate comes from the prompt and data sizes and says it is rough.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from providers import Price

GUESSED_LATENCY_S = 1.5
GUESSED_OUTPUT_TOKENS = 100
GUESSED_TOKENS_PER_FIELD = 30


@dataclass(frozen=True)
class Estimate:
    rows: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    seconds: float
    basis: str


def estimate_run(
    rows: int,
    prompt_tokens: float,
    *,
    concurrency: int,
    max_tokens: int | None = None,
    fields: int = 0,
    price: Price | None = None,
    test_stats: Mapping[str, float] | None = None,
) -> Estimate:
    """Tokens, cost and time for `rows` rows averaging `prompt_tokens` input tokens each."""
    concurrency = max(1, concurrency)
    if test_stats:
        per_in, per_out = test_stats["tokens_in"], test_stats["tokens_out"]
        latency = test_stats["latency_ms"] / 1000
        basis = f"from your test run of {int(test_stats['rows'])} rows"
    else:
        per_in = prompt_tokens
        per_out = GUESSED_TOKENS_PER_FIELD * fields if fields else GUESSED_OUTPUT_TOKENS
        if max_tokens:
            per_out = min(per_out, max_tokens)
        latency = GUESSED_LATENCY_S
        basis = "a rough guess from the prompt and data size; a test run makes it precise"
    tokens_in, tokens_out = int(per_in * rows), int(per_out * rows)
    cost = price.cost(tokens_in, tokens_out) if price else None
    return Estimate(rows, tokens_in, tokens_out, cost, rows * latency / concurrency, basis)
