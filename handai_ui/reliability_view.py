"""A reliability report on screen: the figures with their n, definition and missing-data handling,
the pairs, model–human beside human–human, multi-label codes, each rater against gold (with the
confusion matrix as a heat map), and the report as CSV and Markdown downloads (the CSV's formula
guard is the user's choice, as for results: a rater named "@anna" would become "'@anna")."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from research.stats import Figure, GoldResult, Report
from research.stats.writers import HOW_TO_READ, ci_text, number, report_guarded_cells

from .downloads import guard_choice
from .text import md


def _value(f: Figure) -> str:
    return number(f.value) if f.value is not None else f"undefined: {f.undefined}"


def _figures_table(figures: dict[str, Figure]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "figure": f.name,
                "value": number(f.value) if f.value is not None else "undefined",
                "why undefined": f.undefined or "",
                "95% CI": ci_text(f),
                "n units": f.n_units,
                "n ratings": f.n_ratings,
                "definition": f.definition,
                "missing data": f.missing,
            }
            for f in figures.values()
        ]
    )


def _pairs_table(report: Report) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "rater A": p.raters[0],
                "rater B": p.raters[1],
                "n (units both rated)": p.n,
                "percent agreement": _value(p.percent_agreement),
                "Cohen's kappa": _value(p.cohen_kappa),
            }
            for p in report.pairwise
        ]
    )


def _groups(report: Report) -> None:
    st.markdown("**Model–human vs human–human**")
    rows = [
        {
            "groups": f"{g.groups[0]} – {g.groups[1]}",
            "rater pairs": g.n_pairs,
            "mean Cohen's kappa": _value(g.cohen_kappa),
            "mean percent agreement": _value(g.percent_agreement),
            "n units": g.cohen_kappa.n_units,
        }
        for g in report.group_pairs
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    alphas = [
        {"raters": name, "Krippendorff's alpha": _value(f), "n units": f.n_units, "n ratings": f.n_ratings}
        for name, f in report.group_alphas.items()
    ]
    st.dataframe(pd.DataFrame(alphas), hide_index=True, width="stretch")
    st.caption("Means are over rater pairs with one rater from each group; alpha is recomputed within each group.")


def _per_code(report: Report) -> None:
    st.markdown("**Each code on its own (present / absent)**")
    rows = [
        {"code": code}
        | {key.replace("_", " "): _value(f) for key, f in figures.items()}
        | {"n units": figures["krippendorff_alpha"].n_units}
        for code, figures in report.per_code.items()
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def confusion_chart(confusion: pd.DataFrame) -> alt.LayerChart:
    """Gold (rows) × answer (columns) counts as a heat map with the count in each cell."""
    data = confusion.rename_axis("gold").reset_index().melt("gold", var_name="answer", value_name="units")
    base = alt.Chart(data).encode(
        x=alt.X("answer:N", sort=list(confusion.columns), title="answer"),
        y=alt.Y("gold:N", sort=list(confusion.index), title="gold"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("units:Q", scale=alt.Scale(scheme="blues"), title="units"),
        tooltip=["gold", "answer", "units"],
    )
    text = base.mark_text().encode(text="units:Q")
    return cells + text


def _gold(rater: str, g: GoldResult, key: str) -> None:
    st.markdown(f"**{md(rater)} against gold** · {g.n_units} gold-labelled units")
    cols = st.columns(4)
    for col, (label, f) in zip(
        cols, (("accuracy", g.accuracy), ("macro-F1", g.macro_f1), ("kappa", g.cohen_kappa)), strict=False
    ):
        col.metric(label, number(f.value) if f.value is not None else "undefined", help=md(f.definition))
    cols[3].metric("invalid (off-label)", g.invalid, help=f"{g.missing} missing answers; both count as wrong.")
    for f in (g.accuracy, g.macro_f1, g.cohen_kappa):
        if f.value is None:
            st.caption(md(f"{f.name} is undefined: {f.undefined}"))
    codes = pd.DataFrame(
        [
            {
                "code": s.code,
                "precision": number(s.precision),
                "recall": number(s.recall),
                "F1": number(s.f1),
                "support": s.support,
            }
            for s in g.per_code
        ]
    )
    st.dataframe(codes, hide_index=True, width="stretch")
    st.altair_chart(confusion_chart(g.confusion), width="stretch", key=f"{key}_confusion_{rater}")
    st.caption(md(g.accuracy.missing))


def show_report(report: Report, *, key: str) -> None:
    """Every figure of `report`; `key` keeps this report's widgets apart from others on the page."""
    st.markdown("**Overall**")
    st.dataframe(_figures_table(report.overall), hide_index=True, width="stretch")
    for f in report.overall.values():
        if f.ci_method:
            st.caption(md(f"{f.name}, 95% CI: {f.ci_method}"))
    if report.pairwise:
        st.markdown("**Pairs of raters**")
        st.dataframe(_pairs_table(report), hide_index=True, width="stretch")
    if report.group_pairs or report.group_alphas:
        _groups(report)
    if report.per_code:
        _per_code(report)
    for rater, g in report.gold.items():
        _gold(rater, g, key)
    st.caption(md(HOW_TO_READ))
    guard = guard_choice(report_guarded_cells(report), f"{key}_report_guard", exact="The Markdown")
    left, right = st.columns(2)
    left.download_button(
        "Report (CSV)",
        data=lambda: report.to_csv(guard=guard),
        file_name="reliability_report.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"{key}_report_csv",
        on_click="ignore",
    )
    right.download_button(
        "Report (Markdown)",
        data=report.to_markdown,
        file_name="reliability_report.md",
        mime="text/markdown",
        icon=":material/download:",
        key=f"{key}_report_md",
        on_click="ignore",
    )
