"""The plain records the ledger hands out and takes in: outcomes, run control, ledger rows and
cells, figures, filters and counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.models import RunStatus


@dataclass(frozen=True)
class RowOutcome:
    """What the engine learned about one row; written in batches by `record_results`.
    `calls`, tokens and cost are what was spent since the row's last write, added to what the
    ledger holds (the result's `attempts` is the sum of its `calls`, over every job that sent it);
    a `None` status records only that spending (a row left unfinished). `attempts` is this job's
    count alone; the ledger adds `calls` instead."""

    result_id: int
    status: str | None
    raw: str | None = None
    parsed: dict[str, Any] | None = None
    error_kind: str | None = None
    error_message: str | None = None
    attempts: int = 0
    latency_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    request: str | None = None
    cost_usd: float | None = None
    cached: bool = False
    cache_key: str | None = None
    calls: int = 0
    flags: dict[str, Any] | None = None
    model_reported: str | None = None  # the model id the reply named (None: it named none)


@dataclass(frozen=True)
class RunControl:
    """What the process running a run reads back after each write: whether it should go on."""

    status: RunStatus
    owner: str | None
    stop_reason: str | None

    def obeys(self, owner: str) -> bool:
        return self.status == RunStatus.RUNNING and self.owner == owner


@dataclass(frozen=True, slots=True)
class LedgerCell:
    result_id: int
    step: int
    arm: int
    sample: int
    status: str
    parsed: dict[str, Any] | None


@dataclass(slots=True)
class LedgerRow:
    """One input row with all its cells, as the engine pulls them page by page."""

    row_index: int
    input: dict[str, Any]
    cells: list[LedgerCell]


@dataclass(frozen=True)
class CellFigures:
    """One (step, arm, status) group of a run's cells: per-arm and per-step figures."""

    step: Any  # the step's index in the ledger, its name once the plan is known
    arm: Any
    status: str
    cells: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    attempts: int
    latency_ms: float | None  # mean


@dataclass
class RunFilter:
    status: Sequence[str] = ()
    kind: Sequence[str] = ()
    provider: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None
    session_id: int | None = None
    limit: int = 500


@dataclass(frozen=True)
class RunCounts:
    total: int
    pending: int
    succeeded: int
    failed: int
    tokens_in: int
    tokens_out: int
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    @property
    def done(self) -> int:
        return self.succeeded + self.failed + self.skipped
