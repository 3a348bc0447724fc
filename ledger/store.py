"""What every part of `handai_db.Database` relies on, set up by its `__init__`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


class Store:
    """The engine, short sessions, and the lock that keeps this process's writes one at a time."""

    engine: Engine
    _write_lock: threading.Lock
    session: Callable[[], Session]


def lock_for_update(conn: SAConnection) -> None:
    """Called first in a transaction that reads a row and writes it back (a read-modify-write):
    on SQLite it takes the database's write lock now (BEGIN IMMEDIATE), so another process cannot
    write between the read and the write; on PostgreSQL the read's FOR UPDATE locks the row."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
