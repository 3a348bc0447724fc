"""Figures checked against published worked examples."""

from __future__ import annotations

import pytest

from research.stats import reliability
from tests.stats_data import cohen_frame, fleiss_frame, krippendorff_frame


@pytest.mark.parametrize(
    ("level", "expected"),
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C (data with missing values).
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_2011_all_levels(level, expected):
    order = ["1", "2", "3", "4", "5"] if level == "ordinal" else None
    alpha = reliability(krippendorff_frame(), level=level, order=order, resamples=0).overall["krippendorff_alpha"]
    assert alpha.value == pytest.approx(expected, abs=5e-4)
    assert alpha.n_units == 11 and alpha.n_ratings == 40  # unit 12 has one value: not pairable


def test_krippendorff_2011_with_words_for_values():
    words = dict(zip("12345", ["very low", "low", "mid", "high", "very high"], strict=True))
    frame = krippendorff_frame().apply(lambda col: col.map(words))
    order = list(words.values())
    alpha = reliability(frame, level="ordinal", order=order, resamples=0).overall["krippendorff_alpha"]
    assert alpha.value == pytest.approx(0.815, abs=5e-4)


def test_gwet_figures_on_the_same_table():
    """Gwet's coefficients for this table (irrCAC's cac.raw4raters), as published in the SimplyAgree
    vignette, which follows Gwet (2014): percent agreement 0.8181818, AC1 0.7754441, Fleiss' kappa
    0.7611693, Krippendorff's alpha 0.7434211."""
    report = reliability(krippendorff_frame(), resamples=0)
    got = {key: f.value for key, f in report.overall.items()}
    assert got["percent_agreement"] == pytest.approx(0.8181818, abs=1e-7)
    assert got["gwet_ac1"] == pytest.approx(0.7754441, abs=1e-7)
    assert got["fleiss_kappa"] == pytest.approx(0.7611693, abs=1e-7)
    assert got["krippendorff_alpha"] == pytest.approx(0.7434211, abs=1e-7)
    assert "q = 5 categories (the categories observed" in report.overall["gwet_ac1"].definition


def test_fleiss_1971_wikipedia_example():
    fleiss = reliability(fleiss_frame(), resamples=0).overall["fleiss_kappa"]
    assert fleiss.value == pytest.approx(0.210, abs=5e-4)
    assert (fleiss.n_units, fleiss.n_ratings) == (10, 140)


def test_cohen_textbook_example():
    report = reliability(cohen_frame(), resamples=0)
    assert report.overall["cohen_kappa"].value == pytest.approx(0.4)
    assert report.pairwise[0].cohen_kappa.value == pytest.approx(0.4)
    assert report.pairwise[0].percent_agreement.value == pytest.approx(0.7)
    assert report.pairwise[0].n == 50
