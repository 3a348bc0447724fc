"""Live figures of a job, as one dataclass the pool updates and any thread may snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from handai_db import ACTIVE_STATUSES, Run, RunCounts, RunStatus


@dataclass
class Progress:
    run_id: int
    status: RunStatus
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    retrying: int = 0
    in_flight: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    rows_per_s: float = 0.0
    eta_s: float | None = None
    concurrency: int = 0
    max_concurrency: int = 0
    rate_limited: int = 0
    calls: int = 0
    cache_hits: int = 0
    cost_usd: float | None = None
    elapsed_s: float = 0.0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    live: bool = False

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE_STATUSES

    def bill(self, tokens_in: int, tokens_out: int, cost: float | None) -> None:
        """Count one billed reply: the one rule for tokens and money in live figures."""
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    @classmethod
    def from_ledger(cls, run: Run, counts: RunCounts) -> Progress:
        """The figures the ledger holds for a run: its status, rows, spending and time."""
        elapsed = run.elapsed_seconds()
        return cls(
            run.id,
            RunStatus(run.status),
            total=counts.total,
            succeeded=counts.succeeded,
            failed=counts.failed,
            tokens_in=counts.tokens_in,
            tokens_out=counts.tokens_out,
            errors_by_kind=counts.errors_by_kind,
            stop_reason=run.stop_reason,
            concurrency=run.concurrency,
            max_concurrency=run.concurrency,
            elapsed_s=elapsed,
            rows_per_s=counts.done / elapsed if elapsed else 0.0,
            calls=run.calls,
            cache_hits=run.cache_hits,
            cost_usd=run.cost_usd,
        )

    def snapshot(self) -> Progress:
        return replace(self, errors_by_kind=dict(self.errors_by_kind))
