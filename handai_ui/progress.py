"""A run's progress as the ledger (or the live job) tells it: bar, counters, errors by kind, and
why it stopped."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from handai_db import RunStatus
from handai_engine import Progress
from handai_engine.batch import is_batch
from handai_errors import KINDS, ErrorKind

from .arm_progress import parts_view
from .batch_panel import batch_section
from .services import db, engine
from .text import format_seconds, md

STATUS_ICONS = {
    RunStatus.QUEUED: ":material/schedule:",
    RunStatus.RUNNING: ":material/progress_activity:",
    RunStatus.PAUSED: ":material/pause_circle:",
    RunStatus.STOPPED: ":material/stop_circle:",
    RunStatus.INTERRUPTED: ":material/warning:",
    RunStatus.COMPLETED: ":material/check_circle:",
    RunStatus.FAILED: ":material/error:",
}


def progress_view(run_id: int, *, multi: bool = False) -> Progress:
    """Bar, counters and errors for a run; call inside a fragment that reruns while it runs. A
    run of several models or steps counts cells (one answer each) and shows them per model. A run
    sent as batches shows its batches instead of speed and concurrency (the provider runs them)."""
    p = engine().progress(run_id)
    run = db().get_run(run_id)
    batch = run is not None and is_batch(run)
    unit = "cells" if multi else "rows"
    st.progress(p.fraction, text=f"{p.done:,} of {p.total:,} {unit}")
    figures = [("Succeeded", f"{p.succeeded:,}"), ("Failed", f"{p.failed:,}")]
    if multi:
        figures.append(("Skipped", f"{p.skipped:,}"))
    if batch:
        figures.append(("Sent as", "batches"))
    else:
        figures += [
            ("Retrying", f"{p.retrying:,}"),
            (f"{unit.capitalize()}/s", f"{p.rows_per_s:.1f}"),
            ("ETA", "done" if p.status == RunStatus.COMPLETED else format_seconds(p.eta_s) if p.live else "–"),
            ("Concurrency", f"{p.concurrency}/{p.max_concurrency}" if p.live else str(p.max_concurrency)),
        ]
    for column, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        column.metric(label, value)
    cost = "unknown (no price for this model)" if p.cost_usd is None else f"${p.cost_usd:.4f}"
    st.caption(
        f"Tokens: {p.tokens_in:,} in, {p.tokens_out:,} out · cost {md(cost)} · "
        f"calls made {p.calls:,}, saved by the cache {p.cache_hits:,} · elapsed {format_seconds(p.elapsed_s)}"
        + (f" · {p.rate_limited} rate-limit pauses" if p.rate_limited else "")
    )
    if batch:
        batch_section(run_id)
    if multi:
        parts_view(p)
    errors_by_kind(p.errors_by_kind)
    if p.stop_reason and p.finished:
        alert = st.error if p.status == RunStatus.FAILED else st.info
        alert(md(p.stop_reason), icon=STATUS_ICONS.get(p.status))
    return p


def errors_by_kind(errors: Mapping[str, int]) -> None:
    for kind, count in sorted(errors.items(), key=lambda kv: -kv[1]):
        try:
            info = KINDS[ErrorKind(kind)]
        except ValueError:
            info = KINDS[ErrorKind.UNKNOWN]
        st.warning(f"**{count:,} × {md(info.title)}.** {md(info.action)}", icon=":material/error:")
