"""A multi-model run's figures per model (arm) and per step: cells done of all, failed, skipped,
calls, rate-limit pauses, tokens, cost and mean latency; live while this process runs it, from
the ledger otherwise."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from handai_engine import Progress
from handai_engine.progress import Figures


def figures_table(parts: Mapping[str, Figures], what: str, *, live: bool) -> pd.DataFrame:
    """One row per arm or step, in the plan's order. Rate-limit pauses (429s) are counted live and
    kept per model when a job ends; mean latency comes from the ledger, once the run has stopped."""
    table = pd.DataFrame(
        [
            {
                what: name,
                "done": f"{f.done:,} of {f.total:,}",
                "succeeded": f.succeeded,
                "failed": f.failed,
                "skipped": f.skipped,
                "calls": f.calls,
                "429s": f.rate_limited,
                "tokens in": f.tokens_in,
                "tokens out": f.tokens_out,
                "cost $": None if f.cost_usd is None else round(f.cost_usd, 6),
                "mean latency (ms)": None if f.latency_ms is None else round(f.latency_ms),
            }
            for name, f in parts.items()
        ]
    )
    return table.drop(columns=["mean latency (ms)"], errors="ignore") if live else table


def parts_view(p: Progress) -> None:
    """Per model, and per step when there are several; a cell is one (row, step, model, sample)."""
    if p.arms:
        st.markdown("**Per model**")
        st.dataframe(figures_table(p.arms, "model", live=p.live), hide_index=True, width="stretch", placeholder="–")
    if len(p.steps) > 1:
        st.markdown("**Per step**")
        st.dataframe(figures_table(p.steps, "step", live=p.live), hide_index=True, width="stretch", placeholder="–")
    note = "A cell is one answer: one row, step, model and sample."
    if p.live:
        note += " Mean latency per model appears once the run has stopped."
    st.caption(note)
