"""What every results table shares, Transform's and a multi-model run's alike: which input columns
the model was sent (so "only the sent columns" hides the rest), missing text shown blank without
touching numbers or ticks, and the answers' columns pinned at the left."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from handai_db import Run
from handai_engine import Plan
from handai_prompts import template_fields

BOOLEAN_COLUMNS = ("all_agree", "agreed", "evidence_found")  # True / False / None: ticks, never ""


def _fields(template: str | None, columns: Sequence[str], inputs: list[str]) -> list[str]:
    """The columns one instruction sends: its template's fields, else its chosen columns, else all."""
    if template:
        try:
            return template_fields(template)
        except ValueError:
            return inputs
    return list(columns) or inputs


def sent_columns(run: Run) -> list[str]:
    """The input columns the model saw, in the file's order: for a run of several steps, those
    any step sent (a step may also read an earlier step's answer, which is not an input)."""
    inputs = [str(c) for c in run.input_columns]
    if run.plan:
        sent = {f for step in Plan.of(run).steps for f in _fields(step.row_template, step.columns, inputs)}
    else:
        sent = set(_fields(run.row_template, run.columns or (), inputs))
    return [c for c in inputs if c in sent]


def is_boolean(frame: pd.DataFrame, column: str) -> bool:
    """A yes/no column: holding only ticks, or nothing yet under a yes/no name (also per model,
    `model.evidence_found`); an answer field that happens to share the name stays text."""
    if pd.api.types.is_bool_dtype(frame[column]):
        return True
    values = frame[column].dropna()
    if values.empty:
        return str(column).rsplit(".", 1)[-1] in BOOLEAN_COLUMNS
    return all(isinstance(v, (bool, np.bool_)) for v in values)


def blank_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with missing text shown as "": numbers stay numbers and yes/no columns keep None
    (filling either with "" breaks the table's conversion, or warns under pandas 3)."""
    shown = frame.copy()
    text = [
        c
        for c in shown.select_dtypes(include=["object", "string"]).columns
        if not is_boolean(shown, c) and shown[c].isna().any()
    ]
    if text:
        shown[text] = shown[text].fillna("")
    return shown


def column_config(frame: pd.DataFrame, pinned: Iterable[str]) -> dict[str, st.column_config.Column]:
    """Yes/no columns as ticks; the `pinned` columns (the answers) held at the left."""
    pin = set(pinned)
    config = {}
    for c in frame.columns:
        if is_boolean(frame, c):
            config[c] = st.column_config.CheckboxColumn(c, pinned=c in pin or None)
        elif c in pin:
            config[c] = st.column_config.Column(c, pinned=True)
    return config
