"""Live figures of a job, as one dataclass the pool updates and any thread may snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from handai_db import ACTIVE_STATUSES, RunStatus


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

    def snapshot(self) -> Progress:
        return replace(self, errors_by_kind=dict(self.errors_by_kind))
