"""The run ledger: sessions, runs, one result row per input row, logs and settings, in SQLite.

The database is the source of truth (DESIGN decision 2): a run and a `pending` result for every
input row are written before the first call, and each row is recorded as it finishes, in short
transactions, so a crash loses at most the rows in flight. Progress, History, resume and
retry-failed all read the same rows. This is the only module that speaks SQL. No API key is ever
written here: connections are stored through `Connection.safe_dict()`.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from handai_errors import RunStartError
from handai_prompts import describe_flags, is_structured


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


HEARTBEAT_STALE = timedelta(seconds=30)
INSTRUCTIONS_KEY = "instructions"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id", ondelete="SET NULL"), index=True)
    kind: Mapped[str] = mapped_column(String(20), default="transform")
    name: Mapped[str] = mapped_column(String(300), default="")
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    connection: Mapped[dict[str, Any]] = mapped_column(default=dict)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    row_template: Mapped[str | None] = mapped_column(Text)
    columns: Mapped[list[Any]] = mapped_column(default=list)
    output_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    input_name: Mapped[str] = mapped_column(String(500), default="")
    input_hash: Mapped[str] = mapped_column(String(64), default="")
    input_columns: Mapped[list[Any]] = mapped_column(default=list)
    concurrency: Mapped[int] = mapped_column(Integer, default=16)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED.value, index=True)
    stop_reason: Mapped[str | None] = mapped_column(Text)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    owner: Mapped[str | None] = mapped_column(String(200))
    calls: Mapped[int] = mapped_column(Integer, default=0)
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)
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


class LogRow(Base):
    __tablename__ = "logs"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)


class Setting(Base):
    __tablename__ = "settings"
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
    model: Mapped[str] = mapped_column(String(200))
    raw: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CodebookRow(Base):
    """A named codebook; its content lives in numbered, immutable versions."""

    __tablename__ = "codebooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
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
    source: Mapped[str] = mapped_column(String(500), default="")
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
    rater: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="human")  # RatingKind
    value: Mapped[Any] = mapped_column(JSON)  # a label, a list of labels, or None (missing)
    note: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def _m0001_initial(conn: SAConnection) -> None:
    Base.metadata.create_all(conn)


def _m0002_cache_and_cost(conn: SAConnection) -> None:
    for table, column, ddl in (
        ("runs", "calls", "INTEGER DEFAULT 0"),
        ("runs", "cache_hits", "INTEGER DEFAULT 0"),
        ("runs", "cost_usd", "FLOAT"),
        ("results", "cost_usd", "FLOAT"),
        ("results", "cached", "BOOLEAN DEFAULT 0"),
    ):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
    CacheEntry.__table__.create(conn, checkfirst=True)


def _m0003_stopped(conn: SAConnection) -> None:
    """`cancelled` is now `stopped` (RunStatus), one word for one thing."""
    conn.execute(update(Run).where(Run.status == "cancelled").values(status=RunStatus.STOPPED.value))


def _m0004_active_time_and_flags(conn: SAConnection) -> None:
    """Time a run spent running, summed over its resumes; flags on a row (off-list answers)."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN active_seconds FLOAT DEFAULT 0")
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN resumed_at DATETIME")
    conn.exec_driver_sql("ALTER TABLE results ADD COLUMN flags JSON")


def _m0005_cells(conn: SAConnection) -> None:
    """A result is a cell (row, step, arm, sample); old runs are all cell (row, 0, 0, 0)."""
    for column in ("step", "arm", "sample"):
        conn.exec_driver_sql(f"ALTER TABLE results ADD COLUMN {column} INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_results_run_row")
    conn.exec_driver_sql(
        "CREATE UNIQUE INDEX IF NOT EXISTS ix_results_cell ON results (run_id, row_index, step, arm, sample)"
    )
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN plan JSON")


def _m0006_codebooks_and_ratings(conn: SAConnection) -> None:
    """Versioned codebooks, and human codes and adjudicated decisions beside the model's cells."""
    for model in (CodebookRow, CodebookVersion, Rating):
        model.__table__.create(conn, checkfirst=True)


# Ordered, append-only: a new version appends ("000N_…", fn) and existing databases upgrade.
MIGRATIONS: list[tuple[str, Callable[[SAConnection], None]]] = [
    ("0001_initial", _m0001_initial),
    ("0002_cache_and_cost", _m0002_cache_and_cost),
    ("0003_stopped", _m0003_stopped),
    ("0004_active_time_and_flags", _m0004_active_time_and_flags),
    ("0005_cells", _m0005_cells),
    ("0006_codebooks_and_ratings", _m0006_codebooks_and_ratings),
]


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


def default_url() -> str:
    """HANDAI_DATABASE_URL, else a SQLite file in HANDAI_DATA_DIR (default ~/.handai)."""
    if url := os.environ.get("HANDAI_DATABASE_URL"):
        return url
    folder = Path(os.environ.get("HANDAI_DATA_DIR") or Path.home() / ".handai").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'handai.db'}"


_BOOT_ID = uuid.uuid4().hex[:8]


def owner_id() -> str:
    """Which process owns a running run: host, pid and a per-process boot id, since a restarted
    container is PID 1 on the same host name again."""
    return f"{socket.gethostname()}:{os.getpid()}:{_BOOT_ID}"


def owner_alive(owner: str | None, heartbeat_at: datetime | None) -> bool:
    """Judged on read: a process on this host whose pid is gone is dead at once; any other owner
    is alive while its heartbeat is fresh."""
    if not owner or heartbeat_at is None:
        return False
    host, pid, _boot = ([*owner.split(":"), "", ""])[:3]
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass  # exists, owned by another user
    return heartbeat_at > utcnow() - HEARTBEAT_STALE


def describe_owner(owner: str | None) -> str:
    host, pid, _boot = ([*(owner or "").split(":"), "", ""])[:3]
    return f"process {pid} on {host}" if pid else "another process"


class Database:
    """One database: a SQLAlchemy engine plus task-named functions, each a short transaction."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        is_sqlite = self.url.startswith("sqlite")
        connect_args = {"timeout": 30, "check_same_thread": False} if is_sqlite else {}
        self.engine: Engine = create_engine(self.url, connect_args=connect_args)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()
        self.migrate()

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Create a new database from the models, or apply the migrations an older one lacks.
        Two processes may open a new database at once (the app and the CLI): the loser of that
        race finds the work done and tries again."""
        for attempt in range(3):
            try:
                return self._migrate()
            except (IntegrityError, OperationalError):
                if attempt == 2:
                    raise
                time.sleep(0.2)
        return []

    def _migrate(self) -> list[str]:
        applied: list[str] = []
        with self.engine.begin() as conn:
            Migration.__table__.create(conn, checkfirst=True)
            done = set(conn.scalars(select(Migration.name)))
            fresh = not done and "runs" not in _table_names(conn)
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                if not fresh:
                    fn(conn)
                applied.append(name)
            if fresh:
                Base.metadata.create_all(conn)
            if applied:
                conn.execute(insert(Migration), [{"name": n, "applied_at": utcnow()} for n in applied])
        return applied

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -------------------------------------------------------------------------------
    def create_session(self, name: str) -> int:
        with self.session() as s, s.begin():
            row = SessionRow(name=name)
            s.add(row)
            s.flush()
            return row.id

    def rename_session(self, session_id: int, name: str) -> None:
        with self.session() as s, s.begin():
            s.execute(update(SessionRow).where(SessionRow.id == session_id).values(name=name))

    def list_sessions(self) -> list[SessionRow]:
        with self.session() as s:
            return list(s.scalars(select(SessionRow).order_by(SessionRow.id.desc())))

    def get_session(self, session_id: int) -> SessionRow | None:
        with self.session() as s:
            return s.get(SessionRow, session_id)

    # -- runs -----------------------------------------------------------------------------------
    def create_run(
        self, rows: Iterable[dict[str, Any]], cells: Sequence[tuple[int, int, int]] = ((0, 0, 0),), **fields: Any
    ) -> int:
        """Write the run and one pending result per cell (row, step, arm, sample) before any call
        is made. The row's input is stored once, on its first cell."""
        pending = RowStatus.PENDING.value
        with self.session() as s, s.begin():
            run = Run(status=RunStatus.QUEUED.value, **fields)
            s.add(run)
            s.flush()
            batch: list[dict[str, Any]] = []
            total = 0
            for index, row in enumerate(rows):
                for n, (step, arm, sample) in enumerate(cells):
                    batch.append(
                        {
                            "run_id": run.id,
                            "row_index": index,
                            "step": step,
                            "arm": arm,
                            "sample": sample,
                            "input": row if n == 0 else {},
                            "status": pending,
                        }
                    )
                total += len(cells)
                if len(batch) >= 5000:
                    s.execute(insert(Result), batch)
                    batch = []
            if batch:
                s.execute(insert(Result), batch)
            run.total_rows = total
            return run.id

    def get_run(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def update_run(self, run_id: int, **values: Any) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(update(Run).where(Run.id == run_id).values(**values))

    def update_params(self, run_id: int, changes: dict[str, Any]) -> None:
        """Merge `changes` into a run's recorded parameters, read and written in one transaction."""
        with self._write_lock, self.session() as s, s.begin():
            params = s.scalar(select(Run.params).where(Run.id == run_id)) or {}
            s.execute(update(Run).where(Run.id == run_id).values(params={**params, **changes}))

    def set_run_status(
        self, run_id: int, status: RunStatus, *, only_from: Sequence[RunStatus] | None = None, **values: Any
    ) -> bool:
        """Compare-and-set: moves the run only from `only_from` (default: every status `ALLOWED`
        to reach `status`); returns False when the run was in none of them."""
        status = RunStatus(status)
        allowed = sources(status) if only_from is None else tuple(only_from)
        if any(status not in ALLOWED[RunStatus(s)] for s in allowed):
            raise ValueError(f"a run cannot move to {status} from every one of {allowed}")
        values = {"status": status.value, **values}
        if status != RunStatus.RUNNING and status != RunStatus.QUEUED:
            values.setdefault("finished_at", utcnow())
        stmt = update(Run).where(Run.id == run_id, Run.status.in_([s.value for s in allowed])).values(**values)
        with self._write_lock, self.session() as s, s.begin():
            return s.execute(stmt).rowcount > 0

    def claim_run(self, run_id: int) -> Run:
        """Make this process the run's owner and set it `running`, atomically: a run that another
        live process runs is refused (RunStartError naming it), a dead owner's run is taken over,
        and of two processes claiming at once exactly one wins."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        me = owner_id()
        status = RunStatus(run.status)
        if status.active and run.owner != me and owner_alive(run.owner, run.heartbeat_at):
            raise RunStartError(
                f"Run {run_id} is being run by {describe_owner(run.owner)}. "
                "Pause or stop it first (from any window or `handai_cli.py runs pause`), then resume it here."
            )
        if status.active and run.owner == me:
            raise RunStartError(f"Run {run_id} is already running in this process.")
        if RunStatus.RUNNING not in ALLOWED[status] and not status.active:
            raise RunStartError(f"Run {run_id} is {status} and cannot be started.")
        now = utcnow()
        stmt = (
            update(Run)
            .where(Run.id == run_id, Run.status == status.value)
            .where(Run.owner.is_(None) if run.owner is None else Run.owner == run.owner)
            .values(
                status=RunStatus.RUNNING.value,
                owner=me,
                heartbeat_at=now,
                started_at=run.started_at or now,
                resumed_at=now,
                finished_at=None,
                stop_reason=None,
            )
        )
        with self._write_lock, self.session() as s, s.begin():
            if s.execute(stmt).rowcount == 0:
                raise RunStartError(f"Run {run_id} was started by another process a moment ago.")
        claimed = self.get_run(run_id)
        assert claimed is not None
        return claimed

    def finish_run(self, run_id: int, status: RunStatus, stop_reason: str | None, active_seconds: float) -> bool:
        """The owner's last write: the time it ran is added, and the status moves only from
        `running` and only while this process owns the run, so a stop or pause written meanwhile
        by anyone is never turned into `completed`."""
        self.update_run(run_id, active_seconds=func.coalesce(Run.active_seconds, 0.0) + active_seconds)
        stmt = (
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.RUNNING.value, Run.owner == owner_id())
            .values(status=RunStatus(status).value, stop_reason=stop_reason, finished_at=utcnow())
        )
        with self._write_lock, self.session() as s, s.begin():
            return s.execute(stmt).rowcount > 0

    def run_control(self, run_id: int) -> RunControl:
        with self.session() as s:
            row = s.execute(select(Run.status, Run.owner, Run.stop_reason).where(Run.id == run_id)).one_or_none()
        if row is None:  # deleted while running: stop
            return RunControl(RunStatus.STOPPED, None, "The run was deleted.")
        return RunControl(RunStatus(row.status), row.owner, row.stop_reason)

    def heartbeat(self, run_id: int) -> RunControl:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(update(Run).where(Run.id == run_id, Run.owner == owner_id()).values(heartbeat_at=utcnow()))
        return self.run_control(run_id)

    def list_runs(self, flt: RunFilter | None = None) -> list[Run]:
        flt = flt or RunFilter()
        stmt = select(Run).order_by(Run.id.desc()).limit(flt.limit)
        if flt.status:
            stmt = stmt.where(Run.status.in_(flt.status))
        if flt.kind:
            stmt = stmt.where(Run.kind.in_(flt.kind))
        if flt.provider:
            stmt = stmt.where(Run.provider.in_(flt.provider))
        if flt.since:
            stmt = stmt.where(Run.created_at >= flt.since)
        if flt.until:
            stmt = stmt.where(Run.created_at < flt.until)
        if flt.session_id is not None:
            stmt = stmt.where(Run.session_id == flt.session_id)
        with self.session() as s:
            return list(s.scalars(stmt))

    def active_runs(self) -> list[Run]:
        return self.list_runs(RunFilter(status=ACTIVE_STATUSES))

    def delete_run(self, run_id: int) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(delete(Result).where(Result.run_id == run_id))
            s.execute(delete(LogRow).where(LogRow.run_id == run_id))
            s.execute(delete(Run).where(Run.id == run_id))

    def mark_interrupted_runs(self) -> list[int]:
        """Runs left queued/running by a process that is gone become `interrupted` (resumable)."""
        interrupted = []
        me = owner_id()
        for run in self.active_runs():
            just_made = run.owner is None and run.created_at > utcnow() - HEARTBEAT_STALE
            if run.owner == me or just_made or owner_alive(run.owner, run.heartbeat_at):
                continue
            stmt_ok = self.set_run_status(
                run.id,
                RunStatus.INTERRUPTED,
                only_from=(RunStatus(run.status),),
                stop_reason="The process running this run stopped before it finished.",
            )
            if stmt_ok:
                self.log(run.id, "warning", "Run marked interrupted: its process is no longer running.")
                self.refresh_run_counts(run.id)
                interrupted.append(run.id)
        return interrupted

    # -- results --------------------------------------------------------------------------------
    def rows_to_run(self, run_id: int, statuses: Sequence[RowStatus], after: int, limit: int) -> list[LedgerRow]:
        """The next `limit` rows after row `after` that have a cell in `statuses`, each with all
        its cells (earlier steps' answers feed later steps): the engine pulls a run page by page
        and never holds the whole of it."""
        wanted = (
            select(Result.row_index)
            .where(Result.run_id == run_id, Result.status.in_(statuses), Result.row_index > after)
            .distinct()
            .order_by(Result.row_index)
            .limit(limit)
        )
        stmt = (
            select(
                Result.id,
                Result.row_index,
                Result.step,
                Result.arm,
                Result.sample,
                Result.status,
                Result.input,
                Result.parsed,
            )
            .where(Result.run_id == run_id, Result.row_index.in_(wanted.scalar_subquery()))
            .order_by(Result.row_index, Result.step, Result.arm, Result.sample)
        )
        rows: list[LedgerRow] = []
        with self.session() as s:
            for r in s.execute(stmt):
                if not rows or rows[-1].row_index != r.row_index:
                    rows.append(LedgerRow(r.row_index, r.input or {}, []))
                parsed = r.parsed if r.status == RowStatus.SUCCEEDED else None
                rows[-1].cells.append(LedgerCell(r.id, r.step, r.arm, r.sample, r.status, parsed))
        return rows

    def reset_rows(self, run_id: int, statuses: Sequence[RowStatus] = (RowStatus.FAILED,)) -> int:
        """Put rows back to pending (retry-failed), keeping their attempt counts for the record."""
        stmt = (
            update(Result)
            .where(Result.run_id == run_id, Result.status.in_(statuses))
            .values(status=RowStatus.PENDING.value, error_kind=None, error_message=None)
        )
        with self._write_lock, self.session() as s, s.begin():
            count = s.execute(stmt).rowcount
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    succeeded=_count_rows(run_id, RowStatus.SUCCEEDED), failed=_count_rows(run_id, RowStatus.FAILED)
                )
            )
            return count

    def record_results(self, run_id: int, outcomes: Sequence[RowOutcome]) -> RunControl:
        """Write a batch of outcomes and the run's totals in one short transaction, then read the
        run's status back for its owner. Spending (calls, tokens, cost) is added, never replaced,
        so every billed call counts once however many attempts, resumes and retries a row has."""
        if not outcomes:
            return self.run_control(run_id)
        return self._write_outcomes(run_id, outcomes)

    def _write_outcomes(self, run_id: int, outcomes: Sequence[RowOutcome]) -> RunControl:
        now = utcnow()
        table = Result.__table__.c
        spent = {
            # every call made for the cell, over all its attempts, resumes and retries
            "attempts": table.attempts + bindparam("add_calls"),
            "tokens_in": table.tokens_in + bindparam("add_in"),
            "tokens_out": table.tokens_out + bindparam("add_out"),
            "cost_usd": case(
                (bindparam("add_cost", type_=Float).is_(None), table.cost_usd),
                else_=func.coalesce(table.cost_usd, 0.0) + bindparam("add_cost", type_=Float),
            ),
            "updated_at": now,
        }
        fields = (
            "status",
            "raw",
            "parsed",
            "error_kind",
            "error_message",
            "latency_ms",
            "request",
            "cached",
            "flags",
        )
        finals = [o for o in outcomes if o.status is not None]
        spending = [o for o in outcomes if o.status is None]
        costs = [o.cost_usd for o in outcomes if o.cost_usd is not None]
        fresh = [o for o in finals if o.status == RowStatus.SUCCEEDED and o.cache_key and not o.cached]
        with self._write_lock, self.engine.begin() as conn:
            if finals:
                conn.execute(
                    update(Result.__table__)
                    .where(table.id == bindparam("b_id"))
                    .values({**{k: bindparam(k) for k in fields}, **spent}),
                    [{**{k: getattr(o, k) for k in fields}, **_spent_params(o)} for o in finals],
                )
            if spending:
                conn.execute(
                    update(Result.__table__).where(table.id == bindparam("b_id")).values(spent),
                    [_spent_params(o) for o in spending],
                )
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    tokens_in=Run.tokens_in + sum(o.tokens_in for o in outcomes),
                    tokens_out=Run.tokens_out + sum(o.tokens_out for o in outcomes),
                    calls=Run.calls + sum(o.calls for o in outcomes),
                    cache_hits=Run.cache_hits + sum(1 for o in finals if o.cached),
                    cost_usd=func.coalesce(Run.cost_usd, 0.0) + sum(costs) if costs else Run.cost_usd,
                    # counted as they land (a count over a million cells per batch would cost more
                    # than the batch); refresh_run_counts makes them exact when the job ends
                    succeeded=Run.succeeded + sum(1 for o in finals if o.status == RowStatus.SUCCEEDED),
                    failed=Run.failed + sum(1 for o in finals if o.status == RowStatus.FAILED),
                    heartbeat_at=now,
                )
            )
            if fresh:
                run = conn.execute(select(Run.provider, Run.model).where(Run.id == run_id)).one()
                # One compiled statement, many parameter sets: a multi-row VALUES per batch cost
                # most of the writer thread's time (benchmarks/README.md).
                conn.execute(
                    _insert_ignoring_duplicates(conn, CacheEntry),
                    [
                        {
                            "key": o.cache_key,
                            "provider": run.provider,
                            "model": run.model,
                            "raw": o.raw,
                            "parsed": o.parsed,
                            "tokens_in": o.tokens_in,
                            "tokens_out": o.tokens_out,
                            "created_at": now,
                        }
                        for o in fresh
                    ],
                )
            row = conn.execute(select(Run.status, Run.owner, Run.stop_reason).where(Run.id == run_id)).one()
        return RunControl(RunStatus(row.status), row.owner, row.stop_reason)

    def cached_replies(self, keys: Sequence[str]) -> dict[str, CacheEntry]:
        """Replies already paid for, by cache key (looked up in chunks: SQLite limits parameters)."""
        found: dict[str, CacheEntry] = {}
        unique = list(dict.fromkeys(keys))
        with self.session() as s:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                found.update({e.key: e for e in s.scalars(select(CacheEntry).where(CacheEntry.key.in_(chunk)))})
        return found

    def latest_test_run_stats(self, input_hash: str, provider: str, model: str) -> dict[str, float] | None:
        """Per-row averages of the newest finished test run on this input and model, for estimates."""
        with self.session() as s:
            run_id = s.scalar(
                select(Run.id)
                .where(
                    Run.input_hash == input_hash,
                    Run.provider == provider,
                    Run.model == model,
                    Run.name == "Test run",
                    Run.status == RunStatus.COMPLETED,
                )
                .order_by(Run.id.desc())
                .limit(1)
            )
        if run_id is None:
            return None
        with self.session() as s:
            row = s.execute(
                select(
                    func.avg(Result.tokens_in),
                    func.avg(Result.tokens_out),
                    func.avg(Result.latency_ms),
                    func.count(),
                ).where(Result.run_id == run_id, Result.status == RowStatus.SUCCEEDED, Result.cached.is_(False))
            ).one()
        if not row[3]:
            return None
        return {
            "tokens_in": float(row[0] or 0),
            "tokens_out": float(row[1] or 0),
            "latency_ms": float(row[2] or 0),
            "rows": int(row[3]),
        }

    def run_counts(self, run_id: int) -> RunCounts:
        with self.session() as s:
            by_status = dict(
                s.execute(
                    select(Result.status, func.count()).where(Result.run_id == run_id).group_by(Result.status)
                ).all()
            )
            kinds = dict(
                s.execute(
                    select(Result.error_kind, func.count())
                    .where(Result.run_id == run_id, Result.status == RowStatus.FAILED)
                    .group_by(Result.error_kind)
                ).all()
            )
            run = s.get(Run, run_id)
        return RunCounts(
            total=sum(by_status.values()),
            pending=by_status.get(RowStatus.PENDING, 0),
            succeeded=by_status.get(RowStatus.SUCCEEDED, 0),
            failed=by_status.get(RowStatus.FAILED, 0),
            skipped=by_status.get(RowStatus.SKIPPED, 0),
            tokens_in=run.tokens_in if run else 0,
            tokens_out=run.tokens_out if run else 0,
            errors_by_kind={str(k): v for k, v in kinds.items()},
        )

    def cell_figures(self, run_id: int) -> list[CellFigures]:
        stmt = (
            select(
                Result.step,
                Result.arm,
                Result.status,
                func.count(),
                func.coalesce(func.sum(Result.tokens_in), 0),
                func.coalesce(func.sum(Result.tokens_out), 0),
                func.sum(Result.cost_usd),
                func.coalesce(func.sum(Result.attempts), 0),
                func.avg(Result.latency_ms),
            )
            .where(Result.run_id == run_id)
            .group_by(Result.step, Result.arm, Result.status)
        )
        with self.session() as s:
            return [CellFigures(*row) for row in s.execute(stmt)]

    def refresh_run_counts(self, run_id: int) -> RunCounts:
        counts = self.run_counts(run_id)
        self.update_run(run_id, succeeded=counts.succeeded, failed=counts.failed, total_rows=counts.total)
        return counts

    def results(self, run_id: int, *, statuses: Sequence[str] = (), error_kinds: Sequence[str] = ()) -> list[Result]:
        stmt = select(Result).where(Result.run_id == run_id).order_by(Result.row_index)
        if statuses:
            stmt = stmt.where(Result.status.in_(statuses))
        if error_kinds:
            stmt = stmt.where(Result.error_kind.in_(error_kinds))
        with self.session() as s:
            return list(s.scalars(stmt))

    def result(self, run_id: int, row_index: int) -> Result | None:
        with self.session() as s:
            return s.scalar(select(Result).where(Result.run_id == run_id, Result.row_index == row_index))

    def iter_rows(
        self, run_id: int, rows: Sequence[int] | None = None
    ) -> Iterator[tuple[int, dict[str, Any], list[Any]]]:
        """Every row of a run with all its cells (row_index, input, cells ordered by step, arm,
        sample), streamed from the ledger: exports of a million-row run never hold it whole."""
        stmt = (
            select(
                Result.row_index,
                Result.step,
                Result.arm,
                Result.sample,
                Result.input,
                Result.status,
                Result.raw,
                Result.parsed,
                Result.error_kind,
                Result.error_message,
                Result.latency_ms,
                Result.tokens_in,
                Result.tokens_out,
                Result.cost_usd,
                Result.flags,
            )
            .where(Result.run_id == run_id)
            .order_by(Result.row_index, Result.step, Result.arm, Result.sample)
        )
        if rows is not None:
            stmt = stmt.where(Result.row_index.in_(list(rows)))
        current: tuple[int, dict[str, Any], list[Any]] | None = None
        with self.session() as s:
            for cell in s.execute(stmt.execution_options(yield_per=5000)):
                if current is None or current[0] != cell.row_index:
                    if current is not None:
                        yield current
                    current = (cell.row_index, cell.input or {}, [])
                current[2].append(cell)
        if current is not None:
            yield current

    def finished_times(self, run_id: int) -> pd.DataFrame:
        """When each finished row finished, its status, latency and error kind (charts over time):
        four columns read alone, not the rows' texts."""
        stmt = select(
            Result.updated_at.label("time"),
            Result.status,
            Result.latency_ms,
            Result.error_kind.label("error"),
        ).where(
            Result.run_id == run_id,
            Result.status.in_([RowStatus.SUCCEEDED, RowStatus.FAILED]),
            Result.updated_at.is_not(None),
        )
        with self.session() as s:
            return pd.DataFrame(s.execute(stmt).mappings().all(), columns=["time", "status", "latency_ms", "error"])

    def latest_finished(self, run_id: int, n: int) -> list[int]:
        """Row indexes of the `n` rows that finished last, newest first (live spot checks)."""
        stmt = (
            select(Result.row_index)
            .where(Result.run_id == run_id, Result.status.in_([RowStatus.SUCCEEDED, RowStatus.FAILED]))
            .order_by(Result.updated_at.desc(), Result.row_index.desc())
            .limit(n)
        )
        with self.session() as s:
            return list(s.scalars(stmt))

    def results_frame(
        self, run_id: int, *, statuses: Sequence[str] = (), rows: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """The input rebuilt with its outputs: input columns in order, then the output
        (`ai_output`, or one column per JSON field), then `ai_status` and `ai_error` (and `ai_flags`
        when some answer was flagged, e.g. a category off its list)."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        stmt = (
            select(Result.input, Result.raw, Result.parsed, Result.status, Result.error_message, Result.flags)
            .where(Result.run_id == run_id)
            .order_by(Result.row_index)
        )
        if statuses:
            stmt = stmt.where(Result.status.in_(statuses))
        if rows is not None:
            stmt = stmt.where(Result.row_index.in_(list(rows)))
        structured = is_structured(run.output_schema, bool(run.params.get("json_mode")))
        records: list[dict[str, Any]] = []
        flagged = False
        output_keys: dict[str, None] = dict.fromkeys((run.output_schema or {}).get("fields", {}) or {})
        with self.session() as s:  # streamed: a 100k-row run never holds its rows twice
            for row in s.execute(stmt.execution_options(yield_per=2000)):
                record = dict(row.input or {})
                if structured:
                    for key, value in (row.parsed or {}).items():
                        output_keys.setdefault(key, None)
                        record[_output_name(key, run.input_columns)] = _cell(value)
                else:
                    fallback = row.raw if row.status == RowStatus.SUCCEEDED else None
                    record["ai_output"] = (row.parsed or {}).get("output", fallback)
                record["ai_status"] = row.status
                record["ai_error"] = row.error_message
                if row.flags:
                    record["ai_flags"] = describe_flags(row.flags, run.output_schema)
                    flagged = True
                records.append(record)
        outputs = [_output_name(k, run.input_columns) for k in output_keys] if structured else ["ai_output"]
        columns = [*run.input_columns, *outputs, "ai_status", "ai_error", *(["ai_flags"] if flagged else [])]
        return pd.DataFrame.from_records(records, columns=columns)

    # -- logs -----------------------------------------------------------------------------------
    def log(self, run_id: int | None, level: str, message: str) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.add(LogRow(run_id=run_id, level=level, message=message))

    def logs(self, run_id: int | None = None, limit: int = 1000) -> list[LogRow]:
        stmt = select(LogRow).order_by(LogRow.id.desc()).limit(limit)
        if run_id is not None:
            stmt = stmt.where(LogRow.run_id == run_id)
        with self.session() as s:
            return list(reversed(list(s.scalars(stmt))))

    # -- settings -------------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.session() as s:
            row = s.get(Setting, key)
            return default if row is None or row.value is None else row.value.get("v", default)

    def set_setting(self, key: str, value: Any) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.merge(Setting(key=key, value={"v": value}))

    # -- saved instructions ----------------------------------------------------------------------
    def instructions(self) -> dict[str, dict[str, Any]]:
        """Saved instructions by name: {"text": …, "examples": [{"input": …, "output": …}]}."""
        return dict(self.get_setting(INSTRUCTIONS_KEY, {}))

    def save_instruction(self, name: str, text: str, examples: list[dict[str, str]] | None = None) -> None:
        name = name.strip()
        if not name or not text.strip():
            raise ValueError("An instruction needs a name and some text.")
        saved = self.instructions()
        saved[name] = {"text": text, "examples": list(examples or [])}
        self.set_setting(INSTRUCTIONS_KEY, saved)

    def delete_instruction(self, name: str) -> None:
        saved = self.instructions()
        saved.pop(name, None)
        self.set_setting(INSTRUCTIONS_KEY, saved)

    # -- codebooks ------------------------------------------------------------------------------
    def save_codebook(
        self, name: str, content: dict[str, Any], *, note: str = "", source: str = "", run_id: int | None = None
    ) -> CodebookVersion:
        """Save `content` as the next version of the codebook `name` (created on first save). An
        unchanged codebook is not saved twice: its latest version is returned."""
        name = name.strip()
        if not name:
            raise ValueError("A codebook needs a name.")
        with self._write_lock, self.session() as s, s.begin():
            book = s.scalar(select(CodebookRow).where(CodebookRow.name == name))
            if book is None:
                book = CodebookRow(name=name)
                s.add(book)
                s.flush()
            latest = s.scalar(
                select(CodebookVersion)
                .where(CodebookVersion.codebook_id == book.id)
                .order_by(CodebookVersion.version.desc())
                .limit(1)
            )
            if latest is not None and latest.content == content:
                return latest
            version = CodebookVersion(
                codebook_id=book.id,
                version=(latest.version if latest else 0) + 1,
                content=content,
                note=note,
                source=source,
                run_id=run_id,
            )
            s.add(version)
            s.flush()
            return version

    def list_codebooks(self) -> list[tuple[CodebookRow, CodebookVersion]]:
        """Every codebook with its latest version, the most recently changed first."""
        latest = (
            select(CodebookVersion.codebook_id, func.max(CodebookVersion.version).label("v"))
            .group_by(CodebookVersion.codebook_id)
            .subquery()
        )
        stmt = (
            select(CodebookRow, CodebookVersion)
            .join(latest, latest.c.codebook_id == CodebookRow.id)
            .join(
                CodebookVersion,
                (CodebookVersion.codebook_id == CodebookRow.id) & (CodebookVersion.version == latest.c.v),
            )
            .order_by(CodebookVersion.created_at.desc(), CodebookVersion.id.desc())
        )
        with self.session() as s:
            return [(book, version) for book, version in s.execute(stmt).all()]

    def codebook_versions(self, codebook_id: int) -> list[CodebookVersion]:
        with self.session() as s:
            stmt = (
                select(CodebookVersion)
                .where(CodebookVersion.codebook_id == codebook_id)
                .order_by(CodebookVersion.version.desc())
            )
            return list(s.scalars(stmt))

    def codebook_version(self, codebook_id: int, version: int | None = None) -> CodebookVersion | None:
        """One version of a codebook; its latest when `version` is None."""
        stmt = select(CodebookVersion).where(CodebookVersion.codebook_id == codebook_id)
        if version is not None:
            stmt = stmt.where(CodebookVersion.version == version)
        with self.session() as s:
            return s.scalar(stmt.order_by(CodebookVersion.version.desc()).limit(1))

    def find_codebook(self, name: str) -> CodebookRow | None:
        with self.session() as s:
            return s.scalar(select(CodebookRow).where(CodebookRow.name == name.strip()))

    def delete_codebook(self, codebook_id: int) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(delete(CodebookVersion).where(CodebookVersion.codebook_id == codebook_id))
            s.execute(delete(CodebookRow).where(CodebookRow.id == codebook_id))

    # -- human codes and decisions --------------------------------------------------------------
    def save_ratings(
        self,
        run_id: int,
        rater: str,
        values: dict[int, Any],
        *,
        kind: RatingKind = RatingKind.HUMAN,
        author: str = "",
        notes: dict[int, str] | None = None,
    ) -> int:
        """Write (or overwrite) one rater's answers for rows of a run: {row_index: value}. A value
        of None is kept as an explicit "not coded" (missing), never turned into a code."""
        rater = rater.strip()
        if not rater:
            raise ValueError("A rater needs a name.")
        if (rater == ADJUDICATED_RATER) != (RatingKind(kind) == RatingKind.ADJUDICATED):
            raise ValueError(f"'{ADJUDICATED_RATER}' holds the settled decisions only; give the coder another name.")
        if self.get_run(run_id) is None:
            raise KeyError(f"No run {run_id}")
        now = utcnow()
        rows = [
            {
                "run_id": run_id,
                "row_index": int(index),
                "rater": rater,
                "kind": RatingKind(kind).value,
                "value": value,
                "note": (notes or {}).get(index, ""),
                "author": author,
                "updated_at": now,
            }
            for index, value in values.items()
        ]
        with self._write_lock, self.session() as s, s.begin():
            s.execute(
                delete(Rating).where(Rating.run_id == run_id, Rating.rater == rater, Rating.row_index.in_(list(values)))
            )
            for start in range(0, len(rows), 5000):
                s.execute(insert(Rating), rows[start : start + 5000])
        return len(rows)

    def settle(self, run_id: int, row_index: int, value: Any, *, author: str, note: str = "") -> None:
        """Record a person's decision on a disagreement (who, when, why), and log it."""
        if not author.strip():
            raise ValueError("Say who settled it: a decision needs a name.")
        self.save_ratings(
            run_id,
            ADJUDICATED_RATER,
            {row_index: value},
            kind=RatingKind.ADJUDICATED,
            author=author.strip(),
            notes={row_index: note},
        )
        shown = json.dumps(value, ensure_ascii=False)
        self.log(run_id, "info", f"Row {row_index + 1} settled as {shown} by {author.strip()}")

    def ratings(self, run_id: int, kind: RatingKind | None = None) -> list[Rating]:
        stmt = select(Rating).where(Rating.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(Rating.kind == RatingKind(kind).value)
        with self.session() as s:
            return list(s.scalars(stmt.order_by(Rating.rater, Rating.row_index)))

    def ratings_stamp(self, run_id: int) -> tuple[int, str]:
        """How many ratings a run has and when the last changed: a cache of its raters table
        is stale when this changes."""
        stmt = select(func.count(), func.max(Rating.updated_at)).where(Rating.run_id == run_id)
        with self.session() as s:
            count, latest = s.execute(stmt).one()
        return int(count), str(latest)

    def delete_ratings(self, run_id: int, rater: str) -> int:
        with self._write_lock, self.session() as s, s.begin():
            return s.execute(delete(Rating).where(Rating.run_id == run_id, Rating.rater == rater)).rowcount

    # -- statistics and export ------------------------------------------------------------------
    def run_stats(self) -> pd.DataFrame:
        """One row per run with the figures the History charts need."""
        latency = (
            select(Result.run_id, func.avg(Result.latency_ms).label("avg_latency_ms"))
            .where(Result.status == RowStatus.SUCCEEDED)
            .group_by(Result.run_id)
            .subquery()
        )
        stmt = select(
            Run.id,
            Run.kind,
            Run.provider,
            Run.model,
            Run.status,
            Run.created_at,
            Run.total_rows,
            Run.succeeded,
            Run.failed,
            Run.tokens_in,
            Run.tokens_out,
            latency.c.avg_latency_ms,
        ).outerjoin(latency, latency.c.run_id == Run.id)
        with self.session() as s:
            return pd.DataFrame(s.execute(stmt).mappings().all())

    def error_kind_totals(self) -> dict[str, int]:
        stmt = (
            select(Result.error_kind, func.count()).where(Result.status == RowStatus.FAILED).group_by(Result.error_kind)
        )
        with self.session() as s:
            return {str(k): v for k, v in s.execute(stmt).all()}

    def export_session(self, session_id: int) -> dict[str, Any]:
        """A session as plain JSON-able data: its runs, their settings, results and logs."""
        session = self.get_session(session_id)
        if session is None:
            raise KeyError(f"No session {session_id}")
        runs = self.list_runs(RunFilter(session_id=session_id, limit=100_000))
        return {
            "session": {"id": session.id, "name": session.name, "created_at": session.created_at.isoformat()},
            "runs": [self.export_run(run.id) for run in runs],
        }

    def export_run(self, run_id: int) -> dict[str, Any]:
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        data = {c.name: _jsonable(getattr(run, c.name)) for c in Run.__table__.columns}
        data["results"] = [
            {c.name: _jsonable(getattr(r, c.name)) for c in Result.__table__.columns} for r in self.results(run_id)
        ]
        data["logs"] = [{"ts": lg.ts.isoformat(), "level": lg.level, "message": lg.message} for lg in self.logs(run_id)]
        return data


def _spent_params(o: RowOutcome) -> dict[str, Any]:
    return {
        "b_id": o.result_id,
        "add_calls": o.calls,
        "add_in": o.tokens_in,
        "add_out": o.tokens_out,
        "add_cost": o.cost_usd,
    }


def _count_rows(run_id: int, status: RowStatus) -> Any:
    """A run's row count in one status, as a subquery, so History's figures stay live mid-run."""
    return (
        select(func.count())
        .select_from(Result)
        .where(Result.run_id == run_id, Result.status == status)
        .scalar_subquery()
    )


def _insert_ignoring_duplicates(conn: SAConnection, model: type[Base]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for the dialects Handai runs on (two rows with the same
    reply may finish in one batch, and another process may have cached it first)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    return sqlite_insert(model).on_conflict_do_nothing()


def _output_name(key: str, input_columns: Sequence[str]) -> str:
    return f"ai_{key}" if key in input_columns else key


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _table_names(conn: SAConnection) -> set[str]:
    from sqlalchemy import inspect

    return set(inspect(conn).get_table_names())


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_default: Database | None = None
_default_lock = threading.Lock()


def get_db() -> Database:
    """The process-wide database at default_url(); created (and migrated) on first use."""
    global _default
    with _default_lock:
        if _default is None or _default.url != default_url():
            _default = Database()
        return _default


__all__ = [
    "Database",
    "RowOutcome",
    "CellFigures",
    "LedgerCell",
    "LedgerRow",
    "RunFilter",
    "RunCounts",
    "Run",
    "Result",
    "SessionRow",
    "CodebookRow",
    "CodebookVersion",
    "Rating",
    "RatingKind",
    "ADJUDICATED_RATER",
    "LogRow",
    "get_db",
    "default_url",
    "owner_id",
    "RUN_STATUSES",
    "RowStatus",
    "RunStatus",
    "RunControl",
]
