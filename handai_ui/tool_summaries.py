"""What each multi-model tool says under its table, and the row filters it offers above the
table: Compare's agreement (overall and per pair, with n and definition) and its answers per
model; Consensus's counts by how the answer was reached; Pipeline's flow and skipped rows.
The filters are drawn with the table they filter, the figures after it."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from handai_db import RowStatus, Run
from handai_engine import Plan
from research.agreement import PAIRWISE
from research.compare import compare_agreement
from research.pipeline import flow_dot
from research.tables import output_columns

from .coder_summary import codebook_caption, coder_filters, coder_summary_view
from .multi_charts import answers_chart, pair_chart
from .row_filters import RowFilter
from .run_charts import value_counts
from .services import db
from .text import md
from .wide_table import Layout, with_status

Summary = Callable[[str, Run, pd.DataFrame, Layout], None]
Filters = Callable[[str, Run, pd.DataFrame, Layout], list[RowFilter]]
DECIDED_BY = {
    "unanimous": "every coder gave the same answer",
    "judge": "the judge decided",
    "majority": "no judge answer; a strict majority of coders",
    "undecided": "no judge answer and no majority",
}


def compare_filters(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> list[RowFilter]:
    disagree = frame["all_agree"].eq(False)
    return [RowFilter(disagree, "Only rows where the models disagree", f"{kind}_disagree_{run.id}")]


def consensus_filters(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> list[RowFilter]:
    disagree = frame["agreed"].eq(False)
    return [RowFilter(disagree, "Only rows where the coders disagree", f"{kind}_disagree_{run.id}")]


def pipeline_filters(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> list[RowFilter]:
    skipped = with_status(frame, layout, RowStatus.SKIPPED)
    return [RowFilter(skipped, "Only rows where a step was skipped", f"{kind}_skipped_{run.id}")]


def compare_summary(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> None:
    plan = Plan.of(run)
    codebook_caption(run)
    agreement = compare_agreement(db(), run, plan)
    disagree = frame["all_agree"].eq(False)
    c = st.columns(3)
    c[0].metric(
        "Percent agreement",
        "undefined" if agreement.percent is None else f"{agreement.percent:.1%}",
        help=agreement.definition,
    )
    c[1].metric("Rows every model answered (n)", f"{agreement.n_units:,} of {agreement.n_rows:,}")
    c[2].metric("Rows where the models disagree", f"{int(disagree.sum()):,}")
    st.caption(md(f"{agreement.describe()} {agreement.definition} {agreement.missing}"))
    pairs = pd.DataFrame(
        [
            {
                "model A": a,
                "model B": b,
                "n (rows both answered)": pair.n,
                "percent agreement": None if pair.percent is None else round(100 * pair.percent, 1),
            }
            for pair in agreement.pairwise
            for a, b in [pair.raters]
        ]
    )
    st.markdown("**Agreement per pair of models**")
    st.dataframe(pairs, hide_index=True, width="stretch")
    st.caption(md(PAIRWISE))
    if len(pairs) > 1:  # with two models the one pair is the overall figure
        pair_chart(pairs)
    _answers_chart(plan, frame)


def _answers_chart(plan: Plan, frame: pd.DataFrame) -> None:
    """How often each model gave each answer, per output field (free-text answers are not counted)."""
    columns = {plan.arms[cell[1]].name: output_columns(plan, cell) for cell in plan.cells()}
    fields = plan.steps[0].fields or ["answer"]
    for i, field in enumerate(fields):
        counts = {name: value_counts(frame[cols[i]]) for name, cols in columns.items()}
        if any(c is None for c in counts.values()):
            what = "The answers" if field == "answer" else f"The {field} answers"
            st.caption(md(f"{what} are free text (long or mostly different): no counts drawn."))
            continue
        st.markdown("**Answers per model**" if field == "answer" else f"**{md(field)}: answers per model**")
        answers_chart(pd.DataFrame(counts).fillna(0).astype(int))


def consensus_summary(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> None:
    codebook_caption(run)
    counts = frame["decided_by"].value_counts()
    shown = [how for how in DECIDED_BY if counts.get(how, 0)] or ["unanimous"]
    for column, how in zip(st.columns(len(DECIDED_BY)), DECIDED_BY, strict=True):
        column.metric(f"Decided: {how}", f"{int(counts.get(how, 0)):,}", help=DECIDED_BY[how])
    st.caption(
        "How each row's answer was reached: "
        + "; ".join(f"**{how}**: {DECIDED_BY[how]}" for how in shown)
        + ". A coder that failed counts as not agreeing."
    )


def pipeline_summary(kind: str, run: Run, frame: pd.DataFrame, layout: Layout) -> None:
    with st.expander("Flow", icon=":material/account_tree:"):
        st.graphviz_chart(flow_dot(Plan.of(run)))


SUMMARIES: dict[str, Summary] = {
    "coder": coder_summary_view,
    "compare": compare_summary,
    "consensus": consensus_summary,
    "pipeline": pipeline_summary,
}
FILTERS: dict[str, Filters] = {
    "coder": coder_filters,
    "compare": compare_filters,
    "consensus": consensus_filters,
    "pipeline": pipeline_filters,
}
