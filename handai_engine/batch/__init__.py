"""Runs sent through the providers' Batch APIs (OpenAI, Azure OpenAI, Anthropic): half the price,
results within 24 h. A run in batch mode records `"mode": "batch"` in its params; its cells go out
as JSONL lines (custom_id = the cell's result id, body = exactly what a real-time call sends, or
its Messages API twin for Anthropic), and the results land in the ledger cell by cell as
real-time results do.

limits           each provider's limits, the batch price, polling options
parts            cells → batches within the limits
client           the provider's side, one interface: OpenAI's Files and Batches (`openai` SDK)
message_batches  ... and Anthropic's Message Batches (`anthropic` SDK), requests inline
anthropic_lines  chat body → Messages params; Anthropic result lines → OpenAI's output shape
collect          result lines → outcomes, by the real-time parse path
job              submit, poll, collect, cancel; re-attach after a restart
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handai_db import Run
from handai_errors import RunStartError
from providers.capabilities import supports_batch

from ..plan import Plan
from .limits import BATCH_DISCOUNT, FILE_LIMITS, BatchOptions, batch_price

BATCH = "batch"
REALTIME = "realtime"
MODE = "mode"  # the key in a run's params


def is_batch(run: Run) -> bool:
    return (run.params or {}).get(MODE) == BATCH


def check_providers(providers: Iterable[str]) -> None:
    """Raise RunStartError when a provider has no Batch API that Handai drives."""
    unsupported = sorted({p for p in providers if not supports_batch(p)})
    if unsupported:
        raise RunStartError(
            f"{', '.join(unsupported)} has no Batch API that Handai can use (OpenAI, Azure OpenAI and Anthropic do). "
            "Run it in real time."
        )


NO_BUDGET_IN_BATCH = (
    "A budget cap cannot pause a batch: the provider answers every row at once. Remove the cap or send in real time."
)


def check_no_budget(budget_usd: float | None) -> None:
    """Raise RunStartError for a budget cap on a batch run: nothing could stop the spending
    once the batch is at the provider, so the cap would only look like a guard."""
    if budget_usd is not None:
        raise RunStartError(NO_BUDGET_IN_BATCH)


def check_batchable(plan: Plan) -> None:
    """Raise RunStartError, before anything is written or sent, when a run cannot go as batches."""
    if len(plan.steps) != 1:
        raise RunStartError(
            "Batch mode sends runs of one step (Transform, Generate, Compare, Code); "
            "this run's later steps need the earlier answers first. Run it in real time."
        )
    check_providers(a.provider for a in plan.arms)


@dataclass(frozen=True)
class BatchState:
    """One provider batch of a run, as History and `runs list` show it."""

    batch_id: str | None
    provider: str
    state: str  # validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled…
    requests: int
    done: int
    failed: int
    open: bool  # its results are not yet in the ledger
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> BatchState:
        return cls(
            row.batch_id,
            row.provider,
            row.state,
            row.request_count,
            row.done,
            row.failed,
            not row.collected,
            row.error,
            row.created_at,
            row.updated_at,
        )


def summary(states: Sequence[BatchState]) -> str:
    """One line: how many batches in which state ("2 in_progress, 1 completed")."""
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items())


__all__ = [
    "BATCH",
    "BATCH_DISCOUNT",
    "FILE_LIMITS",
    "MODE",
    "REALTIME",
    "BatchOptions",
    "BatchState",
    "batch_price",
    "check_batchable",
    "check_providers",
    "is_batch",
    "summary",
    "supports_batch",
]
