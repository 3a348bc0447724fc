"""A cell's request, built once: its user message, body and cache key, plus what the pool has
spent on it that the ledger has not yet recorded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handai_db import RowOutcome, RowStatus, Run
from handai_prompts import build_messages
from providers import Connection, chat_body

from .plan import Plan
from .settings import SentRequest


@dataclass(frozen=True, slots=True)
class StepRequest:
    """What every call of one (step, arm) shares: sent once per job, not once per row."""

    step: int
    arm: int
    provider: str
    endpoint: Mapping[str, Any]
    model: str
    system: str
    params: dict[str, Any]
    structured: bool
    schema: dict[str, Any] | None
    examples: tuple[dict[str, str], ...] = ()
    cache_tag: str | None = None  # arm name in a run of several arms: arms never share replies

    def key(self, messages: list[dict[str, str]], sample: int) -> str:
        """Everything that shapes a reply: provider, endpoint, model, exact messages, every
        parameter and the output schema, and the arm and sample (so K samples stay K replies).
        Same key, same request: a reply already paid for can be reused."""
        payload: dict[str, Any] = {
            "provider": self.provider,
            "endpoint": dict(self.endpoint),
            "model": self.model,
            "messages": messages,
            "params": self.params,
            "schema": self.schema,
        }
        if self.cache_tag is not None:
            payload["arm"] = self.cache_tag
        if sample:
            payload["sample"] = sample
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()

    def call(self, result_id: int, row_index: int, sample: int, user: str, *, use_cache: bool) -> Call:
        messages = build_messages(self.system, user, self.examples)
        key = self.key(messages, sample) if use_cache else None
        body = chat_body(self.model, messages, self.params)
        return Call(result_id, row_index + 1, sample, self, user, body, key)


@dataclass(slots=True, eq=False)
class Call:
    """One cell's call. `calls`, `tokens_*` and `cost` are what was spent since the last write."""

    result_id: int
    row: int  # 1-based, as a person counts rows
    sample: int
    request: StepRequest
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
        """The cell's outcome carrying what was spent since the last write, which it then clears."""
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


def step_requests(run: Run, plan: Plan, conns: Sequence[Connection]) -> dict[tuple[int, int], StepRequest]:
    """What each (step, arm) sends, as recorded on the run (DESIGN decision 6): built once per
    job, so each cell only adds its own user message."""
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
                step.examples,
                cache_tag=name if several else None,
            )
    return requests
