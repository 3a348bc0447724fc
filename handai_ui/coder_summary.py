"""What a Qualitative coder run says above its table: how many answers were coded, off the
codebook (kept and shown, never dropped), unparseable or failed, how many evidence quotes are
not in the row's text, and how often each code was given; and the filters to those rows."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_db import Run
from handai_engine import Plan
from research.coder import ALL_AGREE, EVIDENCE_FOUND, OFF_CODEBOOK, coder_summary

from .codebook_pick import codebook_ref_text
from .row_filters import RowFilter
from .services import db
from .text import md
from .wide_table import Layout


def codebook_caption(run: Run) -> None:
    """For Compare and Consensus runs given a codebook: which version, and the answers that fell
    outside it or could not be read (counted over every coder and the judge)."""
    plan = Plan.of(run)
    if not plan.codebook:
        return
    figures = coder_summary(plan, db().iter_rows(run.id))
    off = ", ".join(f"{md(a)} ({n})" for a, n in list(figures.off_answers.items())[:10])
    st.caption(
        f"Codebook {md(codebook_ref_text(plan.codebook))} · {figures.off_codebook:,} answers off the codebook"
        + (f" ({off})" if off else "")
        + f" · {figures.unparseable:,} unparseable · {figures.quotes_missing:,} quotes not in the text"
    )


def coder_filters(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> list[RowFilter]:
    """Rows with an off-codebook answer, a quote not in the text, or coders who disagree."""
    found = [c for c in frame.columns if c == EVIDENCE_FOUND or c.endswith(f".{EVIDENCE_FOUND}")]
    off = frame[OFF_CODEBOOK].notna() if OFF_CODEBOOK in frame else None
    filters = [
        (off, "Only rows with an off-codebook answer", "off"),
        (frame[found].eq(False).any(axis=1) if found else None, "Only rows with a quote not in the text", "quotes"),
        (frame[ALL_AGREE].eq(False) if ALL_AGREE in frame else None, "Only rows where the coders disagree", "differ"),
    ]
    return [RowFilter(mask, label, f"{kind}_{name}_{run.id}") for mask, label, name in filters if mask is not None]


def coder_summary_view(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> None:
    plan = Plan.of(run)
    figures = coder_summary(plan, db().iter_rows(run.id))
    if plan.codebook:
        st.caption(md(f"Codebook: {codebook_ref_text(plan.codebook)}"))
    c = st.columns(5)
    c[0].metric("Coded", f"{figures.coded:,}", help="Answers whose every code is in the codebook.")
    c[1].metric(
        "Off the codebook", f"{figures.off_codebook:,}", help="Answers with a code not in the codebook: kept as given."
    )
    c[2].metric("Unparseable", f"{figures.unparseable:,}", help="Replies that were not the JSON asked for.")
    c[3].metric("Failed otherwise", f"{figures.failed:,}")
    c[4].metric(
        "Quotes not in the text",
        f"{figures.quotes_missing:,} of {figures.quotes_checked:,}",
        help="Evidence quotes that cannot be found in the row's text (after normalising spaces, quotes, case).",
    )
    if figures.empty:
        st.caption(
            f":material/warning: {figures.empty:,} answers gave no code at all: they are missing in every "
            "agreement figure. Retry them, or settle them on Adjudicate."
        )
    if figures.off_answers:
        shown = ", ".join(f"{md(a)} ({n})" for a, n in list(figures.off_answers.items())[:10])
        st.caption(f"Off-codebook answers: {shown}")
    if figures.code_counts:
        st.markdown("**Codes given**")
        st.bar_chart(pd.Series(dict(figures.code_counts.most_common()), name="answers"), horizontal=True)
    st.page_link(
        "pages/reliability.py",
        label="Agreement, human coders and gold labels on Reliability",
        icon=":material/query_stats:",
    )
