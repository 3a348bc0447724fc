"""The report as files: a CSV with one row per figure, and a Markdown page a reader can follow."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from handai_io import export_bytes, guarded_cells

if TYPE_CHECKING:
    from research.stats.figure import Figure
    from research.stats.gold import GoldResult
    from research.stats.report import Report

HOW_TO_READ = (
    "Alpha, kappa and AC1 are 1 for perfect agreement and 0 for agreement no better than chance; below 0 is "
    "worse than chance. Krippendorff (2004) suggests relying on data with alpha >= 0.800 and drawing only "
    "tentative conclusions from 0.667 <= alpha < 0.800. Percent agreement is not corrected for chance. "
    "An 'undefined' figure could not be computed from these data; its reason is given, never a 0 or 1."
)


CSV_COLUMNS = [
    "scope",
    "raters",
    "statistic",
    "value",
    "ci_low",
    "ci_high",
    "n_units",
    "n_ratings",
    "definition",
    "missing",
    "undefined",
    "ci_method",
]


def number(value: float | None, digits: int = 3) -> str:
    return "undefined" if value is None else f"{value:.{digits}f}"


def ci_text(f: Figure) -> str:
    return f"[{f.ci[0]:.3f}, {f.ci[1]:.3f}]" if f.ci else ""


def report_table(report: Report) -> pd.DataFrame:
    """One row per figure, in the CSV's columns; an undefined figure has an empty value and its reason."""
    rows = []
    for row in report.rows():
        f = row.figure
        ci_low, ci_high = f.ci if f.ci else (None, None)
        cells = [row.scope, row.raters, row.statistic, f.value, ci_low, ci_high, f.n_units, f.n_ratings]
        rows.append([*cells, f.definition, f.missing, f.undefined or "", f.ci_method or ""])
    for rater, g in report.gold.items():
        rows += _gold_rows(rater, g)
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


PER_CODE = {
    "precision": "Of the units this rater gave the code, the share the gold column also gave it.",
    "recall": "Of the units the gold column gave the code, the share this rater also gave it.",
    "f1": "Harmonic mean of precision and recall for this code.",
    "support": "Gold units with this code.",
}


UNDEFINED_PER_CODE = {
    "precision": "the rater never gave this code",
    "recall": "the code is not in the gold column",
    "f1": "the code is neither in the gold column nor answered",
    "support": "",
}
CONFUSION = (
    "Units with this gold label that the rater answered so (off-label and missing answers have their own columns)."
)


def _gold_rows(rater: str, g: GoldResult) -> list[list[object]]:
    """Each code's precision, recall, F1 and support against gold, and every cell of the confusion
    matrix, so the CSV holds every figure the screen and the Markdown show."""

    def row(scope: str, statistic: str, value: object, n: int, definition: str, why: str = "") -> list[object]:
        return [scope, rater, statistic, value, None, None, n, None, definition, "", why, ""]

    rows: list[list[object]] = []
    for score in g.per_code:
        for key, definition in PER_CODE.items():
            value = getattr(score, key)
            why = "" if value is not None else UNDEFINED_PER_CODE[key]
            rows.append(row(f"gold: code {score.code}", key, value, score.support, definition, why))
    for truth, counts in g.confusion.iterrows():
        for predicted, count in counts.items():
            cell = f"gold {truth} / answered {predicted}"
            rows.append(row("gold: confusion", cell, int(count), g.n_units, CONFUSION))
    return rows


def report_csv(report: Report, *, guard: bool = True) -> bytes:
    """UTF-8 with a BOM (Excel), as every Handai CSV export; with ``guard`` (the user's choice, as for
    results) a cell a spreadsheet would run as a formula, such as a rater named "@anna", gets a
    leading ' (``report_guarded_cells`` says how many)."""
    return export_bytes(report_table(report), "csv", guard=guard)


def report_guarded_cells(report: Report) -> int:
    """How many cells of the report's CSV the formula guard changes."""
    return guarded_cells(report_table(report))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _value(f: Figure) -> str:
    return number(f.value) if f.value is not None else f"undefined: {f.undefined}"


def report_markdown(report: Report) -> str:
    s = report.settings
    out = ["# Reliability report", "", "## Settings", ""]
    out += [f"- {key}: {value if value not in (None, [], {}) else '—'}" for key, value in s.items()]
    out += ["", "## How to read", "", HOW_TO_READ, ""]
    out += ["## Figures", ""]
    rows = [
        [r.scope, r.raters, r.figure.name, _value(r.figure), ci_text(r.figure), r.figure.n_units, r.figure.n_ratings]
        for r in report.rows()
    ]
    out += _table(["scope", "raters", "figure", "value", "95% CI", "n units", "n ratings"], rows)
    out += ["", "## Definitions and missing data", ""]
    seen: set[str] = set()
    for r in report.rows():
        key = r.figure.name + r.figure.definition
        if key in seen:
            continue
        seen.add(key)
        out.append(f"- **{r.figure.name}**: {r.figure.definition} Missing data: {r.figure.missing}")
        if r.figure.ci_method:
            out.append(f"  Confidence interval: {r.figure.ci_method}")
    for rater, g in report.gold.items():
        out += ["", f"## Gold labels: {rater}", ""]
        out.append(
            f"{g.n_units} gold-labelled units; {g.invalid} off-label answers (invalid), {g.missing} missing answers."
        )
        out.append("")
        code_rows = [[c.code, number(c.precision), number(c.recall), number(c.f1), c.support] for c in g.per_code]
        out += _table(["code", "precision", "recall", "F1", "support"], code_rows)
        out += ["", "Confusion matrix (rows: gold, columns: answer):", ""]
        matrix = g.confusion
        out += _table(
            ["gold \\ answer", *map(str, matrix.columns)], [[i, *matrix.loc[i].tolist()] for i in matrix.index]
        )
    return "\n".join(out) + "\n"


def report_text(report: Report) -> str:
    """A plain-text table of every figure for a terminal, its definitions numbered underneath."""
    notes: dict[str, int] = {}
    table = [["scope", "raters", "figure", "value", "95% CI", "n units", "n ratings", "def."]]
    for r in report.rows():
        f = r.figure
        note = notes.setdefault(f"{f.definition} Missing data: {f.missing}", len(notes) + 1)
        value = number(f.value) if f.value is not None else "undefined*"
        table.append([r.scope, r.raters, f.name, value, ci_text(f), str(f.n_units), str(f.n_ratings), f"[{note}]"])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    undefined = [(r, r.figure) for r in report.rows() if r.figure.value is None]
    if undefined:
        lines += ["", "* undefined:"] + [f"  {r.scope} {r.raters} {f.name}: {f.undefined}" for r, f in undefined]
    for rater, g in report.gold.items():
        lines += ["", f"Gold labels, {rater}: {g.n_units} units, {g.invalid} off-label, {g.missing} missing answers"]
        lines += [
            f"  {c.code}: precision {number(c.precision)}, recall {number(c.recall)}, "
            f"F1 {number(c.f1)}, support {c.support}"
            for c in g.per_code
        ]
    lines += ["", "Definitions:"] + [f"[{n}] {text}" for text, n in notes.items()]
    cis = {f.ci_method for r in report.rows() if (f := r.figure).ci_method}
    lines += [f"95% CI: {method}" for method in sorted(cis)]
    return "\n".join(lines) + "\n"
