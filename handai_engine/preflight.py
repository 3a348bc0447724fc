"""Before anything is paid for: does each row fit the model's context window? A row that does
not fails on every attempt; the user is told, and may shorten the longest cells instead. A run of
several models or steps is checked per (step, model): each has its own window, instruction,
examples and reply room, and the tightest one decides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from handai_prompts import clean_record, estimate_tokens, system_message, template_fields, user_message
from providers import context_window

from .plan import Plan
from .settings import RunSettings

# Room kept for the reply when the run sets no max tokens, and for the messages' framing.
REPLY_ALLOWANCE = 1024
FRAMING = 16
CUT_MARK = " […]"


@dataclass(frozen=True)
class Preflight:
    window: int | None  # the model's context window; None when unknown
    limit: int | None  # tokens one row's message may use; None when the window is unknown
    largest: int  # the largest row's estimated tokens
    over: list[int]  # 0-based positions of the rows over the limit
    where: str = ""  # for a plan: the step and model whose window is tightest ("" for one model)

    @property
    def fits(self) -> bool:
        return not self.over


@dataclass(frozen=True)
class _Sender:
    """What one (step, model) sends besides the row: it decides the room a row has."""

    model: str
    system: str
    examples: Sequence[Mapping[str, Any]]
    max_tokens: int | None
    template: str | None
    columns: Sequence[str]
    where: str = ""

    @property
    def limit(self) -> int | None:
        window = context_window(self.model)
        if window is None:
            return None
        shots = sum(
            estimate_tokens(str(e.get("input", ""))) + estimate_tokens(str(e.get("output", ""))) for e in self.examples
        )
        return window - estimate_tokens(self.system) - shots - (self.max_tokens or REPLY_ALLOWANCE) - FRAMING


def preflight(df: pd.DataFrame, settings: RunSettings) -> Preflight:
    """Each row's estimated tokens (about four characters a token) against the window, less the
    instruction, the examples and the room kept for the reply."""
    return _check(df, _settings_sender(settings))


def preflight_plan(df: pd.DataFrame, plan: Plan) -> Preflight:
    """The same check for every (step, model) of a plan. A row is over when any of its calls is;
    the window, limit and largest row reported are the tightest pair's (least room to spare), so
    the warning names the call that fails first. Earlier steps' answers are not known yet and
    count as empty."""
    checks = [_check(df, sender) for sender in _plan_senders(plan)]
    known = [c for c in checks if c.limit is not None]
    if not known:
        return Preflight(None, None, max((c.largest for c in checks), default=0), [])
    worst = min(known, key=lambda c: (c.limit or 0) - c.largest)
    over = sorted({position for c in known for position in c.over})
    return Preflight(worst.window, worst.limit, worst.largest, over, worst.where)


def truncate_rows(df: pd.DataFrame, settings: RunSettings, limit: int) -> pd.DataFrame:
    """A copy where each row over `limit` tokens has its longest sent text cells shortened (marked
    with " […]" once) until it fits; other rows and cells are unchanged."""
    return _truncate(df, _settings_sender(settings), limit)


def truncate_plan_rows(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """A copy where each row fits every (step, model) of the plan whose window is known."""
    out = df
    for sender in _plan_senders(plan):
        limit = sender.limit
        if limit is not None:
            out = _truncate(out, sender, limit)
    return out if out is not df else df.copy()


def _settings_sender(settings: RunSettings) -> _Sender:
    return _Sender(
        settings.model,
        settings.sent_system(),
        settings.examples,
        settings.max_tokens,
        settings.row_template,
        settings.columns,
    )


def _plan_senders(plan: Plan) -> list[_Sender]:
    senders = []
    for step in plan.steps:
        for name in step.arms:
            arm = plan.arm(name)
            sent = plan.sent.get(f"{step.name}/{arm.name}")
            system = sent.system if sent else system_message(step.instruction, step.output_schema, step.json_mode)
            where = f"step '{step.name}', model '{arm.name}'" if len(plan.steps) > 1 else f"model '{arm.name}'"
            senders.append(
                _Sender(arm.model, system, step.examples, arm.max_tokens, step.row_template, step.columns, where)
            )
    return senders


def _check(df: pd.DataFrame, sender: _Sender) -> Preflight:
    window = context_window(sender.model)
    limit = sender.limit
    largest, over = 0, []
    for position, tokens in enumerate(_row_tokens(df, sender)):
        largest = max(largest, tokens)
        if limit is not None and tokens > limit:
            over.append(position)
    return Preflight(window, limit, largest, over, sender.where)


def _truncate(df: pd.DataFrame, sender: _Sender, limit: int) -> pd.DataFrame:
    out = df.copy()
    columns = _sent_columns(df, sender)
    for position, tokens in enumerate(_row_tokens(df, sender)):
        for _ in columns:
            if tokens <= limit:
                break
            row = out.iloc[position]
            texts = {c: row[c].removesuffix(CUT_MARK) for c in columns if isinstance(row[c], str) and row[c]}
            if not texts:
                break
            column = max(texts, key=lambda c: len(texts[c]))
            keep = max(0, len(texts[column]) - (tokens - limit) * 4 - len(CUT_MARK) - FRAMING)
            out.iat[position, out.columns.get_loc(column)] = texts[column][:keep] + CUT_MARK
            tokens = _tokens(out.iloc[position], sender)
    return out


def _sent_columns(df: pd.DataFrame, sender: _Sender) -> list[str]:
    if sender.template:
        return [c for c in template_fields(sender.template) if c in df.columns]
    return [c for c in (sender.columns or list(df.columns)) if c in df.columns]


def _tokens(row: pd.Series, sender: _Sender) -> int:
    record: dict[str, Any] = clean_record(row.to_dict())
    columns = list(sender.columns) or [str(c) for c in row.index]
    return estimate_tokens(user_message(record, template=sender.template, columns=columns))


def _row_tokens(df: pd.DataFrame, sender: _Sender) -> list[int]:
    return [_tokens(row, sender) for _, row in df.iterrows()]
