"""Which rows a run sends (all, the first N, a seeded random sample, or a filter on a column), and
the pre-flight check of each row against the model's context window, before anything is paid."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

import handai_io
from handai_engine import Plan, RunSettings
from handai_engine.preflight import Preflight, preflight, preflight_plan, truncate_plan_rows, truncate_rows

from .results import rows_text
from .text import md

MODES = {"all": "All rows", "first": "The first N", "sample": "A random sample", "filter": "A filter on a column"}


def selection_keys(prefix: str) -> tuple[str, ...]:
    """The widget keys `row_selection` and the pre-flight check draw, for `handai_ui.keep` / `kept`:
    a filter chosen here is still there after a visit to another page."""
    names = ("rows_mode", "rows_n", "rows_seed", "rows_column", "rows_values", "rows_contains", "truncate")
    return tuple(f"{prefix}_{name}" for name in names)


def row_selection(prefix: str, df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows chosen and a description of the choice ("" for all rows)."""
    mode = st.segmented_control(
        "Rows to run", list(MODES), format_func=MODES.get, default="all", key=f"{prefix}_rows_mode"
    )
    mode = mode or "all"
    n = seed = column = contains = None
    values: list[str] | None = None
    if mode in ("first", "sample"):
        c = st.columns(2)
        n = int(c[0].number_input("Rows", 1, max(len(df), 1), min(100, len(df)), key=f"{prefix}_rows_n"))
        if mode == "sample":
            seed = int(c[1].number_input("Seed", 0, 2**31 - 1, 42, key=f"{prefix}_rows_seed"))
    elif mode == "filter":
        c = st.columns(2)
        column = c[0].selectbox("Column", [str(x) for x in df.columns], key=f"{prefix}_rows_column")
        distinct = df[column].dropna().astype(str).unique() if column in df else []
        if 0 < len(distinct) <= 50:
            values = c[1].multiselect("Values", sorted(distinct), key=f"{prefix}_rows_values") or None
        else:
            contains = c[1].text_input("Contains", key=f"{prefix}_rows_contains").strip() or None
    if mode == "all":
        return df, ""
    selection = handai_io.RowSelection(mode=mode, n=n, seed=seed, column=column, values=values or [], contains=contains)
    try:
        chosen, description = handai_io.select_rows(df, selection)
    except (ValueError, KeyError) as exc:
        st.warning(md(exc), icon=":material/filter_alt_off:")
        return df.iloc[0:0], ""
    st.caption(f":material/filter_alt: {md(description)}")  # it says how many of how many
    return chosen, description


def preflight_check(prefix: str, df: pd.DataFrame, settings: RunSettings) -> pd.DataFrame:
    """Each row's tokens against the model's context window; offers to shorten long cells."""
    return _offer_to_shorten(
        prefix, df, lambda: preflight(df, settings), lambda limit: truncate_rows(df, settings, limit)
    )


def plan_preflight_check(prefix: str, df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The same for a run of several models or steps: each (step, model) against its own window."""
    return _offer_to_shorten(prefix, df, lambda: preflight_plan(df, plan), lambda _: truncate_plan_rows(df, plan))


def _offer_to_shorten(
    prefix: str, df: pd.DataFrame, check: Callable[[], Preflight], shorten: Callable[[int], pd.DataFrame]
) -> pd.DataFrame:
    """The rows to send: as chosen, or with their long cells shortened when the user ticks so."""
    if df.empty:
        return df
    try:
        pf = check()
    except (ValueError, KeyError) as exc:
        st.caption(f":material/info: Pre-flight check not possible: {md(exc)}")
        return df
    window = f"{pf.window:,}-token context window" if pf.window else "context window (size unknown)"
    whose = f" ({md(pf.where)})" if pf.where else ""
    if not pf.over:
        st.caption(
            f":material/check: Every row fits the model's {window}{whose}: the largest uses {pf.largest:,} tokens."
        )
        return df
    st.warning(
        f"{len(pf.over):,} rows are longer than the model's {window}{whose} allows ({pf.limit:,} tokens per row, "
        f"the largest uses {pf.largest:,}): {rows_text(pf.over)}. They would fail, or be cut by the provider.",
        icon=":material/warning:",
    )
    if st.checkbox(
        "Shorten the long cells so each row fits",
        key=f"{prefix}_truncate",
        help="The longest text cells of those rows are cut; the run records what was sent.",
    ):
        return shorten(pf.limit or 0)
    return df
