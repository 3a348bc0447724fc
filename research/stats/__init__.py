"""Reliability statistics: pure arithmetic over a units × raters matrix.

matrix        cells: missing vs value, label sets, category counts
figure        Figure: a value with its n, definition, missing-data handling, or why it is undefined
agreement     percent agreement, Cohen's kappa, Fleiss' kappa, Gwet's AC1
alpha         Krippendorff's alpha (the krippendorff package; our own for any distance)
multilabel    MASI alpha and per-code present/absent figures
gold          each rater against gold labels
groups        model–human beside human–human
bootstrap     percentile bootstrap over units
reliability   reliability(): the whole report in one call
report        Report and its JSON; writers: CSV and Markdown
"""

from research.stats.figure import Figure
from research.stats.gold import GoldResult
from research.stats.matrix import Ratings, build_ratings
from research.stats.reliability import reliability
from research.stats.report import Report

__all__ = ["Figure", "GoldResult", "Ratings", "Report", "build_ratings", "reliability"]
