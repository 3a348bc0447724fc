"""The task every model of a Compare, Consensus or Qualitative coder run is given: one
instruction (from the saved library or written here, with few-shot examples unless a codebook
brings its own), how each row is sent (chosen columns as JSON, labelled with their question texts,
or a row template), and either output fields or a codebook (its codes become the only answers
allowed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from handai_engine import PlanError
from handai_prompts import TemplateError, labelled_template, validate_template

from .codebook_pick import ChosenCodebook, codebook_keys, codebook_pick
from .columns import column_label
from .data_source import Data
from .instructions import examples_editor, instruction_library
from .schema_editor import schema_editor
from .state import follow_table_columns
from .text import md

MODES = ["Columns as JSON", "Template"]
CODE_TASK = "Code the row below with the codebook."


@dataclass(frozen=True)
class Task:
    instruction: str
    columns: list[str]
    template: str | None
    schema: dict[str, Any] | None
    problem: str | None  # what to fix before a run can start; None when ready
    codebook: ChosenCodebook | None = None
    examples: tuple[dict[str, str], ...] = ()  # few-shot pairs, sent before each row as earlier turns

    @property
    def fields(self) -> int:
        return len((self.schema or {}).get("fields") or {})

    def plan_options(self) -> dict[str, Any]:
        """The planners' task arguments: with a codebook, its instruction and schema, answers
        compared on the code, and the version recorded in the plan."""
        if self.codebook is None:
            return {"instruction": self.instruction, "output_schema": self.schema, "examples": self.examples}
        return self.codebook.plan_options(self.instruction.strip() or CODE_TASK)


def task_keys(prefix: str) -> tuple[str, ...]:
    """The widget keys `task_form` draws, for `handai_ui.keep` / `kept`."""
    names = ("prompt", "mode", "template", "columns", "labelled", "use_codebook")
    own = tuple(f"{prefix}_{name}" for name in names)
    return (*own, *codebook_keys(prefix))


def task_form(prefix: str, data: Data, *, placeholder: str, codebook: str = "optional") -> Task:
    """`codebook`: "optional" (a toggle), "required" (the Qualitative coder) or "off"."""
    columns = data.columns
    follow_table_columns(f"{prefix}_columns", columns)
    chosen_book: ChosenCodebook | None = None
    if codebook == "required" or (
        codebook == "optional"
        and st.toggle(
            "Apply a codebook",
            key=f"{prefix}_use_codebook",
            help="The models answer with the codebook's codes only; agreement is on the code.",
        )
    ):
        chosen_book = codebook_pick(prefix)
    label = "Instruction (optional with a codebook)" if chosen_book else "Instruction"
    instruction_library(prefix, f"{prefix}_prompt", f"{prefix}_examples")
    instruction = st.text_area(label, key=f"{prefix}_prompt", height=120, placeholder=placeholder)
    examples: list[dict[str, str]] = []
    if chosen_book is None:
        with st.expander("Examples (optional): input → expected output", icon=":material/school:"):
            st.caption("Sent before each row as earlier turns of the conversation, to every model.")
            examples = examples_editor(f"{prefix}_examples", st.session_state.get(f"{prefix}_examples_rows", []))
    mode = st.segmented_control("Send each row as", MODES, default=MODES[0], key=f"{prefix}_mode")
    template: str | None = None
    label_problem: str | None = None
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
        template, label_problem = _labelled(prefix, chosen, data.descriptions)
    schema: dict[str, Any] | None = None
    schema_problem: str | None = None
    if chosen_book is not None:
        with st.expander("What each model is told", icon=":material/visibility:"):
            try:
                told = chosen_book.plan_options(instruction.strip() or CODE_TASK)["instruction"]
                st.code(told, language=None, wrap_lines=True)
            except PlanError as exc:
                st.error(md(exc), icon=":material/error:")
    elif codebook != "required":
        with st.expander("Output fields (optional)", icon=":material/data_object:"):
            st.caption(
                "Define fields to get one column per model and field (the reply is asked for as JSON); the models "
                "agree on a row when every field matches, ignoring case and surrounding spaces."
            )
            schema, schema_problem = schema_editor(
                f"{prefix}_fields", st.session_state.get(f"{prefix}_fields_rows", [])
            )
            if schema_problem:
                st.warning(md(schema_problem), icon=":material/warning:")
    problem = label_problem or _problem(
        instruction or (CODE_TASK if chosen_book else ""), mode == MODES[1], template, chosen, columns, schema_problem
    )
    if codebook == "required" and chosen_book is None:
        problem = "Choose a codebook first."
    columns_sent = [] if template else list(chosen)
    return Task(instruction, columns_sent, template or None, schema, problem, chosen_book, tuple(examples))


def _labelled(prefix: str, chosen: list[str], descriptions: dict[str, str]) -> tuple[str | None, str | None]:
    """With question texts, the values may be sent labelled with them: the template that does so,
    or what stops it."""
    if not descriptions or not st.checkbox(
        "Label the values sent with their question text",
        key=f"{prefix}_labelled",
        help="Each value is sent on its own line as “question text (column): value” instead of as JSON.",
    ):
        return None, None
    try:
        return labelled_template(chosen, descriptions), None
    except TemplateError as exc:
        return None, str(exc)


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
