"""Before anything is paid for: does each row fit the model's context window? A row that does
not fails on every attempt; the user is told, and may shorten the longest cells instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from handai_prompts import clean_record, estimate_tokens, template_fields, user_message
from providers import context_window

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

    @property
    def fits(self) -> bool:
        return not self.over


def preflight(df: pd.DataFrame, settings: RunSettings) -> Preflight:
    """Each row's estimated tokens (about four characters a token) against the window, less the
    instruction, the examples and the room kept for the reply."""
    window = context_window(settings.model)
    limit = None if window is None else window - _fixed_tokens(settings)
    largest, over = 0, []
    for position, tokens in enumerate(_row_tokens(df, settings)):
        largest = max(largest, tokens)
        if limit is not None and tokens > limit:
            over.append(position)
    return Preflight(window, limit, largest, over)


def truncate_rows(df: pd.DataFrame, settings: RunSettings, limit: int) -> pd.DataFrame:
    """A copy where each row over `limit` tokens has its longest sent text cells shortened (marked
    with " […]", one cut per cell) until it fits; other rows and cells are unchanged."""
    out = df.copy()
    columns = _sent_columns(df, settings)
    for position, tokens in enumerate(_row_tokens(df, settings)):
        for _ in columns:
            if tokens <= limit:
                break
            row = out.iloc[position]
            texts = {c: row[c] for c in columns if isinstance(row[c], str) and not row[c].endswith(CUT_MARK)}
            if not texts:
                break
            column = max(texts, key=lambda c: len(texts[c]))
            keep = max(0, len(texts[column]) - (tokens - limit) * 4 - len(CUT_MARK) - FRAMING)
            out.iat[position, out.columns.get_loc(column)] = texts[column][:keep] + CUT_MARK
            tokens = _tokens(out.iloc[position], settings)
    return out


def _fixed_tokens(settings: RunSettings) -> int:
    examples = sum(
        estimate_tokens(e.get("input", "")) + estimate_tokens(e.get("output", "")) for e in settings.examples
    )
    return estimate_tokens(settings.sent_system()) + examples + (settings.max_tokens or REPLY_ALLOWANCE) + FRAMING


def _sent_columns(df: pd.DataFrame, settings: RunSettings) -> list[str]:
    if settings.row_template:
        return [c for c in template_fields(settings.row_template) if c in df.columns]
    return [c for c in (settings.columns or list(df.columns)) if c in df.columns]


def _tokens(row: pd.Series, settings: RunSettings) -> int:
    record: dict[str, Any] = clean_record(row.to_dict())
    columns = settings.columns or [str(c) for c in row.index]
    return estimate_tokens(user_message(record, template=settings.row_template, columns=columns))


def _row_tokens(df: pd.DataFrame, settings: RunSettings) -> list[int]:
    return [_tokens(row, settings) for _, row in df.iterrows()]
