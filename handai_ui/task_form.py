"""The task every model of a Compare or Consensus run is given: one instruction, how each row is
sent (chosen columns as JSON, or a row template), and optional output fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from handai_prompts import TemplateError, validate_template

from .columns import column_label
from .data_source import Data
from .schema_editor import schema_editor
from .text import md

MODES = ["Columns as JSON", "Template"]


@dataclass(frozen=True)
class Task:
    instruction: str
    columns: list[str]
    template: str | None
    schema: dict[str, Any] | None
    problem: str | None  # what to fix before a run can start; None when ready

    @property
    def fields(self) -> int:
        return len((self.schema or {}).get("fields") or {})


def task_keys(prefix: str) -> tuple[str, ...]:
    """The widget keys `task_form` draws, for `handai_ui.keep` / `kept`."""
    return tuple(f"{prefix}_{name}" for name in ("prompt", "mode", "template", "columns"))


def task_form(prefix: str, data: Data, *, placeholder: str) -> Task:
    columns = data.columns
    kept = st.session_state.get(f"{prefix}_columns")
    if isinstance(kept, list) and not set(kept) <= set(columns):  # kept from another file
        st.session_state[f"{prefix}_columns"] = [c for c in kept if c in columns]
    instruction = st.text_area("Instruction", key=f"{prefix}_prompt", height=120, placeholder=placeholder)
    mode = st.segmented_control("Send each row as", MODES, default=MODES[0], key=f"{prefix}_mode")
    template: str | None = None
    chosen = columns
    if mode == MODES[1]:
        template = st.text_area(
            "Row template",
            key=f"{prefix}_template",
            height=90,
            placeholder="Review: {" + columns[0] + "}",
            help="Use {column} for a cell's value; {{ and }} for literal braces.",
        )
    else:
        chosen = st.multiselect(
            "Columns sent to the models",
            columns,
            default=columns,
            key=f"{prefix}_columns",
            format_func=lambda column: column_label(column, data.descriptions),
        )
    with st.expander("Output fields (optional)", icon=":material/data_object:"):
        st.caption(
            "Define fields to get one column per model and field (the reply is asked for as JSON); the models "
            "agree on a row when every field matches, ignoring case and surrounding spaces."
        )
        schema, schema_problem = schema_editor(f"{prefix}_fields", st.session_state.get(f"{prefix}_fields_rows", []))
        if schema_problem:
            st.warning(md(schema_problem), icon=":material/warning:")
    problem = _problem(instruction, mode == MODES[1], template, chosen, columns, schema_problem)
    return Task(instruction, [] if template else list(chosen), template or None, schema, problem)


def _problem(
    instruction: str,
    templated: bool,
    template: str | None,
    chosen: list[str],
    columns: list[str],
    schema_problem: str | None,
) -> str | None:
    if not instruction.strip():
        return "Write an instruction first."
    if templated:
        if not (template or "").strip():
            return "Write the row template, or send columns as JSON."
        try:
            validate_template(template or "", columns)
        except TemplateError as exc:
            return str(exc)
    elif not chosen:
        return "Choose at least one column to send."
    return schema_problem
