"""The disagreement queue: the rows where the coders (models and people) did not all give the same
code, the most divided first, each with every coder's answer and reason, for a person to settle.
Settled rows become the `adjudicated` rater: the gold column of the next validation."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .raters import ADJUDICATED, CONSENSUS, RaterTable

BY_DISAGREEMENT = "most divided first"
BY_JUDGE = "judge involved first"
IN_ORDER = "row order"
ORDERS = (BY_DISAGREEMENT, BY_JUDGE, IN_ORDER)


@dataclass(frozen=True)
class Disagreement:
    row: int  # the run's row, from 0 (shown from 1)
    answers: dict[str, Any]  # coder -> code (None: no answer)
    reasons: dict[str, str]  # coder -> why, where the coder gave a reason
    divided: float  # 1 - the share of answers that are the most common one (0: all agree)
    distinct: int  # how many different codes were given
    settled: Any = None  # the decision already recorded, if any
    judged: bool = False  # a judge (consensus) decided this row

    @property
    def options(self) -> list[Any]:
        """The answers given, most common first: what a person picks from."""
        counts = Counter(_key(v) for v in self.answers.values() if v is not None)
        seen: dict[str, Any] = {}
        for value in self.answers.values():
            if value is not None:
                seen.setdefault(_key(value), value)
        return [seen[k] for k, _ in counts.most_common()]


def disagreements(
    table: RaterTable,
    *,
    coders: Sequence[str] | None = None,
    order: str = BY_DISAGREEMENT,
    include_settled: bool = False,
) -> list[Disagreement]:
    """Rows where at least two of `coders` (default: every model and human coder) answered and
    not all the same; a row one coder left blank is not a disagreement on that account."""
    chosen = list(coders) if coders is not None else table.names("model", "human")
    settled_column = ADJUDICATED if ADJUDICATED in table.frame.columns else None
    judged_reasons = table.reasons.get(CONSENSUS, {})
    queue: list[Disagreement] = []
    for row in table.frame.index:
        answers = {c: table.frame.at[row, c] for c in chosen}
        given = [_key(v) for v in answers.values() if v is not None]
        if len(given) < 2 or len(set(given)) == 1:
            continue
        settled = table.frame.at[row, settled_column] if settled_column else None
        if settled is not None and not include_settled:
            continue
        top = Counter(given).most_common(1)[0][1]
        reasons = {c: table.reasons[c][row] for c in chosen if row in table.reasons.get(c, {})}
        if row in judged_reasons:
            reasons[CONSENSUS] = judged_reasons[row]
        queue.append(
            Disagreement(
                int(row), answers, reasons, 1 - top / len(given), len(set(given)), settled, row in judged_reasons
            )
        )
    if order == BY_DISAGREEMENT:
        queue.sort(key=lambda d: (-d.divided, -d.distinct, d.row))
    elif order == BY_JUDGE:
        queue.sort(key=lambda d: (not d.judged, -d.divided, d.row))
    return queue


def summary(table: RaterTable, coders: Sequence[str] | None = None) -> dict[str, int]:
    """How many rows the coders answered, disagreed on, and how many of those are settled."""
    every = disagreements(table, coders=coders, include_settled=True)
    return {
        "rows": len(table.frame),
        "disagreements": len(every),
        "settled": sum(d.settled is not None for d in every),
        "open": sum(d.settled is None for d in every),
    }


def _key(value: Any) -> str:
    """Codes compared as the statistics compare them: exactly, after trimming spaces (answers on
    the codebook are already its labels); a multi-label answer as a set."""
    if isinstance(value, list | tuple):
        return "; ".join(sorted({str(v).strip() for v in value}))
    return str(value).strip()
