"""Live figures of a job, as one dataclass the pool updates and any thread may snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from handai_db import ACTIVE_STATUSES, CellFigures, RowStatus, Run, RunCounts, RunStatus
from handai_errors import ErrorKind


@dataclass
class Figures:
    """One arm's or one step's share of a run: cells, calls, 429s and spending."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    calls: int = 0
    rate_limited: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = None
    latency_ms: float | None = None  # mean over answered calls (from the ledger)

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

    def add(self, status: str) -> None:
        if status == RowStatus.SUCCEEDED:
            self.succeeded += 1
        elif status == RowStatus.FAILED:
            self.failed += 1
        elif status == RowStatus.SKIPPED:
            self.skipped += 1

    def bill(self, tokens_in: int, tokens_out: int, cost: float | None) -> None:
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost


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
    skipped: int = 0
    arms: dict[str, Figures] = field(default_factory=dict)
    steps: dict[str, Figures] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped

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

    def part(self, step: str, arm: str) -> tuple[Figures, Figures]:
        return self.steps.setdefault(step, Figures()), self.arms.setdefault(arm, Figures())

    def settled(self, step: str, arm: str, status: RowStatus, kind: ErrorKind | None = None) -> None:
        """Count one cell that reached a final status: the one rule for live cell counts."""
        if status == RowStatus.SUCCEEDED:
            self.succeeded += 1
        elif status == RowStatus.FAILED:
            self.failed += 1
            if kind is not None:
                self.errors_by_kind[kind.value] = self.errors_by_kind.get(kind.value, 0) + 1
        else:
            self.skipped += 1
        for figures in self.part(step, arm):
            figures.add(status)

    @classmethod
    def from_ledger(cls, run: Run, counts: RunCounts, parts: Iterable[CellFigures] = ()) -> Progress:
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
            skipped=counts.skipped,
            arms=_summed(parts, "arm"),
            steps=_summed(parts, "step"),
        )

    def snapshot(self) -> Progress:
        return replace(
            self,
            errors_by_kind=dict(self.errors_by_kind),
            arms={k: replace(v) for k, v in self.arms.items()},
            steps={k: replace(v) for k, v in self.steps.items()},
        )


def _summed(parts: Iterable[CellFigures], by: str) -> dict[str, Figures]:
    out: dict[str, Figures] = {}
    latency: dict[str, tuple[float, int]] = {}
    for p in parts:
        name = getattr(p, by)
        f = out.setdefault(name, Figures())
        f.total += p.cells
        if p.status != RowStatus.PENDING:
            setattr(f, p.status, getattr(f, p.status) + p.cells)
        f.tokens_in += p.tokens_in
        f.tokens_out += p.tokens_out
        f.calls += p.attempts
        if p.cost_usd is not None:
            f.cost_usd = (f.cost_usd or 0.0) + p.cost_usd
        if p.latency_ms is not None and p.status == RowStatus.SUCCEEDED:
            total, n = latency.get(name, (0.0, 0))
            latency[name] = (total + p.latency_ms * p.cells, n + p.cells)
    for name, (total, n) in latency.items():
        out[name].latency_ms = total / n if n else None
    return out
