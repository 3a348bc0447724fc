"""One call from a units × raters table to a full reliability report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from research.stats.agreement import cohen_kappa, fleiss_kappa, gwet_ac1, pair_percent, percent_agreement
from research.stats.alpha import MISSING as MISSING_ALPHA
from research.stats.alpha import alpha_from_counts, alpha_inputs, krippendorff_alpha, level_alpha
from research.stats.bootstrap import bootstrap_ci
from research.stats.figure import Figure, undefined
from research.stats.gold import evaluate
from research.stats.groups import check_groups, group_alphas, group_pairs
from research.stats.matrix import Ratings, build_ratings, categories, check_columns, value_counts
from research.stats.multilabel import masi_alpha, masi_inputs, per_code
from research.stats.report import PairResult, Report

EXACT_SETS = " Multi-label data: two ratings agree only when their label sets are identical."


def _rename(f: Figure, name: str, extra: str = "") -> Figure:
    return Figure(
        name, f.value, f.undefined, f.n_units, f.n_ratings, f.definition + extra, f.missing, f.ci, f.ci_method
    )


def _cohen_overall(ratings: Ratings) -> Figure:
    if len(ratings.raters) == 2:
        return cohen_kappa(*(ratings.column(r) for r in ratings.raters))
    why = f"there are {len(ratings.raters)} raters: Cohen's kappa is for exactly two (see the pairwise figures)"
    return undefined("Cohen's kappa", why, 0, 0, "Cohen's kappa (Cohen 1960), unweighted.", "Not computed.")


def _single_label(
    ratings: Ratings, level: str, order: Sequence[str] | None, labels: Sequence[str] | None, resamples: int, seed: int
) -> dict[str, Figure]:
    cats = categories(ratings, labels)
    counts = value_counts(ratings, cats)
    alpha = krippendorff_alpha(ratings, level, order, labels)
    a_counts, domain, _ = alpha_inputs(ratings, level, order, labels)
    ci, method = bootstrap_ci(
        a_counts, lambda c, w: level_alpha(c, domain, level, w)[0], resamples=resamples, seed=seed
    )
    extra = len(cats) - len(labels or [])
    q_source = (
        ("the label set" + (f" plus {extra} value(s) outside it" if extra else ""))
        if labels
        else "the categories observed; no label set was given"
    )
    return {
        "percent_agreement": percent_agreement(counts),
        "krippendorff_alpha": alpha.with_ci(ci, method),
        "fleiss_kappa": fleiss_kappa(counts),
        "gwet_ac1": gwet_ac1(counts, len(cats), q_source),
        "cohen_kappa": _cohen_overall(ratings),
    }


def _multi_label(ratings: Ratings, resamples: int, seed: int) -> dict[str, Figure]:
    sets = categories(ratings)
    counts = value_counts(ratings, sets)
    nominal = krippendorff_alpha(ratings, "nominal")
    ci, method = bootstrap_ci(
        counts, lambda c, w: level_alpha(c, np.arange(len(sets)), "nominal", w)[0], resamples=resamples, seed=seed
    )
    masi = masi_alpha(ratings)
    m_counts, delta = masi_inputs(ratings)
    m_ci, m_method = bootstrap_ci(
        m_counts, lambda c, w: alpha_from_counts(c, delta, w)[0], resamples=resamples, seed=seed
    )
    why = "not computed for multi-label data: see the MASI alpha and the per-code figures"
    return {
        "percent_agreement": _rename(percent_agreement(counts), "Percent agreement (exact label sets)", EXACT_SETS),
        "krippendorff_alpha": _rename(nominal, "Krippendorff's alpha (nominal, exact label sets)", EXACT_SETS).with_ci(
            ci, method
        ),
        "krippendorff_alpha_masi": masi.with_ci(m_ci, m_method),
        "fleiss_kappa": undefined("Fleiss' kappa", why, 0, 0, "Fleiss' kappa (Fleiss 1971).", MISSING_ALPHA),
        "gwet_ac1": undefined("Gwet's AC1", why, 0, 0, "Gwet's AC1 (Gwet 2008).", MISSING_ALPHA),
        "cohen_kappa": _rename(_cohen_overall(ratings), "Cohen's kappa (exact label sets)", EXACT_SETS),
    }


def _check(
    matrix: pd.DataFrame,
    raters: Sequence[str],
    level: str,
    labels: Sequence[str] | None,
    multi_label: bool,
    gold: str | None,
) -> None:
    if not raters:
        raise ValueError("No rater columns: name at least one rater column.")
    if gold is not None:
        check_columns(matrix, [gold])
        if gold in raters:
            raise ValueError(f"The gold column '{gold}' is also listed as a rater; list it only as gold.")
        if not labels:
            raise ValueError('Gold evaluation needs the label set (labels=[...] or --labels "a,b,c").')
        if multi_label:
            raise ValueError("Gold evaluation of multi-label data is not supported yet; leave out the gold column.")
    if multi_label and level != "nominal":
        raise ValueError("Multi-label data are compared as label sets (MASI); use level nominal.")


def reliability(
    matrix: pd.DataFrame,
    *,
    raters: Sequence[str] | None = None,
    level: str = "nominal",
    order: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    multi_label: bool = False,
    separator: str = "; ",
    gold: str | None = None,
    groups: Mapping[str, str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Report:
    """Every reliability figure for `matrix` (one row per unit, one column per rater).

    `order` (lowest first) is required for level "ordinal"; `labels` is the codebook's label set, used for
    AC1's number of categories, the per-code figures and gold evaluation (required with `gold`).
    """
    raters = list(raters) if raters is not None else [c for c in matrix.columns if c != gold]
    labels = list(labels) if labels else (list(order) if level == "ordinal" and order else None)
    _check(matrix, raters, level, labels, multi_label, gold)
    ratings = build_ratings(matrix, raters, multi_label=multi_label, separator=separator)
    groups = dict(groups or {})
    check_groups(groups, raters)
    if multi_label:
        overall = _multi_label(ratings, resamples, seed)
    else:
        overall = _single_label(ratings, level, order, labels, resamples, seed)
    pairwise = []
    for a, b in combinations(raters, 2):
        pct = pair_percent(ratings.column(a), ratings.column(b))
        pairwise.append(PairResult((a, b), pct.n_units, pct, cohen_kappa(ratings.column(a), ratings.column(b))))
    gold_results = {}
    if gold is not None:
        truth = build_ratings(matrix, [gold]).column(gold)
        gold_results = {r: evaluate(r, truth, ratings.column(r), labels or []) for r in raters}
    alpha_of = masi_alpha if multi_label else (lambda r: krippendorff_alpha(r, level, order, labels))
    settings: dict[str, Any] = {
        "raters": raters,
        "level": level,
        "order": list(order) if order else None,
        "labels": labels,
        "multi_label": multi_label,
        "separator": separator if multi_label else None,
        "gold": gold,
        "groups": groups or None,
        "resamples": resamples,
        "seed": seed,
        "values": "compared exactly after trimming spaces; an empty cell is missing, 'none' is a value",
    }
    return Report(
        settings=settings,
        n_units=ratings.n_units,
        overall=overall,
        pairwise=pairwise,
        per_code=per_code(ratings, labels) if multi_label else {},
        gold=gold_results,
        group_pairs=group_pairs(ratings, groups) if groups else [],
        group_alphas=group_alphas(ratings, groups, alpha_of) if groups else {},
    )
