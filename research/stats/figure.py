"""One reported number with everything a reader needs to trust it: its n, its definition, how missing
data was handled, and — when it cannot be computed — why, instead of a silent 0, 1 or NaN."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None
    undefined: str | None  # why `value` is None; None when the value is defined
    n_units: int  # pairable units used
    n_ratings: int  # ratings used
    definition: str
    missing: str
    ci: tuple[float, float] | None = None
    ci_method: str | None = None

    def with_ci(self, ci: tuple[float, float] | None, method: str) -> Figure:
        return replace(self, ci=ci, ci_method=method)


def defined(name: str, value: float, n_units: int, n_ratings: int, definition: str, missing: str) -> Figure:
    return Figure(name, float(value), None, n_units, n_ratings, definition, missing)


def undefined(name: str, why: str, n_units: int, n_ratings: int, definition: str, missing: str) -> Figure:
    return Figure(name, None, why, n_units, n_ratings, definition, missing)
