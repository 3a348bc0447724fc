"""What a page can do with a run: start one, watch it (Pause and Stop while it is active, whoever
owns it), and resume, raise its budget or retry its failed rows once it is not."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from handai_db import ACTIVE_STATUSES, Run, RunStatus, describe_owner, owner_id
from handai_engine.runner import Connections
from handai_errors import RunStartError
from research.tools import TOOLS

from .announce import announce_finish, mark_started, scroll_to_run
from .connections import run_connection
from .multi_results import multi_live_results
from .progress import STATUS_ICONS, progress_view
from .results import live_results
from .run_edit import edit_run_settings
from .services import db, engine
from .sidebar import provider_name
from .text import md

LATEST_EVERY_S = 3.0  # the newest answers read the run's finished rows: less often than the counters
STATUS_NOTES = {
    RunStatus.PAUSED: "paused: the rows in flight finished; Resume sends the rest",
    RunStatus.STOPPED: "stopped: no more rows are sent unless you Resume",
    RunStatus.INTERRUPTED: "interrupted (the app stopped while it ran): Resume sends the rest",
}


def show_run(kind: str, run_id: int) -> None:
    """Make `run_id` the run this page shows, also after a reload (it goes in the URL)."""
    st.session_state[f"{kind}_run_id"] = run_id
    st.query_params["run"] = str(run_id)


def _cannot_start(exc: Exception) -> None:
    st.error(md(exc), icon=":material/error:")


def submit_run(kind: str, create: Callable[[], int], conn: Connections) -> bool:
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
    mark_started(kind)
    return True


def start_request(kind: str, clicked: str | None) -> str | None:
    """Which start button to act on now: the one just clicked, or, when this page's run is still
    running, the one confirmed after asking first."""
    waiting_key = f"{kind}_confirm_start"
    run_id = st.session_state.get(f"{kind}_run_id")
    run = db().get_run(int(run_id)) if run_id else None
    if clicked:
        if run is None or run.status not in ACTIVE_STATUSES:
            st.session_state.pop(waiting_key, None)
            return clicked
        st.session_state[waiting_key] = clicked
    waiting = st.session_state.get(waiting_key)
    if not waiting:
        return None
    if run is None or run.status not in ACTIVE_STATUSES:  # it ended meanwhile: nothing to ask
        st.session_state.pop(waiting_key, None)
        return waiting
    with st.container(border=True):
        st.warning(
            f"Run #{run.id} is still running. Start another run beside it? Both will share the provider's rate limit.",
            icon=":material/warning:",
        )
        c = st.columns([1, 1, 3])
        if c[0].button("Start another run", type="primary", key=f"{kind}_confirm_yes"):
            st.session_state.pop(waiting_key, None)
            return waiting
        if c[1].button("Cancel", key=f"{kind}_confirm_no"):
            st.session_state.pop(waiting_key, None)
            st.rerun()
    return None


def clone_run(run: Run) -> int | None:
    """A new run with `run`'s settings, endpoint and rows, started at once; None (and one
    message) if it cannot start."""
    try:
        return engine().clone_run(run.id, run_connection(run))
    except (RunStartError, ValueError) as exc:
        _cannot_start(exc)
        return None


def run_controls(kind: str, run_id: int) -> None:
    """The run's heading; live progress with Pause and Stop while it is active, else its outcome
    and what can be done next."""
    run = engine().current_run(run_id)
    if run is None:
        st.session_state.pop(f"{kind}_run_id", None)
        return
    st.subheader(f"Run #{run.id}" + (f" · {md(run.name)}" if run.name else ""), anchor=False)
    scroll_to_run(kind, run.id)
    st.caption(status_line(run, db().run_counts(run.id).failed))
    if run.status in ACTIVE_STATUSES:
        _live(kind, run_id, multi=bool(run.plan))
    else:
        p = progress_view(run_id, multi=bool(run.plan))
        announce_finish(kind, run, p)
        _next_steps(kind, run)


def status_line(run: Run, failed: int) -> str:
    """ "✓ completed · 93 failed · OpenAI / gpt-4o-mini", and what a pause or stop means."""
    where = ""
    if run.status == RunStatus.RUNNING and run.owner and run.owner != owner_id():
        where = f" in {md(describe_owner(run.owner))}"
    failed_text = f" · {failed:,} failed" if failed else ""
    note = STATUS_NOTES.get(RunStatus(run.status)) if run.status in STATUS_NOTES else None
    return f"{STATUS_ICONS.get(run.status, '')} {run.status}{failed_text}{where} · {models_text(run)}" + (
        f" — {note}" if note else ""
    )


def models_text(run: Run) -> str:
    """ "OpenAI / gpt-4o-mini", or for a run of several models "Compare models: Custom / a, b"
    (each model by its name in the run: "gpt-4o (judge)", "gpt-4o#2")."""
    if not run.plan:
        return f"{md(provider_name(run.provider))} / {md(run.model)}"
    by_provider: dict[str, list[str]] = {}
    for arm in run.plan["arms"]:
        by_provider.setdefault(arm["provider"], []).append(arm["name"])
    models = "; ".join(f"{provider_name(p)} / {', '.join(names)}" for p, names in by_provider.items())
    tool = TOOLS.get(run.kind)
    return md(f"{tool.title}: {models}" if tool else models)


def _live(kind: str, run_id: int, *, multi: bool) -> None:
    @st.fragment(run_every=1.0)
    def live() -> None:
        p = progress_view(run_id, multi=multi)
        cols = st.columns(4)
        if cols[0].button(
            "Pause",
            icon=":material/pause_circle:",
            key=f"{kind}_pause_{run_id}",
            help="A break: the rows being sent finish and are recorded, nothing else is sent until you press "
            "Resume, which sends the rest.",
        ):
            engine().pause(run_id)
            st.rerun(scope="app")
        if cols[1].button(
            "Stop",
            icon=":material/stop_circle:",
            key=f"{kind}_stop_{run_id}",
            help="Ends the run now: no more rows are sent. Its results stay; Resume is still offered if you change "
            "your mind.",
        ):
            engine().stop(run_id)
            st.rerun(scope="app")
        if p.finished:
            st.rerun(scope="app")

    @st.fragment(run_every=LATEST_EVERY_S)
    def latest() -> None:
        run = db().get_run(run_id)
        if run is not None:
            (multi_live_results if run.plan else live_results)(kind, run)

    live()
    latest()


def _next_steps(kind: str, run: Run) -> None:
    counts = db().run_counts(run.id)
    edit_run_settings(kind, run)
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
        f"Retry {counts.failed:,} failed {'cells' if run.plan else 'rows'}",
        icon=":material/replay:",
        key=f"{kind}_retry_{run.id}",
    ):
        _resume(kind, run, retry_failed=True)


def _resume(kind: str, run: Run, *, retry_failed: bool) -> None:
    conn = run_connection(run)
    try:
        if retry_failed:
            engine().retry_failed(run.id, conn)
        else:
            engine().resume(run.id, conn)
    except (RunStartError, ValueError) as exc:
        _cannot_start(exc)
        return
    show_run(kind, run.id)
    mark_started(kind)
    st.rerun()
