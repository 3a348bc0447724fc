"""Compare models: one instruction, 2-8 models side by side on every row, and where they agree."""

import streamlit as st

import handai_ui as ui
from research.compare import MAX_MODELS, MIN_MODELS, compare_plan

choice = ui.frame()
st.title("Compare models", anchor=False)
st.caption("Run one instruction through several models, side by side, and see where they agree.")

PREFIX = "cmp"
KEPT = (*ui.data_keys(PREFIX), *ui.task_keys(PREFIX), *ui.picker_keys(PREFIX, MAX_MODELS), *ui.run_keys(PREFIX))
ui.keep(*KEPT)

st.subheader("1 · Data", anchor=False)
data = ui.data_section(PREFIX)
if data is not None:
    st.subheader("2 · Instruction", anchor=False)
    task = ui.task_form(PREFIX, data, placeholder="e.g. Classify the sentiment as positive, negative or neutral.")

    st.subheader("3 · Models", anchor=False)
    st.caption(
        "Each provider's key and base URL come from the sidebar or Settings. Temperature, max tokens, JSON mode "
        "and concurrency (per model) come from the sidebar's Parameters and apply to every model."
    )
    models = ui.model_picker(PREFIX, low=MIN_MODELS, high=MAX_MODELS)

    st.subheader("4 · Run", anchor=False)
    ui.run_form(
        "compare",
        PREFIX,
        data,
        choice,
        problem=task.problem or ui.connection_problem(models),
        plan_of=lambda: compare_plan(
            models,
            **task.plan_options(),
            columns=task.columns,
            row_template=task.template,
            json_mode=choice.json_mode,
            temperature=choice.temperature,
            max_tokens=choice.max_tokens,
            endpoints=ui.endpoints_for(models),
        ),
    )
    ui.kept(*KEPT)

ui.page_run_section("compare")
