"""The worker pool: runs a run's ledger rows against one provider, on a background asyncio loop.

One loop per process lives on a daemon thread (DESIGN decision 1), so Streamlit reruns, page
switches and closed tabs never touch a running job, and the command line uses the same code.
The engine owns retries (decision 3): the SDK's are off, a row backing off gives its slot back,
429s pause the whole pool and lower the concurrency limit (AIMD) instead of spending the row's
retry budget, and a run whose first rows all fail the same permanent way stops and says why.
Every finished row is written to the ledger in short batched transactions on a writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from handai_db import Database, PendingRow, RowOutcome, Run
from handai_errors import ClassifiedError, ErrorKind, ReplyError, classify, redact
from handai_prompts import (
    build_messages,
    clean_record,
    generation_prompts,
    generation_rows,
    parse_reply,
    system_message,
    user_message,
    validate_template,
)
from providers import Connection, make_client, price_for, request_params
from providers.client import client_api_key, client_base_url

EARLY_STOP_ROWS = 3
# Failures that say something about the run, not the row: when the first rows all fail one of
# these ways (after their retries), going on would only spend the dataset.
RUN_STOPPING_KINDS = frozenset(
    {
        ErrorKind.INVALID_KEY,
        ErrorKind.PERMISSION,
        ErrorKind.QUOTA,
        ErrorKind.MODEL_NOT_FOUND,
        ErrorKind.BAD_REQUEST,
        ErrorKind.CONNECTION,
    }
)
MAX_RATE_LIMIT_WAITS = 100
WRITE_BATCH = 200
WRITE_INTERVAL = 0.1
HEARTBEAT_INTERVAL = 10.0


@dataclass
class RunSettings:
    """What a run sends. `None` for temperature/max_tokens means the provider's default."""

    provider: str
    model: str
    system_prompt: str = ""
    columns: list[str] = field(default_factory=list)
    row_template: str | None = None
    output_schema: dict[str, Any] | None = None
    json_mode: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    concurrency: int = 16
    max_retries: int = 3
    timeout: float = 120.0
    use_cache: bool = True
    budget_usd: float | None = None

    @classmethod
    def from_run(cls, run: Run) -> RunSettings:
        """The settings a recorded run was created with (resume and retry send the same)."""
        params = run.params
        return cls(
            provider=run.provider,
            model=run.model,
            system_prompt=run.system_prompt,
            columns=list(run.columns),
            row_template=run.row_template,
            output_schema=run.output_schema,
            json_mode=bool(params.get("json_mode")),
            temperature=params.get("temperature"),
            max_tokens=params.get("max_tokens"),
            concurrency=run.concurrency,
            max_retries=run.max_retries,
            timeout=float(params.get("timeout") or 120.0),
            use_cache=bool(params.get("use_cache", True)),
            budget_usd=params.get("budget_usd"),
        )

    def params(self) -> dict[str, Any]:
        """The parameters as recorded on the run, including exactly what the SDK is sent."""
        sent = request_params(
            self.provider,
            self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_mode=self.structured,
        )
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            "timeout": self.timeout,
            "use_cache": self.use_cache,
            "budget_usd": self.budget_usd,
            "sent": {k: v for k, v in sent.items() if k != "extra_headers"},
        }

    @property
    def structured(self) -> bool:
        return self.json_mode or bool(self.output_schema and self.output_schema.get("fields"))


@dataclass
class Progress:
    run_id: int
    status: str
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    retrying: int = 0
    in_flight: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    rows_per_s: float = 0.0
    eta_s: float | None = None
    concurrency: int = 0
    max_concurrency: int = 0
    rate_limited: int = 0
    calls: int = 0
    cache_hits: int = 0
    cost_usd: float | None = None
    elapsed_s: float = 0.0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    live: bool = False

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.status not in ("queued", "running")


class AdaptiveLimiter:
    """Concurrency limit that halves on a 429, pauses the pool for Retry-After, then climbs back
    by one slot per limit's worth of successes up to the user's setting (AIMD)."""

    def __init__(self, limit: int) -> None:
        self.max_limit = max(1, limit)
        self.limit = self.max_limit
        self.in_flight = 0
        self.paused_until = 0.0
        self._successes = 0
        self._last_cut = 0.0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._cond:
            while True:
                wait = self.paused_until - time.monotonic()
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), wait)
                    continue
                if self.in_flight < self.limit:
                    self.in_flight += 1
                    return
                await self._cond.wait()

    async def release(self) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify(1)

    async def rate_limited(self, retry_after: float | None) -> None:
        now = time.monotonic()
        pause = retry_after if retry_after is not None else 1.0
        async with self._cond:
            self.paused_until = max(self.paused_until, now + min(pause, 120.0))
            if now - self._last_cut > max(pause, 0.5):
                self.limit = max(1, self.limit // 2)
                self._last_cut = now
                self._successes = 0

    async def succeeded(self) -> None:
        if self.limit >= self.max_limit:
            return
        async with self._cond:
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self.limit += 1
                self._cond.notify(1)


def cache_key(settings: RunSettings, conn: Connection, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
    """Everything that shapes a reply: provider, endpoint, model, exact messages, every parameter
    and the output schema. Same key, same request: a reply already paid for can be reused."""
    payload = {
        "provider": settings.provider,
        "endpoint": conn.safe_dict(),
        "model": settings.model,
        "messages": messages,
        "params": params,
        "schema": settings.output_schema,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full-jitter exponential backoff (AWS architecture blog): spreads retries of many rows."""
    return random.uniform(0, min(cap, base * 2**attempt)) + base / 2


@dataclass
class _Job:
    run_id: int
    conn: Connection
    settings_run: Run
    rows: list[PendingRow]
    progress: Progress
    started: float = field(default_factory=time.monotonic)
    stop_status: str | None = None
    stop_reason: str | None = None
    task: asyncio.Task[None] | None = None
    limiter: AdaptiveLimiter | None = None
    done_event: threading.Event = field(default_factory=threading.Event)
    progress_base: int = 0


class Engine:
    """Submits runs to the background loop and answers progress questions from any thread."""

    def __init__(self, db: Database, *, backoff_cap: float = 30.0) -> None:
        self.db = db
        self.backoff_cap = backoff_cap
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
    ) -> int:
        """Write the run and a pending row for every input row (or the first `limit_rows`)."""
        columns = [str(c) for c in df.columns]
        if settings.row_template:
            validate_template(settings.row_template, columns)
        elif not settings.columns:
            settings.columns = columns
        missing = [c for c in settings.columns if c not in columns]
        if missing:
            raise ValueError(f"Columns not in the data: {', '.join(missing)}")
        frame = df if limit_rows is None else df.head(limit_rows)
        rows = (clean_record(r) for r in frame.to_dict(orient="records"))
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
    ) -> int:
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
        )

    def _create_run(self, kind: str, rows: Any, settings: RunSettings, conn: Connection, **fields: Any) -> int:
        return self.db.create_run(
            rows,
            kind=kind,
            provider=settings.provider,
            model=settings.model,
            connection=conn.safe_dict(),
            params=settings.params(),
            system_prompt=settings.system_prompt,
            row_template=settings.row_template,
            columns=settings.columns,
            output_schema=settings.output_schema,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
            **fields,
        )

    def clone_run(self, run_id: int, conn: Connection) -> int:
        """A new run with the same settings and the same input rows, started at once."""
        old = self.db.get_run(run_id)
        if old is None:
            raise KeyError(f"No run {run_id}")
        rows = [r.input for r in self.db.results(run_id)]
        fields = {
            c: getattr(old, c)
            for c in (
                "kind",
                "provider",
                "model",
                "connection",
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
            )
        }
        new_id = self.db.create_run(rows, name=f"Same settings as run #{run_id}", **fields)
        self.start(new_id, conn)
        return new_id

    # -- controlling runs -----------------------------------------------------------------------
    def start(self, run_id: int, conn: Connection, *, statuses: Sequence[str] = ("pending", "failed")) -> None:
        """Run the ledger rows in `statuses` (resume = every row not yet succeeded)."""
        client_api_key(conn)  # a missing key or endpoint is said now, not as a failed run
        client_base_url(conn)
        with self._lock:
            if run_id in self._jobs and not self._jobs[run_id].done_event.is_set():
                raise RuntimeError(f"Run {run_id} is already running")
            run = self.db.get_run(run_id)
            if run is None:
                raise KeyError(f"No run {run_id}")
            rows = self.db.rows_to_run(run_id, statuses)
            counts = self.db.run_counts(run_id)
            progress = Progress(
                run_id,
                "running",
                total=counts.total,
                succeeded=counts.succeeded,
                failed=0 if "failed" in statuses else counts.failed,
                tokens_in=counts.tokens_in,
                tokens_out=counts.tokens_out,
                cost_usd=run.cost_usd,
                cache_hits=run.cache_hits,
                live=True,
                max_concurrency=run.concurrency,
                concurrency=run.concurrency,
            )
            job = _Job(run_id, conn, run, rows, progress)
            self._jobs[run_id] = job
        self.db.set_run_status(run_id, "running", stop_reason=None)
        self.db.log(run_id, "info", f"Started {len(rows)} rows with {run.provider} / {run.model}.")
        asyncio.run_coroutine_threadsafe(self._launch(job), self._loop)

    def resume(self, run_id: int, conn: Connection) -> None:
        self.start(run_id, conn, statuses=("pending", "failed"))

    def retry_failed(self, run_id: int, conn: Connection, **changes: Any) -> None:
        """Send the failed rows again, optionally with changed settings (model, temperature…)."""
        run = self.db.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        if changes:
            self.update_settings(run_id, **changes)
        self.db.reset_rows(run_id, ("failed",))
        self.start(run_id, conn, statuses=("pending",))

    def update_settings(self, run_id: int, **changes: Any) -> None:
        """Change what the remaining rows will be sent (model, temperature, budget…), recorded on
        the run and in its log, before a resume or a retry."""
        run = self.db.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        settings = RunSettings.from_run(run)
        unknown = [k for k in changes if not hasattr(settings, k)]
        if unknown:
            raise ValueError(f"Unknown settings: {', '.join(unknown)}")
        for key, value in changes.items():
            setattr(settings, key, value)
        self.db.update_run(
            run_id,
            provider=settings.provider,
            model=settings.model,
            params=settings.params(),
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
        )
        described = ", ".join(f"{k}={v!r}" for k, v in changes.items())
        self.db.log(run_id, "info", f"Settings changed: {described}")

    def cancel(self, run_id: int) -> None:
        self._stop(run_id, "cancelled", "Cancelled by the user.")

    def pause(self, run_id: int) -> None:
        self._stop(run_id, "paused", "Paused by the user.")

    def _stop(self, run_id: int, status: str, reason: str) -> None:
        job = self._jobs.get(run_id)
        if job is None or job.done_event.is_set():
            self.db.set_run_status(run_id, status, only_from=("queued", "running", "interrupted"), stop_reason=reason)
            return
        job.stop_status, job.stop_reason = status, reason
        if job.task is not None:
            self._loop.call_soon_threadsafe(job.task.cancel)

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
            p.elapsed_s = time.monotonic() - job.started
            processed = p.done - job.progress_base
            p.rows_per_s = processed / p.elapsed_s if p.elapsed_s > 0 else 0.0
            remaining = p.total - p.done
            p.eta_s = remaining / p.rows_per_s if p.rows_per_s > 0 else None
            if job.limiter is not None:
                p.concurrency = job.limiter.limit
            return Progress(**{**p.__dict__, "errors_by_kind": dict(p.errors_by_kind)})
        run = self.db.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        counts = self.db.run_counts(run_id)
        elapsed = 0.0
        if run.started_at:
            end = run.finished_at or run.heartbeat_at or run.started_at
            elapsed = max(0.0, (end - run.started_at).total_seconds())
        return Progress(
            run_id,
            run.status,
            total=counts.total,
            succeeded=counts.succeeded,
            failed=counts.failed,
            tokens_in=counts.tokens_in,
            tokens_out=counts.tokens_out,
            errors_by_kind=counts.errors_by_kind,
            stop_reason=run.stop_reason,
            concurrency=run.concurrency,
            max_concurrency=run.concurrency,
            elapsed_s=elapsed,
            rows_per_s=(counts.done / elapsed if elapsed else 0.0),
            calls=run.calls,
            cache_hits=run.cache_hits,
            cost_usd=run.cost_usd,
        )

    def shutdown(self, timeout: float = 10.0) -> None:
        """Pause every job this process runs (rows in flight stay pending) and stop the loop."""
        for run_id, job in list(self._jobs.items()):
            if not job.done_event.is_set():
                self._stop(run_id, "interrupted", "Handai was shut down while the run was in progress.")
                job.done_event.wait(timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._writer.shutdown(wait=True)

    # -- the job --------------------------------------------------------------------------------
    async def _launch(self, job: _Job) -> None:
        job.task = asyncio.current_task()
        if job.stop_status:  # cancelled before the loop picked it up
            job.task.cancel()
        try:
            await self._execute(job)
        except asyncio.CancelledError:
            pass
        finally:
            job.rows = []  # the ledger holds them; a long-lived app process must not
            job.done_event.set()

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(self._writer, lambda: fn(*args, **kwargs))

    async def _execute(self, job: _Job) -> None:
        settings = RunSettings.from_run(job.settings_run)
        job.progress_base = job.progress.done
        writer = _BatchWriter(self, job.run_id)
        writer_task = asyncio.create_task(writer.run())
        final_status, reason = "completed", None
        client = None
        try:
            client = make_client(job.conn, concurrency=settings.concurrency, timeout=settings.timeout)
            pool = _Pool(self, job, settings, client, writer)
            await pool.run()
            if pool.stop_reason is not None:
                final_status, reason = pool.stop_status, pool.stop_reason
        except asyncio.CancelledError:
            final_status, reason = job.stop_status or "cancelled", job.stop_reason
        except Exception as exc:  # the job must always end with a status and a reason
            err = classify(exc, provider=job.conn.provider, key=job.conn.api_key, base_url=job.conn.base_url)
            final_status, reason = "failed", err.user_text()
            if err.kind == ErrorKind.UNKNOWN:
                reason = redact(f"{reason} ({err.detail})", [job.conn.api_key])
        finally:
            await writer.close()
            await writer_task
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close()
        counts = await self._db(self.db.refresh_run_counts, job.run_id)
        if final_status == "completed" and counts.pending:
            final_status = "interrupted"
        await self._db(self.db.set_run_status, job.run_id, final_status, stop_reason=reason)
        summary = f"Run {final_status}: {counts.succeeded} ok, {counts.failed} failed, {counts.pending} pending."
        await self._db(
            self.db.log,
            job.run_id,
            "warning" if reason else "info",
            summary + (f" {reason}" if reason else ""),
        )
        job.progress.status = final_status
        job.progress.stop_reason = reason


class _BatchWriter:
    """Collects finished rows and writes them in short transactions off the event loop."""

    def __init__(self, engine: Engine, run_id: int) -> None:
        self.engine = engine
        self.run_id = run_id
        self.queue: asyncio.Queue[RowOutcome | None] = asyncio.Queue()
        self.last_write = time.monotonic()

    def put(self, outcome: RowOutcome) -> None:
        self.queue.put_nowait(outcome)

    async def close(self) -> None:
        self.queue.put_nowait(None)

    async def run(self) -> None:
        closing = False
        while not closing:
            batch: list[RowOutcome] = []
            try:
                item = await asyncio.wait_for(self.queue.get(), HEARTBEAT_INTERVAL)
            except TimeoutError:
                await self.engine._db(self.engine.db.heartbeat, self.run_id)
                continue
            deadline = time.monotonic() + WRITE_INTERVAL
            while True:
                if item is None:
                    closing = True
                    break
                batch.append(item)
                if len(batch) >= WRITE_BATCH:
                    break
                timeout = deadline - time.monotonic()
                if timeout <= 0 and self.queue.empty():
                    break
                try:
                    item = (
                        self.queue.get_nowait()
                        if not self.queue.empty()
                        else await asyncio.wait_for(self.queue.get(), max(timeout, 0.001))
                    )
                except TimeoutError:
                    break
            if batch:
                await self.engine._db(self.engine.db.record_results, self.run_id, batch)


class _Pool:
    """The workers of one job: a fixed set of tasks pulling rows, a delayed re-queue for rows
    that back off (so they hold no slot), the limiter that paces the calls, and the reply cache
    (identical rows in a run cost one call; replies already paid for cost none)."""

    def __init__(self, engine: Engine, job: _Job, settings: RunSettings, client: Any, writer: _BatchWriter) -> None:
        self.engine = engine
        self.job = job
        self.settings = settings
        self.client = client
        self.writer = writer
        self.limiter = AdaptiveLimiter(settings.concurrency)
        job.limiter = self.limiter
        self.queue: asyncio.Queue[tuple[PendingRow, int, int] | None] = asyncio.Queue()
        self.outstanding = len(job.rows)
        self.stop_reason: str | None = None
        self.stop_status = "failed"
        self.first_failures: Counter[str] = Counter()
        self.system = system_message(settings.system_prompt, settings.output_schema, settings.json_mode)
        self.params = request_params(
            settings.provider,
            settings.model,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            json_mode=settings.structured,
        )
        self.price = price_for(settings.provider, settings.model, overrides=engine.db.get_setting("prices", {}))
        self.cached: dict[str, tuple[str | None, dict[str, Any], tuple[int, int]]] = {}
        self.repeated: set[str] = set()
        self.job_cost = 0.0
        self.in_flight: dict[str, asyncio.Future[tuple[str | None, dict[str, Any], tuple[int, int]]]] = {}
        self.retry_handles: set[asyncio.TimerHandle] = set()
        self.workers: list[asyncio.Task[None]] = []

    def user_text(self, row: PendingRow) -> str:
        return user_message(row.input, template=self.settings.row_template, columns=self.settings.columns)

    def key(self, user: str) -> str:
        return cache_key(self.settings, self.job.conn, build_messages(self.system, user), self.params)

    async def run(self) -> None:
        if not self.job.rows:
            return
        if self.settings.use_cache:
            keys = [self.key(self.user_text(row)) for row in self.job.rows]
            found = await self.engine._db(self.engine.db.cached_replies, keys)
            self.cached = {k: (e.raw, e.parsed or {}, (e.tokens_in, e.tokens_out)) for k, e in found.items()}
            self.repeated = {k for k, n in Counter(keys).items() if n > 1}
        for row in self.job.rows:
            self.queue.put_nowait((row, 0, 0))
        count = min(self.settings.concurrency, len(self.job.rows))
        self.workers = [asyncio.create_task(self.worker()) for _ in range(count)]
        try:
            await asyncio.gather(*self.workers, return_exceptions=True)
        finally:
            for handle in self.retry_handles:
                handle.cancel()
            for w in self.workers:
                w.cancel()
            await asyncio.gather(*self.workers, return_exceptions=True)

    def _finish_one(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0:
            for _ in range(self.settings.concurrency):
                self.queue.put_nowait(None)

    def _requeue_later(self, item: tuple[PendingRow, int, int], delay: float) -> None:
        progress = self.job.progress
        progress.retrying += 1

        def put() -> None:
            self.retry_handles.discard(handle)
            progress.retrying -= 1
            self.queue.put_nowait(item)

        handle = asyncio.get_running_loop().call_later(delay, put)
        self.retry_handles.add(handle)

    async def worker(self) -> None:
        while not self.stop_reason:
            item = await self.queue.get()
            if item is None:
                return
            try:
                await self.process(*item)
            except Exception as exc:  # a bug in Handai fails the row; it must never hang the run
                err = classify(exc)
                self.job.progress.failed += 1
                self.writer.put(
                    RowOutcome(
                        item[0].result_id,
                        "failed",
                        error_kind=err.kind.value,
                        error_message=redact(f"{err.user_text()} ({err.detail})", [self.job.conn.api_key]),
                    )
                )
                self._finish_one()

    def _cost(self, usage: tuple[int, int]) -> float | None:
        return round(self.price.cost(*usage), 8) if self.price else None

    def _succeeded(
        self,
        row: PendingRow,
        user: str,
        key: str | None,
        raw: str | None,
        parsed: dict[str, Any],
        usage: tuple[int, int],
        *,
        attempts: int,
        latency_ms: float | None,
        cached: bool,
    ) -> None:
        progress = self.job.progress
        progress.succeeded += 1
        cost = None if cached else self._cost(usage)
        if cached:
            progress.cache_hits += 1
        else:
            progress.tokens_in += usage[0]
            progress.tokens_out += usage[1]
            if cost is not None:
                progress.cost_usd = (progress.cost_usd or 0.0) + cost
                self.job_cost += cost
        self.writer.put(
            RowOutcome(
                row.result_id,
                "succeeded",
                raw=raw,
                parsed=parsed,
                attempts=attempts,
                latency_ms=latency_ms,
                tokens_in=0 if cached else usage[0],
                tokens_out=0 if cached else usage[1],
                request=user,
                cost_usd=cost,
                cached=cached,
                cache_key=key,
            )
        )
        self._finish_one()

    async def process(self, row: PendingRow, attempts: int, waits: int) -> None:
        user = self.user_text(row)
        key = self.key(user) if self.settings.use_cache else None
        if key is not None:
            hit = self.cached.get(key)
            if hit is not None:
                self._succeeded(row, user, key, *hit, attempts=attempts, latency_ms=0.0, cached=True)
                return
            leader = self.in_flight.get(key)
            if leader is not None:
                with contextlib.suppress(Exception):
                    raw, parsed, usage = await asyncio.shield(leader)
                    self._succeeded(row, user, key, raw, parsed, usage, attempts=attempts, latency_ms=0.0, cached=True)
                    return
        if self._over_budget():
            return
        future = None
        if key is not None and key not in self.in_flight:
            future = asyncio.get_running_loop().create_future()
            self.in_flight[key] = future
        try:
            await self._call(row, user, key, attempts, waits, future)
        finally:
            if future is not None:
                self.in_flight.pop(key, None)
                if not future.done():
                    future.set_exception(RuntimeError("no reply"))
                    future.exception()  # retrieved: followers fall back to calling themselves

    async def _call(
        self,
        row: PendingRow,
        user: str,
        key: str | None,
        attempts: int,
        waits: int,
        future: asyncio.Future | None,
    ) -> None:
        progress = self.job.progress
        messages = build_messages(self.system, user)
        await self.limiter.acquire()
        progress.in_flight += 1
        started = time.perf_counter()
        raw: str | None = None
        usage = (0, 0)
        try:
            progress.calls += 1
            response = await self.client.chat.completions.create(
                model=self.settings.model, messages=messages, **self.params
            )
            raw, usage = _reply_text(response)
            parsed = parse_reply(raw, structured=self.settings.structured, schema=self.settings.output_schema)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            conn = self.job.conn
            err = classify(exc, provider=conn.provider, key=conn.api_key, base_url=conn.base_url)
            if isinstance(exc, ReplyError) and exc.raw is not None:
                raw = exc.raw
            elif isinstance(exc, json.JSONDecodeError):
                raw = exc.doc[:2000]  # the broken body, kept for the row inspector
            await self._failed(row, attempts + 1, waits, err, raw, usage, user, time.perf_counter() - started)
            return
        finally:
            progress.in_flight -= 1
            await self.limiter.release()
        await self.limiter.succeeded()
        if key in self.repeated:  # only rows still to come need the reply in memory
            self.cached[key] = (raw, parsed, usage)
        if future is not None:
            future.set_result((raw, parsed, usage))
        latency = round((time.perf_counter() - started) * 1000, 1)
        self._succeeded(row, user, key, raw, parsed, usage, attempts=attempts + 1, latency_ms=latency, cached=False)

    def _over_budget(self) -> bool:
        """Pause (not fail) the run before a call that could take it past the user's cap."""
        budget = self.settings.budget_usd
        progress = self.job.progress
        if budget is None or self.stop_reason:
            return bool(self.stop_reason)
        spent = progress.cost_usd or 0.0
        answered = max(1, progress.calls - progress.in_flight)
        expected = spent + (self.job_cost / answered) * (progress.in_flight + 1)
        if expected <= budget:
            return False
        self._stop(
            "paused",
            f"Paused at the budget cap: ${spent:.4f} spent of ${budget:.4f}. Raise the cap and resume to go on.",
        )
        return True

    async def _failed(
        self,
        row: PendingRow,
        attempts: int,
        waits: int,
        err: ClassifiedError,
        raw: str | None,
        usage: tuple[int, int],
        user: str,
        elapsed: float,
    ) -> None:
        progress = self.job.progress
        progress.tokens_in += usage[0]
        progress.tokens_out += usage[1]
        if err.kind == ErrorKind.RATE_LIMITED and waits < MAX_RATE_LIMIT_WAITS:
            progress.rate_limited += 1
            await self.limiter.rate_limited(err.retry_after)
            self.queue.put_nowait((row, attempts - 1, waits + 1))
            return
        if err.retryable and attempts <= self.settings.max_retries:
            self._requeue_later((row, attempts, waits), backoff_delay(attempts, cap=self.engine.backoff_cap))
            return
        progress.failed += 1
        progress.errors_by_kind[err.kind.value] = progress.errors_by_kind.get(err.kind.value, 0) + 1
        self.writer.put(
            RowOutcome(
                row.result_id,
                "failed",
                raw=raw,
                error_kind=err.kind.value,
                error_message=redact(err.user_text(), [self.job.conn.api_key]),
                attempts=attempts,
                latency_ms=round(elapsed * 1000, 1),
                tokens_in=usage[0],
                tokens_out=usage[1],
                request=user,
                cost_usd=self._cost(usage),
            )
        )
        self._finish_one()
        self._check_early_stop(err)

    def _check_early_stop(self, err: ClassifiedError) -> None:
        """Stop a run whose first rows all fail the same permanent way (bad key, unknown model)."""
        progress = self.job.progress
        if progress.succeeded or self.stop_reason or err.kind not in RUN_STOPPING_KINDS:
            return
        self.first_failures[err.kind.value] += 1
        needed = min(EARLY_STOP_ROWS, len(self.job.rows))
        if self.first_failures[err.kind.value] >= needed and len(self.first_failures) == 1:
            reason = f"Stopped after the first {needed} rows all failed: {err.user_text()}"
            self._stop("failed", redact(reason, [self.job.conn.api_key]))

    def _stop(self, status: str, reason: str) -> None:
        """End the run early: rows not yet finished stay pending, so resume picks them up."""
        self.stop_status, self.stop_reason = status, reason
        for handle in self.retry_handles:
            handle.cancel()
        current = asyncio.current_task()
        for task in self.workers:
            if task is not current:
                task.cancel()


def _reply_text(response: Any) -> tuple[str | None, tuple[int, int]]:
    """The reply's text and (tokens in, tokens out); raises ReplyError for unusable replies."""
    usage = getattr(response, "usage", None)
    tokens = (int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))
    if isinstance(response, str):
        raise ReplyError(ErrorKind.UNPARSEABLE, "The provider's reply was not JSON", raw=response[:2000])
    choices = getattr(response, "choices", None) or []
    if not choices:
        raise ReplyError(ErrorKind.EMPTY_REPLY, "The provider returned no choices")
    choice = choices[0]
    content = getattr(choice.message, "content", None) if choice.message else None
    if choice.finish_reason == "content_filter" and not content:
        raise ReplyError(ErrorKind.CONTENT_FILTERED, "The provider's content filter blocked the reply")
    return content, tokens


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
