"""Each rater against a gold column: accuracy, per-code precision/recall/F1, macro-F1 over the label set,
Cohen's kappa and the confusion matrix. An answer outside the label set is wrong, never a new class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from research.stats.agreement import cohen_kappa
from research.stats.figure import Figure, defined, undefined
from research.stats.matrix import Cell

OFF_LABEL = "(off-label)"
NO_ANSWER = "(missing)"
MISSING = (
    "Units without a gold label are left out. On the others a missing answer counts as wrong (and is "
    "counted as missing); an answer outside the label set counts as wrong (and is counted as invalid)."
)
MISSING_KAPPA = (
    "Units without a gold label, and units the rater left empty, are left out; an off-label answer stays in "
    "as a value that matches no gold label."
)
ACCURACY = "Accuracy: the share of gold-labelled units on which the rater's answer equals the gold label."
MACRO_F1 = (
    "Macro-F1: the unweighted mean of per-code F1 = 2TP / (2TP + FP + FN) over the codes of the label set; "
    "a code that is neither in the gold column nor answered has no F1 and is left out of the mean."
)
KAPPA = "Cohen's kappa (Cohen 1960), unweighted, between the rater and the gold labels."


@dataclass(frozen=True)
class CodeScore:
    code: str
    precision: float | None  # None: the rater never answered this code
    recall: float | None  # None: the code never occurs in the gold column
    f1: float | None  # None: neither
    support: int  # gold units with this code
    predicted: int  # answers with this code


@dataclass(frozen=True)
class GoldResult:
    rater: str
    n_units: int
    accuracy: Figure
    macro_f1: Figure
    cohen_kappa: Figure
    invalid: int
    missing: int
    per_code: list[CodeScore]
    confusion: pd.DataFrame  # gold labels × (labels + off-label + missing), counts


def check_gold(gold: Sequence[Cell], labels: Sequence[str]) -> None:
    outside = sorted({str(g) for g in gold if g is not None and g not in labels})
    if outside:
        raise ValueError(
            f"The gold column holds value(s) outside the label set: {', '.join(outside)}. "
            "Add them to the labels or correct the gold column."
        )


def _score(code: str, pairs: list[tuple[Cell, Cell]]) -> CodeScore:
    tp = sum(g == code and a == code for g, a in pairs)
    support = sum(g == code for g, _ in pairs)
    predicted = sum(a == code for _, a in pairs)
    fp, fn = predicted - tp, support - tp
    precision = tp / predicted if predicted else None
    recall = tp / support if support else None
    f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else None
    return CodeScore(code, precision, recall, f1, support, predicted)


def evaluate(rater: str, gold: Sequence[Cell], answers: Sequence[Cell], labels: Sequence[str]) -> GoldResult:
    """`gold` and `answers` unit by unit; `labels` is the label set (gold values must lie in it)."""
    check_gold(gold, labels)
    pairs = [(g, a) for g, a in zip(gold, answers, strict=True) if g is not None]
    n = len(pairs)
    invalid = sum(a is not None and a not in labels for _, a in pairs)
    missing = sum(a is None for _, a in pairs)
    ratings = n - missing
    scores = [_score(code, pairs) for code in labels]
    columns = [*labels, OFF_LABEL, NO_ANSWER]
    known = set(labels)
    cells = Counter((g, NO_ANSWER if a is None else (a if a in known else OFF_LABEL)) for g, a in pairs)
    confusion = pd.DataFrame(
        [[cells[(g, c)] for c in columns] for g in labels], index=list(labels), columns=columns, dtype=int
    )
    if n == 0:
        why = "no unit has a gold label"
        accuracy = undefined("Accuracy", why, 0, 0, ACCURACY, MISSING)
        macro = undefined("Macro-F1", why, 0, 0, MACRO_F1, MISSING)
    else:
        accuracy = defined("Accuracy", sum(g == a for g, a in pairs) / n, n, ratings, ACCURACY, MISSING)
        f1s = [s.f1 for s in scores if s.f1 is not None]
        macro = (
            defined("Macro-F1", sum(f1s) / len(f1s), n, ratings, MACRO_F1, MISSING)
            if f1s
            else undefined("Macro-F1", "no code of the label set occurs or was answered", n, ratings, MACRO_F1, MISSING)
        )
    kappa = cohen_kappa([g for g, _ in pairs], [a for _, a in pairs])
    kappa = Figure(
        "Cohen's kappa vs gold", kappa.value, kappa.undefined, kappa.n_units, kappa.n_ratings, KAPPA, MISSING_KAPPA
    )
    return GoldResult(rater, n, accuracy, macro, kappa, invalid, missing, scores, confusion)
