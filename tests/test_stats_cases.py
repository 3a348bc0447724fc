"""Degenerate data, missing vs "none", label order, bootstrap, groups, multi-label and the report files."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from research.stats import reliability
from tests.stats_data import krippendorff_frame


def test_everyone_agrees_on_one_category_is_undefined_with_its_reason():
    frame = pd.DataFrame({"a": ["x"] * 5, "b": ["x"] * 5})
    report = reliability(frame, resamples=0)
    o = report.overall
    assert o["percent_agreement"].value == 1.0
    for key in ("krippendorff_alpha", "fleiss_kappa", "cohen_kappa", "gwet_ac1"):
        assert o[key].value is None, key
    assert "expected disagreement is 0" in o["krippendorff_alpha"].undefined
    assert "one category" in o["fleiss_kappa"].undefined
    assert "q >= 2" in o["gwet_ac1"].undefined
    # With the codebook's label set AC1 is defined: q = 2, chance agreement 0.
    assert reliability(frame, labels=["x", "y"], resamples=0).overall["gwet_ac1"].value == 1.0
    j = report.to_json()
    assert j["krippendorff_alpha"] is None and "expected disagreement" in j["undefined"]["krippendorff_alpha"]


def test_one_rater_and_no_pairable_unit():
    one = reliability(pd.DataFrame({"a": ["x", "y"]}), resamples=0)
    assert one.overall["percent_agreement"].undefined == "no unit has two or more ratings"
    assert one.overall["krippendorff_alpha"].undefined == "no unit has two or more ratings"
    assert one.pairwise == []
    apart = reliability(pd.DataFrame({"a": ["x", None], "b": [None, "y"]}), resamples=0)
    assert apart.pairwise[0].cohen_kappa.undefined == "no unit was rated by both raters"
    assert apart.pairwise[0].n == 0
    assert apart.overall["krippendorff_alpha"].ci is None


def test_empty_is_missing_but_none_is_a_value():
    frame = pd.DataFrame({"a": ["none", "x", "  ", "y"], "b": ["none", "x", "x", ""], "c": ["none", "y", np.nan, None]})
    report = reliability(frame, resamples=0)
    pa = report.overall["percent_agreement"]
    assert (pa.n_units, pa.n_ratings) == (2, 6)  # units 3 and 4 hold one rating each
    assert pa.value == pytest.approx((1 + 1 / 3) / 2)
    assert report.pairwise[0].n == 2  # a-b: "none"/"none" and x/x


def test_nan_text_is_a_label_not_a_missing_value():
    frame = pd.DataFrame({"a": ["nan", "x", "nan"], "b": ["nan", "x", "x"]})
    alpha = reliability(frame, resamples=0).overall["krippendorff_alpha"]
    assert alpha.n_ratings == 6 and alpha.value is not None


def test_ordinal_order_matters_and_is_never_guessed():
    frame = pd.DataFrame({"a": ["low", "mid", "high", "mid", "low"], "b": ["mid", "mid", "high", "high", "low"]})
    up = reliability(frame, level="ordinal", order=["low", "mid", "high"], resamples=0)
    odd = reliability(frame, level="ordinal", order=["mid", "low", "high"], resamples=0)
    assert up.overall["krippendorff_alpha"].value != pytest.approx(odd.overall["krippendorff_alpha"].value)
    assert "low < mid < high" in up.overall["krippendorff_alpha"].definition
    with pytest.raises(ValueError, match="needs the order"):
        reliability(frame, level="ordinal")
    with pytest.raises(ValueError, match="not in the ordinal order: high"):
        reliability(frame, level="ordinal", order=["low", "mid"])
    with pytest.raises(ValueError, match="need numbers"):
        reliability(frame, level="interval")


def test_bootstrap_is_seeded_and_says_how_it_was_made():
    first = reliability(krippendorff_frame()).overall["krippendorff_alpha"]
    again = reliability(krippendorff_frame()).overall["krippendorff_alpha"]
    other = reliability(krippendorff_frame(), seed=1).overall["krippendorff_alpha"]
    assert first.ci == again.ci and first.ci != other.ci
    low, high = first.ci
    assert low < first.value <= high
    assert "Percentile bootstrap, 95%: 1000 resamples of the 11 pairable units with replacement, seed 0" in (
        first.ci_method
    )


def test_groups_put_model_human_beside_human_human():
    frame = pd.DataFrame(
        {
            "h1": ["a", "b", "a", "b", "a", "b"],
            "h2": ["a", "b", "a", "b", "a", "a"],
            "m1": ["a", "a", "b", "b", "a", "b"],
        }
    )
    groups = {"h1": "human", "h2": "human", "m1": "model"}
    report = reliability(frame, groups=groups, resamples=0)
    by = {g.groups: g for g in report.group_pairs}
    hh, hm = by[("human", "human")], by[("human", "model")]
    pairs = {p.raters: p for p in report.pairwise}
    assert hh.cohen_kappa.value == pytest.approx(pairs[("h1", "h2")].cohen_kappa.value)
    expected = (pairs[("h1", "m1")].cohen_kappa.value + pairs[("h2", "m1")].cohen_kappa.value) / 2
    assert hm.n_pairs == 2 and hm.cohen_kappa.value == pytest.approx(expected)
    humans = reliability(frame[["h1", "h2"]], resamples=0).overall["krippendorff_alpha"].value
    assert report.group_alphas["human only"].value == pytest.approx(humans)
    assert report.group_alphas["model only"].undefined == "only one rater in group 'model'"
    with pytest.raises(ValueError, match="not among the raters: x"):
        reliability(frame, groups={"x": "model"})


def test_multi_label_cells_split_on_the_separator():
    frame = pd.DataFrame({"a": ["x; y", "x", "z;x", ""], "b": [["y", "x"], "x; z", "x; z", "y"]})
    report = reliability(frame, multi_label=True, labels=["x", "y", "z", "w"], resamples=50)
    o = report.overall
    assert o["percent_agreement"].value == pytest.approx(2 / 3)  # unit 2: {x} vs {x, z}
    assert o["krippendorff_alpha_masi"].n_units == 3 and o["krippendorff_alpha_masi"].ci_method
    assert o["fleiss_kappa"].value is None and "multi-label" in o["fleiss_kappa"].undefined
    assert set(report.per_code) == {"x", "y", "z", "w"}
    assert report.per_code["x"]["percent_agreement"].value == 1.0
    assert report.per_code["w"]["krippendorff_alpha"].undefined  # never used
    j = report.to_json()
    assert set(j["per_code"]["z"]) >= {"krippendorff_alpha", "percent_agreement", "cohen_kappa", "n"}
    assert j["krippendorff_alpha_masi"] == o["krippendorff_alpha_masi"].value


def test_gold_needs_labels_and_rejects_off_label_gold():
    frame = pd.DataFrame({"m": ["a", "b", "zz", None], "gold": ["a", "a", "b", None]})
    with pytest.raises(ValueError, match="needs the label set"):
        reliability(frame, raters=["m"], gold="gold")
    with pytest.raises(ValueError, match="outside the label set: b"):
        reliability(frame, raters=["m"], gold="gold", labels=["a"])
    g = reliability(frame, raters=["m"], gold="gold", labels=["a", "b"], resamples=0).gold["m"]
    assert (g.n_units, g.invalid, g.missing) == (3, 1, 0)
    assert g.accuracy.value == pytest.approx(1 / 3)
    assert g.confusion.loc["b", "(off-label)"] == 1 and g.confusion.loc["a", "b"] == 1


def test_report_csv_and_markdown_carry_every_figure():
    report = reliability(krippendorff_frame(), resamples=20)
    rows = list(csv.DictReader(io.StringIO(report.to_csv().decode("utf-8-sig"))))
    assert list(rows[0])[:11] == [
        "scope", "raters", "statistic", "value", "ci_low", "ci_high", "n_units", "n_ratings", "definition",
        "missing", "undefined",
    ]  # fmt: skip
    assert len(rows) == len(report.rows()) == 5 + 2 * 6
    alpha = next(r for r in rows if r["statistic"] == "krippendorff_alpha")
    assert float(alpha["value"]) == pytest.approx(0.7434211) and alpha["ci_low"] and alpha["n_units"] == "11"
    cohen = next(r for r in rows if r["scope"] == "overall" and r["statistic"] == "cohen_kappa")
    assert cohen["value"] == "" and "exactly two" in cohen["undefined"]
    text = report.to_markdown()
    assert "## How to read" in text and "Gwet's p_a" in text and "0.743" in text and "seed 0" in text


def test_the_csv_report_holds_every_gold_figure_and_the_confusion_matrix():

    frame = pd.DataFrame({"a": ["x", "y", "x", "z"], "b": ["x", "y", "y", None], "g": ["x", "y", "x", "x"]})
    report = reliability(frame, raters=["a", "b"], gold="g", labels=["x", "y"], resamples=0)
    table = pd.read_csv(io.BytesIO(report.to_csv()), encoding="utf-8-sig")
    per_code = table[(table["scope"] == "gold: code x") & (table["raters"] == "a")]
    assert dict(zip(per_code["statistic"], per_code["value"], strict=True)) == pytest.approx(
        {"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3}
    )
    confusion = table[(table["scope"] == "gold: confusion") & (table["raters"] == "a")]
    cells = dict(zip(confusion["statistic"], confusion["value"], strict=True))
    assert cells["gold x / answered x"] == 2 and cells["gold x / answered (off-label)"] == 1
    assert sum(cells.values()) == 4  # every gold unit in one cell
