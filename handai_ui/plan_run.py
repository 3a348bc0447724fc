"""The "Run" section of the multi-model pages: cost controls, real time or batch, which rows, the pre-flight check
against each model's context window, the estimate, and the Test run / Run all buttons that write the plan's run to
the ledger and start it."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from handai_engine import Plan, PlanError

from .batch_panel import plan_no_batch_reason, send_mode
from .connections import connections
from .controls import start_request, submit_run
from .data_source import Data
from .estimates import plan_estimate_caption
from .row_select import plan_preflight_check, row_selection, selection_keys
from .services import engine, session_id
from .sidebar import Choice
from .text import md


def run_keys(prefix: str) -> tuple[str, ...]:
    """The widget keys `run_form` draws, for `handai_ui.keep` / `kept`."""
    names = ("test_rows", "budget", "no_cache", "send_mode")
    return (*(f"{prefix}_{name}" for name in names), *selection_keys(prefix))


def checked_plan(plan_of: Callable[[], Plan], data: Data) -> Plan | None:
    """The page's plan, checked against the table's columns; what is wrong with it shown as one
    message (PlanError says what to change)."""
    try:
        plan = plan_of()
        plan.validate(data.columns)
    except PlanError as exc:
        st.error(md(exc), icon=":material/error:")
        return None
    return plan


def run_form(
    kind: str, prefix: str, data: Data, choice: Choice, *, plan_of: Callable[[], Plan], problem: str | None
) -> None:
    """Buttons disabled until the form is complete (`problem` says what is missing) and the plan
    it makes is valid. "Run all" goes in real time or as provider batches, as chosen; a test run
    always goes in real time."""
    plan = None
    if problem:
        st.caption(f":material/info: {md(problem)}")
    else:
        plan = checked_plan(plan_of, data)
    with st.expander("Cost controls", icon=":material/savings:"):
        budget = st.number_input(
            "Budget cap (USD)",
            min_value=0.0,
            value=None,
            step=1.0,
            key=f"{prefix}_budget",
            placeholder="no cap",
            help="The run pauses before its cost (all models together) would pass the cap; raise it and resume.",
        )
        use_cache = not st.toggle(
            "Don't use the cache",
            key=f"{prefix}_no_cache",
            help="By default, replies already paid for (same model, messages, settings and sample) are reused.",
        )
    batch = send_mode(prefix, plan_no_batch_reason(plan))
    selected, selection = row_selection(prefix, data.df)
    if plan is not None and not selected.empty:
        selected = plan_preflight_check(prefix, selected, plan)
        st.caption(plan_estimate_caption(plan, selected, choice.concurrency, batch=batch))
    c = st.columns([1, 1, 2], vertical_alignment="bottom")
    test_rows = c[0].number_input(
        "Test rows", 1, max(1, len(selected)), max(1, min(5, len(selected))), key=f"{prefix}_test_rows"
    )
    cannot = plan is None or selected.empty
    test = c[1].button("Test run", icon=":material/science:", disabled=cannot, key=f"{prefix}_test")
    full = c[2].button(
        f"Run all {len(data.df):,} rows" if len(selected) == len(data.df) else f"Run the {len(selected):,} chosen rows",
        icon=":material/play_arrow:",
        type="primary",
        disabled=cannot,
        key=f"{prefix}_full",
    )
    start = start_request(kind, "test" if test else "full" if full else None)
    if not start or plan is None:
        return
    is_test = start == "test"
    rows = selected.head(int(test_rows)) if is_test else selected
    conns = connections(a.provider for a in plan.arms)
    settings = choice.settings(use_cache=use_cache, budget_usd=budget)
    started = submit_run(
        kind,
        lambda: engine().create_plan_run(
            rows,
            plan,
            conns,
            settings,
            input_name=data.name,
            input_hash=data.digest,
            session_id=session_id(),
            name="Test run" if is_test else "",
            selection=selection,
            batch=batch and not is_test,
        ),
        conns,
    )
    if started:
        st.rerun()
