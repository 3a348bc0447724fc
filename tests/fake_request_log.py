"""What the fake LLM server has seen: every chat request it answered, and the ones it is still
working on.

A request is logged only once it is answered, after its latency, so "the log stopped growing" is no
sign that a killed client's calls are all in: a test waits for `in_flight()` to reach zero instead
(with a deadline, tests.helpers.wait_until), which is an event, not a guess at how long it takes."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass


def masked(key: str) -> str:
    """A key as the log keeps it: enough to tell two keys apart, never the key."""
    return f"{key[:3]}****{key[-4:]}" if len(key) > 8 else "****"


@dataclass
class LoggedRequest:
    ts: float
    model: str
    user: str
    status: int
    key: str
    system: str = ""


@dataclass
class InFlight:
    """A chat request begun and not yet answered; model and user are None until its body is read."""

    model: str | None = None
    user: str | None = None


class InFlightRequests:
    """The chat requests between a handler's entry and its exit (answered, failed or dropped).

    Read from the test's thread while the server's loop thread changes it, hence the lock."""

    def __init__(self) -> None:
        self._open: dict[int, InFlight] = {}
        self._tickets = itertools.count()
        self._lock = threading.Lock()

    def begin(self) -> tuple[int, InFlight]:
        with self._lock:
            ticket = next(self._tickets)
            self._open[ticket] = InFlight()
            return ticket, self._open[ticket]

    def end(self, ticket: int) -> None:
        with self._lock:
            self._open.pop(ticket, None)

    def count(self, where: Callable[[InFlight], bool] | None = None) -> int:
        """How many are open; with `where`, those it accepts, plus any whose body is still being
        read (it may be one of them)."""
        with self._lock:
            return sum(1 for r in self._open.values() if where is None or r.user is None or where(r))
