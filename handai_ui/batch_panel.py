"""Batch mode in the pages: the per-run choice beside real time, and a batch run's batches (id,
state, requests, done, failed) with Cancel batches."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import streamlit as st

from handai_engine import Plan
from handai_engine.batch import BatchState, check_batchable
from handai_errors import RunStartError
from providers import PROVIDERS
from providers.capabilities import supports_batch

from .connections import run_connection
from .services import db, engine
from .text import md

REAL_TIME = "Real time"
BATCH = "Batch (about half the price, results within 24 h)"
ABOUT = (
    "Batch sends the rows through the provider's Batch API: about half the price and a quota of its own, "
    "with results within 24 h. Test runs are always sent in real time."
)
WITHIN_24_H = "Results arrive within 24 h; you can close this page."


def no_batch_reason(providers: Iterable[str]) -> str | None:
    """Why these providers cannot take a batch run, or None when all of them can."""
    without = [PROVIDERS[p].name if p in PROVIDERS else p for p in dict.fromkeys(providers) if not supports_batch(p)]
    if not without:
        return None
    with_batch = " and ".join(c.name for c in PROVIDERS.values() if supports_batch(c.id))
    return f"{', '.join(without)} has no Batch API that Handai can use ({with_batch} do): runs go in real time."


def plan_no_batch_reason(plan: Plan | None) -> str | None:
    """Why a plan cannot go as batches (several steps, a provider without a Batch API), or None."""
    if plan is None:
        return "Complete the run's settings first."
    try:
        check_batchable(plan)
    except RunStartError as exc:
        return str(exc)
    return None


def send_mode(prefix: str, reason: str | None) -> bool:
    """The per-run choice "Real time" / "Batch"; disabled, with `reason` in its help, when a batch
    is not possible. Returns whether the run goes as batches."""
    picked = st.radio(
        "Send the rows",
        [REAL_TIME, BATCH],
        horizontal=True,
        key=f"{prefix}_send_mode",
        disabled=reason is not None,
        help=f"Batch is not possible here: {reason}" if reason else ABOUT,
    )
    return reason is None and picked == BATCH


def batch_table(states: list[BatchState]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "batch": s.batch_id or "(being created)",
                "state": s.state,
                "requests": s.requests,
                "done": s.done,
                "failed": s.failed,
                "updated": s.updated_at,
            }
            for s in states
        ]
    )


def batch_section(run_id: int) -> None:
    """A batch run's batches as the ledger holds them, what to expect, and Cancel batches while
    any is still open (it stops the run; what the batches finished is still collected)."""
    states = engine().batches(run_id)
    if not states:
        st.caption(":material/upload_file: Preparing the batches…")
        return
    st.dataframe(batch_table(states), hide_index=True, width="stretch")
    for s in states:
        if s.error:
            st.warning(f"Batch {md(s.batch_id or '')}: {md(s.error)}", icon=":material/warning:")
    if not any(s.open for s in states):
        return
    c = st.columns([3, 1], vertical_alignment="center")
    c[0].caption(f":material/schedule: {WITHIN_24_H}")
    if c[1].button(
        "Cancel batches",
        icon=":material/cancel:",
        key=f"batch_cancel_{run_id}",
        help="Cancels the run's open batches at the provider and stops the run; the answers they already "
        "have are still collected.",
    ):
        run = db().get_run(run_id)
        try:
            engine().cancel_batches(run_id, run_connection(run))
        except Exception as exc:  # no key, or the provider refused: said, never raised into the page
            st.error(md(exc), icon=":material/error:")
            return
        st.rerun()
