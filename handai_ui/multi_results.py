"""A multi-model run's results (Compare, Consensus, Pipeline, Qualitative coder): the wide table
the tool lays out (the tool's verdict, each model's or step's answer and each cell's status first
and pinned, the input after them, only the sent columns one click away) with the tool's filters
above it, downloads of every row, the tool's summary, what came back over the run, and one row's cells in an
inspector."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_db import RowStatus, Run
from research.codebook import CODE_FIELD, CODES_FIELD
from research.tools import table_for

from .cell_inspector import cell_inspector
from .downloads import downloads
from .methods_bundle import methods_bundle_button
from .results import LIVE_ROWS, SHOWN_ROWS, numbered, only_sent_toggle
from .row_filters import RowFilter, apply_filters
from .run_charts import run_charts
from .services import db
from .shown_columns import sent_columns
from .tool_summaries import FILTERS, SUMMARIES
from .wide_table import Layout, wide_table, with_status


def value_columns(run: Run, layout: Layout) -> list[str]:
    """The answers whose values are worth counting: Consensus's consensus, the coder's codes,
    else every model's or step's answer."""
    if run.kind == "consensus":
        return [c for c in layout.extras if c == "consensus" or c.startswith("consensus.")]
    if run.kind == "coder":
        return [c for c in layout.extras if c.rsplit(".", 1)[-1] in (CODE_FIELD, CODES_FIELD)]
    return layout.outputs


def multi_results_view(kind: str, run: Run) -> None:
    """The answers on top (right under the run's progress, so they show without scrolling) with
    the filters that narrow them, then the tool's figures, the inspector and what came back over
    the run."""
    table = table_for(run)
    layout = Layout.of(table)
    frame = numbered(table.frame(db(), run))
    failed = with_status(frame, layout, RowStatus.FAILED)
    filters = [
        RowFilter(failed, "Only rows with a failed cell", f"{kind}_failed_cells_{run.id}"),
        *(FILTERS[run.kind](kind, run, frame, layout) if run.kind in FILTERS else []),
    ]
    c = st.columns(2)
    with c[0]:
        shown = apply_filters(filters, frame)
    only_sent = only_sent_toggle(c[1], run, key=f"{kind}_only_sent_{run.id}")
    pending = int(with_status(frame, layout, RowStatus.PENDING).sum())
    st.caption(
        f"Showing {len(shown):,} of {len(frame):,} rows (row 1 = the first data row)"
        + (f" · {pending:,} rows still have cells to answer" if pending else "")
    )
    wide_table(shown.head(SHOWN_ROWS), layout, inputs=sent_columns(run) if only_sent else None)
    if len(shown) > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} rows; the downloads hold every row.")
    downloads(frame.reset_index(drop=True), f"handai_run_{run.id}", key=f"{kind}_{run.id}")
    methods_bundle_button(run.id, key=f"{kind}_{run.id}")
    if summary := SUMMARIES.get(run.kind):
        summary(kind, run, frame, layout)
    cell_inspector(run, key=f"{kind}_{run.id}")
    run_charts(run, frame, value_columns(run, layout), unit="cells")


def multi_live_results(kind: str, run: Run) -> None:
    """While the run runs: the rows with the newest answers (read alone, not the whole run)."""
    table = table_for(run)
    newest = list(dict.fromkeys(db().latest_finished(run.id, LIVE_ROWS * len(table.cells))))[:LIVE_ROWS]
    if not newest:
        st.caption(":material/hourglass_top: The first answers appear here as soon as cells finish.")
        return
    frame = table.frame(db(), run, rows=newest)
    frame.index = pd.Index([i + 1 for i in sorted(newest)], name="row")
    st.markdown("**Latest answers**")
    wide_table(frame.loc[[i + 1 for i in newest]], Layout.of(table), inputs=sent_columns(run))
    cell_inspector(run, key=f"{kind}_{run.id}_live", default_row=newest[0] + 1)
