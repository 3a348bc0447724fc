"""Rater groups side by side: model–human agreement beside human–human, and alpha within each group."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, combinations_with_replacement

from research.stats.agreement import MISSING_PAIR, cohen_kappa, pair_percent
from research.stats.figure import Figure, defined, undefined
from research.stats.matrix import Ratings

MEAN_KAPPA = "Mean of the pairwise Cohen's kappas (unweighted) over rater pairs with one rater from each group"
MEAN_PERCENT = "Mean of the pairwise percent agreements over rater pairs with one rater from each group"
MISSING_MEAN = (
    MISSING_PAIR + " Pairs whose figure is undefined are left out of the mean; raters without a group are left out."
)


@dataclass(frozen=True)
class GroupPair:
    groups: tuple[str, str]
    n_pairs: int  # rater pairs averaged
    cohen_kappa: Figure
    percent_agreement: Figure


def check_groups(groups: Mapping[str, str], raters: Sequence[str]) -> None:
    unknown = [r for r in groups if r not in raters]
    if unknown:
        raise ValueError(f"Groups name rater(s) that are not among the raters: {', '.join(unknown)}.")


def _mean(name: str, figures: list[Figure], definition: str, ratings: Ratings, pairs: list[tuple[str, str]]) -> Figure:
    values = [f.value for f in figures if f.value is not None]
    units = {
        i
        for a, b in pairs
        for i, row in enumerate(zip(ratings.column(a), ratings.column(b), strict=True))
        if None not in row
    }
    m = sum(f.n_ratings for f in figures if f.value is not None)
    if not values:
        why = (
            "no rater pair between these groups" if not pairs else "undefined for every rater pair between these groups"
        )
        return undefined(name, why, len(units), m, f"{definition}.", MISSING_MEAN)
    used = f"{len(values)} pair" + ("s" if len(values) != 1 else "")
    return defined(name, sum(values) / len(values), len(units), m, f"{definition} ({used}).", MISSING_MEAN)


def _pairs(members: dict[str, list[str]], g1: str, g2: str) -> list[tuple[str, str]]:
    if g1 == g2:
        return list(combinations(members[g1], 2))
    return [(a, b) for a in members[g1] for b in members[g2]]


def group_pairs(ratings: Ratings, groups: Mapping[str, str]) -> list[GroupPair]:
    members: dict[str, list[str]] = {}
    for rater in ratings.raters:
        if rater in groups:
            members.setdefault(groups[rater], []).append(rater)
    out = []
    for g1, g2 in combinations_with_replacement(list(members), 2):
        pairs = _pairs(members, g1, g2)
        kappas = [cohen_kappa(ratings.column(a), ratings.column(b)) for a, b in pairs]
        percents = [pair_percent(ratings.column(a), ratings.column(b)) for a, b in pairs]
        kappa = _mean(f"Mean Cohen's kappa, {g1}–{g2}", kappas, MEAN_KAPPA, ratings, pairs)
        percent = _mean(f"Mean percent agreement, {g1}–{g2}", percents, MEAN_PERCENT, ratings, pairs)
        out.append(GroupPair((g1, g2), len(pairs), kappa, percent))
    return out


def group_alphas(ratings: Ratings, groups: Mapping[str, str], alpha: Callable[[Ratings], Figure]) -> dict[str, Figure]:
    """`alpha` among all raters, then among the raters of each group alone (no CI here)."""
    out = {"all raters": alpha(ratings)}
    for group in dict.fromkeys(groups[r] for r in ratings.raters if r in groups):
        members = [r for r in ratings.raters if groups.get(r) == group]
        figure = alpha(ratings.subset(members))
        if len(members) < 2:
            figure = undefined(
                figure.name, f"only one rater in group '{group}'", 0, 0, figure.definition, figure.missing
            )
        out[f"{group} only"] = figure
    return out
