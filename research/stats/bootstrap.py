"""Percentile bootstrap over units: resample the pairable units with replacement, recompute the figure."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LEVEL = 0.95


def bootstrap_ci(
    counts: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float | None],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[tuple[float, float] | None, str]:
    """A 95 % percentile interval for `statistic(counts)` and a sentence saying how it was made.

    `counts` is units × values; only units with 2 or more ratings are resampled (the others add nothing).
    `statistic(patterns, weights)` gets the distinct unit rows and how often each was drawn: units with the
    same counts add the same to a coincidence matrix, so a resample is a weight vector over far fewer rows.
    Resamples on which the figure is undefined are left out, and the sentence says how many.
    """
    used = counts[counts.sum(axis=1) >= 2]
    rng = np.random.default_rng(seed)
    values = []
    if len(used) and resamples > 0:
        patterns, inverse = np.unique(used, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        for _ in range(resamples):
            drawn = inverse[rng.integers(0, len(used), len(used))]
            value = statistic(patterns, np.bincount(drawn, minlength=len(patterns)))
            if value is not None:
                values.append(value)
    dropped = resamples - len(values)
    method = (
        f"Percentile bootstrap, {LEVEL:.0%}: {resamples} resamples of the {len(used)} pairable units with "
        f"replacement, seed {seed}"
        + (f"; {dropped} resamples where the figure was undefined are left out" if dropped else "")
        + "."
    )
    if len(values) < 2:
        return None, method + " Too few defined resamples for an interval."
    tail = (1 - LEVEL) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return (float(low), float(high)), method
