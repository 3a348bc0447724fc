"""A job: one process sending one run's cells, from its claim to its last write. What it holds
in memory (connections, pool, live progress) is dropped when it ends."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from handai_db import RunStatus
from providers import Connection

from .pool import Pool
from .progress import Progress


@dataclass
class Job:
    """A run being sent by this process; `done_event` is set once its final status is written."""

    run_id: int
    conns: list[Connection] | None  # one per arm, in the plan's order
    progress: Progress
    started: float = field(default_factory=time.monotonic)
    progress_base: int = 0
    earlier_seconds: float = 0.0  # time the run spent running before this start
    pool: Pool | Any = None  # a Pool, or a BatchJob for a run sent as provider batches
    halt_request: tuple[RunStatus, str, float | None] | None = None
    waits_base: dict[str, int] = field(default_factory=dict)  # 429s per model before this start
    done_event: threading.Event = field(default_factory=threading.Event)
    submitted: threading.Event = field(default_factory=threading.Event)  # batch mode: all cells at the provider


def ledger_refused(exc: BaseException) -> str:
    """Why a run stopped when the run database refused a write: the error's first line, short."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return (
        f"The run database refused a write ({type(exc).__name__}: {first}); the run was halted so nothing is "
        "sent that cannot be recorded. Fix the database, then resume: answers not yet written are sent again."
    )
