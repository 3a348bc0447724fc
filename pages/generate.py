"""Generate: describe a dataset and have the model write it, one record per row."""

import pandas as pd
import streamlit as st

import handai_ui as ui
from handai_prompts import GENERATE_TEMPLATES
from providers import check_key_format

choice = ui.frame()
KEPT = ("gen_schema_mode", "gen_template", "gen_desc", "gen_rows", "gen_variation", "gen_send_mode")
KEPT += tuple(f"gen_desc_{name}" for name in GENERATE_TEMPLATES)
VARIABLE, VALUES = "variable", "values (comma-separated)"
ui.keep(*KEPT)
st.title("Generate", anchor=False)
st.caption("Describe a dataset; Handai writes it one record at a time, checked against your schema.")

st.subheader("1 · Describe", anchor=False)
schema_mode = st.segmented_control(
    "Schema", ["Template", "Defined fields", "Free-form"], default="Template", key="gen_schema_mode"
)
schema = None
schema_problem = None
description = ""
template_name = None  # recorded on the run, so History can load the form back
if schema_mode == "Template":
    name = template_name = st.selectbox(
        "Template",
        list(GENERATE_TEMPLATES),
        format_func=lambda k: GENERATE_TEMPLATES[k].title,
        key="gen_template",
    )
    template = GENERATE_TEMPLATES[name]
    st.session_state.setdefault(f"gen_desc_{name}", template.description)  # a loaded run's may differ
    description = st.text_area("Description", key=f"gen_desc_{name}", height=90)
    schema = template.schema()
    st.dataframe(
        pd.DataFrame(template.fields, columns=["name", "type", "description"]),
        hide_index=True,
        width="stretch",
    )
else:
    description = st.text_area(
        "Description",
        key="gen_desc",
        height=110,
        placeholder="e.g. Short customer complaints about late deliveries, in varied English.",
    )
    if schema_mode == "Defined fields":
        st.caption("Each field's description is sent to the model.")
        schema, schema_problem = ui.schema_editor(
            "gen_fields",
            st.session_state.get("gen_fields_rows")
            or [{"name": "text", "type": "string", "description": "the record's text"}],
        )
        if schema_problem:
            st.warning(ui.md(schema_problem), icon=":material/warning:")

c = st.columns(2)
count = c[0].number_input("Rows", 1, 100_000, 20, key="gen_rows")
variation = c[1].slider(
    "Variation",
    0.0,
    1.5,
    0.9,
    0.1,
    key="gen_variation",
    help="Higher is more varied (the temperature sent with each request).",
)
with st.expander("Variables that cycle per row (optional)", icon=":material/autorenew:"):
    st.caption("Each row gets the next value of each variable, e.g. topic ← billing, login, shipping.")
    seeded = st.session_state.get("gen_vars_rows") or [{VARIABLE: "", VALUES: ""}]  # a loaded run's variables
    vars_df = st.data_editor(
        pd.DataFrame(seeded, columns=[VARIABLE, VALUES], dtype="str"),
        num_rows="dynamic",
        key="gen_vars",
        column_config={
            VARIABLE: st.column_config.TextColumn(VARIABLE, default=""),
            VALUES: st.column_config.TextColumn(VALUES, default=""),
        },
        width="stretch",
    )
variables = {
    str(r[VARIABLE]).strip(): [v.strip() for v in str(r[VALUES] or "").split(",") if v.strip()]
    for r in vars_df.fillna("").to_dict(orient="records")
    if str(r[VARIABLE]).strip()
}

st.subheader("2 · Generate", anchor=False)
problem = None
if not description.strip():
    problem = "Describe the dataset first."
elif schema_problem:
    problem = schema_problem
elif not choice.model:
    problem = "Choose a model in the sidebar."
if problem:
    st.caption(f":material/info: {ui.md(problem)}")
batch = ui.send_mode("gen", ui.no_batch_reason([choice.provider]))
if not problem:
    st.caption(ui.generate_estimate_caption(description, int(count), variables, schema, choice, batch=batch))
conn = ui.connection(choice.provider)
check = check_key_format(choice.provider, conn.api_key)
if check.level == "warning":
    st.warning(ui.md(check.message), icon=":material/warning:")
c = st.columns([1, 1, 2], vertical_alignment="bottom")
test_rows = c[0].number_input("Test rows", 1, 50, 3, key="gen_test_rows")
test = c[1].button("Test", icon=":material/science:", disabled=problem is not None, key="gen_test")
full = c[2].button(
    f"Generate {int(count):,} rows",
    icon=":material/play_arrow:",
    type="primary",
    disabled=problem is not None,
    key="gen_full",
)
ui.kept(*KEPT)
start = ui.start_request("generate", "test" if test else "full" if full else None)
if start:
    test = start == "test"
    settings = choice.settings(output_schema=schema)
    settings.temperature = variation
    settings.json_mode = True
    started = ui.submit_run(
        "generate",
        lambda: ui.engine().create_generate_run(
            description,
            int(test_rows) if test else int(count),
            settings,
            conn,
            variables=variables,
            template=template_name,
            session_id=ui.session_id(),
            name="Test run" if test else "",
            batch=batch and not test,  # a test run answers now, in real time
        ),
        conn,
    )
    if started:
        st.rerun()

ui.page_run_section("generate", duplicates=True)
