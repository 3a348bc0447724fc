"""Qualitative coder: one model applies a saved codebook version to every row, with an optional
rationale and evidence quote per code; answers off the codebook are counted and shown."""

import streamlit as st

import handai_ui as ui
from research.coder import coder_plan

choice = ui.frame()
st.title("Qualitative coder", anchor=False)
st.caption(
    "Apply a codebook to every row: the model may answer only with its codes, and says why and where in the text. "
    "For two or more models and a judge, apply the codebook on the Consensus page."
)

PREFIX = "qc"
KEPT = (*ui.data_keys(PREFIX), *ui.task_keys(PREFIX), *ui.row_keys(f"{PREFIX}_model"), *ui.run_keys(PREFIX))
ui.keep(*KEPT)

st.subheader("1 · Data", anchor=False)
data = ui.data_section(PREFIX)
if data is not None:
    st.subheader("2 · Codebook and task", anchor=False)
    task = ui.task_form(
        PREFIX, data, placeholder="e.g. Code the main reason the respondent gives.", codebook="required"
    )

    st.subheader("3 · Model", anchor=False)
    st.caption(
        "The provider's key and base URL come from the sidebar or Settings; temperature, max tokens and concurrency "
        "from the sidebar's Parameters."
    )
    model = ui.model_row(f"{PREFIX}_model")
    models = [model] if model[1] else []

    st.subheader("4 · Run", anchor=False)
    ui.run_form(
        "coder",
        PREFIX,
        data,
        choice,
        problem=task.problem or ("Choose a model." if not models else None) or ui.connection_problem(models),
        plan_of=lambda: coder_plan(
            task.codebook.codebook,
            models,
            task=task.instruction.strip() or ui.CODE_TASK,
            columns=task.columns,
            row_template=task.template,
            rationale=task.codebook.rationale,
            evidence=task.codebook.evidence,
            temperature=choice.temperature,
            max_tokens=choice.max_tokens,
            endpoints=ui.endpoints_for(models),
            codebook_ref=task.codebook.ref,
        ),
    )
    ui.kept(*KEPT)

ui.page_run_section("coder")
