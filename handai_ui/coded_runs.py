"""A run whose answers are codes to measure or settle (Qualitative coder, Consensus, Compare), as
units x raters: its models, consensus, human coders and decisions (`research.raters`)."""

from __future__ import annotations

import streamlit as st

from handai_db import RunFilter
from handai_engine import Plan
from research.raters import RaterTable, code_field_of, rater_table, step_fields

from .plan_facts import input_rows
from .services import db
from .text import clip

CODED_KINDS = ("coder", "consensus", "compare")


def coded_run_pick(prefix: str) -> RaterTable | None:
    """Pick a run (the one in the URL's `run=` first) and the field its coders are compared on."""
    runs = db().list_runs(RunFilter(kind=CODED_KINDS, limit=200))
    if not runs:
        st.info(
            "No coded run yet: run the Qualitative coder, Consensus or Compare first, or upload a table with one "
            "column per coder.",
            icon=":material/info:",
        )
        return None
    ids = [r.id for r in runs]
    wanted = st.query_params.get("run")
    if wanted and wanted.isdigit() and int(wanted) in ids and f"{prefix}_run" not in st.session_state:
        st.session_state[f"{prefix}_run"] = int(wanted)
    by_id = {r.id: r for r in runs}
    run_id = st.selectbox(
        "Run",
        ids,
        key=f"{prefix}_run",
        format_func=lambda i: (
            f"#{i} · {by_id[i].kind} · {clip(by_id[i].name or by_id[i].input_name or '', 40)} · "
            f"{input_rows(by_id[i]):,} rows · {by_id[i].status}"
        ),
    )
    run = db().get_run(run_id)
    if run is None:
        return None
    plan = Plan.of(run)
    fields = step_fields(plan)
    field = code_field_of(plan)
    if fields and (field is None or len(fields) > 1) and not plan.codebook:
        field = st.selectbox("Compare the coders on", fields, key=f"{prefix}_field_{run.id}")
    stamp = (run.status, run.succeeded, run.failed, *db().ratings_stamp(run.id))
    return _rater_table(run.id, field, stamp)


@st.cache_data(max_entries=4, show_spinner="Reading the run's coders…")
def _rater_table(run_id: int, field: str | None, stamp: tuple[object, ...]) -> RaterTable:
    """The run as units x raters, read again only when its cells or ratings change (`stamp`
    is part of the key: a 20,000-row run takes seconds to read, and every click reruns the page)."""
    run = db().get_run(run_id)
    assert run is not None
    return rater_table(db(), run, compared_on=field)
