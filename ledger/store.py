"""What every part of `handai_db.Database` relies on, set up by its `__init__`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


class Store:
    """The engine, short sessions, and the lock that keeps this process's writes one at a time."""

    engine: Engine
    _write_lock: threading.Lock
    session: Callable[[], Session]
