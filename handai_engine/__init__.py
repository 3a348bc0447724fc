"""The engine: runs a run's ledger rows against its provider on a background asyncio loop.

runner    Engine: create, claim and start runs; control (pause, stop) from any process; progress
pool      the workers; one template method owns cache, guards, retry, billing and recording
calls     each row's request built once, with its cache key
cache     replies already paid for and calls in flight
limiter   adaptive concurrency (AIMD on 429s) and retry backoff
guards    budget cap and early stop
writer    batched ledger writes that read the run's status back
progress  live figures
settings  what a run sends, and the record of what was sent
"""

from __future__ import annotations

import threading

from handai_db import Database

from .calls import Call, cache_key
from .limiter import AdaptiveLimiter, backoff_delay
from .preflight import Preflight, preflight, truncate_rows
from .progress import Progress
from .runner import Engine
from .settings import RunSettings, SentRequest

_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()


def get_engine(db: Database | None = None) -> Engine:
    """The process-wide engine for a database (one loop thread), created on first use; the app and
    the command line share it. Keyed by database URL so a changed HANDAI_DATA_DIR gets its own."""
    from handai_db import get_db

    db = db or get_db()
    with _engine_lock:
        engine = _engines.get(db.url)
        if engine is None or engine.db is not db:
            engine = _engines[db.url] = Engine(db)
        return engine


__all__ = [
    "AdaptiveLimiter",
    "Call",
    "Engine",
    "Preflight",
    "Progress",
    "RunSettings",
    "SentRequest",
    "backoff_delay",
    "cache_key",
    "get_engine",
    "preflight",
    "truncate_rows",
]
