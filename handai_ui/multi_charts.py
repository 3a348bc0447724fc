"""Compare's charts: percent agreement per pair of models, and how often each model gave each
answer. Drawn with Altair (Streamlit's own charts cut long model names and cannot group bars)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

LABEL_LIMIT = 360  # pixels of an axis label before it is cut


def pair_chart(pairs: pd.DataFrame) -> None:
    """`pairs`: columns "model A", "model B", "percent agreement" (None = undefined, left out)."""
    data = pairs.dropna(subset=["percent agreement"]).assign(pair=lambda d: d["model A"] + " ↔ " + d["model B"])
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("percent agreement:Q", scale=alt.Scale(domain=[0, 100]), title="percent agreement"),
            y=alt.Y("pair:N", sort=None, title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            tooltip=["model A", "model B", "percent agreement", "n (rows both answered)"],
        )
    )
    st.altair_chart(chart, width="stretch", height=36 * len(data) + 50)


def answers_chart(counts: pd.DataFrame) -> None:
    """`counts`: one row per answer, one column per model, each cell a count; bars grouped by answer."""
    data = counts.rename_axis("answer").reset_index().melt("answer", var_name="model", value_name="rows")
    chart = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("rows:Q", title="rows", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("answer:N", sort=None, title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            yOffset=alt.YOffset("model:N", sort=list(counts.columns)),
            color=alt.Color("model:N", sort=list(counts.columns), legend=alt.Legend(orient="bottom", title=None)),
            tooltip=["answer", "model", "rows"],
        )
    )
    st.altair_chart(chart, width="stretch", height=(16 * len(counts.columns) + 12) * len(counts) + 80)
