"""The engine: runs a run's ledger rows against its provider on a background asyncio loop.

runner    Engine: claim and start runs; resume, retry; control (pause, stop) from any process; progress
creation  writing a run (and its pending cells) after every check that could stop it from starting
edits     changing a run's settings before a resume, retry or re-run (recorded and logged)
jobs      one process sending one run: what it holds in memory until its last write
pool      the workers; one template method owns cache, guards, retry, billing and recording
plan      a run's arms (models) and steps (instructions), and what each (step, arm) sends
scheduler which cells to send, row by row, pulled from the ledger a page at a time
calls     what each (step, arm) sends, and each cell's request built once, with its cache key
answers   an answer as text, and when two answers agree
conditions the safe `run_if` language
cache     replies already paid for and calls in flight
limiter   adaptive concurrency (AIMD on 429s) and retry backoff
guards    budget cap and early stop
writer    batched ledger writes that read the run's status back
progress  live figures
settings  what a run sends, and the record of what was sent
batch/    runs sent through the providers' Batch APIs: files within limits, submit, poll, collect, re-attach
"""

from __future__ import annotations

import threading

from handai_db import Database

from .calls import Call, StepRequest
from .limiter import AdaptiveLimiter, backoff_delay
from .plan import Arm, Plan, PlanError, Step
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
    "Arm",
    "Call",
    "Engine",
    "Preflight",
    "Plan",
    "PlanError",
    "Progress",
    "RunSettings",
    "SentRequest",
    "Step",
    "StepRequest",
    "backoff_delay",
    "get_engine",
    "preflight",
    "truncate_rows",
]
