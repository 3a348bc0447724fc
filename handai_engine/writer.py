"""The single writer of a job: finished rows go to the ledger in short batched transactions off
the event loop, and after every batch (and every second when idle) it reads the run's status
back, so a pause or stop written by any process is obeyed (DESIGN decision 9)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from handai_db import RowOutcome, RunControl

WRITE_BATCH = 500
WRITE_INTERVAL = 0.02  # short: a reply received but not yet written is lost to a SIGKILL
CONTROL_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 5.0


class BatchWriter:
    def __init__(
        self,
        run_in_db: Callable[..., Awaitable[Any]],
        db: Any,
        run_id: int,
        on_control: Callable[[RunControl], Awaitable[None]],
    ) -> None:
        self._db = run_in_db
        self.db = db
        self.run_id = run_id
        self.on_control = on_control
        self.queue: asyncio.Queue[RowOutcome | None] = asyncio.Queue()
        self.last_heartbeat = time.monotonic()

    def put(self, outcome: RowOutcome) -> None:
        self.queue.put_nowait(outcome)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def run(self) -> None:
        closing = False
        while not closing:
            try:
                item = await asyncio.wait_for(self.queue.get(), CONTROL_INTERVAL)
            except TimeoutError:
                await self._idle()
                continue
            batch, closing = await self._collect(item)
            if batch:
                control = await self._db(self.db.record_results, self.run_id, batch)
                self.last_heartbeat = time.monotonic()
                await self.on_control(control)

    async def _idle(self) -> None:
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT_INTERVAL:
            control = await self._db(self.db.heartbeat, self.run_id)
            self.last_heartbeat = time.monotonic()
        else:
            control = await self._db(self.db.run_control, self.run_id)
        await self.on_control(control)

    async def _collect(self, item: RowOutcome | None) -> tuple[list[RowOutcome], bool]:
        """Up to WRITE_BATCH outcomes, or what arrived within WRITE_INTERVAL of the first."""
        batch: list[RowOutcome] = []
        deadline = time.monotonic() + WRITE_INTERVAL
        while True:
            if item is None:
                return batch, True
            batch.append(item)
            if len(batch) >= WRITE_BATCH:
                return batch, False
            timeout = deadline - time.monotonic()
            if timeout <= 0 and self.queue.empty():
                return batch, False
            try:
                item = (
                    self.queue.get_nowait()
                    if not self.queue.empty()
                    else await asyncio.wait_for(self.queue.get(), max(timeout, 0.001))
                )
            except TimeoutError:
                return batch, False
