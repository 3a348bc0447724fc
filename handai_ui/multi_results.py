"""A multi-model run's results (Compare, Consensus, Pipeline): the wide table the tool lays out
(each model's or step's answer side by side, the tool's own columns, each cell's status), the
tool's summary and filters, downloads of every row, and one row's cells in an inspector."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_db import RowStatus, Run
from research.tools import table_for

from .cell_inspector import cell_inspector
from .downloads import downloads
from .methods_bundle import methods_bundle_button
from .results import LIVE_ROWS, SHOWN_ROWS, numbered
from .services import db
from .tool_summaries import SUMMARIES
from .wide_table import Layout, wide_table, with_status


def multi_results_view(kind: str, run: Run) -> None:
    table = table_for(run)
    layout = Layout.of(table)
    frame = numbered(table.frame(db(), run))
    summary = SUMMARIES.get(run.kind)
    shown = summary(kind, run, frame, layout) if summary else frame
    failed = with_status(frame, layout, RowStatus.FAILED)
    if failed.any() and st.toggle(
        f"Only rows with a failed cell ({int(failed.sum()):,})", key=f"{kind}_failed_cells_{run.id}"
    ):
        shown = shown[failed.loc[shown.index]]
    pending = int(with_status(frame, layout, RowStatus.PENDING).sum())
    st.caption(
        f"Showing {len(shown):,} of {len(frame):,} rows (row 1 = the first data row)"
        + (f" · {pending:,} rows still have cells to answer" if pending else "")
    )
    wide_table(shown.head(SHOWN_ROWS), layout)
    if len(shown) > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} rows; the downloads hold every row.")
    downloads(frame.reset_index(drop=True), f"handai_run_{run.id}", key=f"{kind}_{run.id}")
    methods_bundle_button(run.id, key=f"{kind}_{run.id}")
    cell_inspector(run, key=f"{kind}_{run.id}")


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
    wide_table(frame.loc[[i + 1 for i in newest]], Layout.of(table))
    cell_inspector(run, key=f"{kind}_{run.id}_live", default_row=newest[0] + 1)
