"""One disagreement at a time: the row's text, each coder's answer and reason, and the decision
(pick an answer, or another code from the codebook or typed), saved with who and a note."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from research.adjudication import Disagreement
from research.raters import RaterTable

from .services import db
from .text import md

OTHER = "Another code…"


def _shown(value: Any) -> str:
    if value is None:
        return "(no answer)"
    return "; ".join(value) if isinstance(value, list) else str(value)


def adjudication_card(
    run_id: int, table: RaterTable, queue: Sequence[Disagreement], *, author: str, prefix: str
) -> None:
    pos_key = f"{prefix}_pos_{run_id}"
    position = min(int(st.session_state.get(pos_key, 0)), len(queue) - 1)
    item = queue[position]
    c = st.columns([1, 3, 1], vertical_alignment="center")
    if c[0].button("Previous", icon=":material/chevron_left:", disabled=position == 0, key=f"{prefix}_prev"):
        st.session_state[pos_key] = position - 1
        st.rerun()
    c[1].markdown(f"**Disagreement {position + 1} of {len(queue)}** · row {item.row + 1}")
    if c[2].button("Next", icon=":material/chevron_right:", disabled=position >= len(queue) - 1, key=f"{prefix}_next"):
        st.session_state[pos_key] = position + 1
        st.rerun()
    with st.container(border=True):
        for column, value in table.inputs.loc[item.row].items():
            if value is not None and str(value).strip():
                st.markdown(f"**{md(column)}**  \n{md(value)}")
    answers = pd.DataFrame(
        [{"coder": c, "answer": _shown(v), "reason": item.reasons.get(c, "")} for c, v in item.answers.items()]
    )
    st.dataframe(answers, hide_index=True, width="stretch")
    if "consensus" in item.reasons:
        st.caption(md(item.reasons["consensus"]))
    if item.settled is not None:
        st.caption(f"Settled as **{md(_shown(item.settled))}**; settling again replaces the decision.")
    options = [_shown(v) for v in item.options]
    # The answers stay raw values; only what the radio shows is made literal.
    pick = st.radio("Decision", [*options, OTHER], format_func=md, key=f"{prefix}_pick_{run_id}_{item.row}")
    value: Any = next((v for v in item.options if _shown(v) == pick), None)
    if pick == OTHER:
        value = _other(table, prefix, run_id, item.row)
    note = st.text_input("Why (optional)", key=f"{prefix}_note_{run_id}_{item.row}")
    missing = "Type your name above to settle." if not author.strip() else None
    if value is None or value == []:
        missing = missing or "Choose or type the code."
    if missing:
        st.caption(f":material/info: {missing}")
    if st.button("Settle", type="primary", icon=":material/gavel:", disabled=bool(missing), key=f"{prefix}_settle"):
        db().settle(run_id, item.row, value, author=author, note=note)
        st.session_state[pos_key] = position if position < len(queue) - 1 else max(0, position - 1)
        st.toast(f"Row {item.row + 1} settled as {md(_shown(value))}.", icon=":material/check:")
        st.rerun()


def _other(table: RaterTable, prefix: str, run_id: int, row: int) -> Any:
    key = f"{prefix}_other_{run_id}_{row}"
    if table.labels and table.multi_label:
        return st.multiselect("Codes", table.labels, key=key) or None
    if table.labels:
        return st.selectbox("Code", table.labels, key=key, index=None, placeholder="choose a code")
    text = st.text_input("Code", key=key)
    return text.strip() or None
