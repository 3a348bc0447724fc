"""The engine's lifecycle: starts runs on the process's background asyncio loop, and answers
control and progress questions from any thread (DESIGN decision 1). The ledger is the one truth:
a run is claimed before its first call, every status write is a compare-and-set, and a pause or
stop written by any process is obeyed by the one that owns the run."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from handai_db import Database, RowStatus, Run, RunControl, RunStatus, owner_id
from handai_errors import ErrorKind, RunStartError, redact
from providers import Connection, chat_sender, check_connection, describe_error, price_for
from providers.registry import ENDPOINT_FIELDS

from .batch import BatchOptions, is_batch
from .batch.controls import BatchRuns
from .calls import Call, step_requests
from .creation import Connections, RunCreation, records
from .edits import RunEdits
from .jobs import Job, ledger_refused
from .journal import Journal
from .limiter import AdaptiveLimiter
from .plan import Plan
from .pool import Lane, Pool
from .progress import Progress
from .scheduler import PAGE_ROWS, Scheduler
from .settings import RunSettings
from .writer import BatchWriter

# Names callers imported from here before the split into creation, edits and jobs.
__all__ = ["ENDPOINT_FIELDS", "Connections", "Engine", "ledger_refused", "records"]

# The run's params key holding the 429s each model met, summed over its jobs.
RATE_LIMITED = "rate_limited"
# Resume sends every row not yet succeeded.
RESUMED = (RowStatus.PENDING, RowStatus.FAILED)


class Engine(RunCreation, RunEdits, BatchRuns):
    """Runs' lives in this process: start (claim), control, progress, and the job on the loop.
    Creating runs (creation.py), editing them (edits.py) and batch mode (batch/controls.py) are
    mixed in."""

    def __init__(self, db: Database, *, backoff_cap: float = 30.0, page_rows: int = PAGE_ROWS) -> None:
        self.db = db
        self.batch_options = BatchOptions.from_env()  # polling and file limits of runs sent as batches
        self.backoff_cap = backoff_cap
        self.page_rows = page_rows  # rows pulled from the ledger at a time (memory stays flat)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="handai-engine")
        self._thread.start()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handai-db")
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def _run(self, run_id: int) -> Run:
        run = self.db.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        return run

    # -- controlling runs -----------------------------------------------------------------------
    def _connections(self, run: Run, conn: Connections) -> list[Connection]:
        if run.plan:
            return self._arm_connections(Plan.of(run), conn)
        if not isinstance(conn, Connection):
            found = conn.get(run.provider)
            if found is None:
                raise RunStartError(f"No connection for {run.provider}: add its key in Settings.")
            conn = found.at(run.connection)  # the provider's key, sent where the run was recorded to go
        return [conn]

    def start(self, run_id: int, conn: Connections, *, statuses: Sequence[RowStatus] = RESUMED) -> None:
        """Claim the run and send its ledger cells in `statuses` (resume = every cell not yet
        succeeded). Raises RunStartError, and leaves no run queued, when it cannot start."""
        try:
            conns = self._connections(self._run(run_id), conn)
            for arm_conn in conns:
                check_connection(arm_conn)
            self.check_mode(self._run(run_id))
            with self._lock:
                job = self._jobs.get(run_id)
                if job is not None and not job.done_event.is_set():
                    raise RunStartError(f"Run {run_id} is already running in this process.")
                run = self.db.claim_run(run_id)
                job = self._jobs[run_id] = self._new_job(run, conns, statuses)
        except RunStartError as exc:
            self.db.set_run_status(run_id, RunStatus.FAILED, only_from=(RunStatus.QUEUED,), stop_reason=str(exc))
            raise
        self.db.log(run_id, "info", f"Started with {run.provider} / {run.model} ({owner_id()}).")
        asyncio.run_coroutine_threadsafe(self._launch(job, run, statuses), self._loop)

    def _new_job(self, run: Run, conns: list[Connection], statuses: Sequence[RowStatus]) -> Job:
        counts = self.db.run_counts(run.id)
        resend_failed = RowStatus.FAILED in statuses
        progress = replace(
            self._ledger_progress(run, counts),
            status=RunStatus.RUNNING,
            failed=0 if resend_failed else counts.failed,
            errors_by_kind={},
            stop_reason=None,
            live=True,
        )
        if resend_failed:  # failed cells are sent again: each arm's and step's count starts over too
            for figures in (*progress.arms.values(), *progress.steps.values()):
                figures.failed = 0
        return Job(
            run.id,
            conns,
            progress,
            progress_base=progress.done,
            earlier_seconds=run.active_seconds or 0.0,
            waits_base={name: f.rate_limited for name, f in progress.arms.items()},
        )

    def _ledger_progress(self, run: Run, counts: Any) -> Progress:
        plan = Plan.of(run)
        parts = [
            replace(p, step=plan.steps[p.step].name, arm=plan.arms[p.arm].name)
            for p in self.db.cell_figures(run.id)
            if p.step < len(plan.steps) and p.arm < len(plan.arms)
        ]
        progress = Progress.from_ledger(run, counts, parts)
        for name, waits in (run.params.get(RATE_LIMITED) or {}).items():  # 429s are kept per model
            if name in progress.arms:
                progress.arms[name].rate_limited = waits
                progress.rate_limited += waits
        return progress

    def resume(self, run_id: int, conn: Connections, *, batch: bool | None = None) -> None:
        """Send every cell not yet succeeded (`batch`: switch to or from batch mode first); a run
        in batch mode re-attaches to its open batches instead of sending their cells again."""
        run = self._check_startable(run_id)
        if batch is not None:
            self.check_mode_change(run, batch=batch, budget_usd=run.params.get("budget_usd"))
            self.set_mode(run_id, batch=batch)
        self.start(run_id, conn, statuses=RESUMED)

    def retry_failed(self, run_id: int, conn: Connections, *, batch: bool | None = None, **changes: Any) -> None:
        """Send the failed cells again, optionally with changed settings (model, temperature…);
        `batch` sends them as a new batch (True) or in real time (False) instead of the run's mode."""
        run = self._check_startable(run_id)
        for arm_conn in self._connections(run, conn):
            check_connection(arm_conn)
        if batch is not None:
            budget = changes.get("budget_usd", run.params.get("budget_usd"))
            self.check_mode_change(run, batch=batch, budget_usd=budget)
        if batch is False:  # out of batch mode first: a budget cap may come with it
            self.set_mode(run_id, batch=False)
        if changes:
            self.update_settings(run_id, **changes)
        if batch:
            self.set_mode(run_id, batch=True)
        self.db.reset_rows(run_id, (RowStatus.FAILED,))
        self.start(run_id, conn, statuses=(RowStatus.PENDING,))

    def _check_startable(self, run_id: int) -> Run:
        """Refuse (RunStartError) a run this or another live process is running, before anything
        about it is written: a refused resume or retry changes nothing."""
        job = self._jobs.get(run_id)
        if job is not None and not job.done_event.is_set():
            raise RunStartError(f"Run {run_id} is already running in this process.")
        return self.db.check_claimable(run_id)

    def stop(self, run_id: int, where: str = "") -> bool:
        """`where` says from where the user asked ("from the command line"): the run's reason
        then tells another process's user who stopped their run."""
        return self._control(run_id, RunStatus.STOPPED, _by_user("Stopped", where))

    def pause(self, run_id: int, where: str = "") -> bool:
        return self._control(run_id, RunStatus.PAUSED, _by_user("Paused", where))

    def _control(self, run_id: int, status: RunStatus, reason: str, grace: float | None = None) -> bool:
        """Write the status (compare-and-set) for whichever process owns the run to obey; when
        this process owns it, tell the pool at once instead of at its next write."""
        changed = self.db.set_run_status(run_id, status, stop_reason=reason)
        if changed:
            self.db.log(run_id, "info", f"{reason} ({owner_id()})")
        job = self._jobs.get(run_id)
        if job is not None and not job.done_event.is_set():
            self._loop.call_soon_threadsafe(self._request_halt, job, status, reason, grace)
        return changed

    def _request_halt(self, job: Job, status: RunStatus, reason: str, grace: float | None) -> None:
        if job.pool is None:
            job.halt_request = job.halt_request or (status, reason, grace)
            return
        kwargs = {} if grace is None else {"grace": grace}
        self._loop.create_task(job.pool.halt(status, reason, **kwargs))

    def is_running(self, run_id: int) -> bool:
        job = self._jobs.get(run_id)
        return job is not None and not job.done_event.is_set()

    def wait(self, run_id: int, timeout: float | None = None) -> Progress:
        job = self._jobs.get(run_id)
        if job is not None:
            job.done_event.wait(timeout)
        return self.progress(run_id)

    def progress(self, run_id: int) -> Progress:
        """Live figures when this process runs the job, else the ledger's counts."""
        job = self._jobs.get(run_id)
        if job is not None and not job.done_event.is_set():
            p = job.progress
            span = time.monotonic() - job.started
            p.elapsed_s = job.earlier_seconds + span
            p.rows_per_s = (p.done - job.progress_base) / span if span > 0 else 0.0
            p.eta_s = (p.total - p.done) / p.rows_per_s if p.rows_per_s > 0 else None
            if job.pool is not None:
                p.concurrency = job.pool.concurrency
            return p.snapshot()
        run = self.current_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        return self._ledger_progress(run, self.db.run_counts(run_id))

    def current_run(self, run_id: int) -> Run | None:
        """The run as the ledger has it, with an owner that died since (another container, a
        killed CLI) judged now: such a run reads `interrupted`, not `running` until the next start."""
        run = self.db.get_run(run_id)
        orphan = run is not None and RunStatus(run.status).active and not self.is_running(run_id)
        return self.db.get_run(run_id) if orphan and self.db.interrupt_if_orphaned(run_id) else run

    def shutdown(self, timeout: float = 10.0) -> None:
        """Interrupt every job this process runs (calls in flight get `timeout` seconds to finish
        and be recorded; rows not sent stay pending) and stop the loop. A second call does nothing."""
        if self._loop.is_closed():
            return
        for run_id, job in list(self._jobs.items()):
            if not job.done_event.is_set():
                self._control(
                    run_id, RunStatus.INTERRUPTED, "Handai was shut down while the run was in progress.", timeout
                )
                job.done_event.wait(timeout + 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._writer.shutdown(wait=True)
        self._thread.join(timeout)
        if not self._thread.is_alive():  # a loop still running cannot be closed; it dies with the process
            self._loop.close()

    # -- the job --------------------------------------------------------------------------------
    async def _launch(self, job: Job, run: Run, statuses: Sequence[RowStatus]) -> None:
        try:
            if is_batch(run):
                await self._execute_batch(job, run, statuses)
            else:
                await self._execute(job, run, statuses)
        finally:
            job.conns = None  # a finished job keeps neither its keys nor its rows in memory
            job.pool = None
            job.done_event.set()

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(self._writer, lambda: fn(*args, **kwargs))

    async def _execute(self, job: Job, run: Run, statuses: Sequence[RowStatus]) -> None:
        assert job.conns is not None
        conns = job.conns
        settings = RunSettings.from_run(run)
        final, reason = RunStatus.COMPLETED, None
        writer = BatchWriter(self._db, self.db, job.run_id, lambda control: self._obey(job, control))
        writer_task = asyncio.create_task(writer.run())
        lanes: list[Lane] = []
        try:
            plan = Plan.of(run)
            requests = step_requests(run, plan, conns)
            prices = await self._db(self.db.get_setting, "prices", {})
            for arm, conn in zip(plan.arms, conns, strict=True):
                lanes.append(
                    Lane(
                        arm.name,
                        conn,
                        chat_sender(conn, arm.model, concurrency=settings.concurrency, timeout=settings.timeout),
                        price_for(arm.provider, arm.model, overrides=prices),
                        AdaptiveLimiter(settings.concurrency),
                    )
                )
            journal = Journal(
                lambda level, message: self._loop.run_in_executor(self._writer, self.db.log, job.run_id, level, message)
            )
            pool = Pool(lanes, settings, writer, job.progress, journal, backoff_cap=self.backoff_cap)
            job.progress.max_concurrency = settings.concurrency * len(lanes)

            async def prefetch(calls: list[Call]) -> None:
                keys = [c.key for c in calls if c.key is not None]
                pool.cache.load(keys, await self._db(self.db.cached_replies, keys))

            scheduler = Scheduler(
                plan,
                requests,
                statuses,
                load_page=lambda after, limit: self._db(self.db.rows_to_run, job.run_id, statuses, after, limit),
                prefetch=prefetch,
                dispatch=pool.dispatch,
                record=writer.put,
                progress=job.progress,
                use_cache=settings.use_cache,
                backlog=writer.queue.qsize,
                page_rows=self.page_rows,
            )
            job.pool = pool
            writer_task.add_done_callback(lambda task: self._writer_stopped(task, pool))
            if job.halt_request is not None:
                status, why, grace = job.halt_request
                await pool.halt(status, why, **({} if grace is None else {"grace": grace}))
            await pool.run(scheduler)
            if pool.halted is not None:
                final, reason = pool.halted
        except Exception as exc:  # the job must always end with a status and a reason
            final, reason = self._failure(exc, conns)
        finally:
            writer.close()
            try:
                await writer_task
            except Exception as exc:  # the run ends failed, saying the ledger refused
                final, reason = RunStatus.FAILED, ledger_refused(exc)
            for lane in lanes:
                with contextlib.suppress(Exception):
                    await lane.sender.close()
        await self._finish(job, final, reason)

    @staticmethod
    def _writer_stopped(task: asyncio.Task[None], pool: Pool) -> None:
        """A ledger that refuses writes halts the run at once: nothing more is sent that could not
        be recorded (the job then ends failed, saying so)."""
        if not task.cancelled() and task.exception() is not None and pool.halted is None:
            asyncio.ensure_future(pool.halt(RunStatus.FAILED, ledger_refused(task.exception()), grace=0.0))

    @staticmethod
    def _failure(exc: BaseException, conns: list[Connection]) -> tuple[RunStatus, str]:
        """A job that raised ends failed, saying why (an unknown error with its detail, keys masked)."""
        err = describe_error(exc, conns[0])
        reason = err.user_text()
        if err.kind == ErrorKind.UNKNOWN:
            reason = redact(f"{reason} ({err.detail})", [c.api_key for c in conns])
        return RunStatus.FAILED, reason

    _requests = staticmethod(step_requests)  # batch mode builds the same requests

    async def _obey(self, job: Job, control: RunControl) -> None:
        """Halt when the ledger says the run is no longer ours to run (paused, stopped, taken)."""
        if job.pool is None or job.pool.halted is not None or control.obeys(owner_id()):
            return
        status = control.status if control.status != RunStatus.RUNNING else RunStatus.INTERRUPTED
        await job.pool.halt(status, control.stop_reason or f"The run is {status} in the ledger.")

    async def _finish(self, job: Job, final: RunStatus, reason: str | None) -> None:
        waits = {name: f.rate_limited for name, f in job.progress.arms.items()}
        if any(n > job.waits_base.get(name, 0) for name, n in waits.items()):
            await self._db(self.db.update_params, job.run_id, {RATE_LIMITED: waits})
        counts = await self._db(self.db.refresh_run_counts, job.run_id)
        if final == RunStatus.COMPLETED and counts.pending:
            final = RunStatus.INTERRUPTED
        span = time.monotonic() - job.started
        written = await self._db(self.db.finish_run, job.run_id, final, reason, span)
        control = await self._db(self.db.run_control, job.run_id)
        summary = f"Run {control.status}: {counts.succeeded} ok, {counts.failed} failed, {counts.pending} pending."
        why = reason if written else control.stop_reason
        await self._db(self.db.log, job.run_id, "warning" if why else "info", summary + (f" {why}" if why else ""))
        job.progress.status = control.status
        job.progress.stop_reason = why


def _by_user(done: str, where: str) -> str:
    return f"{done} by the user{f' {where}' if where else ''}."
