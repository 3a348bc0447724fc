"""One row of a run, as the ledger recorded it, side by side: the input row on the left, the
model's answer on the right; below, what was sent and the raw reply. Rows count from 1, as in the
tables. Nothing is rebuilt with today's code."""

from __future__ import annotations

import streamlit as st

from handai_db import Result, Run
from handai_prompts import is_structured

from .provenance import not_recorded
from .services import db
from .text import md


def _row_number(run: Run, key: str, default_row: int | None) -> int:
    """The row chosen (1-based); a new inspector starts at `default_row`."""
    state = f"inspect_{key}"
    last = max(run.total_rows, 1)
    if state not in st.session_state and default_row is not None:
        st.session_state[state] = min(max(int(default_row), 1), last)
    return int(st.number_input("Row", 1, last, key=state, help="Row 1 is the first data row, as in the tables."))


def answer_view(run: Run, result: Result) -> None:
    """The answer: each parsed field, or the reply's text, or why there is none."""
    if result.parsed and is_structured(run.output_schema, bool(run.params.get("json_mode"))):
        for name, value in result.parsed.items():
            st.markdown(f"**{md(name)}**")
            st.code(value if isinstance(value, str) else repr(value), language=None, wrap_lines=True)
    elif result.parsed and "output" in result.parsed:
        st.code(str(result.parsed["output"]), language=None, wrap_lines=True)
    elif result.raw:
        st.code(result.raw, language=None, wrap_lines=True)
    elif result.error_message:
        st.error(md(f"{result.error_kind}: {result.error_message}"))
    else:
        st.caption("No answer yet.")
    flags = getattr(result, "flags", None)
    if flags:
        st.warning(md("Flagged: " + "; ".join(f"{k}: {v}" for k, v in flags.items())), icon=":material/flag:")


def inspector(run: Run, key: str, *, default_row: int | None = None, expanded: bool = False) -> None:
    with st.expander("Inspect a row: input → answer", icon=":material/search:", expanded=expanded):
        number = _row_number(run, key, default_row)
        result = db().result(run.id, number - 1)
        if result is None:
            st.info("No such row.")
            return
        st.markdown(
            f"**Row {number}** · {md(result.status)} · attempts {result.attempts} · "
            f"latency {result.latency_ms or 0:.0f} ms · tokens {result.tokens_in} in, {result.tokens_out} out"
            + (" · from the cache" if result.cached else "")
            + (f" · {md(f'${result.cost_usd:.6f}')}" if result.cost_usd is not None else "")
        )
        left, right = st.columns(2)
        with left:
            st.markdown("**Input row**")
            st.dataframe(
                {"column": [str(k) for k in result.input], "value": [str(v) for v in result.input.values()]},
                hide_index=True,
                width="stretch",
            )
        with right:
            st.markdown("**The model's answer**")
            answer_view(run, result)
        if result.error_message and (result.parsed or result.raw):
            st.error(md(f"{result.error_kind}: {result.error_message}"))
        st.markdown("**System message sent**")
        if "system_message" in run.params:
            st.code(run.params["system_message"], language=None, wrap_lines=True)
        else:
            st.caption(not_recorded("the system message"))
        st.markdown("**User message sent**")
        if result.request is not None:
            st.code(result.request, language=None, wrap_lines=True)
        else:
            st.caption("Not sent yet." if not result.attempts else not_recorded("the user message"))
        st.markdown("**Raw reply**")
        structured = is_structured(run.output_schema, bool(run.params.get("json_mode")))
        st.code(result.raw or "", language="json" if structured else None, wrap_lines=True)
