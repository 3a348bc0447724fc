"""INSERT … ON CONFLICT for the two backends Handai runs on: both speak it, each through its own dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection as SAConnection

from ledger.models import Base


def _insert(conn: SAConnection, model: type[Base]) -> Any:
    return pg_insert(model) if conn.dialect.name == "postgresql" else sqlite_insert(model)


def insert_ignoring(conn: SAConnection, model: type[Base]) -> Any:
    """An INSERT that skips rows whose key is taken (by this batch or by another process)."""
    return _insert(conn, model).on_conflict_do_nothing()


def upsert(conn: SAConnection, model: type[Base], keys: Sequence[str]) -> Any:
    """An INSERT that overwrites the other columns of a row whose `keys` are taken: one atomic
    statement, so two processes writing the same row never fail on the unique key."""
    stmt = _insert(conn, model)
    columns = [c.name for c in model.__table__.columns if c.name not in keys and not c.primary_key]
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns})
