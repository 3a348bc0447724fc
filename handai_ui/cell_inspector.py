"""One row of a multi-model run as the ledger recorded it: the input row, then each cell (step,
model, sample) with its status, answer, error and raw reply, and the system message that
(step, model) sent, read from the run's recorded plan."""

from __future__ import annotations

from typing import Any

import streamlit as st

from handai_db import RowStatus, Run
from handai_engine import Plan
from handai_engine.answers import answer_value

from .plan_facts import input_rows
from .provenance import not_recorded
from .services import db
from .text import md

STATUS_ICONS = {
    RowStatus.SUCCEEDED: ":material/check_circle:",
    RowStatus.FAILED: ":material/error:",
    RowStatus.SKIPPED: ":material/skip_next:",
    RowStatus.PENDING: ":material/schedule:",
}


def cell_title(plan: Plan, cell: Any) -> str:
    step, arm = plan.steps[cell.step], plan.arms[cell.arm]
    sample = f" · sample {cell.sample + 1}" if arm.samples > 1 else ""
    where = f"{step.name} · " if len(plan.steps) > 1 else ""
    return f"{STATUS_ICONS.get(cell.status, '')} {md(where + arm.label + sample)} · {md(cell.status)}"


def cell_view(plan: Plan, cell: Any) -> None:
    figures = [f"latency {cell.latency_ms:.0f} ms" if cell.latency_ms is not None else ""]
    figures.append(f"tokens {cell.tokens_in} in, {cell.tokens_out} out")
    if cell.cost_usd is not None:
        figures.append(f"${cell.cost_usd:.6f}")
    st.caption(" · ".join(f for f in figures if f))
    if cell.status == RowStatus.SUCCEEDED:
        value = answer_value(cell.parsed)
        if isinstance(value, dict):
            st.json(value)
        else:
            st.code("" if value is None else str(value), language=None, wrap_lines=True)
    if cell.error_message:
        alert = st.info if cell.status == RowStatus.SKIPPED else st.error
        alert(md(f"{cell.error_kind + ': ' if cell.error_kind else ''}{cell.error_message}"))
    with st.popover("What was sent, and the raw reply", icon=":material/visibility:"):
        key = f"{plan.steps[cell.step].name}/{plan.arms[cell.arm].name}"
        st.markdown("**System message sent**")
        if key in plan.sent:
            st.code(plan.sent[key].system, language=None, wrap_lines=True)
        else:
            st.caption(not_recorded("the system message"))
        st.markdown("**Raw reply**")
        st.code(cell.raw or "", language=None, wrap_lines=True)


def cell_inspector(run: Run, key: str, *, default_row: int | None = None) -> None:
    with st.expander("Inspect a row: input → every answer", icon=":material/search:"):
        state = f"inspect_{key}"
        last = max(input_rows(run), 1)
        if state not in st.session_state and default_row is not None:
            st.session_state[state] = min(max(int(default_row), 1), last)
        number = int(st.number_input("Row", 1, last, key=state, help="Row 1 is the first data row, as in the table."))
        found = next(db().iter_rows(run.id, [number - 1]), None)
        if found is None:
            st.info("No such row.")
            return
        _, input_row, cells = found
        plan = Plan.of(run)
        left, right = st.columns([2, 3])
        with left:
            st.markdown("**Input row**")
            st.dataframe(
                {"column": [str(k) for k in input_row], "value": [str(v) for v in input_row.values()]},
                hide_index=True,
                width="stretch",
            )
        with right:
            for cell in cells:
                with st.container(border=True):
                    st.markdown(cell_title(plan, cell))
                    cell_view(plan, cell)
