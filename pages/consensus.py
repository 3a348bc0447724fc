"""Consensus: several coders (models, or samples of one model) answer every row; where they
disagree, an optional judge decides."""

import streamlit as st

import handai_ui as ui
from research.consensus import MAX_CODERS, consensus_plan

choice = ui.frame()
st.title("Consensus", anchor=False)
st.caption("Let several coders answer every row; where they disagree, a judge (or the majority) decides.")

PREFIX = "cns"
KEPT = (
    *ui.data_keys(PREFIX),
    *ui.task_keys(PREFIX),
    *ui.picker_keys(PREFIX, MAX_CODERS),
    *ui.consensus_keys(PREFIX),
    *ui.run_keys(PREFIX),
)
ui.keep(*KEPT)

st.subheader("1 · Data", anchor=False)
data = ui.data_section(PREFIX)
if data is not None:
    st.subheader("2 · Instruction", anchor=False)
    task = ui.task_form(PREFIX, data, placeholder="e.g. Code the main topic of this answer: price, quality or service.")

    st.subheader("3 · Coders", anchor=False)
    st.caption(
        "Each provider's key and base URL come from the sidebar or Settings; temperature, max tokens, JSON mode "
        "and concurrency (per model) come from the sidebar's Parameters."
    )
    coders, samples = ui.coders_form(PREFIX, choice)

    st.subheader("4 · Judge", anchor=False)
    judge, judge_always = ui.judge_form(PREFIX)
    models = [*coders, *([judge] if judge else [])]

    st.subheader("5 · Run", anchor=False)
    ui.run_form(
        "consensus",
        PREFIX,
        data,
        choice,
        problem=task.problem or ui.connection_problem(models),
        plan_of=lambda: consensus_plan(
            coders,
            **task.plan_options(),
            samples=samples,
            judge=judge,
            judge_always=judge_always,
            columns=task.columns,
            row_template=task.template,
            json_mode=choice.json_mode,
            temperature=choice.temperature,
            max_tokens=choice.max_tokens,
            endpoints=ui.endpoints_for(models),
        ),
    )
    ui.kept(*KEPT)

ui.page_run_section("consensus")
