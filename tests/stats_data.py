"""Published reliability data sets, built in code, for the statistics tests."""

from __future__ import annotations

import pandas as pd

_ = None
# Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", p. 8: 4 observers × 12 units with
# missing values. The same table is irrCAC's cac.raw4raters (Gwet).
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]

# Fleiss (1971) as on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 categories; each row
# says how many raters put the subject in each category. Kappa = 0.210.
FLEISS_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def krippendorff_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {f"obs{i + 1}": [None if v is None else str(v) for v in row] for i, row in enumerate(KRIPPENDORFF_2011)}
    )


def fleiss_frame() -> pd.DataFrame:
    rows = []
    for counts in FLEISS_COUNTS:
        rows.append([f"c{k + 1}" for k, n in enumerate(counts) for _ in range(n)])
    return pd.DataFrame(rows, columns=[f"r{j + 1}" for j in range(14)])


def cohen_frame() -> pd.DataFrame:
    """Wikipedia's "Cohen's kappa" example: 50 proposals, A yes/B yes 20, A yes/B no 5, A no/B yes 10,
    both no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    return pd.DataFrame(pairs, columns=["A", "B"])
