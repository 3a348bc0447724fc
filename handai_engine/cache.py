"""The reply cache of one job: replies already paid for (in the ledger's cache table) and calls
in flight, so identical rows in a run cost one call and re-running costs none."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reply:
    raw: str | None
    parsed: dict[str, Any]
    tokens_in: int
    tokens_out: int
    model: str | None = None  # the model id the reply named; a cached reply keeps it


class ReplyCache:
    def __init__(self) -> None:
        self.stored: dict[str, Reply] = {}
        self.repeated: set[str] = set()
        self.in_flight: dict[str, asyncio.Future[Reply]] = {}

    def load(self, keys: Sequence[str], found: dict[str, Any]) -> None:
        """Replies found in the ledger for one page's keys; keys seen twice in the page keep their
        reply in memory until the page is done (later pages find it in the ledger)."""
        self.stored.update(
            {k: Reply(e.raw, e.parsed or {}, e.tokens_in, e.tokens_out, e.model_reported) for k, e in found.items()}
        )
        self.repeated = {k for k, n in Counter(keys).items() if n > 1}

    def stored_reply(self, key: str | None) -> Reply | None:
        """A reply for this key already paid for; taken out of memory unless the key repeats."""
        if key is None:
            return None
        return self.stored.get(key) if key in self.repeated else self.stored.pop(key, None)

    def leader(self, key: str | None) -> asyncio.Future[Reply] | None:
        """The identical call in flight, if any, whose reply this row can wait for."""
        return None if key is None else self.in_flight.get(key)

    def lead(self, key: str | None) -> asyncio.Future[Reply] | None:
        """Claim the call for this key, so identical rows wait for its reply instead of calling
        (only keys seen more than once in the page need it)."""
        if key is None or key not in self.repeated or key in self.in_flight:
            return None
        future = asyncio.get_running_loop().create_future()
        self.in_flight[key] = future
        return future

    def settle(self, key: str | None, future: asyncio.Future[Reply] | None, reply: Reply | None) -> None:
        """Hand the leader's reply to its followers (or tell them to call themselves)."""
        if future is None:
            return
        self.in_flight.pop(key, None)  # type: ignore[arg-type]
        if reply is not None:
            if key in self.repeated:  # only rows still to come need the reply in memory
                self.stored[key] = reply  # type: ignore[index]
            future.set_result(reply)
        elif not future.done():
            future.set_exception(RuntimeError("no reply"))
            future.exception()  # retrieved: followers fall back to calling themselves
