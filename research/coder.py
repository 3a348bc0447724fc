"""Qualitative coder: one or more models apply a codebook to every row. The answer is constrained
to the codebook's labels (an enum where the provider enforces a schema); an answer outside them
is kept, counted and shown as off-codebook, never dropped or blanked; each evidence quote is
checked against the row's text as it was sent."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from handai_db import RowStatus
from handai_engine import Plan, PlanError, Step
from handai_errors import ErrorKind
from handai_prompts import label_for, render_template, split_labels

from .arms import make_arms
from .codebook import CODE_FIELD, CODES_FIELD, EVIDENCE_FIELD, Code, Codebook, CodebookError, code_field
from .tables import Cell, WideTable, cell_name

STEP = "code"
MAX_MODELS = 8
JOIN = "; "  # how a multi-label answer is shown in one cell
OFF_CODEBOOK, EVIDENCE_FOUND, ALL_AGREE = "off_codebook", "evidence_found", "all_agree"


# -- planning -----------------------------------------------------------------------------------
def with_codebook(
    codebook: Codebook, *, task: str = "", rationale: bool = True, evidence: bool = True
) -> dict[str, Any]:
    """The instruction, output schema and compared field a codebook gives any planner (Coder,
    Compare, Consensus: `compare_plan(models, **with_codebook(cb, task=...))`): coders agree when
    their codes match, whatever their rationales say."""
    try:
        codebook.check()
    except CodebookError as exc:
        raise PlanError(f"The codebook cannot be used yet: {exc}") from exc
    return {
        "instruction": codebook.instruction(task),
        "output_schema": codebook.output_schema(rationale=rationale, evidence=evidence),
        "compare_on": (code_field(codebook),),
    }


def codebook_record(
    codebook: Codebook,
    ref: dict[str, Any] | None = None,
    *,
    task: str = "",
    rationale: bool = True,
    evidence: bool = True,
) -> dict[str, Any]:
    """What a plan records of its codebook (`Plan.codebook`): the stored version it came from, the
    content applied (so the run says which codebook it used even after the codebook changes), and
    the task and options it was applied with (so the run can be loaded back into its page)."""
    return {
        "ref": dict(ref) if ref else None,
        "content": codebook.record(),
        "task": task,
        "rationale": rationale,
        "evidence": evidence,
    }


def coder_plan(
    codebook: Codebook,
    models: Sequence[tuple[str, str]],
    *,
    task: str = "",
    columns: Sequence[str] = (),
    row_template: str | None = None,
    rationale: bool = True,
    evidence: bool = True,
    temperature: float | None = None,
    max_tokens: int | None = None,
    samples: int = 1,
    endpoints: dict[str, dict[str, Any]] | None = None,
    codebook_ref: dict[str, Any] | None = None,
) -> Plan:
    """One step, `code`, answered by every model (`samples` times each)."""
    if not 1 <= len(models) <= MAX_MODELS:
        raise PlanError(f"The coder takes 1 to {MAX_MODELS} models; {len(models)} chosen.")
    spec = with_codebook(codebook, task=task, rationale=rationale, evidence=evidence)
    arms = make_arms(models, endpoints=endpoints, temperature=temperature, max_tokens=max_tokens, samples=samples)
    step = Step(
        STEP,
        spec["instruction"],
        tuple(a.name for a in arms),
        row_template=row_template,
        columns=tuple(columns),
        output_schema=spec["output_schema"],
        compare_on=spec["compare_on"],
    )
    return Plan(
        "coder",
        tuple(arms),
        (step,),
        codebook=codebook_record(codebook, codebook_ref, task=task, rationale=rationale, evidence=evidence),
    )


def plan_codebook(plan: Plan) -> Codebook | None:
    """The codebook a run applied: the recorded one, else one read from the first step's code
    field (a Compare or Consensus run given a codebook's schema but no record)."""
    if plan.codebook and plan.codebook.get("content"):
        return Codebook.from_record(plan.codebook["content"])
    fields = (plan.steps[0].output_schema or {}).get("fields") or {}
    for name, kind in ((CODES_FIELD, "categories"), (CODE_FIELD, "category")):
        spec = fields.get(name) or {}
        if spec.get("type") == kind:
            codes = tuple(Code(label) for label in spec.get("labels") or [])
            return Codebook("", codes, multi_label=kind == "categories", none_code=None)
    return None


# -- checking one answer ------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerCheck:
    codes: list[str] = field(default_factory=list)  # what the coder chose, each brought to its label
    off_codebook: list[str] = field(default_factory=list)  # answers that are not labels: kept and shown
    quotes: list[str] = field(default_factory=list)  # the evidence quotes given
    quotes_missing: list[str] = field(default_factory=list)  # quotes not found in the row's text

    @property
    def evidence_found(self) -> bool | None:
        """Whether every quote is in the text; None when there is no quote to check."""
        return None if not self.quotes else not self.quotes_missing


def answer_codes(codebook: Codebook, parsed: dict[str, Any] | None) -> list[str]:
    """The code(s) of an answer, as a list, each brought to its label where it is one."""
    if not parsed:
        return []
    labels = codebook.labels()
    value = parsed.get(code_field(codebook))
    if value is None:  # a judge or another tool may answer in the other field
        value = parsed.get(CODE_FIELD if codebook.multi_label else CODES_FIELD)
    if isinstance(value, str):
        items: list[Any] = split_labels(value, labels) if codebook.multi_label else [value]
    elif isinstance(value, list):
        items = value
    elif value is None:
        items = []
    else:
        items = [value]
    chosen = [label_for(v, labels) if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in items]
    return [c for i, c in enumerate(chosen) if c.strip() and c not in chosen[:i]]


def check_answer(codebook: Codebook, parsed: dict[str, Any] | None, text: str) -> AnswerCheck:
    """The chosen codes, those off the codebook (none are, for a codebook without codes), and the
    evidence quotes not found in `text`."""
    codes = answer_codes(codebook, parsed)
    labels = set(codebook.labels())
    quotes = evidence_quotes((parsed or {}).get(EVIDENCE_FIELD))
    haystack = normalize_quote(text)
    return AnswerCheck(
        codes=codes,
        off_codebook=[c for c in codes if c not in labels] if labels else [],
        quotes=quotes,
        quotes_missing=[q for q in quotes if not quote_in(q, haystack)],
    )


def evidence_quotes(evidence: Any) -> list[str]:
    """Every quote in an evidence value: a text, a list of texts, or {code: quote(s)}."""
    if evidence is None:
        return []
    if isinstance(evidence, str):
        return [evidence.strip()] if evidence.strip() else []
    if isinstance(evidence, dict):
        return [q for value in evidence.values() for q in evidence_quotes(value)]
    if isinstance(evidence, list):
        return [q for value in evidence for q in evidence_quotes(value)]
    return [str(evidence)]


_QUOTES = str.maketrans(
    {
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", '"'),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032`\u00b4", "'"),
        **dict.fromkeys("\u2013\u2014\u2212", "-"),
        "\u2026": "...",
        "\u00a0": " ",
    }
)
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\[\.\.\.\]|\[…\])\s*")


def normalize_quote(text: str) -> str:
    """Text as a quote is compared: Unicode-composed, curly quotes and dashes made plain, spaces
    collapsed, case folded."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.split()).casefold()


def quote_in(quote: str, haystack: str) -> bool:
    """Whether a quote is in the (normalised) text: quote marks around it are ignored, and an
    ellipsis ("...") may stand for left-out words, the parts still in order."""
    wanted = normalize_quote(quote).strip(" \"'")
    parts = [p.strip(" \"'") for p in _ELLIPSIS.split(wanted)]
    at = 0
    for part in (p for p in parts if p):
        found = haystack.find(part, at)
        if found < 0:
            return False
        at = found + len(part)
    return True


def source_text(step: Step, row: dict[str, Any]) -> str:
    """The row's text as the step sent it: its template filled in, else its columns' values (all
    columns when none are chosen), one per line."""
    if step.row_template:
        return render_template(step.row_template, row)
    columns = list(step.columns) or list(row)
    return "\n".join(str(row[c]) for c in columns if row.get(c) is not None)


# -- the table ----------------------------------------------------------------------------------
def shown(value: Any) -> Any:
    """A cell value as a person reads it: a list of codes joined with "; ", a {code: quote}
    object as "code: quote; …"."""
    if isinstance(value, list):
        return JOIN.join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in value)
    if isinstance(value, dict):
        return JOIN.join(f"{k}: {shown(v)}" for k, v in value.items())
    return value


def coder_table(plan: Plan, input_columns: Sequence[str]) -> WideTable:
    """The input columns; each coder's code (or codes, joined with "; "), rationale and evidence;
    `off_codebook` (answers not in the codebook, kept as given) and `evidence_found` (whether
    every quote is in the row's text); `all_agree` when there are several coders; then statuses.
    A run with one coder names its columns `code`, `rationale`, … without the model's name."""
    codebook = plan_codebook(plan) or Codebook("", ())
    cells = plan.cells()
    single = len(cells) == 1

    def prefix(cell: Cell) -> str:
        return "" if single else f"{cell_name(plan, cell)}."

    def fields(cell: Cell) -> list[str]:
        return plan.steps[cell[0]].fields or ["output"]

    columns: list[str] = []
    for cell in cells:
        columns += [f"{prefix(cell)}{f}" for f in fields(cell)]
        if not single:
            columns.append(f"{prefix(cell)}{EVIDENCE_FOUND}")
    columns += [OFF_CODEBOOK, *([EVIDENCE_FOUND] if single else [ALL_AGREE])]

    def row_extra(row: dict[str, Any], by_cell: dict[Cell, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        off: list[str] = []
        keys: list[tuple[str, ...] | None] = []
        for cell in cells:
            result = by_cell.get(cell)
            parsed = result.parsed if result is not None and result.status == RowStatus.SUCCEEDED else None
            for f in fields(cell):
                out[f"{prefix(cell)}{f}"] = shown((parsed or {}).get(f))
            check = check_answer(codebook, parsed, source_text(plan.steps[cell[0]], row))
            out[f"{prefix(cell)}{EVIDENCE_FOUND}"] = check.evidence_found
            off += [c if single else f"{cell_name(plan, cell)}: {c}" for c in check.off_codebook]
            keys.append(tuple(sorted(check.codes)) if parsed is not None else None)
        out[OFF_CODEBOOK] = JOIN.join(off) or None
        if not single:
            out[ALL_AGREE] = None not in keys and len(set(keys)) == 1
        return out

    return WideTable(plan, list(input_columns), columns, hidden=tuple(cells), row_extra=row_extra)


# -- the run's figures --------------------------------------------------------------------------
@dataclass
class CoderSummary:
    """What the page and the command line show after a coder run, counted over every cell."""

    cells: int = 0
    coded: int = 0  # succeeded with every code in the codebook
    empty: int = 0  # succeeded with no code at all (a blank answer): missing in every figure
    off_codebook: int = 0  # succeeded, with at least one answer outside the codebook (kept)
    none: int = 0  # chose the codebook's "none" option
    unparseable: int = 0  # failed: the reply was not the JSON asked for
    failed: int = 0  # failed for any other reason
    not_done: int = 0  # pending or skipped
    quotes_checked: int = 0
    quotes_missing: int = 0  # cells whose evidence quotes are not all in the row's text
    code_counts: Counter[str] = field(default_factory=Counter)  # how often each answer was given
    off_answers: Counter[str] = field(default_factory=Counter)  # the off-codebook answers themselves

    def as_dict(self) -> dict[str, Any]:
        return {
            "cells": self.cells,
            "coded": self.coded,
            "empty": self.empty,
            "off_codebook": self.off_codebook,
            "none": self.none,
            "unparseable": self.unparseable,
            "failed": self.failed,
            "not_done": self.not_done,
            "quotes_checked": self.quotes_checked,
            "quotes_missing": self.quotes_missing,
            "code_counts": dict(self.code_counts.most_common()),
            "off_answers": dict(self.off_answers.most_common()),
        }


def coder_summary(plan: Plan, rows: Iterable[tuple[int, dict[str, Any], Sequence[Any]]]) -> CoderSummary:
    """Counts over a run's rows as `Database.iter_rows` streams them (row index, input, cells)."""
    codebook = plan_codebook(plan) or Codebook("", ())
    summary = CoderSummary()
    for _, row, results in rows:
        for result in results:
            summary.cells += 1
            if result.status == RowStatus.FAILED:
                if result.error_kind == ErrorKind.UNPARSEABLE:
                    summary.unparseable += 1
                else:
                    summary.failed += 1
                continue
            if result.status != RowStatus.SUCCEEDED:
                summary.not_done += 1
                continue
            check = check_answer(codebook, result.parsed, source_text(plan.steps[result.step], row))
            summary.code_counts.update(check.codes)
            if check.off_codebook:
                summary.off_codebook += 1
                summary.off_answers.update(check.off_codebook)
            elif not check.codes:
                summary.empty += 1
            else:
                summary.coded += 1
            if codebook.none_code and codebook.none_code in check.codes:
                summary.none += 1
            if check.quotes:
                summary.quotes_checked += 1
                summary.quotes_missing += bool(check.quotes_missing)
    return summary
