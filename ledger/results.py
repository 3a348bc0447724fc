"""Reading a run's results: the rows, one row streamed with its cells, finish times, and the input
rebuilt with its outputs as a table."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import select

from handai_prompts import describe_flags, is_structured
from ledger.models import Result, RowStatus
from ledger.store import Store

# Cells in a fixed order (the cell index's): PostgreSQL, unlike SQLite, returns rows in no order
# of their own.
_CELL_ORDER = (Result.row_index, Result.step, Result.arm, Result.sample)


class ResultsMixin(Store):
    """Read a run's results, streamed where a run may be large."""

    def results(self, run_id: int, *, statuses: Sequence[str] = (), error_kinds: Sequence[str] = ()) -> list[Result]:
        stmt = select(Result).where(Result.run_id == run_id).order_by(*_CELL_ORDER)
        if statuses:
            stmt = stmt.where(Result.status.in_(statuses))
        if error_kinds:
            stmt = stmt.where(Result.error_kind.in_(error_kinds))
        with self.session() as s:
            return list(s.scalars(stmt))

    def result(self, run_id: int, row_index: int) -> Result | None:
        with self.session() as s:
            stmt = select(Result).where(Result.run_id == run_id, Result.row_index == row_index)
            return s.scalar(stmt.order_by(*_CELL_ORDER).limit(1))

    def iter_rows(
        self, run_id: int, rows: Sequence[int] | None = None
    ) -> Iterator[tuple[int, dict[str, Any], list[Any]]]:
        """Every row of a run with all its cells (row_index, input, cells ordered by step, arm,
        sample), streamed from the ledger: exports of a million-row run never hold it whole."""
        stmt = (
            select(
                Result.row_index,
                Result.step,
                Result.arm,
                Result.sample,
                Result.input,
                Result.status,
                Result.raw,
                Result.parsed,
                Result.error_kind,
                Result.error_message,
                Result.latency_ms,
                Result.tokens_in,
                Result.tokens_out,
                Result.cost_usd,
                Result.flags,
            )
            .where(Result.run_id == run_id)
            .order_by(*_CELL_ORDER)
        )
        if rows is not None:
            stmt = stmt.where(Result.row_index.in_(list(rows)))
        current: tuple[int, dict[str, Any], list[Any]] | None = None
        with self.session() as s:
            for cell in s.execute(stmt.execution_options(yield_per=5000)):
                if current is None or current[0] != cell.row_index:
                    if current is not None:
                        yield current
                    current = (cell.row_index, cell.input or {}, [])
                current[2].append(cell)
        if current is not None:
            yield current

    def finished_times(self, run_id: int) -> pd.DataFrame:
        """When each finished row finished, its status, latency and error kind (charts over time):
        four columns read alone, not the rows' texts."""
        stmt = select(
            Result.updated_at.label("time"),
            Result.status,
            Result.latency_ms,
            Result.error_kind.label("error"),
        ).where(
            Result.run_id == run_id,
            Result.status.in_([RowStatus.SUCCEEDED, RowStatus.FAILED]),
            Result.updated_at.is_not(None),
        )
        with self.session() as s:
            return pd.DataFrame(s.execute(stmt).mappings().all(), columns=["time", "status", "latency_ms", "error"])

    def latest_finished(self, run_id: int, n: int) -> list[int]:
        """Row indexes of the `n` rows that finished last, newest first (live spot checks)."""
        stmt = (
            select(Result.row_index)
            .where(Result.run_id == run_id, Result.status.in_([RowStatus.SUCCEEDED, RowStatus.FAILED]))
            .order_by(Result.updated_at.desc(), Result.row_index.desc())
            .limit(n)
        )
        with self.session() as s:
            return list(s.scalars(stmt))

    def results_frame(
        self, run_id: int, *, statuses: Sequence[str] = (), rows: Sequence[int] | None = None
    ) -> pd.DataFrame:
        """The input rebuilt with its outputs: input columns in order, then the output
        (`ai_output`, or one column per JSON field), then `ai_status` and `ai_error` (and `ai_flags`
        when some answer was flagged, e.g. a category off its list)."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        stmt = (
            select(Result.input, Result.raw, Result.parsed, Result.status, Result.error_message, Result.flags)
            .where(Result.run_id == run_id)
            .order_by(*_CELL_ORDER)
        )
        if statuses:
            stmt = stmt.where(Result.status.in_(statuses))
        if rows is not None:
            stmt = stmt.where(Result.row_index.in_(list(rows)))
        structured = is_structured(run.output_schema, bool(run.params.get("json_mode")))
        records: list[dict[str, Any]] = []
        flagged = False
        output_keys: dict[str, None] = dict.fromkeys((run.output_schema or {}).get("fields", {}) or {})
        with self.session() as s:  # streamed: a 100k-row run never holds its rows twice
            for row in s.execute(stmt.execution_options(yield_per=2000)):
                record = dict(row.input or {})
                if structured:
                    for key, value in (row.parsed or {}).items():
                        output_keys.setdefault(key, None)
                        record[_output_name(key, run.input_columns)] = _cell(value)
                else:
                    fallback = row.raw if row.status == RowStatus.SUCCEEDED else None
                    record["ai_output"] = (row.parsed or {}).get("output", fallback)
                record["ai_status"] = row.status
                record["ai_error"] = row.error_message
                if row.flags:
                    record["ai_flags"] = describe_flags(row.flags, run.output_schema)
                    flagged = True
                records.append(record)
        outputs = [_output_name(k, run.input_columns) for k in output_keys] if structured else ["ai_output"]
        columns = [*run.input_columns, *outputs, "ai_status", "ai_error", *(["ai_flags"] if flagged else [])]
        return pd.DataFrame.from_records(records, columns=columns)


def _output_name(key: str, input_columns: Sequence[str]) -> str:
    return f"ai_{key}" if key in input_columns else key


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
