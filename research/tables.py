"""The table a person reads for any multi-model run: the input columns, each cell's answer
(`step.field`, `arm`, `arm#2` for a second sample), then each cell's status and error. Built from
the ledger row by row, so an export streams and never holds a million-row run at once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from handai_db import Database, RowStatus, Run
from handai_engine import Plan
from handai_engine.answers import answer_value

Cell = tuple[int, int, int]
Extra = Callable[[dict[Cell, Any]], dict[str, Any]]
RowExtra = Callable[[dict[str, Any], dict[Cell, Any]], dict[str, Any]]  # (input row, cells) -> columns


def cell_name(plan: Plan, cell: Cell) -> str:
    """A cell's column name: the step (when there are several), the arm (when the step has
    several, or the run has one step), and the sample number (when the arm is asked K times)."""
    si, ai, k = cell
    step, arm = plan.steps[si], plan.arms[ai]
    parts = []
    if len(plan.steps) > 1:
        parts.append(step.name)
    if len(step.arms) > 1 or len(plan.steps) == 1:
        parts.append(arm.name)
    name = "/".join(parts)
    return f"{name}#{k + 1}" if arm.samples > 1 else name


def output_columns(plan: Plan, cell: Cell) -> list[str]:
    name = cell_name(plan, cell)
    fields = plan.steps[cell[0]].fields
    return [f"{name}.{f}" for f in fields] if fields else [name]


def cell_values(plan: Plan, cell: Cell, result: Any) -> dict[str, Any]:
    """One cell's output columns, from its ledger result (blank unless it succeeded)."""
    columns = output_columns(plan, cell)
    parsed = result.parsed if result is not None and result.status == RowStatus.SUCCEEDED else None
    fields = plan.steps[cell[0]].fields
    if fields:
        return {c: _cell((parsed or {}).get(f)) for c, f in zip(columns, fields, strict=True)}
    value = answer_value(parsed)
    return {columns[0]: json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value}


@dataclass(frozen=True)
class WideTable:
    """How one tool lays its run out: the extra columns (after the outputs) and their values."""

    plan: Plan
    input_columns: list[str]
    extra_columns: Sequence[str] = ()
    extra: Extra | None = None
    names: Callable[[Cell], str] | None = None
    hidden: tuple[Cell, ...] = ()  # cells whose answers the extra columns already show
    extras_last: bool = False  # after the status columns (Compare's `all_agree`)
    row_extra: RowExtra | None = None  # like `extra`, for columns that also read the input row

    @property
    def cells(self) -> list[Cell]:
        return self.plan.cells()

    def columns(self) -> list[str]:
        outputs = [c for cell in self.cells if cell not in self.hidden for c in self._outputs(cell)]
        statuses = [f"{self._name(cell)}_{what}" for cell in self.cells for what in ("status", "error")]
        if self.extras_last:
            return [*self.input_columns, *outputs, *statuses, *self.extra_columns]
        return [*self.input_columns, *outputs, *self.extra_columns, *statuses]

    def record(self, input_row: dict[str, Any], results: Sequence[Any]) -> dict[str, Any]:
        by_cell = {(r.step, r.arm, r.sample): r for r in results}
        record = {c: input_row.get(c) for c in self.input_columns}
        for cell in self.cells:
            result = by_cell.get(cell)
            if cell not in self.hidden:
                values = cell_values(self.plan, cell, result)
                record.update(zip(self._outputs(cell), values.values(), strict=True))
            record[f"{self._name(cell)}_status"] = result.status if result is not None else None
            record[f"{self._name(cell)}_error"] = result.error_message if result is not None else None
        if self.extra is not None:
            record.update(self.extra(by_cell))
        if self.row_extra is not None:
            record.update(self.row_extra(input_row, by_cell))
        return record

    def _name(self, cell: Cell) -> str:
        return self.names(cell) if self.names else cell_name(self.plan, cell)

    def _outputs(self, cell: Cell) -> list[str]:
        fields = self.plan.steps[cell[0]].fields
        name = self._name(cell)
        return [f"{name}.{f}" for f in fields] if fields else [name]

    def frames(
        self, db: Database, run: Run, *, chunk: int = 5000, rows: Sequence[int] | None = None
    ) -> Iterator[pd.DataFrame]:
        """The table in chunks of rows, streamed from the ledger."""
        columns = self.columns()
        records: list[dict[str, Any]] = []
        sent = False
        for _, input_row, results in db.iter_rows(run.id, rows):
            records.append(self.record(input_row, results))
            if len(records) >= chunk:
                yield pd.DataFrame.from_records(records, columns=columns)
                records, sent = [], True
        if records or not sent:
            yield pd.DataFrame.from_records(records, columns=columns)

    def frame(self, db: Database, run: Run, rows: Sequence[int] | None = None) -> pd.DataFrame:
        return pd.concat(list(self.frames(db, run, rows=rows)), ignore_index=True)


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
