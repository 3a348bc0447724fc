"""A run's results: filter, table and downloads, rebuilt from the ledger on every rerun, so
results never vanish."""

from __future__ import annotations

import streamlit as st

from handai_db import ACTIVE_STATUSES, RowStatus
from handai_prompts import flag_duplicates

from .downloads import downloads
from .inspector import inspector
from .services import db

SHOWN_ROWS = 5000


def results_view(kind: str, run_id: int, *, duplicates: bool = False) -> None:
    run = db().get_run(run_id)
    if run is None:
        return
    if run.status in ACTIVE_STATUSES:
        st.caption(":material/hourglass_top: The results table appears when the run ends or is paused.")
        return
    frame = db().results_frame(run_id)
    if duplicates and not frame.empty:
        outputs = [c for c in frame.columns if c not in ("row", "ai_status", "ai_error", *run.columns)]
        frame["ai_duplicate"] = flag_duplicates(frame[outputs].to_dict(orient="records"))
    status = st.segmented_control(
        "Show",
        ["all", RowStatus.SUCCEEDED, RowStatus.FAILED, RowStatus.PENDING],
        default="all",
        key=f"{kind}_filter_{run_id}",
    )
    shown = frame if status in (None, "all") else frame[frame["ai_status"] == status]
    kinds = db().run_counts(run_id).errors_by_kind
    if kinds and status in (None, "all", RowStatus.FAILED):
        chosen = st.multiselect(
            "Error kinds", sorted(kinds), key=f"{kind}_kinds_{run_id}", format_func=lambda k: f"{k} ({kinds[k]:,})"
        )
        if chosen:
            rows = [r.row_index for r in db().results(run_id, statuses=[RowStatus.FAILED], error_kinds=chosen)]
            shown = frame.iloc[rows]
    counts = frame["ai_status"].value_counts()
    st.caption(
        f"Showing {len(shown):,} of {len(frame):,} rows · {counts.get(RowStatus.SUCCEEDED, 0):,} succeeded · "
        f"{counts.get(RowStatus.FAILED, 0):,} failed · {counts.get(RowStatus.PENDING, 0):,} pending"
    )
    st.dataframe(shown.head(SHOWN_ROWS).fillna(""), width="stretch", hide_index=False)
    if len(shown) > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} rows; the downloads hold every row.")
    downloads(frame, f"handai_run_{run_id}", key=f"{kind}_{run_id}")
    inspector(run, key=f"{kind}_{run_id}")
