"""Our figures against well-kept reference implementations, on fixed and random data with missing values."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nltk.metrics.agreement import AnnotationTask
from nltk.metrics.distance import binary_distance, masi_distance
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from research.stats import build_ratings, reliability
from research.stats.alpha import alpha_from_counts, level_alpha, package_alpha
from research.stats.gold import evaluate
from research.stats.matrix import categories, value_counts
from research.stats.multilabel import masi_distance as our_masi

LABELS = ["a", "b", "c", "none"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def matrices(draw, raters: tuple[int, int] = (2, 5), missing=True):
    n_raters = draw(st.integers(*raters))
    n_units = draw(st.integers(1, 25))
    cell = st.sampled_from(LABELS + ([None, ""] if missing else []))
    rows = draw(st.lists(st.lists(cell, min_size=n_raters, max_size=n_raters), min_size=n_units, max_size=n_units))
    return pd.DataFrame(rows, columns=[f"r{j}" for j in range(n_raters)])


def rated(v: object) -> bool:
    return isinstance(v, str) and v != ""


def _nltk_triples(frame: pd.DataFrame):
    return [(rater, i, v) for rater in frame.columns for i, v in enumerate(frame[rater]) if rated(v)]


@FAST
@given(matrices())
def test_alpha_nominal_equals_package_our_coincidences_and_nltk(frame):
    report = reliability(frame, resamples=0)
    alpha = report.overall["krippendorff_alpha"]
    ratings = build_ratings(frame, list(frame.columns))
    cats = categories(ratings)
    ours, why = alpha_from_counts(value_counts(ratings, cats), 1 - np.eye(len(cats)))
    if alpha.value is None:
        assert ours is None and why == alpha.undefined
        return
    assert ours == pytest.approx(alpha.value, abs=1e-9)
    codes = {c: k for k, c in enumerate(cats)}
    data = np.array([[codes[v] if rated(v) else np.nan for v in frame[r]] for r in frame.columns], dtype=float)
    assert krippendorff.alpha(data, level_of_measurement="nominal") == pytest.approx(alpha.value, abs=1e-9)
    task = AnnotationTask(_nltk_triples(frame), distance=binary_distance)
    assert task.alpha() == pytest.approx(alpha.value, abs=1e-9)


@FAST
@given(matrices(raters=(2, 2)))
def test_cohen_kappa_equals_sklearn_on_units_both_rated(frame):
    both = frame[frame["r0"].isin(LABELS) & frame["r1"].isin(LABELS)]
    kappa = reliability(frame, resamples=0).overall["cohen_kappa"]
    if kappa.value is None:
        assert len(both) == 0 or both["r0"].nunique() == both["r1"].nunique() == 1
        return
    assert kappa.n_units == len(both)
    assert kappa.value == pytest.approx(cohen_kappa_score(both["r0"], both["r1"]), abs=1e-9)


@FAST
@given(matrices(missing=False))
def test_fleiss_equals_statsmodels_on_complete_data(frame):
    fleiss = reliability(frame, resamples=0).overall["fleiss_kappa"]
    table, _ = aggregate_raters(frame.to_numpy())
    reference = sm_fleiss(table, method="fleiss")
    if fleiss.value is None:
        assert math.isnan(reference) or table.shape[1] == 1
        return
    assert fleiss.value == pytest.approx(reference, abs=1e-9)


@FAST
@given(matrices())
def test_percent_agreement_is_the_mean_share_of_agreeing_pairs(frame):
    shares = []
    for _, row in frame.iterrows():
        values = [v for v in row if rated(v)]
        pairs = [(x, y) for i, x in enumerate(values) for j, y in enumerate(values) if i != j]
        if pairs:
            shares.append(sum(x == y for x, y in pairs) / len(pairs))
    pa = reliability(frame, resamples=0).overall["percent_agreement"]
    if not shares:
        assert pa.value is None and pa.undefined
    else:
        assert pa.value == pytest.approx(sum(shares) / len(shares)) and pa.n_units == len(shares)


@st.composite
def label_sets(draw):
    n_raters, n_units = draw(st.integers(2, 4)), draw(st.integers(2, 15))
    cell = st.one_of(st.none(), st.frozensets(st.sampled_from(["x", "y", "z", "w"]), min_size=1, max_size=3))
    rows = draw(st.lists(st.lists(cell, min_size=n_raters, max_size=n_raters), min_size=n_units, max_size=n_units))
    return pd.DataFrame(rows, columns=[f"r{j}" for j in range(n_raters)])


@FAST
@given(label_sets())
def test_masi_alpha_equals_nltk(frame):
    masi = reliability(frame, multi_label=True, resamples=0).overall["krippendorff_alpha_masi"]
    triples = [(r, i, v) for r in frame.columns for i, v in enumerate(frame[r]) if v is not None]
    pairable = frame.notna().sum(axis=1) >= 2
    values = {v for r in frame.columns for v in frame.loc[pairable, r] if v is not None}
    if masi.value is None:
        assert len(values) <= 1
        return
    # nltk >= 3.9 uses M = 2/3 and 1/3 exactly (older releases used 0.67 and 0.33).
    assert AnnotationTask(triples, distance=masi_distance).alpha() == pytest.approx(masi.value, abs=1e-9)


@given(
    st.frozensets(st.sampled_from("abcde"), min_size=1),
    st.frozensets(st.sampled_from("abcde"), min_size=1),
)
def test_masi_distance_equals_nltk(a, b):
    assert our_masi(a, b) == pytest.approx(masi_distance(set(a), set(b)))


def test_masi_distance_published_values():
    # Passonneau (2006): identical 0; subset J*M = (2/4)*(2/3); overlap (1/3)*(1/3); disjoint 1.
    assert our_masi(frozenset("ab"), frozenset("ab")) == 0
    assert our_masi(frozenset("ab"), frozenset("abcd")) == pytest.approx(1 - 0.5 * 2 / 3)
    assert our_masi(frozenset("ab"), frozenset("bc")) == pytest.approx(1 - 1 / 9)
    assert our_masi(frozenset("ab"), frozenset("cd")) == 1


@FAST
@given(label_sets())
def test_per_code_alpha_equals_the_package_on_present_absent(frame):
    report = reliability(frame, multi_label=True, labels=["x", "y", "z", "w"], resamples=0)
    for code, figures in report.per_code.items():
        data = np.array(
            [[np.nan if v is None else float(code in v) for v in frame[r]] for r in frame.columns], dtype=float
        )
        alpha = figures["krippendorff_alpha"]
        present = data[:, (~np.isnan(data)).sum(axis=0) >= 2]
        if alpha.value is None:
            assert len(np.unique(present[~np.isnan(present)])) <= 1
            continue
        assert alpha.value == pytest.approx(
            krippendorff.alpha(data, level_of_measurement="nominal", value_domain=[0.0, 1.0]), abs=1e-9
        )


@FAST
@given(
    st.lists(st.tuples(st.sampled_from(["p", "q", "r"]), st.sampled_from(["p", "q", "r", "other", None])), min_size=1)
)
def test_gold_scores_equal_sklearn(pairs):
    gold = [g for g, _ in pairs]
    answers = [a for _, a in pairs]
    labels = ["p", "q", "r"]
    result = evaluate("m", gold, answers, labels)
    shown = ["(missing)" if a is None else a for a in answers]
    assert result.accuracy.value == pytest.approx(accuracy_score(gold, shown))
    assert result.invalid == answers.count("other") and result.missing == answers.count(None)
    precision, recall, f1, support = precision_recall_fscore_support(gold, shown, labels=labels, zero_division=np.nan)
    for k, score in enumerate(result.per_code):
        assert score.support == support[k]
        assert (score.precision is None and score.predicted == 0) or score.precision == pytest.approx(precision[k])
        if score.support:
            assert score.recall == pytest.approx(recall[k]) and score.f1 == pytest.approx(f1[k])
    if set(gold) == set(labels):  # every code occurs: our macro-F1 is sklearn's
        assert result.macro_f1.value == pytest.approx(f1_score(gold, shown, labels=labels, average="macro"))
    expected = confusion_matrix(gold, shown, labels=[*labels, "other", "(missing)"])[:3]
    assert result.confusion.to_numpy().tolist() == expected.tolist()


@FAST
@given(
    st.lists(st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=3, max_size=3), min_size=2, max_size=20),
    st.sampled_from(["nominal", "ordinal", "interval", "ratio"]),
)
def test_our_level_alpha_used_by_the_bootstrap_equals_the_package(rows, level):
    domain = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    counts = np.zeros((len(rows), 5))
    for i, row in enumerate(rows):
        for v in row:
            if v is not None:
                counts[i, v] += 1
    ours, why = level_alpha(counts, domain, level)
    reference, reason = package_alpha(counts, domain, level)
    assert why == reason
    if reference is not None:
        assert ours == pytest.approx(reference, abs=1e-9)
        # A weight of 2 on a unit is the unit drawn twice.
        doubled, _ = level_alpha(np.vstack([counts, counts[:1]]), domain, level)
        weighted, _ = level_alpha(counts, domain, level, weights=np.r_[2, np.ones(len(rows) - 1)])
        assert (doubled is None and weighted is None) or weighted == pytest.approx(doubled, abs=1e-9)
