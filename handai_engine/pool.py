"""The workers of one job. `process` is the one template method that owns the reply cache, the
guards, retries, billing, recording and progress; `send` (the call itself) is tiny.

A row that backs off is re-queued later and holds no slot; a 429 pauses the whole pool through
the limiter without spending the row's retry budget (DESIGN decision 3). Halting stops dispatch:
calls in flight finish and are recorded (they are paid for), then, after a grace period, any
still running are cancelled and their rows stay pending for resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from handai_db import RowStatus, RunStatus
from handai_errors import ClassifiedError, ErrorKind, ReplyError, classify, redact
from handai_prompts import off_list, parse_reply
from providers import Connection, Price, describe_error, send_chat

from .cache import Reply, ReplyCache
from .calls import Call
from .guards import BudgetGuard, EarlyStop
from .journal import Journal
from .limiter import AdaptiveLimiter, PoolClosed, backoff_delay
from .progress import Progress
from .settings import RunSettings, SentRequest
from .writer import BatchWriter

MAX_RATE_LIMIT_WAITS = 100
DRAIN_GRACE = 15.0


class CallFailed(Exception):
    def __init__(self, err: ClassifiedError, raw: str | None, elapsed: float) -> None:
        super().__init__(err.kind.value)
        self.err, self.raw, self.elapsed = err, raw, elapsed


class Pool:
    def __init__(
        self,
        calls: Sequence[Call],
        request: SentRequest,
        settings: RunSettings,
        conn: Connection,
        client: Any,
        writer: BatchWriter,
        progress: Progress,
        price: Price | None,
        journal: Journal,
        *,
        backoff_cap: float,
    ) -> None:
        self.calls = calls
        self.request = request
        self.settings = settings
        self.conn = conn
        self.client = client
        self.writer = writer
        self.progress = progress
        self.price = price
        self.backoff_cap = backoff_cap
        self.journal = journal
        self.limiter = AdaptiveLimiter(settings.concurrency)
        self.cache = ReplyCache()
        self.budget = BudgetGuard(settings.budget_usd, progress)
        self.early_stop = EarlyStop(len(calls))
        self.queue: asyncio.Queue[Call | None] = asyncio.Queue()
        self.outstanding = len(calls)
        self.halted: tuple[RunStatus, str] | None = None
        self.retry_handles: set[asyncio.TimerHandle] = set()
        self.workers: list[asyncio.Task[None]] = []
        self._grace: asyncio.TimerHandle | None = None

    # -- the run --------------------------------------------------------------------------------
    def prefetch_keys(self) -> list[str]:
        return [c.key for c in self.calls if c.key is not None]

    async def run(self) -> None:
        for call in self.calls:
            self.queue.put_nowait(call)
        count = min(self.settings.concurrency, len(self.calls))
        self.workers = [asyncio.create_task(self.worker()) for _ in range(count)]
        if self.halted:  # halted before the first call
            self._release_workers()
        try:
            await asyncio.gather(*self.workers, return_exceptions=True)
        finally:
            for handle in self.retry_handles:
                handle.cancel()
            if self._grace is not None:
                self._grace.cancel()
            for call in self.calls:  # spent on rows that did not finish: recorded, never lost
                if not call.finished and call.unrecorded:
                    self.writer.put(call.outcome(None))
            self.journal.close()

    async def halt(self, status: RunStatus, reason: str, *, grace: float = DRAIN_GRACE) -> None:
        """Stop dispatching. Calls in flight finish and are recorded; after `grace` seconds any
        still running are cancelled (their rows stay pending)."""
        if self.halted:
            return
        self.halted = (status, reason)
        for handle in self.retry_handles:
            handle.cancel()
        self.progress.retrying = 0
        await self.limiter.close()
        self._release_workers()
        self._grace = asyncio.get_running_loop().call_later(grace, self._cancel_workers)

    def _release_workers(self) -> None:
        for _ in self.workers:
            self.queue.put_nowait(None)

    def _cancel_workers(self) -> None:
        for task in self.workers:
            task.cancel()

    def _finish_one(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0:
            self._release_workers()

    async def worker(self) -> None:
        while True:
            call = await self.queue.get()
            if call is None or self.halted:
                return
            try:
                await self.process(call)
            except PoolClosed:
                return
            except Exception as exc:  # a bug in Handai fails the row; it must never hang the run
                err = classify(exc)
                self._record_failure(call, err, None, 0.0, detail=True)

    # -- the template method --------------------------------------------------------------------
    async def process(self, call: Call) -> None:
        hit = self.cache.stored_reply(call.key)
        if hit is None and (leader := self.cache.leader(call.key)) is not None:
            with contextlib.suppress(Exception):  # the leader failed: this row calls itself
                hit = await asyncio.shield(leader)
        if hit is not None:
            self._record_success(call, hit, latency_ms=0.0, cached=True)
            return
        if reason := self.budget.exceeded():
            await self.halt(RunStatus.PAUSED, reason)
            return
        lead = self.cache.lead(call.key)
        reply = None
        try:
            reply, latency = await self.send(call)
        except CallFailed as failure:
            await self._failed(call, failure)
        finally:
            self.cache.settle(call.key, lead, reply)
        if reply is not None:
            if await self.limiter.succeeded():
                self.journal.concurrency_restored(self.limiter.limit)
            self._record_success(call, reply, latency_ms=latency, cached=False)

    async def send(self, call: Call) -> tuple[Reply, float]:
        """One HTTP call: a slot, the request, billing for any reply, parsing."""
        await self.limiter.acquire()
        self.progress.in_flight += 1
        started = time.perf_counter()
        raw = None
        try:
            call.attempts += 1
            call.calls += 1
            self.progress.calls += 1
            reply = await send_chat(self.client, call.body)
            self._bill(call, reply.tokens_in, reply.tokens_out)
            if reply.problem is not None:
                raise reply.problem
            raw = reply.text
            parsed = parse_reply(raw, structured=self.request.structured, schema=self.request.schema)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = describe_error(exc, self.conn)
            if isinstance(exc, ReplyError) and exc.raw is not None:
                raw = exc.raw
            elif isinstance(exc, json.JSONDecodeError):
                raw = exc.doc[:2000]  # the broken body, kept for the row inspector
            raise CallFailed(err, raw, time.perf_counter() - started) from exc
        finally:
            self.progress.in_flight -= 1
            await self.limiter.release()
        latency = round((time.perf_counter() - started) * 1000, 1)
        return Reply(raw, parsed, reply.tokens_in, reply.tokens_out), latency

    def _bill(self, call: Call, tokens_in: int, tokens_out: int) -> None:
        """Every billed reply counts once, here: on the row (written with its next outcome), in
        live progress and so in the budget guard."""
        cost = round(self.price.cost(tokens_in, tokens_out), 8) if self.price else None
        call.bill(tokens_in, tokens_out, cost)
        self.progress.bill(tokens_in, tokens_out, cost)
        if cost is not None:
            self.budget.billed += 1

    async def _failed(self, call: Call, failure: CallFailed) -> None:
        err = failure.err
        if self.halted:  # not retried once halted: the row stays pending, what it cost is kept
            return
        if err.kind == ErrorKind.RATE_LIMITED and call.waits < MAX_RATE_LIMIT_WAITS:
            self.progress.rate_limited += 1
            call.waits += 1
            if cut := await self.limiter.rate_limited(err.retry_after):
                self.journal.rate_limited(cut[0], cut[1], self.limiter.limit)
            self.queue.put_nowait(call)
            return
        if err.retryable and call.retries < self.settings.max_retries:
            call.retries += 1
            delay = backoff_delay(call.retries, cap=self.backoff_cap)
            self.journal.retry(call.row, err, call.retries, delay)
            self._requeue_later(call, delay)
            return
        self._record_failure(call, err, failure.raw, failure.elapsed)
        if reason := self.early_stop.observe(err, self.progress):
            await self.halt(RunStatus.FAILED, redact(reason, [self.conn.api_key]))

    def _requeue_later(self, call: Call, delay: float) -> None:
        self.progress.retrying += 1

        def put() -> None:
            self.retry_handles.discard(handle)
            self.progress.retrying -= 1
            self.queue.put_nowait(call)

        handle = asyncio.get_running_loop().call_later(delay, put)
        self.retry_handles.add(handle)

    # -- recording ------------------------------------------------------------------------------
    def _record_success(self, call: Call, reply: Reply, *, latency_ms: float, cached: bool) -> None:
        self.progress.succeeded += 1
        if cached:
            self.progress.cache_hits += 1
        self.writer.put(
            call.outcome(
                RowStatus.SUCCEEDED,
                raw=reply.raw,
                parsed=reply.parsed,
                latency_ms=latency_ms,
                cached=cached,
                cache_key=call.key,
                flags=off_list(reply.parsed, self.request.schema) or None,
            )
        )
        self._finish_one()

    def _record_failure(
        self, call: Call, err: ClassifiedError, raw: str | None, elapsed: float, *, detail: bool = False
    ) -> None:
        self.journal.failure(call.row, err)
        self.progress.failed += 1
        self.progress.errors_by_kind[err.kind.value] = self.progress.errors_by_kind.get(err.kind.value, 0) + 1
        message = f"{err.user_text()} ({err.detail})" if detail else err.user_text()
        self.writer.put(
            call.outcome(
                RowStatus.FAILED,
                raw=raw,
                error_kind=err.kind.value,
                error_message=redact(message, [self.conn.api_key]),
                latency_ms=round(elapsed * 1000, 1),
            )
        )
        self._finish_one()
