"""A units × raters table turned into clean cells, the one shape every statistic reads.

An empty cell (None, NaN, or text that is empty after trimming) is missing; any other text, including
"none", is a value. Values are compared exactly after trimming surrounding spaces (letter case counts).
Multi-label cells are label sets: a list/set, or text split on the separator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

Cell = str | frozenset[str] | None


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a column read as numbers: 2.0 was written 2
    return str(value).strip()


def clean_cell(value: object, *, multi_label: bool = False, separator: str = "; ") -> Cell:
    """One cell as a label (str), a label set (frozenset), or None when missing."""
    if isinstance(value, set | frozenset | list | tuple | np.ndarray):
        if not multi_label:
            raise ValueError("A cell holds several labels; pass multi_label=True (--multi-label) for such data.")
        labels = frozenset(_text(v) for v in value if not is_missing(v))
        return labels or None
    if is_missing(value):
        return None
    if not multi_label:
        return _text(value)
    splitter = separator.strip() or separator
    labels = frozenset(part.strip() for part in str(value).split(splitter) if part.strip())
    return labels or None


@dataclass(frozen=True)
class Ratings:
    """Clean cells, unit-major: `cells[unit][rater]`."""

    raters: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]
    multi_label: bool = False

    @property
    def n_units(self) -> int:
        return len(self.cells)

    def column(self, rater: str) -> list[Cell]:
        j = self.raters.index(rater)
        return [row[j] for row in self.cells]

    def present(self, unit: int) -> list[Cell]:
        return [c for c in self.cells[unit] if c is not None]

    def subset(self, raters: Sequence[str]) -> Ratings:
        idx = [self.raters.index(r) for r in raters]
        return Ratings(tuple(raters), tuple(tuple(row[j] for j in idx) for row in self.cells), self.multi_label)

    def take(self, units: Iterable[int]) -> Ratings:
        return Ratings(self.raters, tuple(self.cells[i] for i in units), self.multi_label)

    def pairable_units(self) -> list[int]:
        return [i for i in range(self.n_units) if len(self.present(i)) >= 2]

    def n_ratings(self) -> int:
        return sum(len(self.present(i)) for i in range(self.n_units))


def check_columns(df: pd.DataFrame, names: Iterable[str]) -> None:
    unknown = [n for n in names if n not in df.columns]
    if unknown:
        raise ValueError(
            f"Unknown column(s): {', '.join(map(str, unknown))}. The table's columns are: "
            f"{', '.join(map(str, df.columns))}."
        )


def build_ratings(
    df: pd.DataFrame, raters: Sequence[str], *, multi_label: bool = False, separator: str = "; "
) -> Ratings:
    check_columns(df, raters)
    if len(set(raters)) != len(raters):
        raise ValueError("A rater column is named twice; name each rater once.")
    columns = [[clean_cell(v, multi_label=multi_label, separator=separator) for v in df[r]] for r in raters]
    return Ratings(tuple(raters), tuple(zip(*columns, strict=True)) if columns else (), multi_label)


def categories(ratings: Ratings, labels: Sequence[str] | None = None) -> list[Cell]:
    """The label set first (in its order), then any other value seen, in order of first appearance."""
    seen: dict[Cell, None] = dict.fromkeys(labels or [])
    for row in ratings.cells:
        for cell in row:
            if cell is not None:
                seen.setdefault(cell, None)
    return list(seen)


def value_counts(ratings: Ratings, cats: Sequence[Cell]) -> np.ndarray:
    """units × categories: how many raters gave each category to each unit."""
    index = {c: k for k, c in enumerate(cats)}
    counts = np.zeros((ratings.n_units, len(cats)), dtype=float)
    for i, row in enumerate(ratings.cells):
        for cell in row:
            if cell is not None:
                counts[i, index[cell]] += 1
    return counts
