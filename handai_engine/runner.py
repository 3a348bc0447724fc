"""The engine: creates runs, starts them on the process's background asyncio loop, and answers
control and progress questions from any thread (DESIGN decision 1). The ledger is the one truth:
a run is claimed before its first call, every status write is a compare-and-set, and a pause or
stop written by any process is obeyed by the one that owns the run."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from handai_db import Database, RowStatus, Run, RunControl, RunStatus, owner_id
from handai_errors import ErrorKind, RunStartError, redact
from handai_prompts import clean_record, generation_prompts, generation_rows, validate_template
from providers import Connection, chat_sender, check_connection, describe_error, price_for

from .batch import BatchOptions, check_batchable, is_batch
from .batch.controls import BatchRuns
from .calls import Call, StepRequest
from .journal import Journal
from .limiter import AdaptiveLimiter
from .plan import Plan
from .pool import Lane, Pool
from .progress import Progress
from .scheduler import PAGE_ROWS, Scheduler
from .settings import RunSettings, SentRequest
from .writer import BatchWriter

# A connection per provider (the key is looked up by the caller); one Connection for a one-model run.
Connections = Connection | Mapping[str, Connection]

# Parts of a run's recorded endpoint that may be changed before a resume, retry or re-run.
ENDPOINT_FIELDS = ("base_url", "api_version", "deployment")
# The run's params key holding the 429s each model met, summed over its jobs.
RATE_LIMITED = "rate_limited"
# Resume sends every row not yet succeeded.
RESUMED = (RowStatus.PENDING, RowStatus.FAILED)


def ledger_refused(exc: BaseException) -> str:
    """Why a run stopped when the run database refused a write: the error's first line, short."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return (
        f"The run database refused a write ({type(exc).__name__}: {first}); the run was halted so nothing is "
        "sent that cannot be recorded. Fix the database, then resume: answers not yet written are sent again."
    )


# Copied when a run is re-run with the same settings.
_CLONED_FIELDS = (
    "kind",
    "provider",
    "model",
    "params",
    "system_prompt",
    "row_template",
    "columns",
    "output_schema",
    "input_name",
    "input_hash",
    "input_columns",
    "concurrency",
    "max_retries",
    "session_id",
    "plan",
)


@dataclass
class _Job:
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


def records(df: pd.DataFrame, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
    """A table's rows as clean records, a chunk at a time: a million-row table is written to the
    ledger without a second copy of it in memory as dicts."""
    for start in range(0, len(df), chunk):
        yield from (clean_record(r) for r in df.iloc[start : start + chunk].to_dict(orient="records"))


class Engine(BatchRuns):
    def __init__(self, db: Database, *, backoff_cap: float = 30.0, page_rows: int = PAGE_ROWS) -> None:
        self.db = db
        self.batch_options = BatchOptions.from_env()  # polling and file limits of runs sent as batches
        self.backoff_cap = backoff_cap
        self.page_rows = page_rows  # rows pulled from the ledger at a time (memory stays flat)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="handai-engine")
        self._thread.start()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="handai-db")
        self._jobs: dict[int, _Job] = {}
        self._lock = threading.Lock()

    # -- creating runs --------------------------------------------------------------------------
    def create_transform_run(
        self,
        df: pd.DataFrame,
        settings: RunSettings,
        conn: Connection,
        *,
        input_name: str = "",
        input_hash: str = "",
        session_id: int | None = None,
        name: str = "",
        limit_rows: int | None = None,
        selection: str = "",
        batch: bool = False,
    ) -> int:
        """Write the run and a pending row for every input row (or the first `limit_rows`);
        `selection` says which rows of the file these are, for the record; `batch` sends them
        through the provider's Batch API.
        Everything that would stop it from starting is checked first, so nothing is left queued."""
        check_connection(conn)
        columns = [str(c) for c in df.columns]
        if settings.row_template:
            validate_template(settings.row_template, columns)
        elif not settings.columns:
            settings.columns = columns
        missing = [c for c in settings.columns if c not in columns]
        if missing:
            raise ValueError(f"Columns not in the data: {', '.join(missing)}")
        rows = records(df if limit_rows is None else df.head(limit_rows))
        return self._create_run(
            "transform",
            rows,
            settings,
            conn,
            input_name=input_name,
            input_hash=input_hash,
            input_columns=columns,
            session_id=session_id,
            name=name,
            selection=selection,
            batch=batch,
        )

    def create_generate_run(
        self,
        description: str,
        count: int,
        settings: RunSettings,
        conn: Connection,
        *,
        variables: dict[str, list[str]] | None = None,
        session_id: int | None = None,
        name: str = "",
        batch: bool = False,
    ) -> int:
        check_connection(conn)
        rows = generation_rows(count, variables)
        names = [k for k in (variables or {}) if rows and k in rows[0]]
        settings.system_prompt, settings.row_template = generation_prompts(description, count, names)
        settings.columns = ["row", *names]
        return self._create_run(
            "generate",
            rows,
            settings,
            conn,
            input_name=description[:200],
            input_hash="",
            input_columns=[],
            session_id=session_id,
            name=name,
            batch=batch,
        )

    def create_plan_run(
        self,
        rows: pd.DataFrame | Iterable[dict[str, Any]],
        plan: Plan,
        conns: Connections,
        settings: RunSettings,
        *,
        input_columns: Sequence[str] | None = None,
        input_name: str = "",
        input_hash: str = "",
        session_id: int | None = None,
        name: str = "",
        selection: str = "",
        batch: bool = False,
    ) -> int:
        """Write a multi-model run (Compare, Consensus, Pipeline): its plan, with exactly what each
        (step, arm) sends, and a pending cell per (row, step, arm, sample). `settings` gives the
        run's limits (concurrency per arm, retries, timeout, cache, budget); the plan gives the rest."""
        if isinstance(rows, pd.DataFrame):
            input_columns = [str(c) for c in rows.columns]
            rows = records(rows)
        columns = list(input_columns or [])
        plan.validate(columns)
        for conn in self._arm_connections(plan, conns):
            check_connection(conn)
        plan = plan.with_sent()
        mode = self.batch_params([a.provider for a in plan.arms], batch=batch)
        if batch:
            check_batchable(plan)
        first, step = plan.arms[0], plan.steps[0]
        return self.db.create_run(
            rows,
            cells=plan.cells(),
            kind=plan.tool,
            provider=first.provider,
            model=", ".join(dict.fromkeys(a.model for a in plan.arms))[:200],
            connection={"provider": first.provider, **first.endpoint},
            params={
                **settings.params(),
                "sent": plan.sent_for(0, plan.arm_index(step.arms[0])).params,
                **({"selection": selection} if selection else {}),
                **mode,
            },
            system_prompt=step.instruction,
            row_template=step.row_template,
            columns=list(step.columns) or columns,
            output_schema=step.output_schema,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
            plan=plan.record(),
            input_name=input_name,
            input_hash=input_hash,
            input_columns=columns,
            session_id=session_id,
            name=name,
        )

    @staticmethod
    def _arm_connections(plan: Plan, conns: Connections) -> list[Connection]:
        """Each arm's connection: its provider's (with the key the caller looked up), sent to the
        arm's own endpoint when it has one."""
        if isinstance(conns, Connection):
            conns = {conns.provider: conns}
        out = []
        for arm in plan.arms:
            conn = conns.get(arm.provider)
            if conn is None:
                raise RunStartError(f"No connection for {arm.provider} (model '{arm.name}'): add its key in Settings.")
            endpoint = {k: v for k, v in arm.endpoint.items() if k in ENDPOINT_FIELDS and v}
            out.append(replace(conn, **endpoint))
        return out

    def _create_run(
        self,
        kind: str,
        rows: Iterable[dict[str, Any]],
        settings: RunSettings,
        conn: Connection,
        selection: str = "",
        batch: bool = False,
        **fields: Any,
    ) -> int:
        mode = self.batch_params([settings.provider], batch=batch)
        return self.db.create_run(
            rows,
            kind=kind,
            provider=settings.provider,
            model=settings.model,
            connection=conn.safe_dict(),
            params={**settings.params(), **({"selection": selection} if selection else {}), **mode},
            system_prompt=settings.system_prompt,
            row_template=settings.row_template,
            columns=settings.columns,
            output_schema=settings.output_schema,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
            **fields,
        )

    def clone_run(self, run_id: int, conn: Connections, **changes: Any) -> int:
        """A new run with the same settings and input rows (and `changes`, as `update_settings`
        takes them), sent to `conn` and recorded so."""
        old = self._run(run_id)
        plan = Plan.of(old)
        for arm_conn in self._connections(old, conn):
            check_connection(arm_conn)
        rows = [r.input for r in self.db.results(run_id) if (r.step, r.arm, r.sample) == plan.cells()[0]]
        fields = {c: getattr(old, c) for c in _CLONED_FIELDS}
        connection = conn.safe_dict() if isinstance(conn, Connection) else old.connection
        new_id = self.db.create_run(
            rows, plan.cells(), name=f"Same settings as run #{run_id}", connection=connection, **fields
        )
        if changes:
            self.update_settings(new_id, **changes)
        self.start(new_id, conn)
        return new_id

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
            recorded = {k: v for k, v in (run.connection or {}).items() if k in ENDPOINT_FIELDS and v}
            conn = replace(found, **recorded)  # the provider's key, sent where the run was recorded to go
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

    def _new_job(self, run: Run, conns: list[Connection], statuses: Sequence[RowStatus]) -> _Job:
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
        return _Job(
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
        if batch is not None:
            self.set_mode(run_id, batch=batch)
        self.start(run_id, conn, statuses=RESUMED)

    def retry_failed(self, run_id: int, conn: Connections, *, batch: bool | None = None, **changes: Any) -> None:
        """Send the failed cells again, optionally with changed settings (model, temperature…);
        `batch` sends them as a new batch (True) or in real time (False) instead of the run's mode."""
        run = self._run(run_id)
        for arm_conn in self._connections(run, conn):
            check_connection(arm_conn)
        if batch is not None:
            self.set_mode(run_id, batch=batch)
        if changes:
            self.update_settings(run_id, **changes)
        self.db.reset_rows(run_id, (RowStatus.FAILED,))
        self.start(run_id, conn, statuses=(RowStatus.PENDING,))

    def update_settings(self, run_id: int, **changes: Any) -> None:
        """Change what the remaining rows will be sent (model, instruction, endpoint, budget…):
        what is sent from now on is recomputed and recorded on the run, and the change is logged."""
        run = self._run(run_id)
        endpoint = {k: changes.pop(k) for k in ENDPOINT_FIELDS if k in changes}
        arm_changes = changes.pop("arms", None) or {}
        if run.plan:
            self._update_plan(run, arm_changes, endpoint, changes)
        elif arm_changes:
            raise ValueError("This run has one model; change it with model=…")
        settings = RunSettings.from_run(run)
        unknown = [k for k in changes if not hasattr(settings, k)]
        if unknown:
            raise ValueError(f"Unknown settings: {', '.join(unknown)}")
        for key, value in changes.items():
            setattr(settings, key, value)
        values: dict[str, Any] = {
            "provider": settings.provider,
            "model": settings.model,
            "system_prompt": settings.system_prompt,
            "params": {**run.params, **settings.params()},
            "concurrency": settings.concurrency,
            "max_retries": settings.max_retries,
        }
        if run.plan:  # what each model sends is in the plan; the run's columns keep their record
            values = {
                "params": {**run.params, **{k: getattr(settings, k) for k in changes if k in run.params}},
                "concurrency": settings.concurrency,
                "max_retries": settings.max_retries,
            }
        if endpoint and not run.plan:
            values["connection"] = {**run.connection, **{k: v or None for k, v in endpoint.items()}}
        self.db.update_run(run_id, **values)
        described = ", ".join(f"{k}={v!r}" for k, v in {**changes, **endpoint, **arm_changes}.items())
        self.db.log(run_id, "info", f"Settings changed: {described}")

    def _update_plan(
        self, run: Run, arm_changes: Mapping[str, Mapping[str, Any]], endpoint: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """A multi-model run changes per arm (`arms={name: {model, temperature, max_tokens,
        base_url…}}`; an endpoint given alone applies to every arm); what each (step, arm) sends
        is recomputed and recorded in the plan."""
        per_run = {"concurrency", "max_retries", "budget_usd", "timeout", "use_cache"}
        if set(changes) - per_run:
            raise ValueError(
                f"A run of several models changes {', '.join(sorted(set(changes) - per_run))} per model: "
                "arms={model name: {...}}."
            )
        plan = Plan.of(run)
        unknown = set(arm_changes) - {a.name for a in plan.arms}
        if unknown:
            raise ValueError(f"No model named {', '.join(sorted(unknown))} in run {run.id}.")
        arms = []
        for arm in plan.arms:
            change = {**endpoint, **dict(arm_changes.get(arm.name) or {})}
            moved = {k: change.pop(k) for k in ENDPOINT_FIELDS if k in change}
            bad = set(change) - {"model", "temperature", "max_tokens"}
            if bad:
                raise ValueError(f"Cannot change {', '.join(sorted(bad))} of model '{arm.name}'.")
            arms.append(replace(arm, endpoint={**arm.endpoint, **moved}, **change))
        updated = replace(plan, arms=tuple(arms)).with_sent()
        self.db.update_run(run.id, plan=updated.record())

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

    def _request_halt(self, job: _Job, status: RunStatus, reason: str, grace: float | None) -> None:
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
        return self._ledger_progress(self._run(run_id), self.db.run_counts(run_id))

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
    async def _launch(self, job: _Job, run: Run, statuses: Sequence[RowStatus]) -> None:
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

    async def _execute(self, job: _Job, run: Run, statuses: Sequence[RowStatus]) -> None:
        assert job.conns is not None
        conns = job.conns
        settings = RunSettings.from_run(run)
        final, reason = RunStatus.COMPLETED, None
        writer = BatchWriter(self._db, self.db, job.run_id, lambda control: self._obey(job, control))
        writer_task = asyncio.create_task(writer.run())
        lanes: list[Lane] = []
        try:
            plan = Plan.of(run)
            requests = self._requests(run, plan, conns)
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

    @staticmethod
    def _requests(run: Run, plan: Plan, conns: list[Connection]) -> dict[tuple[int, int], StepRequest]:
        """What each (step, arm) sends, as recorded on the run (DESIGN decision 6)."""
        if not run.plan:
            sent = SentRequest.of(run)
            return {
                (0, 0): StepRequest(
                    0,
                    0,
                    run.provider,
                    conns[0].safe_dict(),
                    sent.model,
                    sent.system,
                    sent.params,
                    sent.structured,
                    sent.schema,
                    sent.examples,
                )
            }
        requests = {}
        several = len(plan.arms) > 1
        for si, step in enumerate(plan.steps):
            for name in step.arms:
                ai = plan.arm_index(name)
                sent = plan.sent_for(si, ai)
                requests[(si, ai)] = StepRequest(
                    si,
                    ai,
                    plan.arms[ai].provider,
                    conns[ai].safe_dict(),
                    sent.model,
                    sent.system,
                    sent.params,
                    step.structured,
                    step.output_schema,
                    cache_tag=name if several else None,
                )
        return requests

    async def _obey(self, job: _Job, control: RunControl) -> None:
        """Halt when the ledger says the run is no longer ours to run (paused, stopped, taken)."""
        if job.pool is None or job.pool.halted is not None or control.obeys(owner_id()):
            return
        status = control.status if control.status != RunStatus.RUNNING else RunStatus.INTERRUPTED
        await job.pool.halt(status, control.stop_reason or f"The run is {status} in the ledger.")

    async def _finish(self, job: _Job, final: RunStatus, reason: str | None) -> None:
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
