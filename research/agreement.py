"""Agreement between arms on the same rows, until the reliability statistics land: per-row
agreement and percent agreement, overall and for each pair, each with its n and definition.
Answers are compared after trimming spaces and ignoring letter case (`answer_key`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

OVERALL = (
    "Percent agreement (all raters): the share of rows, among rows every model answered, on which "
    "all models gave the same answer (compared ignoring case and surrounding spaces)."
)
PAIRWISE = "Pairwise percent agreement: the share of rows both models answered on which the two gave the same answer."
MISSING = "Rows where a model failed or was skipped are left out of the figures that need its answer."


@dataclass(frozen=True)
class PairAgreement:
    raters: tuple[str, str]
    n: int
    percent: float | None  # None: undefined (no row both answered)


@dataclass(frozen=True)
class Agreement:
    n_units: int  # rows every rater answered
    n_rows: int
    percent: float | None  # None: undefined
    pairwise: list[PairAgreement]
    definition: str = OVERALL
    missing: str = MISSING

    def describe(self) -> str:
        if self.percent is None:
            return f"Percent agreement: undefined (no row was answered by every model; {self.n_rows} rows)."
        return (
            f"Percent agreement: {self.percent:.1%} over {self.n_units} of {self.n_rows} rows answered by every model."
        )


def row_agrees(keys: Sequence[str | None]) -> bool | None:
    """Whether every rater gave the same answer on a row; None when one gave none."""
    if not keys or any(k is None for k in keys):
        return None
    return len(set(keys)) == 1


def percent_agreement(ratings: Mapping[str, Sequence[str | None]]) -> Agreement:
    """`ratings`: rater -> one answer key per row (None = missing), all the same length."""
    raters = list(ratings)
    n_rows = len(next(iter(ratings.values()), []))
    rows = list(zip(*(ratings[r] for r in raters), strict=True)) if raters else []
    verdicts = [row_agrees(list(r)) for r in rows]
    complete = [v for v in verdicts if v is not None]
    pairs = []
    for a, b in combinations(raters, 2):
        both = [(x, y) for x, y in zip(ratings[a], ratings[b], strict=True) if x is not None and y is not None]
        pairs.append(PairAgreement((a, b), len(both), sum(x == y for x, y in both) / len(both) if both else None))
    percent = sum(complete) / len(complete) if complete else None
    return Agreement(len(complete), n_rows, percent, pairs)
