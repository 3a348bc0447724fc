"""Agreement coefficients over category counts: percent agreement, Cohen's kappa, Fleiss' kappa and
Gwet's AC1. All are unweighted (nominal): a disagreement is a disagreement, whatever the categories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from research.stats.figure import Figure, defined, undefined
from research.stats.matrix import Cell

NO_PAIRABLE = "no unit has two or more ratings"
MISSING_UNITS = (
    "Units with fewer than 2 ratings are left out; no unit is dropped for a missing rating otherwise "
    "(each unit counts with the ratings it has)."
)
MISSING_FLEISS = (
    "Observed agreement uses units with 2 or more ratings; the category shares (chance agreement) use every "
    "unit with at least one rating, each unit weighted equally (Gwet 2014)."
)
MISSING_PAIR = "Pairwise deletion: only units both raters rated are used."

PERCENT = (
    "Percent agreement, pairwise definition (Gwet's p_a): within each unit, the share of pairs of ratings "
    "that agree, averaged over units with equal weight."
)
PAIR_PERCENT = "Pairwise percent agreement: the share of units both raters rated on which they gave the same value."
COHEN = (
    "Cohen's kappa (Cohen 1960), unweighted: (p_o - p_e) / (1 - p_e), with p_e from each rater's own "
    "category shares on the units both rated."
)
FLEISS = (
    "Fleiss' kappa (Fleiss 1971), generalised to units with different numbers of ratings as in Gwet (2014): "
    "(p_a - p_e) / (1 - p_e), p_e = sum of squared category shares."
)


def _gwet_parts(counts: np.ndarray) -> tuple[float | None, np.ndarray, int, int]:
    """p_a over units with >= 2 ratings, category shares pi over units with >= 1, and the n's."""
    r = counts.sum(axis=1)
    two = r >= 2
    one = r >= 1
    if not two.any():
        return None, np.zeros(counts.shape[1]), 0, 0
    pa = float(np.mean((counts[two] * (counts[two] - 1)).sum(axis=1) / (r[two] * (r[two] - 1))))
    pi = (counts[one] / r[one, None]).mean(axis=0)
    return pa, pi, int(two.sum()), int(r[two].sum())


def percent_agreement(counts: np.ndarray) -> Figure:
    pa, _, n, m = _gwet_parts(counts)
    name = "Percent agreement"
    if pa is None:
        return undefined(name, NO_PAIRABLE, 0, 0, PERCENT, MISSING_UNITS)
    return defined(name, pa, n, m, PERCENT, MISSING_UNITS)


def fleiss_kappa(counts: np.ndarray) -> Figure:
    name = "Fleiss' kappa"
    pa, pi, n, m = _gwet_parts(counts)
    if pa is None:
        return undefined(name, NO_PAIRABLE, 0, 0, FLEISS, MISSING_FLEISS)
    pe = float((pi**2).sum())
    if np.isclose(pe, 1.0):
        why = "only one category was used: chance agreement is 1, so kappa is 0/0"
        return undefined(name, why, n, m, FLEISS, MISSING_FLEISS)
    return defined(name, (pa - pe) / (1 - pe), n, m, FLEISS, MISSING_FLEISS)


def gwet_ac1(counts: np.ndarray, q: int, q_source: str) -> Figure:
    """`q`: the number of categories; `q_source` says where it came from (label set or observed)."""
    name = "Gwet's AC1"
    definition = (
        "Gwet's AC1 (Gwet 2008, 2014), nominal: (p_a - p_e) / (1 - p_e), p_e = sum of pi_k(1 - pi_k) / (q - 1), "
        f"with q = {q} categories ({q_source})."
    )
    pa, pi, n, m = _gwet_parts(counts)
    if pa is None:
        return undefined(name, NO_PAIRABLE, 0, 0, definition, MISSING_FLEISS)
    if q < 2:
        why = "fewer than two categories: AC1's chance agreement needs q >= 2"
        return undefined(name, why, n, m, definition, MISSING_FLEISS)
    pe = float((pi * (1 - pi)).sum() / (q - 1))
    return defined(name, (pa - pe) / (1 - pe), n, m, definition, MISSING_FLEISS)


def _both(a: Sequence[Cell], b: Sequence[Cell]) -> list[tuple[Cell, Cell]]:
    return [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]


def pair_percent(a: Sequence[Cell], b: Sequence[Cell]) -> Figure:
    both = _both(a, b)
    name = "Percent agreement (pair)"
    if not both:
        return undefined(name, "no unit was rated by both raters", 0, 0, PAIR_PERCENT, MISSING_PAIR)
    agree = sum(x == y for x, y in both) / len(both)
    return defined(name, agree, len(both), 2 * len(both), PAIR_PERCENT, MISSING_PAIR)


def cohen_kappa(a: Sequence[Cell], b: Sequence[Cell]) -> Figure:
    both = _both(a, b)
    name = "Cohen's kappa"
    if not both:
        return undefined(name, "no unit was rated by both raters", 0, 0, COHEN, MISSING_PAIR)
    n = len(both)
    po = sum(x == y for x, y in both) / n
    cats = {x for x, _ in both} | {y for _, y in both}
    pe = sum((sum(x == c for x, _ in both) / n) * (sum(y == c for _, y in both) / n) for c in cats)
    if np.isclose(pe, 1.0):
        why = "both raters used one and the same category throughout: chance agreement is 1, so kappa is 0/0"
        return undefined(name, why, n, 2 * n, COHEN, MISSING_PAIR)
    return defined(name, (po - pe) / (1 - pe), n, 2 * n, COHEN, MISSING_PAIR)
