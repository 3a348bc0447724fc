"""A row's request, built once: its user message, messages and cache key, plus what the pool has
spent on it that the ledger has not yet recorded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from handai_db import PendingRow, RowOutcome, RowStatus
from handai_prompts import build_messages, user_message
from providers import chat_body

from .settings import SentRequest


def cache_key(provider: str, endpoint: Mapping[str, Any], request: SentRequest, messages: list[dict[str, str]]) -> str:
    """Everything that shapes a reply: provider, endpoint, model, exact messages, every parameter
    and the output schema. Same key, same request: a reply already paid for can be reused."""
    payload = {
        "provider": provider,
        "endpoint": dict(endpoint),
        "model": request.model,
        "messages": messages,
        "params": request.params,
        "schema": request.schema,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


@dataclass(slots=True)
class Call:
    """One row's call. `calls`, `tokens_*` and `cost` are what was spent since the last write."""

    result_id: int
    row: int  # 1-based, as a person counts rows
    user: str
    body: dict[str, Any]
    key: str | None
    attempts: int = 0
    retries: int = 0
    waits: int = 0
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    finished: bool = False

    def bill(self, tokens_in: int, tokens_out: int, cost: float | None) -> None:
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost

    def outcome(self, status: RowStatus | None, **values: Any) -> RowOutcome:
        """The row's outcome carrying what was spent since the last write, which it then clears."""
        outcome = RowOutcome(
            self.result_id,
            status,
            attempts=self.attempts,
            calls=self.calls,
            tokens_in=self.tokens_in,
            tokens_out=self.tokens_out,
            cost_usd=self.cost,
            request=self.user,
            **values,
        )
        self.calls = self.tokens_in = self.tokens_out = 0
        self.cost = None
        self.finished = status is not None
        return outcome

    @property
    def unrecorded(self) -> bool:
        return bool(self.calls or self.tokens_in or self.tokens_out or self.cost)


def build_calls(
    rows: Iterable[PendingRow],
    request: SentRequest,
    *,
    provider: str,
    endpoint: Mapping[str, Any],
    template: str | None,
    columns: list[str],
    use_cache: bool,
) -> Iterator[Call]:
    for row in rows:
        user = user_message(row.input, template=template, columns=columns)
        messages = build_messages(request.system, user, request.examples)
        key = cache_key(provider, endpoint, request, messages) if use_cache else None
        yield Call(row.result_id, row.row_index + 1, user, chat_body(request.model, messages, request.params), key)
