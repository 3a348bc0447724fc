"""The ledger's tables as SQLAlchemy 2.x models, and the statuses: `RunStatus` with its allowed
transitions (one table, DESIGN decision 9), `RowStatus` and `RatingKind`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class RunStatus(StrEnum):
    """A run's life. Every status write is a compare-and-set against `ALLOWED` (DESIGN decision 9)."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """Someone is (or is about to be) sending this run's rows."""
        return self in ACTIVE_STATUSES


class RowStatus(StrEnum):
    """A result row (one input row's cell): written `pending` before the first call."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # a step's `run_if` did not hold for the row: nothing sent, nothing spent


class RatingKind(StrEnum):
    """Where a rating that is not a model's cell came from."""

    HUMAN = "human"  # imported from a coder's column, or coded by hand in the app
    ADJUDICATED = "adjudicated"  # a person settled a disagreement


ADJUDICATED_RATER = "adjudicated"

S = RunStatus
# from → the statuses a run may move to. `running` is entered only by a process that claims the
# run; a run that is no longer `running` is never written `completed` by its (late) owner.
ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED, S.STOPPED, S.FAILED, S.INTERRUPTED}),
    S.RUNNING: frozenset({S.PAUSED, S.STOPPED, S.COMPLETED, S.FAILED, S.INTERRUPTED}),
    S.PAUSED: frozenset({S.RUNNING, S.STOPPED}),
    S.STOPPED: frozenset({S.RUNNING}),
    S.INTERRUPTED: frozenset({S.RUNNING, S.PAUSED, S.STOPPED}),
    S.COMPLETED: frozenset({S.RUNNING}),
    S.FAILED: frozenset({S.RUNNING, S.STOPPED}),
}
RUN_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
ACTIVE_STATUSES: tuple[RunStatus, ...] = (S.QUEUED, S.RUNNING)
FINISHED_STATUSES: tuple[RunStatus, ...] = tuple(s for s in RunStatus if s not in ACTIVE_STATUSES)


def sources(status: RunStatus) -> tuple[RunStatus, ...]:
    """The statuses from which a run may move to `status`."""
    return tuple(s for s, targets in ALLOWED.items() if status in targets)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Portable types only (SQLite and PostgreSQL). PostgreSQL enforces a VARCHAR's length and an
    INTEGER's range where SQLite does not: text a person or a provider writes (names, models, file
    names, owners) is Text, and totals over a whole run are BigInteger."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(40), default="transform")
    name: Mapped[str] = mapped_column(Text, default="")
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(Text)
    connection: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    row_template: Mapped[str | None] = mapped_column(Text)
    columns: Mapped[list[Any]] = mapped_column(default=list)
    output_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    input_name: Mapped[str] = mapped_column(Text, default="")
    input_hash: Mapped[str] = mapped_column(String(64), default="")
    input_columns: Mapped[list[Any]] = mapped_column(default=list)
    concurrency: Mapped[int] = mapped_column(Integer, default=16)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED.value, index=True)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    tokens_in: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens_out: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    owner: Mapped[str | None] = mapped_column(Text)
    calls: Mapped[int] = mapped_column(BigInteger, default=0)
    cache_hits: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    active_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # arms and steps of a multi-model run

    def elapsed_seconds(self) -> float:
        """Time spent running, over every start and resume (runs made before this was kept:
        first start to finish)."""
        span = 0.0
        if self.status == RunStatus.RUNNING and self.resumed_at:
            span = max(0.0, ((self.heartbeat_at or self.resumed_at) - self.resumed_at).total_seconds())
        if self.active_seconds or span:
            return (self.active_seconds or 0.0) + span
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return 0.0


class Result(Base):
    __tablename__ = "results"
    __table_args__ = (
        Index("ix_results_cell", "run_id", "row_index", "step", "arm", "sample", unique=True),
        Index("ix_results_run_status", "run_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    row_index: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer, default=0)
    arm: Mapped[int] = mapped_column(Integer, default=0)
    sample: Mapped[int] = mapped_column(Integer, default=0)
    input: Mapped[dict[str, Any]] = mapped_column(default=dict)  # on a row's first cell only
    request: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=RowStatus.PENDING.value)
    error_kind: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    cached: Mapped[bool] = mapped_column(default=False)
    flags: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model_reported: Mapped[str | None] = mapped_column(Text)  # the reply's `model`; NULL: no claim


class LogRow(Base):
    __tablename__ = "logs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)


class Setting(Base):
    """A setting the whole project shares (prices, saved instructions)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UserSetting(Base):
    """One person's setting (the sidebar's providers, URLs and models): on a shared server nobody's
    choice overwrites another's."""

    __tablename__ = "user_settings"
    user_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Migration(Base):
    __tablename__ = "migrations"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CacheEntry(Base):
    """A reply already paid for, keyed by everything that shaped it (see handai_engine.cache_key)."""

    __tablename__ = "response_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(Text)
    raw: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    model_reported: Mapped[str | None] = mapped_column(Text)  # who really answered, kept for reuse


class CodebookRow(Base):
    """A named codebook; its content lives in numbered, immutable versions."""

    __tablename__ = "codebooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CodebookVersion(Base):
    """One saved state of a codebook (`research.codebook.Codebook.record()`), never edited: a run
    that applied version 3 can always show exactly what version 3 said."""

    __tablename__ = "codebook_versions"
    __table_args__ = (Index("ix_codebook_version", "codebook_id", "version", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    codebook_id: Mapped[int] = mapped_column(ForeignKey("codebooks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Rating(Base):
    """A rater's answer for one row of a run that is not a model's cell: an imported or hand-made
    human code, or an adjudicated decision (who settled it, when, and why)."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_cell", "run_id", "row_index", "rater", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    row_index: Mapped[int] = mapped_column(Integer)
    rater: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), default="human")  # RatingKind
    value: Mapped[Any] = mapped_column(JSON)  # a label, a list of labels, or None (missing)
    note: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProviderBatch(Base):
    """One file of a run's cells sent through a provider's Batch API (ledger/batches.py). Written
    before the upload; the provider's batch id is added the moment it exists, so a restarted
    process re-attaches to it instead of sending its cells again."""

    __tablename__ = "batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    arm: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(Text, default="")
    batch_id: Mapped[str | None] = mapped_column(Text)
    input_file_id: Mapped[str | None] = mapped_column(Text)
    output_file_id: Mapped[str | None] = mapped_column(Text)
    error_file_id: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="planned")
    request_count: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    cells: Mapped[list[Any]] = mapped_column(default=list)  # the result ids it carries (its custom_ids)
    collected: Mapped[bool] = mapped_column(default=False)  # its results are in the ledger: closed
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
