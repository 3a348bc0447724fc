"""What came back in one run, from the ledger: the most common values of each answer column
(free text is skipped), and latency, throughput and errors over time, counted per finished cell
(a row of Transform, a model's or step's answer to a row elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from handai_db import RowStatus, Run

from .services import db
from .text import clip, md

TOP_VALUES = 12
CATEGORY_CHARS = 40  # longer answers are free text, not categories
MAX_DISTINCT_SHARE = 0.5  # mostly unique values are free text too
BUCKETS = (("1s", 1, 120), ("10s", 10, 1200), ("1min", 60, 7200))  # (size, seconds, longest span)


def value_counts(series: pd.Series) -> pd.Series | None:
    """The most common values of an answer column, or None when it reads as free text."""
    values = series.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty or values.str.len().median() > CATEGORY_CHARS:
        return None
    counts = values.value_counts()
    if len(values) >= 10 and len(counts) > MAX_DISTINCT_SHARE * len(values):
        return None
    top = counts.head(TOP_VALUES)
    top.index = [clip(v, CATEGORY_CHARS) for v in top.index]
    return top.rename("rows")


def timeline(run_id: int, unit: str = "rows") -> pd.DataFrame:
    """Finished cells over time: per time bucket, those succeeded and failed, their mean latency,
    and `unit`/s."""
    df = db().finished_times(run_id)
    if df.empty:
        return pd.DataFrame()
    df["time"] = pd.to_datetime(df["time"])
    span = (df["time"].max() - df["time"].min()).total_seconds()
    freq, seconds = next(((f, s) for f, s, most in BUCKETS if span <= most), ("1h", 3600))
    bucket = df["time"].dt.floor(freq)
    out = pd.DataFrame(
        {
            "succeeded": (df["status"] == RowStatus.SUCCEEDED).groupby(bucket).sum(),
            "failed": (df["status"] == RowStatus.FAILED).groupby(bucket).sum(),
            "mean latency (ms)": df["latency_ms"].groupby(bucket).mean().round(0),
        }
    )
    out[f"{unit}/s"] = ((out["succeeded"] + out["failed"]) / seconds).round(2)
    out.index.name = f"time (per {freq})"
    return out


def value_charts(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """A bar chart of the most common values of each column that reads as categories."""
    shown = False
    for column in columns:
        counts = value_counts(frame[column]) if column in frame else None
        if counts is None:
            continue
        shown = True
        st.markdown(f"**Most common values of {md(column)}**")
        st.bar_chart(counts, horizontal=True, height=min(60 + 28 * len(counts), 400))
    if not shown:
        st.caption("The answers are free text (long or mostly different), so no value counts are drawn.")


def time_charts(run_id: int, unit: str = "rows") -> None:
    """Latency and throughput over time, and errors over time once any cell failed."""
    times = timeline(run_id, unit)
    if times.empty:
        st.caption(f"No finished {unit} yet.")
        return
    c = st.columns(2)
    c[0].markdown("**Latency over time**")
    c[0].line_chart(times["mean latency (ms)"])
    c[1].markdown(f"**Throughput over time ({unit}/s)**")
    c[1].line_chart(times[f"{unit}/s"])
    if times["failed"].any():
        st.markdown("**Errors over time**")
        st.bar_chart(times[["succeeded", "failed"]], color=["#2e7d32", "#c62828"])


def run_charts(run: Run, frame: pd.DataFrame, columns: Sequence[str], *, unit: str = "rows") -> None:
    """Both, folded away under the table: the values of `columns` (answers of rows that
    succeeded), then the run's timing."""
    with st.expander("What came back: values, latency and errors", icon=":material/bar_chart:"):
        done = frame[frame["ai_status"] == RowStatus.SUCCEEDED] if "ai_status" in frame else frame
        value_charts(done, columns)
        time_charts(run.id, unit)
