"""Which rows a run sends: all, the first N, a seeded random sample, or those matching a filter on
one column. The description goes on the run, so the record says which rows were chosen."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd


@dataclass(frozen=True)
class RowSelection:
    mode: Literal["all", "first", "sample", "filter"] = "all"
    n: int | None = None
    seed: int | None = None
    column: str | None = None
    values: list[str] = field(default_factory=list)  # keep rows whose cell is one of these
    contains: str | None = None  # or whose cell contains this text (case-insensitive)


def select_rows(df: pd.DataFrame, selection: RowSelection) -> tuple[pd.DataFrame, str]:
    """The chosen rows (original order and index kept) and a sentence saying which they are."""
    total = len(df)
    if selection.mode == "first":
        n = _count(selection.n, total)
        return df.head(n), f"the first {n:,} of {total:,} rows"
    if selection.mode == "sample":
        n = _count(selection.n, total)
        seed = 0 if selection.seed is None else int(selection.seed)
        chosen = df.sample(n=n, random_state=seed).sort_index()
        return chosen, f"a random sample of {n:,} of {total:,} rows (seed {seed})"
    if selection.mode == "filter":
        column = selection.column
        if column not in df.columns:
            raise ValueError(f"No column named {column!r} to filter on.")
        cells = df[column].astype("string").fillna("")
        if selection.values:
            keep = cells.isin([str(v) for v in selection.values])
            said = f"{column} is one of {', '.join(map(str, selection.values))}"
        elif selection.contains:
            keep = cells.str.contains(selection.contains, case=False, regex=False)
            said = f"{column} contains {selection.contains!r}"
        else:
            raise ValueError("Say which values to keep, or the text the cells must contain.")
        chosen = df[keep.to_numpy(dtype=bool)]
        return chosen, f"{len(chosen):,} of {total:,} rows where {said}"
    return df, f"all {total:,} rows"


def _count(n: int | None, total: int) -> int:
    if n is None or n < 1:
        raise ValueError("Say how many rows (at least 1).")
    return min(int(n), total)
