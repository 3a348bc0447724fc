"""A run's results: the answers first (pinned), filters, table and downloads, rebuilt from the
ledger on every rerun, so results never vanish. Rows are numbered from 1 (row 1 = the first data
row) here, in the inspector and wherever a row is named."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from handai_db import RowStatus, Run
from handai_prompts import flag_duplicates

from .downloads import downloads
from .inspector import inspector
from .methods_bundle import methods_bundle_button
from .run_charts import run_charts
from .services import db
from .shown_columns import blank_text, column_config, sent_columns

SHOWN_ROWS = 5000
LIVE_ROWS = 10
META = ("ai_status", "ai_error", "ai_flags", "ai_duplicate")


def output_columns(frame: pd.DataFrame, run: Run) -> list[str]:
    """The model's answers: every column that is neither an input column nor Handai's own."""
    inputs = {str(c) for c in run.input_columns}
    return [c for c in frame.columns if str(c) not in inputs and c not in META and c != "row"]


def column_order(frame: pd.DataFrame, run: Run, *, only_sent: bool = False) -> list[str]:
    """Answers and status first, then flags, then the input (all, or only what was sent), then
    the error."""
    outputs = output_columns(frame, run)
    inputs = sent_columns(run) if only_sent else [c for c in run.input_columns if c in frame.columns]
    extra = [c for c in ("ai_flags", "ai_duplicate") if c in frame.columns]
    order = [*outputs, "ai_status", *extra, *inputs, "ai_error"]
    return [c for c in dict.fromkeys(order) if c in frame.columns]


def numbered(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame indexed by row number, 1 = the first data row."""
    frame = frame.copy()
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def results_table(frame: pd.DataFrame, run: Run, *, only_sent: bool = False, height: int | str = "auto") -> None:
    """The table with the answers pinned at the left, numbered from 1."""
    st.dataframe(
        blank_text(frame),
        width="stretch",
        height=height,
        hide_index=False,
        column_order=column_order(frame, run, only_sent=only_sent),
        column_config=column_config(frame, [*output_columns(frame, run), "ai_status"]),
    )


def only_sent_toggle(where: DeltaGenerator, run: Run, key: str) -> bool:
    """ "Only the sent columns and the answers", offered when it hides something: a run that sent
    every input column (or had none, as Generate) has nothing to hide."""
    unsent = len(run.input_columns) - len(sent_columns(run))
    if unsent <= 0:
        return False
    return where.toggle(
        "Only the sent columns and the answers",
        key=key,
        help=f"Hide the {unsent:,} input column{'s' if unsent != 1 else ''} the model did not see.",
    )


def _flag_filter(frame: pd.DataFrame, kind: str, run_id: int) -> pd.DataFrame:
    if "ai_flags" not in frame.columns:
        return frame
    flagged = ~frame["ai_flags"].fillna("").astype(str).str.strip().isin(["", "{}", "None", "nan"])
    if flagged.any() and st.toggle(f"Only flagged replies ({int(flagged.sum()):,})", key=f"{kind}_flagged_{run_id}"):
        return frame[flagged]
    return frame


def results_view(kind: str, run_id: int, *, duplicates: bool = False) -> None:
    run = db().get_run(run_id)
    if run is None:
        return
    frame = numbered(db().results_frame(run_id))
    if duplicates and not frame.empty:
        outputs = output_columns(frame, run)
        frame["ai_duplicate"] = flag_duplicates(frame[outputs].to_dict(orient="records"))
    c = st.columns([3, 2], vertical_alignment="bottom")
    status = c[0].segmented_control(
        "Show",
        ["all", RowStatus.SUCCEEDED, RowStatus.FAILED, RowStatus.PENDING],
        default="all",
        key=f"{kind}_filter_{run_id}",
    )
    only_sent = only_sent_toggle(c[1], run, key=f"{kind}_only_sent_{run_id}")
    shown = frame if status in (None, "all") else frame[frame["ai_status"] == status]
    kinds = db().run_counts(run_id).errors_by_kind
    if kinds and status in (None, "all", RowStatus.FAILED):
        chosen = st.multiselect(
            "Error kinds", sorted(kinds), key=f"{kind}_kinds_{run_id}", format_func=lambda k: f"{k} ({kinds[k]:,})"
        )
        if chosen:
            rows = [r.row_index for r in db().results(run_id, statuses=[RowStatus.FAILED], error_kinds=chosen)]
            shown = frame.iloc[rows]
    shown = _flag_filter(shown, kind, run_id)
    counts = frame["ai_status"].value_counts()
    st.caption(
        f"Showing {len(shown):,} of {len(frame):,} rows (row 1 = the first data row) · "
        f"{counts.get(RowStatus.SUCCEEDED, 0):,} succeeded · "
        f"{counts.get(RowStatus.FAILED, 0):,} failed · {counts.get(RowStatus.PENDING, 0):,} pending"
    )
    results_table(shown.head(SHOWN_ROWS), run, only_sent=only_sent)
    if len(shown) > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} rows; the downloads hold every row.")
    downloads(frame.reset_index(drop=True), f"handai_run_{run_id}", key=f"{kind}_{run_id}")
    methods_bundle_button(run_id, key=f"{kind}_{run_id}")
    inspector(run, key=f"{kind}_{run_id}")
    run_charts(run, frame, output_columns(frame, run))


def live_results(kind: str, run: Run) -> None:
    """While the run runs: the rows that finished last (read alone, not the whole run), and a
    spot-check inspector."""
    newest = db().latest_finished(run.id, LIVE_ROWS)
    if not newest:
        st.caption(":material/hourglass_top: The first answers appear here as soon as rows finish.")
        return
    frame = db().results_frame(run.id, rows=newest)
    frame.index = pd.Index([i + 1 for i in sorted(newest)], name="row")
    st.markdown("**Latest answers**")
    results_table(frame.loc[[i + 1 for i in newest]], run, only_sent=True)
    inspector(run, key=f"{kind}_{run.id}_live", default_row=newest[0] + 1)


def rows_text(rows: Sequence[int], limit: int = 20) -> str:
    """ "rows 1, 4, 9 …" for 0-based positions, numbered from 1."""
    shown = ", ".join(str(r + 1) for r in list(rows)[:limit])
    more = f" and {len(rows) - limit:,} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) != 1 else ''} {shown}{more}"
