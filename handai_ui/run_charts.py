"""What came back in one run, from the ledger: the most common values of each answer column
(free text is skipped), latency and throughput over time, and errors over time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_db import RowStatus, Run

from .services import db
from .text import clip, md

TOP_VALUES = 12
CATEGORY_CHARS = 40  # longer answers are free text, not categories
MAX_DISTINCT_SHARE = 0.5  # mostly unique values are free text too


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


def timeline(run_id: int) -> pd.DataFrame:
    """Finished rows over time: per time bucket, rows succeeded and failed, mean latency, rows/s."""
    df = db().finished_times(run_id)
    if df.empty:
        return pd.DataFrame()
    df["time"] = pd.to_datetime(df["time"])
    span = (df["time"].max() - df["time"].min()).total_seconds()
    freq, seconds = next(
        ((f, s) for f, s, most in (("1s", 1, 120), ("10s", 10, 1200), ("1min", 60, 7200)) if span <= most),
        ("1h", 3600),
    )
    df["bucket"] = df["time"].dt.floor(freq)
    grouped = df.groupby("bucket")
    out = pd.DataFrame(
        {
            "succeeded": (df["status"] == RowStatus.SUCCEEDED).groupby(df["bucket"]).sum(),
            "failed": (df["status"] == RowStatus.FAILED).groupby(df["bucket"]).sum(),
            "mean latency (ms)": grouped["latency_ms"].mean().round(0),
        }
    )
    out["rows/s"] = ((out["succeeded"] + out["failed"]) / seconds).round(2)
    out.index.name = f"time (per {freq})"
    return out


def run_charts(run: Run, frame: pd.DataFrame, outputs: list[str]) -> None:
    with st.expander("What came back: values, latency and errors", icon=":material/bar_chart:"):
        done = frame[frame["ai_status"] == RowStatus.SUCCEEDED] if "ai_status" in frame else frame
        shown = False
        for column in outputs:
            counts = value_counts(done[column])
            if counts is None:
                continue
            shown = True
            st.markdown(f"**Most common values of {md(column)}**")
            st.bar_chart(counts, horizontal=True, height=min(60 + 28 * len(counts), 400))
        if not shown:
            st.caption("The answers are free text (long or mostly different), so no value counts are drawn.")
        times = timeline(run.id)
        if times.empty:
            st.caption("No finished rows yet.")
            return
        c = st.columns(2)
        c[0].markdown("**Latency over time**")
        c[0].line_chart(times["mean latency (ms)"])
        c[1].markdown("**Throughput over time (rows/s)**")
        c[1].line_chart(times["rows/s"])
        if times["failed"].any():
            st.markdown("**Errors over time**")
            st.bar_chart(times[["succeeded", "failed"]], color=["#2e7d32", "#c62828"])
