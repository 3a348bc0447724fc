"""Transform: upload a table (or documents, made into rows), write one instruction, run it on every row."""

import pandas as pd
import streamlit as st

import handai_ui as ui
from handai_prompts import (
    TemplateError,
    build_messages,
    estimate_tokens,
    labelled_template,
    system_message,
    user_message,
    validate_template,
)
from handai_ui.row_select import selection_keys
from providers import check_key_format

choice = ui.frame()
st.title("Transform", anchor=False)
st.caption("Run one instruction on every row of a table, or on every segment of your documents.")

KEPT = (
    *ui.data_keys("tf"),  # sample, reading options, and the documents' split and longest row
    "tf_prompt",
    "tf_mode",
    "tf_template",
    "tf_columns",
    "tf_labelled",
    "tf_test_rows",
    "tf_budget",
    "tf_no_cache",
    "tf_send_mode",
    *selection_keys("tf"),  # which rows, and whether long cells are shortened
)
ui.keep(*KEPT)

# -- 1. data --------------------------------------------------------------------------------------
st.subheader("1 · Data", anchor=False)
data = ui.data_section("tf")  # a table, or documents made into rows; kept under "tf_upload_read"
df: pd.DataFrame | None = data.df if data is not None else None
descriptions: dict[str, str] = data.descriptions if data is not None else {}
input_name, input_hash = (data.name, data.digest) if data is not None else ("", "")

# -- 2. instruction -------------------------------------------------------------------------------
if df is not None:
    st.subheader("2 · Instruction", anchor=False)
    columns = [str(c) for c in df.columns]
    ui.follow_table_columns("tf_columns", columns)
    ui.instruction_library("tf", "tf_prompt", "tf_examples")
    prompt = st.text_area(
        "Instruction",
        key="tf_prompt",
        height=120,
        placeholder="e.g. Classify the sentiment of this review as positive, negative or neutral.",
    )
    with st.expander("Examples (optional): input → expected output", icon=":material/school:"):
        st.caption("Sent before each row as earlier turns of the conversation, so the model answers alike.")
        examples = ui.examples_editor("tf_examples", st.session_state.get("tf_examples_rows", []))
    mode = st.segmented_control(
        "Send each row as", ["Columns as JSON", "Template"], default="Columns as JSON", key="tf_mode"
    )
    template = None
    chosen = columns
    label_problem = None
    if mode == "Template":
        template = st.text_area(
            "Row template",
            key="tf_template",
            height=90,
            placeholder="Review: {" + columns[0] + "}",
            help="Use {column} for a cell's value; {{ and }} for literal braces.",
        )
    else:
        chosen = st.multiselect(
            "Columns sent to the model",
            columns,
            default=columns,
            key="tf_columns",
            format_func=lambda column: ui.column_label(column, descriptions),
        )
        if descriptions and st.checkbox(
            "Label the values sent with their question text",
            key="tf_labelled",
            help="Each value is sent on its own line as “question text (column): value” instead of as JSON.",
        ):
            try:
                template = labelled_template(chosen, descriptions)
            except TemplateError as exc:
                label_problem = str(exc)
    with st.expander("Output fields (optional)", icon=":material/data_object:"):
        st.caption("Define fields to get one column each (the reply is asked for as JSON).")
        schema, schema_problem = ui.schema_editor("tf_fields", st.session_state.get("tf_fields_rows", []))
        if schema_problem:
            st.warning(ui.md(schema_problem), icon=":material/warning:")

    problem = None
    if not prompt.strip():
        problem = "Write an instruction first."
    elif label_problem:
        problem = label_problem
    elif mode == "Template":
        if not (template or "").strip():
            problem = "Write the row template, or send columns as JSON."
        else:
            try:
                validate_template(template, columns)
            except TemplateError as exc:
                problem = str(exc)
    elif not chosen:
        problem = "Choose at least one column to send."
    elif schema_problem:
        problem = schema_problem
    if not choice.model:
        problem = problem or "Choose a model in the sidebar."

    if problem is None:
        first = df.iloc[0].to_dict()
        system = system_message(prompt, schema, choice.json_mode)
        user = user_message(first, template=template, columns=chosen)
        with st.expander("Preview: what row 1 sends", icon=":material/visibility:", expanded=False):
            for message in build_messages(system, user, examples):
                st.caption(message["role"])
                st.code(message["content"], language=None, wrap_lines=True)
        sample = [user_message(r, template=template, columns=chosen) for r in df.head(50).to_dict("records")]
        shots = sum(estimate_tokens(e["input"]) + estimate_tokens(e["output"]) for e in examples)
        per_row = estimate_tokens(system) + shots + sum(map(estimate_tokens, sample)) / len(sample)
        fields = len(schema["fields"]) if schema else 0
    else:
        st.caption(f":material/info: {ui.md(problem)}")

    def make_settings():
        return choice.settings(
            system_prompt=prompt,
            columns=[] if template else chosen,
            row_template=template or None,
            output_schema=schema,
            use_cache=use_cache,
            budget_usd=budget,
            examples=examples,
        )

    # -- 3. run -----------------------------------------------------------------------------------
    st.subheader("3 · Run", anchor=False)
    conn = ui.connection(choice.provider)
    check = check_key_format(choice.provider, conn.api_key)
    if check.level == "warning":
        st.warning(ui.md(check.message), icon=":material/warning:")
    with st.expander("Cost controls", icon=":material/savings:"):
        budget = st.number_input(
            "Budget cap (USD)",
            min_value=0.0,
            value=None,
            step=1.0,
            key="tf_budget",
            placeholder="no cap",
            help="The run pauses before its cost would pass the cap; raise it and resume.",
        )
        use_cache = not st.toggle(
            "Don't use the cache",
            key="tf_no_cache",
            help="By default, replies already paid for (same model, messages and settings) are reused.",
        )
    batch = ui.send_mode("tf", ui.no_batch_reason([choice.provider]))
    selected, selection = ui.row_selection("tf", df)
    if problem is None and not selected.empty:
        selected = ui.preflight_check("tf", selected, make_settings())
        st.caption(ui.estimate_caption(len(selected), per_row, choice, fields, input_hash, batch=batch))
    c = st.columns([1, 1, 2], vertical_alignment="bottom")
    test_rows = c[0].number_input(
        "Test rows", 1, max(1, len(selected)), max(1, min(5, len(selected))), key="tf_test_rows"
    )
    cannot = problem is not None or selected.empty
    test = c[1].button("Test run", icon=":material/science:", disabled=cannot, key="tf_test")
    full = c[2].button(
        f"Run all {len(df):,} rows" if len(selected) == len(df) else f"Run the {len(selected):,} chosen rows",
        icon=":material/play_arrow:",
        type="primary",
        disabled=cannot,
        key="tf_full",
    )
    ui.kept(*KEPT)
    start = ui.start_request("transform", "test" if test else "full" if full else None)
    if start:
        settings = make_settings()
        is_test = start == "test"
        started = ui.submit_run(
            "transform",
            lambda: ui.engine().create_transform_run(
                selected,
                settings,
                conn,
                input_name=input_name,
                input_hash=input_hash,
                session_id=ui.session_id(),
                name="Test run" if is_test else "",
                limit_rows=int(test_rows) if is_test else None,
                selection=selection,
                batch=batch and not is_test,
            ),
            conn,
        )
        if started:
            st.rerun()

# -- progress and results -----------------------------------------------------------------------------
ui.page_run_section("transform")
