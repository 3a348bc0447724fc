"""Multi-label data (each rating a set of codes): Krippendorff's alpha with the MASI distance, and each
code on its own as present/absent."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from research.stats.agreement import cohen_kappa, percent_agreement
from research.stats.alpha import MISSING, alpha_from_counts, package_alpha
from research.stats.figure import Figure, defined, undefined
from research.stats.matrix import Ratings, categories, value_counts

MASI = (
    "Krippendorff's alpha with the MASI distance (Passonneau 2006) between label sets: 1 - J * M, J the "
    "Jaccard share |A & B| / |A | B|, M = 1 for equal sets, 2/3 when one holds the other, 1/3 when they "
    "overlap otherwise, 0 when disjoint; coincidence-matrix formulation (Krippendorff 2011)."
)
BINARY = "Krippendorff's alpha, nominal, on one code at a time: each rating becomes 'present' or 'absent' for the code."


def masi_distance(a: frozenset[str], b: frozenset[str]) -> float:
    if a == b:
        return 0.0
    inter = len(a & b)
    if inter == 0:
        return 1.0
    monotonicity = 2 / 3 if inter == min(len(a), len(b)) else 1 / 3
    return 1.0 - inter / len(a | b) * monotonicity


def masi_inputs(ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the distinct label sets seen, and the MASI distance between them."""
    sets = categories(ratings)
    delta = np.array([[masi_distance(a, b) for b in sets] for a in sets], dtype=float)
    return value_counts(ratings, sets), delta


def masi_alpha(ratings: Ratings) -> Figure:
    counts, delta = masi_inputs(ratings)
    used = counts[counts.sum(axis=1) >= 2]
    name = "Krippendorff's alpha (MASI)"
    value, why = alpha_from_counts(counts, delta)
    if value is None:
        return undefined(name, why or "", len(used), int(used.sum()), MASI, MISSING)
    return defined(name, value, len(used), int(used.sum()), MASI, MISSING)


def codes(ratings: Ratings, labels: Sequence[str] | None = None) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(labels or [])
    for row in ratings.cells:
        for cell in row:
            for code in sorted(cell or ()):
                seen.setdefault(code, None)
    return list(seen)


def binary(ratings: Ratings, code: str) -> Ratings:
    cells = tuple(
        tuple(None if c is None else ("present" if code in c else "absent") for c in row) for row in ratings.cells
    )
    return Ratings(ratings.raters, cells)


def per_code(ratings: Ratings, labels: Sequence[str] | None = None) -> dict[str, dict[str, Figure]]:
    """For each code: alpha (nominal, binary), percent agreement, and Cohen's kappa when two raters."""
    out: dict[str, dict[str, Figure]] = {}
    for code in codes(ratings, labels):
        flat = binary(ratings, code)
        counts = value_counts(flat, ["present", "absent"])
        used = counts[counts.sum(axis=1) >= 2]
        name = f"Krippendorff's alpha (code '{code}', present/absent)"
        value, why = package_alpha(counts, np.arange(2), "nominal")
        n, m = len(used), int(used.sum())
        figures = {
            "krippendorff_alpha": undefined(name, why or "", n, m, BINARY, MISSING)
            if value is None
            else defined(name, value, n, m, BINARY, MISSING),
            "percent_agreement": percent_agreement(counts),
        }
        if len(ratings.raters) == 2:
            a, b = (flat.column(r) for r in ratings.raters)
            figures["cohen_kappa"] = cohen_kappa(a, b)
        out[code] = figures
    return out
