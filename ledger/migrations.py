"""Migrations as a list of named functions, applied in order and recorded (DESIGN decision 8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import DateTime, delete, false, insert, inspect, or_, select, update
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.types import TypeEngine

from ledger.models import (
    Base,
    CacheEntry,
    CodebookRow,
    CodebookVersion,
    ProviderBatch,
    Rating,
    Run,
    RunStatus,
    Setting,
    UserSetting,
)
from ledger.settings import PERSONAL_PREFIXES, current_user


def _m0001_initial(conn: SAConnection) -> None:
    Base.metadata.create_all(conn)


def _ddl(conn: SAConnection, type_: TypeEngine[Any]) -> str:
    """A column type as this backend spells it (SQLite's DATETIME is PostgreSQL's TIMESTAMP)."""
    return str(type_.compile(dialect=conn.dialect))


def _m0002_cache_and_cost(conn: SAConnection) -> None:
    for table, column, ddl in (
        ("runs", "calls", "INTEGER DEFAULT 0"),
        ("runs", "cache_hits", "INTEGER DEFAULT 0"),
        ("runs", "cost_usd", "FLOAT"),
        ("results", "cost_usd", "FLOAT"),
        ("results", "cached", f"BOOLEAN DEFAULT {false().compile(dialect=conn.dialect)}"),
    ):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
    CacheEntry.__table__.create(conn, checkfirst=True)


def _m0003_stopped(conn: SAConnection) -> None:
    """`cancelled` is now `stopped` (RunStatus), one word for one thing."""
    conn.execute(update(Run).where(Run.status == "cancelled").values(status=RunStatus.STOPPED.value))


def _m0004_active_time_and_flags(conn: SAConnection) -> None:
    """Time a run spent running, summed over its resumes; flags on a row (off-list answers)."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN active_seconds FLOAT DEFAULT 0")
    conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN resumed_at {_ddl(conn, DateTime())}")
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


def _m0007_model_reported(conn: SAConnection) -> None:
    """The model id each reply named, per cell and per cached reply (a cached answer keeps the model
    that really gave it). Portable DDL; a table that 0002 created from today's models has it already."""
    for table in ("results", "response_cache"):
        if "model_reported" not in {c["name"] for c in inspect(conn).get_columns(table)}:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN model_reported VARCHAR(200)")


def _m0008_settings_per_user(conn: SAConnection) -> None:
    """Settings a person chooses (`ui.*`: providers, URLs, models) become that person's, so a team on
    one database never overwrites each other's; a ledger from before keeps them, as the settings of
    whoever opens it first (`Database.user`: HANDAI_USER or the login name)."""
    UserSetting.__table__.create(conn, checkfirst=True)
    user = conn.info.get("handai_user") or current_user()
    mine = or_(*(Setting.key.startswith(prefix, autoescape=True) for prefix in PERSONAL_PREFIXES))
    rows = conn.execute(select(Setting.key, Setting.value).where(mine)).all()
    if rows:
        conn.execute(insert(UserSetting), [{"user_name": user, "key": k, "value": v} for k, v in rows])
        conn.execute(delete(Setting).where(mine))


def _m0009_batches(conn: SAConnection) -> None:
    """The provider batches a run's cells were sent in (Batch APIs), recorded as soon as they exist."""
    ProviderBatch.__table__.create(conn, checkfirst=True)


# Ordered, append-only: a new version appends ("000N_…", fn) and existing databases upgrade.
MIGRATIONS: list[tuple[str, Callable[[SAConnection], None]]] = [
    ("0001_initial", _m0001_initial),
    ("0002_cache_and_cost", _m0002_cache_and_cost),
    ("0003_stopped", _m0003_stopped),
    ("0004_active_time_and_flags", _m0004_active_time_and_flags),
    ("0005_cells", _m0005_cells),
    ("0006_codebooks_and_ratings", _m0006_codebooks_and_ratings),
    ("0007_model_reported", _m0007_model_reported),
    ("0008_settings_per_user", _m0008_settings_per_user),
    ("0009_batches", _m0009_batches),
]
