"""Pipeline: ordered steps on every row, each with its own model, instruction, output fields and
condition; later steps read earlier answers."""

import streamlit as st

import handai_ui as ui
from handai_engine import PlanError
from research.pipeline import flow_dot, pipeline_plan

choice = ui.frame()
st.title("Pipeline", anchor=False)
st.caption(
    "Chain steps on every row: for example, is this answer relevant → if so, code it → then summarise why. "
    "Each step has its own model, instruction, output fields and condition."
)

PREFIX = "pl"
KEPT = (*ui.data_keys(PREFIX), *ui.run_keys(PREFIX))
ui.keep(*KEPT)

st.subheader("1 · Data", anchor=False)
data = ui.data_section(PREFIX)
if data is not None:
    st.subheader("2 · Steps", anchor=False)
    ui.spec_loader(PREFIX)
    edited = ui.pipeline_editor(PREFIX, data.columns)

    st.subheader("3 · Flow", anchor=False)
    try:
        st.graphviz_chart(flow_dot(pipeline_plan(edited.spec)))
    except PlanError:
        st.caption(":material/info: The flow is drawn once every step has a name, a model and an instruction.")
    st.download_button(
        "Download the spec (JSON)",
        data=ui.spec_json(edited.spec),
        file_name="pipeline.json",
        mime="application/json",
        icon=":material/download:",
        key="pl_spec_download",
        on_click="ignore",
        help="Load it here again later, or run it with handai_cli.py pipeline SPEC.json FILE.",
    )

    st.subheader("4 · Run", anchor=False)
    ui.run_form(
        "pipeline",
        PREFIX,
        data,
        choice,
        problem=edited.problem or ui.connection_problem(edited.models),
        plan_of=lambda: pipeline_plan(edited.spec, endpoints=ui.endpoints_for(edited.models)),
    )
    ui.kept(*KEPT)

ui.page_run_section("pipeline")
