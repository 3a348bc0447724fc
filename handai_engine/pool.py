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
from dataclasses import dataclass, field
from typing import Any

from handai_db import RowStatus, RunStatus
from handai_errors import ClassifiedError, ErrorKind, ReplyError, classify, redact
from handai_prompts import off_list, parse_reply
from providers import ChatSender, Connection, Price, describe_error

from .cache import Reply, ReplyCache
from .calls import Call
from .guards import BudgetGuard, EarlyStop
from .journal import Journal
from .limiter import AdaptiveLimiter, PoolClosed, backoff_delay
from .progress import Figures, Progress
from .scheduler import Scheduler
from .settings import RunSettings
from .writer import BatchWriter

MAX_RATE_LIMIT_WAITS = 100
DRAIN_GRACE = 15.0
MODEL_ID_CHARS = 200  # the ledger's column: a longer claim is cut, never a failed write


class CallFailed(Exception):
    def __init__(self, err: ClassifiedError, raw: str | None, elapsed: float) -> None:
        super().__init__(err.kind.value)
        self.err, self.raw, self.elapsed = err, raw, elapsed


@dataclass(eq=False)
class Lane:
    """One arm's share of the pool: its connection, sender, limiter, price, queue and workers.
    Rate limits are per provider and key, so a 429 on one arm never slows another."""

    name: str
    conn: Connection
    sender: ChatSender
    price: Price | None
    limiter: AdaptiveLimiter
    queue: asyncio.Queue[Call | None] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)


class Pool:
    def __init__(
        self,
        lanes: Sequence[Lane],
        settings: RunSettings,
        writer: BatchWriter,
        progress: Progress,
        journal: Journal,
        *,
        backoff_cap: float,
    ) -> None:
        self.lanes = list(lanes)
        self.settings = settings
        self.writer = writer
        self.progress = progress
        self.backoff_cap = backoff_cap
        self.journal = journal
        self.keys = [lane.conn.api_key for lane in self.lanes]
        self.cache = ReplyCache()
        self.budget = BudgetGuard(settings.budget_usd, progress)
        self.early_stop = EarlyStop(progress.total)
        self.scheduler: Scheduler | None = None
        self.live: set[Call] = set()  # dispatched and not finished: spending is flushed at the end
        self.halted: tuple[RunStatus, str] | None = None
        self.retry_handles: set[asyncio.TimerHandle] = set()
        self._grace: asyncio.TimerHandle | None = None

    @property
    def concurrency(self) -> int:
        return sum(lane.limiter.limit for lane in self.lanes)

    @property
    def workers(self) -> list[asyncio.Task[None]]:
        return [w for lane in self.lanes for w in lane.workers]

    # -- the run --------------------------------------------------------------------------------
    def dispatch(self, call: Call) -> None:
        self.live.add(call)
        self.lanes[call.request.arm].queue.put_nowait(call)

    async def run(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        for lane in self.lanes:
            lane.workers = [asyncio.create_task(self.worker(lane)) for _ in range(lane.limiter.max_limit)]
        try:
            if not self.halted:
                await scheduler.run()
            self._release_workers()
            await asyncio.gather(*self.workers, return_exceptions=True)
        finally:
            for handle in self.retry_handles:
                handle.cancel()
            if self._grace is not None:
                self._grace.cancel()
            for call in self.live:  # spent on cells that did not finish: recorded, never lost
                if not call.finished and call.unrecorded:
                    self.writer.put(call.outcome(None))
            self.live.clear()
            self.journal.close()

    async def halt(self, status: RunStatus, reason: str, *, grace: float = DRAIN_GRACE) -> None:
        """Stop dispatching. Calls in flight finish and are recorded; after `grace` seconds any
        still running are cancelled (their cells stay pending)."""
        if self.halted:
            return
        self.halted = (status, reason)
        if self.scheduler is not None:
            self.scheduler.halt()
        for handle in self.retry_handles:
            handle.cancel()
        self.progress.retrying = 0
        for lane in self.lanes:
            await lane.limiter.close()
        self._release_workers()
        self._grace = asyncio.get_running_loop().call_later(grace, self._cancel_workers)

    def _release_workers(self) -> None:
        for lane in self.lanes:
            for _ in lane.workers:
                lane.queue.put_nowait(None)

    def _cancel_workers(self) -> None:
        for task in self.workers:
            task.cancel()

    async def worker(self, lane: Lane) -> None:
        while True:
            call = await lane.queue.get()
            if call is None or self.halted:
                return
            try:
                await self.process(call, lane)
            except PoolClosed:
                return
            except Exception as exc:  # a bug in Handai fails the cell; it must never hang the run
                err = classify(exc)
                self._record_failure(call, lane, err, None, 0.0, detail=True)

    # -- the template method --------------------------------------------------------------------
    async def process(self, call: Call, lane: Lane) -> None:
        hit = self.cache.stored_reply(call.key)
        if hit is None and (leader := self.cache.leader(call.key)) is not None:
            with contextlib.suppress(Exception):  # the leader failed: this cell calls itself
                hit = await asyncio.shield(leader)
        if hit is not None:
            self._record_success(call, lane, hit, latency_ms=0.0, cached=True)
            return
        if reason := self.budget.exceeded():
            await self.halt(RunStatus.PAUSED, reason)
            return
        lead = self.cache.lead(call.key)
        reply = None
        try:
            reply, latency = await self.send(call, lane)
        except CallFailed as failure:
            await self._failed(call, lane, failure)
        finally:
            self.cache.settle(call.key, lead, reply)
        if reply is not None:
            if await lane.limiter.succeeded():
                self.journal.concurrency_restored(lane.limiter.limit)
            self._record_success(call, lane, reply, latency_ms=latency, cached=False)

    async def send(self, call: Call, lane: Lane) -> tuple[Reply, float]:
        """One HTTP call: a slot, the request, billing for any reply, parsing."""
        await lane.limiter.acquire()
        self.progress.in_flight += 1
        started = time.perf_counter()
        raw = None
        request = call.request
        try:
            call.attempts += 1
            call.calls += 1
            self.progress.calls += 1
            for figures in self._parts(call):  # every attempt, as the ledger's attempts count it
                figures.calls += 1
            reply = await lane.sender.send(call.body)
            self._bill(call, lane, reply.tokens_in, reply.tokens_out)
            if reply.problem is not None:
                raise reply.problem
            raw = reply.text
            parsed = parse_reply(raw, structured=request.structured, schema=request.schema)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = describe_error(exc, lane.conn)
            if isinstance(exc, ReplyError) and exc.raw is not None:
                raw = exc.raw
            elif isinstance(exc, json.JSONDecodeError):
                raw = exc.doc[:2000]  # the broken body, kept for the row inspector
            raise CallFailed(err, raw, time.perf_counter() - started) from exc
        finally:
            self.progress.in_flight -= 1
            await lane.limiter.release()
        latency = round((time.perf_counter() - started) * 1000, 1)
        model = reply.model[:MODEL_ID_CHARS] if reply.model else None
        return Reply(raw, parsed, reply.tokens_in, reply.tokens_out, model), latency

    def _bill(self, call: Call, lane: Lane, tokens_in: int, tokens_out: int) -> None:
        """Every billed reply counts once, here: on the cell (written with its next outcome), in
        live progress (the run's, its arm's and its step's) and so in the budget guard."""
        cost = round(lane.price.cost(tokens_in, tokens_out), 8) if lane.price else None
        call.bill(tokens_in, tokens_out, cost)
        self.progress.bill(tokens_in, tokens_out, cost)
        for figures in self._parts(call):
            figures.bill(tokens_in, tokens_out, cost)
        if cost is not None:
            self.budget.billed += 1

    def _parts(self, call: Call) -> tuple[Figures, Figures]:
        assert self.scheduler is not None
        plan = self.scheduler.plan
        return self.progress.part(plan.steps[call.request.step].name, plan.arms[call.request.arm].name)

    async def _failed(self, call: Call, lane: Lane, failure: CallFailed) -> None:
        err = failure.err
        if self.halted:  # not retried once halted: the cell stays pending, what it cost is kept
            return
        if err.kind == ErrorKind.RATE_LIMITED and call.waits < MAX_RATE_LIMIT_WAITS:
            self.progress.rate_limited += 1
            self._parts(call)[1].rate_limited += 1
            call.waits += 1
            if cut := await lane.limiter.rate_limited(err.retry_after):
                self.journal.rate_limited(cut[0], cut[1], lane.limiter.limit)
            lane.queue.put_nowait(call)
            return
        if err.retryable and call.retries < self.settings.max_retries:
            call.retries += 1
            delay = backoff_delay(call.retries, cap=self.backoff_cap)
            self.journal.retry(call.row, err, call.retries, delay)
            self._requeue_later(call, lane, delay)
            return
        self._record_failure(call, lane, err, failure.raw, failure.elapsed)
        if reason := self.early_stop.observe(err, self.progress, lane.name):
            await self.halt(RunStatus.FAILED, redact(reason, self.keys))

    def _requeue_later(self, call: Call, lane: Lane, delay: float) -> None:
        self.progress.retrying += 1

        def put() -> None:
            self.retry_handles.discard(handle)
            self.progress.retrying -= 1
            lane.queue.put_nowait(call)

        handle = asyncio.get_running_loop().call_later(delay, put)
        self.retry_handles.add(handle)

    # -- recording ------------------------------------------------------------------------------
    def _record_success(self, call: Call, lane: Lane, reply: Reply, *, latency_ms: float, cached: bool) -> None:
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
                flags=off_list(reply.parsed, call.request.schema) or None,
                model_reported=reply.model,
            )
        )
        self._settled(call, RowStatus.SUCCEEDED, reply.parsed)

    def _record_failure(
        self, call: Call, lane: Lane, err: ClassifiedError, raw: str | None, elapsed: float, *, detail: bool = False
    ) -> None:
        self.journal.failure(call.row, err)
        message = f"{err.user_text()} ({err.detail})" if detail else err.user_text()
        self.writer.put(
            call.outcome(
                RowStatus.FAILED,
                raw=raw,
                error_kind=err.kind.value,
                error_message=redact(message, self.keys),
                latency_ms=round(elapsed * 1000, 1),
            )
        )
        self._settled(call, RowStatus.FAILED, None, err.kind)

    def _settled(
        self, call: Call, status: RowStatus, parsed: dict[str, Any] | None, kind: ErrorKind | None = None
    ) -> None:
        assert self.scheduler is not None
        self.live.discard(call)
        plan = self.scheduler.plan
        self.progress.settled(plan.steps[call.request.step].name, plan.arms[call.request.arm].name, status, kind)
        self.scheduler.cell_done(call, status, parsed)
