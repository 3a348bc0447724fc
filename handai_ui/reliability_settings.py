"""What a reliability report is computed over: which coders, the level of measurement and, for
ordinal data, the label order (never guessed: alphabetical order is not an order), the label set,
multi-label codes, a gold column, and the bootstrap's resamples and seed."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from research.raters import ADJUDICATED, CONSENSUS
from research.stats import Report, reliability

from .text import md

LEVELS = ("nominal", "ordinal", "interval", "ratio")
NO_GOLD = "(no gold column)"


@dataclass(frozen=True)
class Settings:
    raters: tuple[str, ...]
    groups: tuple[tuple[str, str], ...]
    level: str
    order: tuple[str, ...] | None
    labels: tuple[str, ...] | None
    multi_label: bool
    separator: str
    gold: str | None
    resamples: int
    seed: int


def _lines(text: str) -> tuple[str, ...]:
    """Labels typed one per line (a label may hold a comma: "Price, value")."""
    return tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))


def reliability_settings(
    prefix: str,
    matrix: pd.DataFrame,
    groups: dict[str, str],
    *,
    scope: str,
    labels: list[str] | None = None,
    multi_label: bool = False,
) -> Settings | None:
    """The report's settings, or None (with what to do) while they are incomplete. Settings that
    depend on the data (labels, order, multi-label, gold) are kept per `scope` (the run, or the
    uploaded file), so another run never inherits this one's label set."""
    candidates = list(groups)
    default = [r for r in candidates if groups[r] not in (CONSENSUS, ADJUDICATED)]
    # Keyed by the coders on offer: a coder imported since starts out chosen, like the others.
    offered = zlib.crc32("|".join(candidates).encode())
    raters = st.multiselect("Coders compared", candidates, default=default, key=f"{prefix}_raters_{offered}")
    c = st.columns(3)
    level = c[0].selectbox("Level of measurement", LEVELS, key=f"{prefix}_level")
    multi = c[1].toggle("Multi-label codes", value=multi_label, key=f"{prefix}_multi_{scope}")
    separator = c[2].text_input(
        "Separator", value="; ", key=f"{prefix}_sep_{scope}", disabled=not multi, help="Between the codes of one cell."
    )
    c = st.columns(2 if level == "ordinal" else 1)
    label_text = c[0].text_area(
        "Labels, one per line",
        value="\n".join(labels or []),
        key=f"{prefix}_labels_{scope}",
        height=120,
        help="The codebook's label set: macro-F1 is over these, an answer outside them counts as wrong, and "
        "Gwet's AC1 counts them as the categories. Empty: the labels found in the table.",
    )
    order_text = ""
    if level == "ordinal":
        order_text = c[1].text_area(
            "Label order, lowest first, one per line",
            value="\n".join(labels or []),
            key=f"{prefix}_order_{scope}",
            height=120,
            help="Ordinal alpha needs the real order of the labels; it is never guessed from the alphabet.",
        )
    gold_options = [NO_GOLD, *[c for c in matrix.columns if c not in raters]]
    c = st.columns([2, 1, 1])
    gold = c[0].selectbox(
        "Gold column",
        gold_options,
        key=f"{prefix}_gold_{scope}",
        help="Validate each coder against it: settled disagreements (`adjudicated`) or a human's column.",
    )
    resamples = int(c[1].number_input("Bootstrap resamples", 0, 20_000, 1000, step=500, key=f"{prefix}_boot"))
    seed = int(c[2].number_input("Seed", 0, 2**31 - 1, 0, key=f"{prefix}_seed"))
    if gold == ADJUDICATED:
        settled = int(matrix[ADJUDICATED].notna().sum())
        st.caption(
            f":material/warning: The {settled:,} settled rows are the ones the coders disagreed on: figures against "
            "them describe the hard cases, not the whole table. For a gold standard of the whole table, code a "
            "random sample by hand and use that coder's column."
        )
    if len(raters) < 2 and gold == NO_GOLD:
        st.caption(":material/info: Choose at least two coders, or a gold column to validate one coder against.")
        return None
    order = _lines(order_text) if level == "ordinal" else None
    if level == "ordinal" and not order:
        st.caption(":material/info: Ordinal data needs the label order, lowest first.")
        return None
    return Settings(
        tuple(raters),
        tuple((r, groups.get(r, "")) for r in raters),
        level,
        order,
        _lines(label_text) or None,
        multi,
        separator or "; ",
        None if gold == NO_GOLD else gold,
        resamples,
        seed,
    )


@st.cache_data(max_entries=8, show_spinner="Computing the figures…")
def _report(matrix: pd.DataFrame, settings: Settings) -> Report:
    return reliability(
        matrix,
        raters=list(settings.raters),
        level=settings.level,
        order=list(settings.order) if settings.order else None,
        labels=list(settings.labels) if settings.labels else None,
        multi_label=settings.multi_label,
        separator=settings.separator,
        gold=settings.gold,
        groups=dict(settings.groups),
        resamples=settings.resamples,
        seed=settings.seed,
    )


def reliability_report(matrix: pd.DataFrame, settings: Settings) -> Report | None:
    """The report (cached per table and settings); a setting the data contradicts (a label not
    in the order) is said in one message."""
    frame = matrix.copy()
    for column in frame.columns:
        frame[column] = [tuple(v) if isinstance(v, list) else v for v in frame[column]]
    try:
        return _report(frame, settings)
    except ValueError as exc:
        st.error(md(exc), icon=":material/error:")
        return None
