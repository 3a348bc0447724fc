"""What a page can do with a run: start one, watch it (Pause and Stop while it is active, whoever
owns it), and resume, raise its budget or retry its failed rows once it is not."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from handai_db import ACTIVE_STATUSES, Run, RunStatus, describe_owner, owner_id
from handai_errors import RunStartError
from providers import Connection

from .connections import run_connection
from .progress import STATUS_ICONS, progress_view
from .services import db, engine
from .sidebar import provider_name
from .text import md


def show_run(kind: str, run_id: int) -> None:
    """Make `run_id` the run this page shows, also after a reload (it goes in the URL)."""
    st.session_state[f"{kind}_run_id"] = run_id
    st.query_params["run"] = str(run_id)


def _cannot_start(exc: Exception) -> None:
    st.error(md(exc), icon=":material/error:")


def submit_run(kind: str, create: Callable[[], int], conn: Connection) -> bool:
    """Create a run and start it. A run that cannot start (no key, no endpoint, a bad template…)
    shows one message and leaves nothing behind; returns whether it started."""
    try:
        run_id = create()
    except ValueError as exc:  # RunStartError, and the settings' own checks (template, columns)
        _cannot_start(exc)
        return False
    try:
        engine().start(run_id, conn)
    except RunStartError as exc:
        db().delete_run(run_id)  # it never sent a row: no run is left behind
        _cannot_start(exc)
        return False
    show_run(kind, run_id)
    return True


def clone_run(run: Run) -> int | None:
    """A new run with `run`'s settings, endpoint and rows, started at once; None (and one
    message) if it cannot start."""
    try:
        return engine().clone_run(run.id, run_connection(run))
    except RunStartError as exc:
        _cannot_start(exc)
        return None


def run_controls(kind: str, run_id: int) -> None:
    """The run's heading; live progress with Pause and Stop while it is active, else its outcome
    and what can be done next."""
    run = db().get_run(run_id)
    if run is None:
        st.session_state.pop(f"{kind}_run_id", None)
        return
    st.subheader(f"Run #{run.id}" + (f" · {md(run.name)}" if run.name else ""), anchor=False)
    where = ""
    if run.status == RunStatus.RUNNING and run.owner and run.owner != owner_id():
        where = f" in {md(describe_owner(run.owner))}"
    st.caption(
        f"{STATUS_ICONS.get(run.status, '')} {run.status}{where} · {md(provider_name(run.provider))} / {md(run.model)}"
    )
    if run.status in ACTIVE_STATUSES:
        _live(kind, run_id)
    else:
        progress_view(run_id)
        _next_steps(kind, run)


def _live(kind: str, run_id: int) -> None:
    @st.fragment(run_every=1.0)
    def live() -> None:
        p = progress_view(run_id)
        cols = st.columns(4)
        if cols[0].button(
            "Pause",
            icon=":material/pause:",
            key=f"{kind}_pause_{run_id}",
            help="Rows being sent finish and are recorded; Resume sends the rest.",
        ):
            engine().pause(run_id)
            st.rerun(scope="app")
        if cols[1].button(
            "Stop", icon=":material/stop:", key=f"{kind}_stop_{run_id}", help="Stop sending rows; Resume is offered."
        ):
            engine().stop(run_id)
            st.rerun(scope="app")
        if p.finished:
            st.rerun(scope="app")

    live()


def _next_steps(kind: str, run: Run) -> None:
    counts = db().run_counts(run.id)
    budget = run.params.get("budget_usd")
    if budget is not None and counts.pending:
        new_cap = st.number_input(
            "Budget cap (USD)",
            min_value=0.0,
            value=float(budget) * 2,
            step=1.0,
            key=f"{kind}_budget_{run.id}",
            help="Raise the cap, then resume.",
        )
        if new_cap != budget:
            engine().update_settings(run.id, budget_usd=new_cap)
    cols = st.columns(3)
    if counts.pending and cols[0].button(
        "Resume", icon=":material/play_arrow:", key=f"{kind}_resume_{run.id}", type="primary"
    ):
        _resume(kind, run, retry_failed=False)
    if counts.failed and cols[1].button(
        f"Retry {counts.failed:,} failed rows", icon=":material/replay:", key=f"{kind}_retry_{run.id}"
    ):
        _resume(kind, run, retry_failed=True)


def _resume(kind: str, run: Run, *, retry_failed: bool) -> None:
    conn = run_connection(run)
    try:
        if retry_failed:
            engine().retry_failed(run.id, conn)
        else:
            engine().resume(run.id, conn)
    except RunStartError as exc:
        _cannot_start(exc)
        return
    show_run(kind, run.id)
    st.rerun()
