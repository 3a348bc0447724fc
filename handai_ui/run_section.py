"""The run a page shows, found again after a rerun, a reload or a closed tab, with its controls
and results."""

from __future__ import annotations

import streamlit as st

from .controls import run_controls
from .multi_results import multi_results_view
from .reattach import reattach_waiting
from .results import results_view
from .services import db


def page_run_id(kind: str) -> int | None:
    """This session's run, the one in the URL (survives reloads), or the newest one still active
    (so closing the tab and coming back finds it)."""
    state_key = f"{kind}_run_id"
    if "run" in st.query_params:
        try:
            run = db().get_run(int(st.query_params["run"]))
        except ValueError:
            run = None
        if run is not None and run.kind == kind:
            st.session_state[state_key] = run.id
    if st.session_state.get(state_key):
        return int(st.session_state[state_key])
    active = [r for r in db().active_runs() if r.kind == kind]
    if active:
        st.session_state[state_key] = active[0].id
        return active[0].id
    return None


def page_run_section(kind: str, *, duplicates: bool = False) -> None:
    """The page's run, if any: its progress or outcome, actions, and results (a batch run left
    waiting at start-up is re-attached here once this session has its key)."""
    run_id = page_run_id(kind)
    if run_id is not None:
        st.divider()
        reattach_waiting(run_id)
        run_controls(kind, run_id)
        run_results(kind, run_id, duplicates=duplicates)


def run_results(kind: str, run_id: int, *, duplicates: bool = False) -> None:
    """A run's results as its tool lays them out: one answer column per model or step for a run
    of several, the Transform/Generate table otherwise."""
    run = db().get_run(run_id)
    if run is not None and run.plan:
        multi_results_view(kind, run)
    else:
        results_view(kind, run_id, duplicates=duplicates)
