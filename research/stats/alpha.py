"""Krippendorff's alpha over the coincidence matrix.

The four standard levels go through the maintained `krippendorff` package, fed a units × values count
table and an explicit value domain (so a label that reads "nan" is never taken for a missing value, and
an ordinal order is never guessed by sorting). `alpha_from_counts` is our own coincidence-matrix alpha
for any distance matrix; the multi-label MASI alpha uses it, and the tests check it equals the package on
nominal data.
"""

from __future__ import annotations

from collections.abc import Sequence

import krippendorff
import numpy as np

from research.stats.agreement import NO_PAIRABLE
from research.stats.figure import Figure, defined, undefined
from research.stats.matrix import Ratings, categories, value_counts

LEVELS = ("nominal", "ordinal", "interval", "ratio")
MISSING = (
    "Units with fewer than 2 ratings are left out (they hold no pairable value); every other rating is used, "
    "whatever the number of ratings per unit."
)
ONE_VALUE = "only one value was used in the pairable units: expected disagreement is 0, so alpha is 0/0"
METRIC = {
    "nominal": "nominal metric (any two different values disagree fully)",
    "ordinal": "ordinal metric over the given rank order",
    "interval": "interval metric (squared difference of the numbers)",
    "ratio": "ratio metric (((a - b) / (a + b)) squared)",
}


def _definition(level: str, extra: str = "") -> str:
    return (
        f"Krippendorff's alpha (Krippendorff 2011), {METRIC[level]}: 1 - D_o / D_e from the coincidence "
        f"matrix of pairable values{extra}; computed with the krippendorff package."
    )


def _number(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        raise ValueError(
            f"Interval and ratio alpha need numbers, and '{value}' is not one. "
            "Use level nominal, or ordinal with an order."
        ) from None


def alpha_inputs(
    ratings: Ratings, level: str, order: Sequence[str] | None, labels: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """The units × values counts, the value domain handed to the package, and the definition."""
    if level not in LEVELS:
        raise ValueError(f"Unknown level '{level}': use one of {', '.join(LEVELS)}.")
    if level == "nominal":
        cats = categories(ratings, labels)
        return value_counts(ratings, cats), np.arange(len(cats)), _definition(level)
    if level == "ordinal":
        if not order:
            raise ValueError(
                'Ordinal alpha needs the order of the labels, lowest first (order=[...] or --order "low,mid,high"); '
                "labels are never sorted alphabetically to guess it."
            )
        outside = sorted({str(c) for c in categories(ratings) if c not in order})
        if outside:
            raise ValueError(f"Value(s) not in the ordinal order: {', '.join(outside)}. Add them to the order.")
        counts = value_counts(ratings, list(order))
        return counts, np.arange(len(order)), _definition(level, f", order {' < '.join(order)}")
    numbers = sorted({_number(c) for c in categories(ratings)})
    numeric = Ratings(
        ratings.raters, tuple(tuple(None if c is None else _number(c) for c in row) for row in ratings.cells)
    )
    return value_counts(numeric, numbers), np.array(numbers, dtype=float), _definition(level)


def _pairable(counts: np.ndarray) -> np.ndarray:
    return counts[counts.sum(axis=1) >= 2]


def package_alpha(counts: np.ndarray, domain: np.ndarray, level: str) -> tuple[float | None, str | None]:
    """Alpha from the package, or (None, why) in the degenerate cases it would divide by zero on."""
    used = _pairable(counts)
    if not len(used):
        return None, NO_PAIRABLE
    if np.count_nonzero(used.sum(axis=0)) < 2:
        return None, ONE_VALUE
    value = float(krippendorff.alpha(value_counts=used, value_domain=domain, level_of_measurement=level))
    return value, None


def krippendorff_alpha(
    ratings: Ratings, level: str = "nominal", order: Sequence[str] | None = None, labels: Sequence[str] | None = None
) -> Figure:
    counts, domain, definition = alpha_inputs(ratings, level, order, labels)
    used = _pairable(counts)
    n, m = len(used), int(used.sum())
    name = f"Krippendorff's alpha ({level})"
    value, why = package_alpha(counts, domain, level)
    if value is None:
        return undefined(name, why or ONE_VALUE, n, m, definition, MISSING)
    return defined(name, value, n, m, definition, MISSING)


def coincidences(counts: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The values × values coincidence matrix of the pairable units, each unit counted `weights` times."""
    used = counts.sum(axis=1) >= 2
    rows = counts[used]
    w = np.ones(len(rows)) if weights is None else np.asarray(weights, dtype=float)[used]
    share = w / (rows.sum(axis=1) - 1)
    return np.einsum("u,uc,uk->ck", share, rows, rows) - np.diag(share @ rows)


def level_distances(level: str, domain: np.ndarray, n_v: np.ndarray) -> np.ndarray:
    """Krippendorff's squared difference functions for the four levels (ordinal: from the marginals)."""
    if level == "nominal":
        return 1.0 - np.eye(len(domain))
    if level == "ordinal":
        cum = np.cumsum(n_v)
        c, k = (
            np.minimum.outer(np.arange(len(n_v)), np.arange(len(n_v))),
            np.maximum.outer(np.arange(len(n_v)), np.arange(len(n_v))),
        )
        return (cum[k] - cum[c] + n_v[c] - (n_v[c] + n_v[k]) / 2) ** 2
    v = domain.astype(float)
    diff = np.subtract.outer(v, v)
    if level == "interval":
        return diff**2
    total = np.add.outer(v, v)
    return np.divide(diff, total, out=np.zeros_like(diff), where=total != 0) ** 2


def alpha_from_coincidences(o: np.ndarray, delta: np.ndarray) -> tuple[float | None, str | None]:
    """Alpha = 1 - (n - 1) * sum(o * delta) / sum(n_c * n_k * delta)."""
    n_c = o.sum(axis=0)
    if n_c.sum() == 0:
        return None, NO_PAIRABLE
    expected = float((np.outer(n_c, n_c) * delta).sum())
    if np.isclose(expected, 0.0):
        return None, ONE_VALUE
    return 1.0 - (n_c.sum() - 1) * float((o * delta).sum()) / expected, None


def alpha_from_counts(
    counts: np.ndarray, delta: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float | None, str | None]:
    """Alpha for any fixed distance matrix (MASI, nominal) from units × values counts."""
    return alpha_from_coincidences(coincidences(counts, weights), delta)


def level_alpha(
    counts: np.ndarray, domain: np.ndarray, level: str, weights: np.ndarray | None = None
) -> tuple[float | None, str | None]:
    """Our own alpha for the four levels, fast enough to bootstrap; the tests hold it to the package."""
    o = coincidences(counts, weights)
    return alpha_from_coincidences(o, level_distances(level, domain, o.sum(axis=0)))
