"""An instruction's few-shot examples (input → expected output pairs, sent before each row as
earlier turns of the conversation) and a small library of saved instructions."""

from __future__ import annotations

from typing import Any

import streamlit as st

from .schema_editor import editor_frame
from .services import db
from .text import md

EXAMPLE_COLUMNS = ("input", "output")


def examples_editor(key: str, rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The pairs with an input or an output (blank rows are left out)."""
    edited = st.data_editor(
        editor_frame(rows, EXAMPLE_COLUMNS),
        num_rows="dynamic",
        key=key,
        width="stretch",
        column_config={
            "input": st.column_config.TextColumn("input (a row as it is sent)", default="", width="large"),
            "output": st.column_config.TextColumn("expected output", default="", width="large"),
        },
    )
    pairs = [
        {"input": str(r["input"] or "").strip(), "output": str(r["output"] or "").strip()}
        for r in edited.fillna("").to_dict(orient="records")
    ]
    pairs = [p for p in pairs if p["input"] or p["output"]]
    st.session_state[f"{key}_current"] = pairs
    return pairs


def instruction_library(prefix: str, prompt_key: str, examples_key: str) -> None:
    """Save the current instruction (and examples) under a name; load or delete a saved one.
    Drawn above the instruction box, so loading can fill it (and the examples table)."""
    text = str(st.session_state.get(prompt_key) or "")
    examples = st.session_state.get(f"{examples_key}_current") or []
    with st.popover("Saved instructions", icon=":material/bookmarks:"):
        saved = db().instructions()
        c = st.columns([3, 1], vertical_alignment="bottom")
        name = c[0].text_input("Name", key=f"{prefix}_instr_name", placeholder="e.g. sentiment, 3 labels")
        if c[1].button("Save", icon=":material/save:", key=f"{prefix}_instr_save", disabled=not text.strip()):
            if not name.strip():
                st.warning("Give the instruction a name first.")
            else:
                db().save_instruction(name.strip(), text, examples or None)
                st.toast(md(f"Saved “{name.strip()}”."))
        if not saved:
            st.caption("No saved instructions yet.")
            return
        pick = st.selectbox("Saved", list(saved), key=f"{prefix}_instr_pick")
        if pick:
            st.caption(md(saved[pick].get("text", "")[:300]))
        c = st.columns(2)
        if c[0].button("Load", icon=":material/download:", key=f"{prefix}_instr_load") and pick:
            st.session_state[prompt_key] = saved[pick].get("text", "")
            st.session_state[f"{examples_key}_rows"] = list(saved[pick].get("examples") or [])
            st.session_state.pop(examples_key, None)
            st.rerun()
        if c[1].button("Delete", icon=":material/delete:", key=f"{prefix}_instr_delete") and pick:
            db().delete_instruction(pick)
            st.rerun()
