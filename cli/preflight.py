"""Before anything is paid for: rows longer than the model's context window fail on every attempt.
Say so on stderr in one line (as the app's pre-flight warning does), and with `--truncate` shorten
their longest cells as the app's "Shorten the long cells" does; the run then records what was sent."""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from handai_engine import Plan, Preflight, RunSettings, preflight, truncate_rows
from handai_engine.preflight import preflight_plan, truncate_plan_rows
from providers import context_window

SHOWN_ROWS = 10


def add_truncate_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--truncate",
        action="store_true",
        help="shorten the longest cells of rows too long for the model's context window, so each row fits "
        "(the run records what was sent)",
    )


def check_transform_rows(df: pd.DataFrame, settings: RunSettings, truncate: bool) -> pd.DataFrame:
    """The rows to send: `df`, or with `truncate` a copy whose long rows fit the one model's window."""
    if context_window(settings.model) is None:
        return df  # nothing to check against: skip the pass over every row
    found = preflight(df, settings)
    _warn(found, df, truncate)
    if truncate and found.over and found.limit is not None:
        return truncate_rows(df, settings, found.limit)
    return df


def check_plan_rows(df: pd.DataFrame, plan: Plan, truncate: bool) -> pd.DataFrame:
    """The same for a run of several models or steps: every (step, model) whose window is known."""
    if all(context_window(arm.model) is None for arm in plan.arms):
        return df
    found = preflight_plan(df, plan)
    _warn(found, df, truncate)
    if truncate and found.over:
        return truncate_plan_rows(df, plan)
    return df


def _warn(found: Preflight, df: pd.DataFrame, truncate: bool) -> None:
    if not found.over:
        return
    numbers = _row_numbers(df, found.over)
    more = len(numbers) - SHOWN_ROWS
    shown = ", ".join(map(str, numbers[:SHOWN_ROWS])) + (f" and {more:,} more" if more > 0 else "")
    count = f"{len(numbers):,} row{'s are' if len(numbers) != 1 else ' is'}"
    window = f"{found.window:,}-token context window" if found.window else "context window"
    whose = f" ({found.where})" if found.where else ""
    then = "their longest cells were shortened to fit (--truncate)" if truncate else "add --truncate to shorten them"
    print(
        f"warning: {count} too long for the model's {window}{whose}: a row may use {found.limit:,} tokens, the "
        f"largest uses {found.largest:,} (input rows {shown}, numbered from 1). They would fail or be cut by the "
        f"provider; {then}.",
        file=sys.stderr,
    )


def _row_numbers(df: pd.DataFrame, positions: list[int]) -> list[int]:
    """The input file's row numbers (from 1) of these positions: a row selection keeps the file's
    index, so a sampled row is named as it is in the file."""
    index = df.index[positions]
    if pd.api.types.is_integer_dtype(index):
        return [int(i) + 1 for i in index]
    return [p + 1 for p in positions]
