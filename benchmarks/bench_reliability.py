"""How long the Reliability page's figures take on large coded tables: `research.stats.reliability`
(every figure, with 1,000 bootstrap resamples for alpha) over random units x raters matrices with
missing cells, single- and multi-label, with a gold column. Prints one line per case.

    .venv/bin/python -m benchmarks.bench_reliability            # 1,000 / 10,000 / 50,000 units
    .venv/bin/python -m benchmarks.bench_reliability --units 200000 --raters 6
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from research.stats import reliability

LABELS = ["price", "quality", "service", "delivery", "none"]


def matrix(units: int, raters: int, *, multi: bool, missing: float, seed: int = 0) -> pd.DataFrame:
    """Raters who mostly agree with a hidden truth, some cells left empty, and a gold column."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(LABELS), units)
    columns: dict[str, list[object]] = {}
    for r in range(raters):
        noisy = np.where(rng.random(units) < 0.8, truth, rng.integers(0, len(LABELS), units))
        cells: list[object] = []
        for i, value in enumerate(noisy):
            if rng.random() < missing:
                cells.append(None)
            elif multi:
                extra = LABELS[(value + 1 + i % 2) % len(LABELS)]
                cells.append(f"{LABELS[value]}; {extra}" if rng.random() < 0.3 else LABELS[value])
            else:
                cells.append(LABELS[value])
        columns[f"rater{r + 1}"] = cells
    columns["gold"] = [LABELS[v] for v in truth]
    return pd.DataFrame(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, nargs="*", default=[1_000, 10_000, 50_000])
    parser.add_argument("--raters", type=int, default=4)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'units':>8} {'raters':>6} {'kind':<12} {'seconds':>8}  alpha")
    for units in args.units:
        for multi in (False, True):
            frame = matrix(units, args.raters, multi=multi, missing=0.1)
            raters = [c for c in frame.columns if c != "gold"]
            started = time.perf_counter()
            report = reliability(
                frame,
                raters=raters,
                labels=LABELS,
                multi_label=multi,
                gold=None if multi else "gold",
                resamples=args.resamples,
            )
            seconds = time.perf_counter() - started
            alpha = report.overall.get("krippendorff_alpha_masi" if multi else "krippendorff_alpha")
            shown = f"{alpha.value:.3f}" if alpha is not None and alpha.value is not None else "-"
            kind = "multi-label" if multi else "single+gold"
            print(f"{units:>8,} {args.raters:>6} {kind:<12} {seconds:>8.2f}  {shown}")


if __name__ == "__main__":
    main()
