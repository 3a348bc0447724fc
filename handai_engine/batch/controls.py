"""The engine's batch-mode half, mixed into `Engine`: what a page or the command line calls to run
a run as provider batches, see each batch's state, detach, cancel and re-attach."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from handai_db import Database, RowStatus, Run, RunStatus, owner_alive
from handai_errors import RunStartError
from providers import Connection, price_for

from ..plan import Plan
from . import BATCH, MODE, REALTIME, BatchState, check_batchable, check_no_budget, check_providers, is_batch
from .client import TERMINAL, batch_client
from .job import BatchJob
from .limits import BatchOptions

DETACHED = "Batches submitted; they run at the provider. Resume the run to collect their results."


class BatchRuns:
    """Batch mode for `Engine` (which provides the loop, the ledger and the job table)."""

    db: Database
    page_rows: int
    batch_options: BatchOptions
    _loop: asyncio.AbstractEventLoop
    _jobs: dict[int, Any]
    _db: Callable[..., Awaitable[Any]]
    _run: Callable[[int], Run]
    _connections: Callable[[Run, Any], list[Connection]]
    _control: Callable[..., bool]
    _obey: Callable[..., Awaitable[None]]
    _finish: Callable[..., Awaitable[None]]
    _failure: Callable[[BaseException, list[Connection]], tuple[RunStatus, str]]
    _requests: Callable[..., Any]
    resume: Callable[..., None]
    stop: Callable[[int], bool]
    is_running: Callable[[int], bool]

    # -- choosing the mode ----------------------------------------------------------------------
    @staticmethod
    def batch_params(providers: Iterable[str], *, batch: bool, budget_usd: float | None = None) -> dict[str, Any]:
        """The params entry recording a new run's mode; raises RunStartError when a provider has no
        Batch API or a budget cap is set, before anything is written."""
        if not batch:
            return {}
        check_no_budget(budget_usd)
        check_providers(providers)
        return {MODE: BATCH}

    def set_mode(self, run_id: int, *, batch: bool) -> None:
        """Send a run's remaining (or failed) cells as batches, or in real time from now on; recorded."""
        run = self._run(run_id)
        self.check_mode_change(run, batch=batch, budget_usd=(run.params or {}).get("budget_usd"))
        mode = BATCH if batch else REALTIME
        if (run.params or {}).get(MODE, REALTIME) != mode:
            self.db.update_params(run_id, {MODE: mode})
            self.db.log(run_id, "info", f"Mode changed: {mode}.")

    def check_mode_change(self, run: Run, *, batch: bool, budget_usd: float | None) -> None:
        """Raise RunStartError, before anything is written, when the run cannot be sent in that
        mode with that budget cap (a batch keeps no cap; real time needs its batches closed)."""
        if batch:
            check_no_budget(budget_usd)
            check_batchable(Plan.of(run))
        else:
            self._check_no_open_batches(run)

    def check_mode(self, run: Run) -> None:
        """Before a start: a batch run must be batchable; a real-time run must have no batches
        still open (their cells are at the provider and would be sent twice)."""
        self.check_mode_change(run, batch=is_batch(run), budget_usd=(run.params or {}).get("budget_usd"))

    def _check_no_open_batches(self, run: Run) -> None:
        still_open = self.db.run_batches(run.id, open_only=True)
        if still_open:
            raise RunStartError(
                f"Run {run.id} has {len(still_open)} batch(es) still open at the provider: resume it in batch "
                "mode to collect them, or cancel them first."
            )

    # -- what a page asks -----------------------------------------------------------------------
    def batches(self, run_id: int) -> list[BatchState]:
        return [BatchState.of(r) for r in self.db.run_batches(run_id)]

    def batch_states(self, run_ids: Sequence[int]) -> dict[int, list[BatchState]]:
        return {k: [BatchState.of(r) for r in v] for k, v in self.db.batch_states(run_ids).items()}

    def wait_submitted(self, run_id: int, timeout: float | None = None) -> bool:
        """Wait until this process has submitted every cell of the run it is sending as batches."""
        job = self._jobs.get(run_id)
        return job is not None and job.submitted.wait(timeout)

    def detach(self, run_id: int) -> bool:
        """Stop polling (the batches go on at the provider): the run is paused until resumed."""
        return self._control(run_id, RunStatus.PAUSED, DETACHED)

    def cancel_batches(self, run_id: int, conn: Any) -> int:
        """Cancel a run's open batches and stop it. When this process runs it, the job cancels them
        and collects what they finished; otherwise they are cancelled here and a resume collects.
        Returns how many batches were asked to cancel."""
        open_rows = [r for r in self.db.run_batches(run_id, open_only=True) if r.batch_id]
        if self.is_running(run_id):
            self.stop(run_id)
            return len([r for r in open_rows if r.state not in TERMINAL])
        conns = self._connections(self._run(run_id), conn)
        future = asyncio.run_coroutine_threadsafe(self._cancel_at_provider(open_rows, conns), self._loop)
        cancelled = future.result(120)
        self._control(run_id, RunStatus.STOPPED, "Stopped by the user; its batches were cancelled.")
        return cancelled

    async def _cancel_at_provider(self, rows: list[Any], conns: list[Connection]) -> int:
        cancelled = 0
        for row in rows:
            if row.state in TERMINAL:
                continue
            client = batch_client(conns[row.arm])
            try:
                batch = await client.cancel(row.batch_id)
            finally:
                await client.close()
            await self._db(self.db.update_batch, row.id, state=batch.status)
            cancelled += 1
        return cancelled

    def reattach_batches(self, conns: Mapping[str, Connection] | Connection) -> list[int]:
        """Resume every run with batches still open that no live process polls (after a restart or
        a crash); returns the runs re-attached. Runs whose connection is missing are left alone, and
        so is a run the user stopped: a resume would send its unanswered rows again (the user's own
        resume collects what its cancelled batches finished)."""
        attached = []
        for run in self.db.runs_with_open_batches():
            live = RunStatus(run.status).active and owner_alive(run.owner, run.heartbeat_at)
            stopped = run.status == RunStatus.STOPPED
            if live or stopped or self.is_running(run.id) or not is_batch(run):
                continue
            try:
                self.resume(run.id, conns)
            except RunStartError as exc:
                self.db.log(run.id, "warning", f"Could not re-attach to its batches: {exc}")
                continue
            attached.append(run.id)
        return attached

    # -- the job --------------------------------------------------------------------------------
    async def _execute_batch(self, job: Any, run: Run, statuses: Sequence[RowStatus]) -> None:
        from ..writer import BatchWriter

        assert job.conns is not None
        conns = job.conns
        final, reason = RunStatus.COMPLETED, None
        writer = BatchWriter(self._db, self.db, job.run_id, lambda control: self._obey(job, control))
        writer_task = asyncio.create_task(writer.run())
        batch_job: BatchJob | None = None
        try:
            plan = Plan.of(run)
            prices = await self._db(self.db.get_setting, "prices", {})
            batch_job = BatchJob(
                self.db,
                self._db,
                run,
                self._requests(run, plan, conns),
                conns,
                [price_for(a.provider, a.model, overrides=prices) for a in plan.arms],
                job.progress,
                self.batch_options,
                record=writer.put,
                log=lambda level, message: self._db(self.db.log, job.run_id, level, message),
                on_submitted=job.submitted.set,
                page_rows=self.page_rows,
            )
            job.pool = batch_job
            if job.halt_request is not None:
                await batch_job.halt(job.halt_request[0], job.halt_request[1])
            await batch_job.run(statuses)
            if batch_job.halted is not None:
                final, reason = batch_job.halted
        except Exception as exc:  # the job must always end with a status and a reason
            final, reason = self._failure(exc, conns)
        finally:
            job.submitted.set()
            writer.close()
            await writer_task
            if batch_job is not None:
                await batch_job.close()
        await self._finish(job, final, reason)
