"""One batch-mode job of a run: submit its cells as provider batches, poll them, collect results.

The provider's side is a `BatchClient` (client.py): OpenAI's files, or Anthropic's inline requests.
The order of writes is what makes a crash harmless: a batch row is written before its file is
uploaded, the file id as soon as the upload returns, the batch id as soon as the provider creates
it, and the batch is marked collected only after its cells are written. A job that starts finds
the run's open batches in the ledger and polls them again; it submits only the cells no open
batch carries. A batch whose id never reached the ledger is found by its input file; one that
never got a file is dropped and its cells planned again.

Stop cancels the open batches and collects what they had done (unanswered cells stay pending);
pause and shutdown only stop polling (the batches go on at the provider; resume re-attaches).
For the runner the job quacks like a `Pool`: `halt`, `halted`, `concurrency`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai

from handai_db import Database, RowOutcome, RowStatus, Run, RunStatus
from handai_errors import ErrorKind
from providers import Connection, Price, describe_error

from ..calls import Call, StepRequest
from ..plan import Plan
from ..progress import Progress
from ..scheduler import MAX_BACKLOG, Scheduler
from .client import TERMINAL, BatchView, batch_client
from .collect import EXPIRED, Collector
from .limits import BATCH_CANCELLED, BATCH_COMPLETED, BATCH_EXPIRED, BATCH_FAILED, BatchOptions, batch_price
from .parts import Part, Parts

WRITE_CHUNK = 1000
SUBMIT_IDLE = 0.02


@dataclass
class OpenBatch:
    """A batch of this run not yet collected, as the ledger holds it."""

    row: int
    arm: int
    cells: list[int]
    batch_id: str | None = None
    input_file_id: str | None = None
    state: str = "planned"
    counts: tuple[int, int] = (0, 0)
    cancel_sent: bool = False
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, row: Any) -> OpenBatch:
        return cls(row.id, row.arm, list(row.cells), row.batch_id, row.input_file_id, row.state, (row.done, row.failed))


class BatchJob:
    concurrency = 0  # nothing in flight in this process: the provider runs the batch

    def __init__(
        self,
        db: Database,
        run_in_db: Callable[..., Awaitable[Any]],
        run: Run,
        requests: dict[tuple[int, int], StepRequest],
        conns: Sequence[Connection],
        prices: Sequence[Price | None],
        progress: Progress,
        options: BatchOptions,
        *,
        record: Callable[[RowOutcome], None],
        log: Callable[[str, str], Any],
        on_submitted: Callable[[], None],
        page_rows: int,
    ) -> None:
        self.db = db
        self._db = run_in_db
        self.run_id = run.id
        self.plan = Plan.of(run)
        self.requests = requests
        self.conns = list(conns)
        self.progress = progress
        self.options = options
        self.record = record
        self.log = log
        self.on_submitted = on_submitted
        self.page_rows = page_rows
        self.clients = [batch_client(c) for c in self.conns]
        self.collectors = [
            Collector(requests[(0, ai)], self.clients[ai], batch_price(prices[ai])) for ai in range(len(self.conns))
        ]
        self.open: dict[int, OpenBatch] = {}
        self.halted: tuple[RunStatus, str] | None = None
        self.scheduler: Scheduler | None = None
        self._wake = asyncio.Event()

    # -- control --------------------------------------------------------------------------------
    async def halt(self, status: RunStatus, reason: str, *, grace: float | None = None) -> None:
        if self.halted:
            return
        self.halted = (status, reason)
        if self.scheduler is not None:
            self.scheduler.halt()
        self._wake.set()

    @property
    def _stopping(self) -> bool:
        return self.halted is not None and self.halted[0] == RunStatus.STOPPED

    @property
    def _detached(self) -> bool:
        """Paused or shut down: leave the batches at the provider, stop polling them."""
        return self.halted is not None and not self._stopping

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()

    # -- the job --------------------------------------------------------------------------------
    async def run(self, statuses: Sequence[RowStatus]) -> None:
        try:
            rows = await self._db(self.db.run_batches, self.run_id, open_only=True)
            self.open = {r.id: OpenBatch.of(r) for r in rows}
            if self.open:
                ids = ", ".join(b.batch_id or f"#{b.row} (not yet created)" for b in self.open.values())
                await self.log("info", f"Re-attached to {len(self.open)} open batch(es): {ids}.")
            if not self.halted:
                await self._submit(statuses, {c for b in self.open.values() for c in b.cells})
        finally:
            self.on_submitted()
        await self._poll_until_done()

    async def _submit(self, statuses: Sequence[RowStatus], busy: set[int]) -> None:
        """Plan the cells to send (the scheduler decides which, writing skips as it goes), fill
        files within the provider's limits, and submit each as it fills."""
        parts = Parts({ai: self.options.limits(c.provider) for ai, c in enumerate(self.conns)})

        def plan_call(call: Call) -> None:
            assert self.scheduler is not None
            client = self.clients[call.request.arm]
            if call.result_id in busy:
                client.note(call)
            else:
                parts.add(call.request.arm, call.result_id, client.line(call))
            self.scheduler.cell_done(call, RowStatus.PENDING, None)  # planned: the row needs nothing more now

        self.scheduler = Scheduler(
            self.plan,
            self.requests,
            statuses,
            load_page=lambda after, limit: self._db(self.db.rows_to_run, self.run_id, statuses, after, limit),
            prefetch=_nothing,
            dispatch=plan_call,
            record=self.record,
            progress=self.progress,
            use_cache=False,
            backlog=lambda: MAX_BACKLOG + 1 if parts.sealed else 0,
            page_rows=self.page_rows,
        )
        planning = asyncio.create_task(self.scheduler.run())
        try:
            while not planning.done():
                for part in parts.take_sealed():
                    await self._submit_part(part)
                await asyncio.wait([planning], timeout=SUBMIT_IDLE)
            planning.result()
            for part in parts.take_all():
                if self.halted:
                    break
                await self._submit_part(part)
        finally:
            if not planning.done():
                self.scheduler.halt()
                await asyncio.gather(planning, return_exceptions=True)

    async def _submit_part(self, part: Part) -> None:
        if self.halted:
            return
        client = self.clients[part.arm]
        provider = self.conns[part.arm].provider
        row = await self._db(
            self.db.add_batch,
            self.run_id,
            arm=part.arm,
            provider=provider,
            endpoint=client.endpoint,
            cells=part.cells,
            size=part.size,
        )
        entry = self.open[row] = OpenBatch(row, part.arm, part.cells)

        async def uploaded(file_id: str) -> None:  # the file id the moment it exists
            entry.input_file_id = file_id
            await self._db(self.db.update_batch, row, input_file_id=file_id, state="uploaded")

        name = f"handai-run{self.run_id}-{row}.jsonl"
        try:
            await self._created(entry, await client.submit(name, part.data(), self._metadata(entry), uploaded))
        except Exception as exc:
            # Refused, or never uploaded: nothing is at the provider, so the cells are free again. A
            # create lost on the way (no answer) stays open: re-attaching looks for it by its file.
            # (Anthropic's inline batches have no file: see message_batches.py on that window.)
            if entry.input_file_id is None or isinstance(exc, openai.APIStatusError):
                error = describe_error(exc, self.conns[part.arm]).user_text()
                await self._db(self.db.update_batch, row, state="abandoned", collected=True, error=error)
                del self.open[row]
            raise
        await self.log("info", f"Batch {entry.batch_id} submitted: {len(part.cells)} requests, {part.size:,} bytes.")

    def _metadata(self, entry: OpenBatch) -> dict[str, str]:
        return {"handai_run": str(self.run_id), "handai_batch": str(entry.row)}

    async def _created(self, entry: OpenBatch, batch: BatchView) -> None:
        entry.batch_id, entry.state = batch.id, batch.status
        await self._db(self.db.update_batch, entry.row, batch_id=batch.id, state=batch.status)

    # -- polling --------------------------------------------------------------------------------
    async def _poll_until_done(self) -> None:
        while self.open and not self._detached:
            for entry in list(self.open.values()):
                if self._detached:
                    return
                try:
                    await self._poll(entry)
                except Exception as exc:
                    err = describe_error(exc, self.conns[entry.arm])
                    if not err.retryable:
                        raise
                    await self.log("warning", f"Polling batch {entry.batch_id} failed ({err.user_text()}); will retry.")
            if self.open and not self._detached:
                await self._sleep(self.options.poll_seconds)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _poll(self, entry: OpenBatch) -> None:
        client = self.clients[entry.arm]
        if entry.batch_id is None:
            found = await client.find(entry.input_file_id) if entry.input_file_id else None
            if found is None and (entry.input_file_id is None or self._stopping):
                await self._db(self.db.update_batch, entry.row, state="abandoned", collected=True)
                del self.open[entry.row]  # never reached the provider: its cells are planned again
                return
            await self._created(entry, found or await client.create(entry.input_file_id or "", self._metadata(entry)))
        assert entry.batch_id is not None
        if self._stopping and not entry.cancel_sent and entry.state not in TERMINAL:
            entry.cancel_sent = True
            batch = await client.cancel(entry.batch_id)
            await self.log("info", f"Batch {entry.batch_id} cancelled ({batch.status}).")
        else:
            batch = await client.retrieve(entry.batch_id)
        done = (batch.done, batch.failed)
        if (batch.status, done) != (entry.state, entry.counts):
            entry.state, entry.counts = batch.status, done
            await self._db(self.db.update_batch, entry.row, state=batch.status, done=done[0], failed=done[1])
        if batch.status in TERMINAL:
            await self._collect(entry, batch)

    # -- collecting -----------------------------------------------------------------------------
    async def _collect(self, entry: OpenBatch, batch: BatchView) -> None:
        client, collector = self.clients[entry.arm], self.collectors[entry.arm]
        pending = await self._db(self.db.still_pending, entry.cells)
        outcomes: list[RowOutcome] = []
        if pending:
            sent = await client.sent(entry.input_file_id)
            for line in await client.result_lines(batch):
                result_id = int(line["custom_id"])
                if result_id in pending:
                    pending.discard(result_id)
                    outcomes.append(collector.outcome(line, sent.get(result_id)))
            missing = _unanswered(batch)
            if missing is not None:
                kind, message = missing
                outcomes.extend(collector.unanswered(rid, sent.get(rid), kind, message) for rid in sorted(pending))
        for start in range(0, len(outcomes), WRITE_CHUNK):
            chunk = outcomes[start : start + WRITE_CHUNK]
            await self._db(self.db.record_results, self.run_id, chunk)
            self._count(entry.arm, chunk)
        error = batch.error
        await self._db(
            self.db.update_batch, entry.row, state=batch.status, collected=True, error=error, **_files(batch)
        )
        del self.open[entry.row]
        ok = sum(1 for o in outcomes if o.status == RowStatus.SUCCEEDED)
        await self.log(
            "info" if batch.status == BATCH_COMPLETED else "warning",
            f"Batch {batch.id} {batch.status}: {ok} answered, {len(outcomes) - ok} failed"
            + (f", {len(pending)} not answered (left pending)" if pending and batch.status == BATCH_CANCELLED else "")
            + (f". {error}" if error else "."),
        )

    def _count(self, arm: int, outcomes: list[RowOutcome]) -> None:
        step, arm_name = self.plan.steps[0].name, self.plan.arms[arm].name
        for o in outcomes:
            self.progress.calls += o.calls
            self.progress.bill(o.tokens_in, o.tokens_out, o.cost_usd)
            for figures in self.progress.part(step, arm_name):
                figures.calls += o.calls
                figures.bill(o.tokens_in, o.tokens_out, o.cost_usd)
            kind = ErrorKind(o.error_kind) if o.error_kind else None
            self.progress.settled(step, arm_name, RowStatus(o.status), kind)


async def _nothing(_calls: list[Call]) -> None:
    return None


def _unanswered(batch: BatchView) -> tuple[ErrorKind, str] | None:
    """Why a cell the batch has no line for failed; None when it should be sent again (cancelled)."""
    if batch.status == BATCH_CANCELLED:
        return None
    if batch.status == BATCH_EXPIRED:
        return ErrorKind.TIMEOUT, EXPIRED
    if batch.status == BATCH_FAILED:
        return ErrorKind.BAD_REQUEST, f"The provider rejected the batch: {batch.error or 'no reason given'}"
    return ErrorKind.BAD_RESPONSE, "The batch finished without a result for this row."


def _files(batch: BatchView) -> dict[str, Any]:
    return {"output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id}
