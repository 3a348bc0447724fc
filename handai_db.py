"""The run ledger: sessions, runs, one result row per input row, logs and settings, in SQLite (one
person) or PostgreSQL (a team: several app and CLI processes on one server).

The database is the source of truth (DESIGN decision 2): a run and a `pending` result for every
input row are written before the first call, and each row is recorded as it finishes, in short
transactions, so a crash loses at most the rows in flight. Progress, History, resume and
retry-failed all read the same rows. This module and the `ledger` package are the only places
that speak SQL. No API key is ever written here: connections are stored through
`Connection.safe_dict()`.

Everyone imports `handai_db`; it composes `Database` from the package's parts, one job each:

    ledger/models.py      tables (SQLAlchemy models), RunStatus and its allowed transitions,
                          RowStatus, RatingKind, utcnow
    ledger/migrations.py  MIGRATIONS: named functions applied in order (DESIGN decision 8)
    ledger/records.py     RowOutcome, RunControl, LedgerCell, LedgerRow, CellFigures, RunFilter, RunCounts
    ledger/owners.py      owner_id, owner_alive, describe_owner: which process runs a run
    ledger/connect.py     driver_url, masked_url, make_engine: the URL typed → the engine, per backend
    ledger/store.py       Store: the engine, sessions and write lock every part relies on
    ledger/upserts.py     insert_ignoring, upsert: INSERT … ON CONFLICT for SQLite and PostgreSQL
    ledger/sessions.py    SessionsMixin: named groups of runs
    ledger/runs.py        RunsMixin: create, claim, guarded status changes, heartbeat, recovery
    ledger/cells.py       CellsMixin: rows to run, retry-failed, the writer's batch writes
    ledger/cache.py       CacheMixin: replies already paid for
    ledger/figures.py     FiguresMixin: counts and per-step, per-arm figures, the model ids the
                          provider reported; test-run averages
    ledger/results.py     ResultsMixin: a run's results, streamed rows, the results table
    ledger/logs.py        LogsMixin: a run's log
    ledger/settings.py    SettingsMixin: shared and per-person settings, saved instructions
    ledger/codebooks.py   CodebooksMixin: codebooks and their versions
    ledger/ratings.py     RatingsMixin: human codes and adjudicated decisions
    ledger/exports.py     ExportsMixin: History's statistics, sessions and runs as JSON-able data

This module keeps `Database` (engine and session setup, `migrate`), `get_db` and `default_url`, and
re-exports every name callers import from it. A database URL is shown only as `masked_url(url)`
(`Database.display_url`): its password never reaches a log, an error or the screen.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert, inspect, select
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ledger.batches import BatchesMixin
from ledger.cache import CacheMixin
from ledger.cells import CellsMixin
from ledger.codebooks import CodebooksMixin
from ledger.connect import driver_url as driver_url
from ledger.connect import make_engine, without_password
from ledger.connect import masked_url as masked_url
from ledger.exports import ExportsMixin
from ledger.figures import FiguresMixin
from ledger.logs import LogsMixin
from ledger.migrations import MIGRATIONS as MIGRATIONS
from ledger.models import ACTIVE_STATUSES as ACTIVE_STATUSES
from ledger.models import ADJUDICATED_RATER as ADJUDICATED_RATER
from ledger.models import ALLOWED as ALLOWED
from ledger.models import FINISHED_STATUSES as FINISHED_STATUSES
from ledger.models import RUN_STATUSES as RUN_STATUSES
from ledger.models import Base as Base
from ledger.models import CacheEntry as CacheEntry
from ledger.models import CodebookRow as CodebookRow
from ledger.models import CodebookVersion as CodebookVersion
from ledger.models import LogRow as LogRow
from ledger.models import Migration as Migration
from ledger.models import Rating as Rating
from ledger.models import RatingKind as RatingKind
from ledger.models import Result as Result
from ledger.models import RowStatus as RowStatus
from ledger.models import Run as Run
from ledger.models import RunStatus as RunStatus
from ledger.models import S as S
from ledger.models import SessionRow as SessionRow
from ledger.models import Setting as Setting
from ledger.models import UserSetting as UserSetting
from ledger.models import sources as sources
from ledger.models import utcnow as utcnow
from ledger.owners import HEARTBEAT_STALE as HEARTBEAT_STALE
from ledger.owners import describe_owner as describe_owner
from ledger.owners import owner_alive as owner_alive
from ledger.owners import owner_id as owner_id
from ledger.ratings import RatingsMixin
from ledger.records import CellFigures as CellFigures
from ledger.records import LedgerCell as LedgerCell
from ledger.records import LedgerRow as LedgerRow
from ledger.records import RowOutcome as RowOutcome
from ledger.records import RunControl as RunControl
from ledger.records import RunCounts as RunCounts
from ledger.records import RunFilter as RunFilter
from ledger.results import ResultsMixin
from ledger.runs import RunsMixin
from ledger.sessions import SessionsMixin
from ledger.settings import INSTRUCTIONS_KEY as INSTRUCTIONS_KEY
from ledger.settings import SettingsMixin
from ledger.settings import current_user as current_user


def default_url() -> str:
    """HANDAI_DATABASE_URL, else a SQLite file in HANDAI_DATA_DIR (default ~/.handai)."""
    if url := os.environ.get("HANDAI_DATABASE_URL"):
        return url
    folder = Path(os.environ.get("HANDAI_DATA_DIR") or Path.home() / ".handai").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'handai.db'}"


class DatabaseUnavailable(RuntimeError):
    """The ledger cannot be opened (a bad URL, a server that refuses): said with the URL masked."""


# pg_advisory_xact_lock's key for "migrating the schema": one process migrates, the others wait.
_MIGRATION_LOCK = 0x48414E444149  # "HANDAI"


class Database(
    SessionsMixin,
    RunsMixin,
    CellsMixin,
    CacheMixin,
    FiguresMixin,
    ResultsMixin,
    LogsMixin,
    SettingsMixin,
    CodebooksMixin,
    RatingsMixin,
    ExportsMixin,
    BatchesMixin,
):
    """One database: a SQLAlchemy engine plus task-named functions, each a short transaction.
    `url` is the URL as given (another process opens the same database with it); show
    `display_url`. `user` scopes the per-person settings (HANDAI_USER, else the login name)."""

    def __init__(self, url: str | None = None, *, user: str | None = None) -> None:
        self.url = url or default_url()
        self.display_url = masked_url(self.url)
        self.user = user or current_user()
        try:
            self.engine: Engine = make_engine(self.url)
        except (SQLAlchemyError, ValueError) as exc:  # from None: a parse error may quote the URL
            raise self._unavailable("Cannot use the database URL", exc) from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock()
        try:
            self.migrate()
        except SQLAlchemyError as exc:  # unreachable, refused, no right to create tables, …
            self.engine.dispose()
            raise self._unavailable("Cannot open the database", exc) from None

    def _unavailable(self, what: str, exc: Exception) -> DatabaseUnavailable:
        reason = without_password(str(getattr(exc, "orig", None) or exc), self.url).strip()
        return DatabaseUnavailable(f"{what} {self.display_url}: {reason}")

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Create a new database from the models, or apply the migrations an older one lacks.
        Two processes may open a new database at once (the app and the CLI): the whole migration is
        one transaction that holds a lock (PostgreSQL: an advisory lock; SQLite: the write lock), so
        the second waits for the first and finds the work done. A lost race is tried again."""
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
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            elif conn.dialect.name == "sqlite":  # the driver would commit each CREATE on its own
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["handai_user"] = self.user  # whose settings an upgraded personal ledger holds
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


def _table_names(conn: SAConnection) -> set[str]:
    return set(inspect(conn).get_table_names())


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
    "masked_url",
    "current_user",
    "DatabaseUnavailable",
    "owner_id",
    "RUN_STATUSES",
    "RowStatus",
    "RunStatus",
    "RunControl",
]
