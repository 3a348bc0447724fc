"""Consensus's coders (several models, or one model sampled K times) and its optional judge."""

from __future__ import annotations

import streamlit as st

from research.consensus import MAX_CODERS, MIN_CODERS

from .model_picker import Model, model_picker, model_row, row_keys
from .sidebar import Choice

SEVERAL, SAMPLES = "Several models", "One model, several samples"
JUDGE_DISAGREEMENTS, JUDGE_ALWAYS = "Only rows where the coders disagree (cheaper)", "Every row"
KEYS = ("coders", "samples", "use_judge", "judge_when")


def consensus_keys(prefix: str) -> tuple[str, ...]:
    """The widget keys `coders_form` and `judge_form` draw, for `handai_ui.keep` / `kept`."""
    return (
        *(f"{prefix}_{k}" for k in KEYS),
        *row_keys(f"{prefix}_single"),
        *row_keys(f"{prefix}_judge"),
    )


def coders_form(prefix: str, choice: Choice) -> tuple[list[Model], int]:
    """The coders and how many samples each gives per row; a warning when samples would repeat."""
    how = st.segmented_control("Coders are", [SEVERAL, SAMPLES], default=SEVERAL, key=f"{prefix}_coders") or SEVERAL
    if how == SEVERAL:
        return model_picker(prefix, low=MIN_CODERS, high=MAX_CODERS, label="Coder"), 1
    coder = model_row(f"{prefix}_single", label="Coder")
    samples = int(st.number_input("Samples per row", MIN_CODERS, MAX_CODERS, 3, key=f"{prefix}_samples"))
    if not choice.temperature:
        said = "0" if choice.temperature == 0 else "the provider's default (not set)"
        st.warning(
            f"Temperature is {said}: samples of one model may all repeat the same answer, which makes their "
            "agreement meaningless. Set a temperature above 0 in the sidebar's Parameters.",
            icon=":material/warning:",
        )
    return ([coder] if coder[1] else []), samples


def judge_form(prefix: str) -> tuple[Model | None, bool]:
    """The judge, if any, and whether it reads every row or only disagreements."""
    if not st.toggle("Let a judge model settle disagreements", key=f"{prefix}_use_judge"):
        st.caption("Without a judge, a strict majority of the coders decides; a tie stays undecided.")
        return None, False
    judge = model_row(f"{prefix}_judge", label="Judge")
    when = st.radio("The judge reads", [JUDGE_DISAGREEMENTS, JUDGE_ALWAYS], key=f"{prefix}_judge_when", horizontal=True)
    return (judge if judge[1] else None), when == JUDGE_ALWAYS
