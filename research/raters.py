"""Raters are columns (DESIGN "The research wing"): a run's model cells, its consensus, imported
or hand-made human codes and adjudicated decisions become one units x raters table, the input of
every reliability figure, the disagreement queue and the coded export.

A cell that failed, was skipped or is still pending is *missing* (None), never a code; "none" is a
code like any other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from handai_db import ADJUDICATED_RATER, Database, RatingKind, RowStatus, Run
from handai_engine import Plan
from handai_engine.answers import answer_value

from .consensus import decide

MODEL, HUMAN, CONSENSUS, ADJUDICATED = "model", "human", "consensus", "adjudicated"
REASON_FIELDS = ("rationale", "reason")


@dataclass(frozen=True)
class Rater:
    name: str  # the column in the table
    group: str  # MODEL, HUMAN, CONSENSUS or ADJUDICATED
    source: str  # what it is, e.g. "openai:gpt-4o-mini, step code"


@dataclass
class RaterTable:
    """One row per unit (the run's row, numbered from 0 in `rows`), one column per rater."""

    frame: pd.DataFrame  # columns: rater names; values: a label, a list of labels, or None
    raters: list[Rater]
    inputs: pd.DataFrame  # the rows' input columns, same index
    reasons: dict[str, dict[int, str]] = field(default_factory=dict)  # rater -> row -> why
    labels: list[str] | None = None  # the codebook's labels, in its order
    multi_label: bool = False
    code_field: str | None = None
    codebook: dict[str, Any] | None = None  # the plan's {"ref", "content"}

    @property
    def rows(self) -> list[int]:
        return list(self.frame.index)

    def groups(self) -> dict[str, str]:
        return {r.name: r.group for r in self.raters}

    def names(self, *groups: str) -> list[str]:
        return [r.name for r in self.raters if not groups or r.group in groups]


def code_field_of(plan: Plan) -> str | None:
    """The field a run's raters are compared on: the codebook's, else the one field the step's
    answers agree on, else its only field."""
    content = (plan.codebook or {}).get("content") or {}
    if content:
        return "codes" if content.get("multi_label") else "code"
    fields = plan.steps[0].agreement_fields if plan.steps else []
    return fields[0] if len(fields) == 1 else None


def step_fields(plan: Plan) -> list[str]:
    """The fields a person may compare a run's raters on (the first step's)."""
    return list(plan.steps[0].fields) if plan.steps else []


def rater_table(db: Database, run: Run, *, compared_on: str | None = None) -> RaterTable:
    """The run as units x raters. `compared_on` picks the output field when the step has several
    (default: the codebook's code field, or the only field; free-text answers as they are)."""
    plan = Plan.of(run)
    content = (plan.codebook or {}).get("content") or {}
    field_name = compared_on or code_field_of(plan)
    cells = [c for c in plan.cells() if plan.steps[c[0]].judge_of is None]
    judges = [c for c in plan.cells() if plan.steps[c[0]].judge_of is not None]
    several_steps = len({c[0] for c in cells}) > 1
    names = {c: _rater_name(plan, c, several_steps) for c in cells}
    raters = [Rater(names[c], MODEL, f"{plan.arms[c[1]].label}, step {plan.steps[c[0]].name}") for c in cells]
    with_consensus = plan.tool == "consensus"
    if with_consensus:
        raters.append(Rater(CONSENSUS, CONSENSUS, "consensus: unanimous, else the judge, else the majority"))
    records: dict[int, dict[str, Any]] = {}
    inputs: dict[int, dict[str, Any]] = {}
    reasons: dict[str, dict[int, str]] = {}
    for row, input_row, results in db.iter_rows(run.id):
        by_cell = {(r.step, r.arm, r.sample): r for r in results}
        inputs[row] = {c: input_row.get(c) for c in run.input_columns}
        record: dict[str, Any] = {}
        for c in cells:
            result = by_cell.get(c)
            parsed = result.parsed if result is not None and result.status == RowStatus.SUCCEEDED else None
            record[names[c]] = _value(parsed, field_name)
            why = _reason(parsed)
            if why:
                reasons.setdefault(names[c], {})[row] = why
        if with_consensus:
            coders = [by_cell.get(c) for c in cells]
            judge = by_cell.get(judges[0]) if judges else None
            decided = decide(coders, judge, plan.steps[0].fields, plan.steps[0].agreement_fields)
            key = f"consensus.{field_name}" if f"consensus.{field_name}" in decided else "consensus"
            record[CONSENSUS] = _clean(decided.get(key))
            if decided.get("judge_reason"):
                reasons.setdefault(CONSENSUS, {})[row] = f"Judge: {decided['judge_reason']}"
        records[row] = record
    frame = pd.DataFrame.from_dict(records, orient="index", columns=[r.name for r in raters], dtype=object)
    table = RaterTable(
        frame,
        raters,
        pd.DataFrame.from_dict(inputs, orient="index", columns=list(run.input_columns), dtype=object),
        reasons,
        labels=_labels(content),
        multi_label=bool(content.get("multi_label")),
        code_field=field_name,
        codebook=plan.codebook,
    )
    _add_ratings(db, run, table)
    return table


def _add_ratings(db: Database, run: Run, table: RaterTable) -> None:
    """Human codes (one column per coder) and the adjudicated decisions, after the models."""
    by_rater: dict[str, dict[int, Any]] = {}
    kinds: dict[str, str] = {}
    for rating in db.ratings(run.id):
        by_rater.setdefault(rating.rater, {})[rating.row_index] = _clean(rating.value)
        kinds[rating.rater] = rating.kind
        if rating.note:
            table.reasons.setdefault(rating.rater, {})[rating.row_index] = rating.note
    order = sorted(by_rater, key=lambda r: (kinds[r] == RatingKind.ADJUDICATED, r))
    for rater in order:
        name = rater if rater not in table.frame.columns else f"{rater} (human)"
        group = ADJUDICATED if kinds[rater] == RatingKind.ADJUDICATED else HUMAN
        what = "settled disagreements" if rater == ADJUDICATED_RATER else "human coder"
        table.frame[name] = pd.Series(by_rater[rater], dtype=object).reindex(table.frame.index)
        table.frame[name] = table.frame[name].astype(object).where(table.frame[name].notna(), None)
        table.raters.append(Rater(name, group, what))


def coded_frame(table: RaterTable, *, separator: str = "; ") -> pd.DataFrame:
    """The coded table a researcher exports: the input columns, then every rater's code (a
    multi-label answer joined by `separator`), then each rater's reason where there is one."""
    out = table.inputs.copy()
    out.insert(0, "row", [r + 1 for r in table.frame.index])
    for rater in table.names():
        out[rater] = [_shown(v, separator) for v in table.frame[rater]]
    for rater, why in table.reasons.items():
        out[f"{rater} reason"] = [why.get(r) for r in table.frame.index]
    return out


def align_codes(
    inputs: pd.DataFrame,
    upload: pd.DataFrame,
    coders: Sequence[str],
    *,
    key: str | None = None,
    labels: Sequence[str] | None = None,
    multi_label: bool = False,
    separator: str = ";",
) -> tuple[dict[str, dict[int, Any]], str]:
    """Imported human codes matched to the run's rows: by a key column present in both (an id),
    else by position (the upload's first row is the run's first row). A code written in another
    case or with spaces around it is the codebook's label ("Price " is "price"); multi-label cells
    are split on `separator`. Returns {coder: {row: code}} and one sentence saying how they were
    matched and what was left out."""
    if key is not None:
        if key not in upload.columns or key not in inputs.columns:
            raise ValueError(f"The key column '{key}' must be in both the run's input and the uploaded file.")
        repeated = int(inputs[key].map(_key).duplicated().sum())
        if repeated:
            raise ValueError(f"The key column '{key}' repeats {repeated} values in the run's rows; pick an id.")
        position = {_key(v): row for row, v in inputs[key].items()}
        duplicates = int(upload[key].map(_key).duplicated().sum())
        if duplicates:
            raise ValueError(f"The key column '{key}' repeats {duplicates} values in the uploaded file; pick an id.")
        matched = {i: position.get(_key(v)) for i, v in upload[key].items()}
        rows = {i: r for i, r in matched.items() if r is not None}
        how = f"Matched on '{key}': {len(rows):,} of {len(upload):,} uploaded rows found in the run"
        unmatched = len(upload) - len(rows)
        how += f"; {unmatched:,} not found were left out." if unmatched else "."
    else:
        n = min(len(upload), len(inputs))
        rows = dict(zip(list(upload.index[:n]), list(inputs.index[:n]), strict=True))
        how = f"Matched by position: the file's first {n:,} rows are the run's first {n:,} rows"
        extra = len(upload) - n
        how += f"; {extra:,} extra uploaded rows were left out." if extra > 0 else "."
    by_fold = {label.casefold(): label for label in labels or ()}

    def code(value: Any) -> Any:
        value = _clean(value)
        if value is None:
            return None
        parts = [p.strip() for p in str(value).split(separator)] if multi_label else [value]
        named = [by_fold.get(p.casefold(), p) for p in parts if p]
        return (named or None) if multi_label else named[0]

    codes = {coder: {row: code(upload.at[i, coder]) for i, row in rows.items()} for coder in coders}
    return codes, how


def _rater_name(plan: Plan, cell: tuple[int, int, int], several_steps: bool) -> str:
    """The model's name (`#2` for its second sample), after its step's when several steps code."""
    step, arm, sample = plan.steps[cell[0]], plan.arms[cell[1]], cell[2]
    name = f"{step.name}/{arm.name}" if several_steps else arm.name
    return f"{name}#{sample + 1}" if arm.samples > 1 else name


def _value(parsed: Mapping[str, Any] | None, field_name: str | None) -> Any:
    if parsed is None:
        return None
    if field_name is not None and field_name in parsed:
        return _clean(parsed.get(field_name))
    return _clean(answer_value(parsed) if field_name is None else None)


def _reason(parsed: Mapping[str, Any] | None) -> str | None:
    for name in REASON_FIELDS:
        value = (parsed or {}).get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _clean(value: Any) -> Any:
    """An empty answer is missing; a list keeps its labels (empty list = missing)."""
    if value is None:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value if v is not None and str(v).strip()]
        return items or None
    if isinstance(value, dict):
        return None
    text = str(value).strip()
    return text or None


def _shown(value: Any, separator: str) -> Any:
    return separator.join(value) if isinstance(value, list) else value


def _key(value: Any) -> str:
    return str(value).strip()


def _labels(content: Mapping[str, Any]) -> list[str] | None:
    if not content:
        return None
    from .codebook import Codebook

    return Codebook.from_record(content).labels()
