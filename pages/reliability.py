"""Reliability: agreement between coders (models and people) over any units x raters table, a
coded run from History or an uploaded table with one column per coder, and validation against a
gold column; every figure with its n, its definition and how missing data was handled."""

import streamlit as st

import handai_ui as ui
from research.raters import ADJUDICATED, HUMAN, MODEL, coded_frame

ui.frame()
st.title("Reliability", anchor=False)
st.caption(
    "How far coders agree (percent agreement, Cohen's and Fleiss' kappa, Krippendorff's alpha, Gwet's AC1) and "
    'how a coder does against gold labels. Empty cells are missing; "none" is a code.'
)

PREFIX = "rel"
RUN, TABLE = "A coded run", "An uploaded table"
source = st.segmented_control("Coders from", [RUN, TABLE], default=RUN, key=f"{PREFIX}_source")

matrix = groups = labels = report = None
scope = ""
multi = False
stem = "reliability"
if source == TABLE:
    st.subheader("1 · Table", anchor=False)
    data = ui.data_section(PREFIX)
    if data is not None:
        matrix = data.df
        raters = st.multiselect("Coder columns", data.columns, key=f"{PREFIX}_table_raters")
        models = st.multiselect(
            "Which of them are models (optional)",
            raters,
            key=f"{PREFIX}_table_models",
            help="Marked model columns are compared with the others: model-human beside human-human agreement.",
        )
        groups = {r: MODEL if r in models else HUMAN for r in raters}
        scope = data.digest[:12]
        stem = f"reliability_{data.name.rsplit('.', 1)[0]}"
elif source == RUN:
    st.subheader("1 · Run", anchor=False)
    table = ui.coded_run_pick(PREFIX)
    if table is not None:
        run_id = int(st.session_state[f"{PREFIX}_run"])
        run = ui.db().get_run(run_id)
        ui.human_coders(run, table, PREFIX)
        matrix, groups, labels, multi = table.frame, table.groups(), table.labels, table.multi_label
        scope = f"run{run_id}"
        stem = f"handai_run_{run_id}_coded"
        counts = {g: len(table.names(g)) for g in (MODEL, HUMAN, ADJUDICATED)}
        st.caption(
            f"{len(table.frame):,} rows · {counts[MODEL]} model coder(s) · {counts[HUMAN]} human coder(s)"
            + (" · settled disagreements as `adjudicated`" if counts[ADJUDICATED] else "")
            + (f" · codebook {ui.md(ui.codebook_ref_text(table.codebook))}" if table.codebook else "")
        )

if matrix is not None and groups is not None:
    st.subheader("2 · Settings", anchor=False)
    settings = ui.reliability_settings(PREFIX, matrix, groups, scope=scope, labels=labels, multi_label=multi)
    if settings is not None:
        st.subheader("3 · Figures", anchor=False)
        report = ui.reliability_report(matrix, settings)
        if report is not None:
            ui.show_report(report, key=f"{PREFIX}_{stem}")
    if source == RUN and table is not None:
        st.subheader("4 · Coded table", anchor=False)
        st.caption("Every row with each coder's code and reason, and the settled decision where there is one.")
        ui.coded_downloads(coded_frame(table), report, stem, key=f"{PREFIX}_coded_{run_id}")
