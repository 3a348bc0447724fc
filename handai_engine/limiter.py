"""Pacing: the pool-wide concurrency limit that learns from 429s, and the backoff for retries."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time


class PoolClosed(Exception):
    """The pool stopped dispatching while a worker waited for a slot."""


class AdaptiveLimiter:
    """Concurrency limit that halves on a 429, pauses the pool for Retry-After, then climbs back
    by one slot per limit's worth of successes up to the user's setting (AIMD)."""

    def __init__(self, limit: int) -> None:
        self.max_limit = max(1, limit)
        self.limit = self.max_limit
        self.in_flight = 0
        self.paused_until = 0.0
        self.closed = False
        self._successes = 0
        self._last_cut = 0.0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        """Wait for a slot; raises PoolClosed once the pool stops dispatching. A free slot is taken
        without the lock (one event loop, no await between the check and the count): the lock is
        for waiting, and most calls never wait."""
        if not self.closed and self.in_flight < self.limit and self.paused_until <= time.monotonic():
            self.in_flight += 1
            return
        async with self._cond:
            while True:
                if self.closed:
                    raise PoolClosed
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
        if not self._cond._waiters:  # nobody to wake: no need to take the lock
            self.in_flight -= 1
            return
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify(1)

    async def close(self) -> None:
        """Wake every waiter: no new call starts; calls in flight finish."""
        async with self._cond:
            self.closed = True
            self._cond.notify_all()

    async def rate_limited(self, retry_after: float | None) -> tuple[float, int] | None:
        """Pause the pool; returns (pause, old limit) when this 429 also halved the limit."""
        now = time.monotonic()
        pause = min(retry_after if retry_after is not None else 1.0, 120.0)
        async with self._cond:
            self.paused_until = max(self.paused_until, now + pause)
            if now - self._last_cut > max(pause, 0.5):
                old, self.limit = self.limit, max(1, self.limit // 2)
                self._last_cut = now
                self._successes = 0
                return pause, old
        return None

    async def succeeded(self) -> bool:
        """Count a success; True when the limit just climbed back to the user's setting."""
        if self.limit >= self.max_limit:
            return False
        async with self._cond:
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self.limit += 1
                self._cond.notify(1)
                return self.limit == self.max_limit
        return False


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Full-jitter exponential backoff (AWS architecture blog): spreads retries of many rows."""
    return random.uniform(0, min(cap, base * 2**attempt)) + base / 2
