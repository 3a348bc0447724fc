"""The engine's side of the ledger: the next page of rows to run, retry-failed, and the writer's
batch writes of outcomes (with the run's totals and the reply cache) in one short transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update

from ledger.models import CacheEntry, Result, RowStatus, Run, RunStatus, utcnow
from ledger.records import LedgerCell, LedgerRow, RowOutcome, RunControl
from ledger.store import Store
from ledger.upserts import insert_ignoring


class CellsMixin(Store):
    """Rows to run and the batch writes of their outcomes."""

    def rows_to_run(self, run_id: int, statuses: Sequence[RowStatus], after: int, limit: int) -> list[LedgerRow]:
        """The next `limit` rows after row `after` that have a cell in `statuses`, each with all
        its cells (earlier steps' answers feed later steps): the engine pulls a run page by page
        and never holds the whole of it."""
        wanted = (
            select(Result.row_index)
            .where(Result.run_id == run_id, Result.status.in_(statuses), Result.row_index > after)
            .distinct()
            .order_by(Result.row_index)
            .limit(limit)
        )
        stmt = (
            select(
                Result.id,
                Result.row_index,
                Result.step,
                Result.arm,
                Result.sample,
                Result.status,
                Result.input,
                Result.parsed,
            )
            .where(Result.run_id == run_id, Result.row_index.in_(wanted.scalar_subquery()))
            .order_by(Result.row_index, Result.step, Result.arm, Result.sample)
        )
        rows: list[LedgerRow] = []
        with self.session() as s:
            for r in s.execute(stmt):
                if not rows or rows[-1].row_index != r.row_index:
                    rows.append(LedgerRow(r.row_index, r.input or {}, []))
                parsed = r.parsed if r.status == RowStatus.SUCCEEDED else None
                rows[-1].cells.append(LedgerCell(r.id, r.step, r.arm, r.sample, r.status, parsed))
        return rows

    def reset_rows(self, run_id: int, statuses: Sequence[RowStatus] = (RowStatus.FAILED,)) -> int:
        """Put rows back to pending (retry-failed), keeping their attempt counts for the record."""
        stmt = (
            update(Result)
            .where(Result.run_id == run_id, Result.status.in_(statuses))
            .values(status=RowStatus.PENDING.value, error_kind=None, error_message=None)
        )
        with self._write_lock, self.session() as s, s.begin():
            count = s.execute(stmt).rowcount
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    succeeded=_count_rows(run_id, RowStatus.SUCCEEDED), failed=_count_rows(run_id, RowStatus.FAILED)
                )
            )
            return count

    def record_results(self, run_id: int, outcomes: Sequence[RowOutcome]) -> RunControl:
        """Write a batch of outcomes and the run's totals in one short transaction, then read the
        run's status back for its owner. Spending (calls, tokens, cost) is added, never replaced,
        so every billed call counts once however many attempts, resumes and retries a row has."""
        if not outcomes:
            return self.run_control(run_id)
        return self._write_outcomes(run_id, outcomes)

    def _write_outcomes(self, run_id: int, outcomes: Sequence[RowOutcome]) -> RunControl:
        now = utcnow()
        table = Result.__table__.c
        spent = {
            # every call made for the cell, over all its attempts, resumes and retries
            "attempts": table.attempts + bindparam("add_calls"),
            "tokens_in": table.tokens_in + bindparam("add_in"),
            "tokens_out": table.tokens_out + bindparam("add_out"),
            # no new cost (NULL) keeps the old one; PostgreSQL types the parameter from the sum
            "cost_usd": func.coalesce(func.coalesce(table.cost_usd, 0.0) + bindparam("add_cost"), table.cost_usd),
            "updated_at": now,
        }
        fields = (
            "status",
            "raw",
            "parsed",
            "error_kind",
            "error_message",
            "latency_ms",
            "request",
            "cached",
            "flags",
            "model_reported",
        )
        finals = [o for o in outcomes if o.status is not None]
        spending = [o for o in outcomes if o.status is None]
        costs = [o.cost_usd for o in outcomes if o.cost_usd is not None]
        fresh = [o for o in finals if o.status == RowStatus.SUCCEEDED and o.cache_key and not o.cached]
        with self._write_lock, self.engine.begin() as conn:
            if finals:
                conn.execute(
                    update(Result.__table__)
                    .where(table.id == bindparam("b_id"))
                    .values({**{k: bindparam(k) for k in fields}, **spent}),
                    [{**{k: getattr(o, k) for k in fields}, **_spent_params(o)} for o in finals],
                )
            if spending:
                conn.execute(
                    update(Result.__table__).where(table.id == bindparam("b_id")).values(spent),
                    [_spent_params(o) for o in spending],
                )
            conn.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    tokens_in=Run.tokens_in + sum(o.tokens_in for o in outcomes),
                    tokens_out=Run.tokens_out + sum(o.tokens_out for o in outcomes),
                    calls=Run.calls + sum(o.calls for o in outcomes),
                    cache_hits=Run.cache_hits + sum(1 for o in finals if o.cached),
                    cost_usd=func.coalesce(Run.cost_usd, 0.0) + sum(costs) if costs else Run.cost_usd,
                    # counted as they land (a count over a million cells per batch would cost more
                    # than the batch); refresh_run_counts makes them exact when the job ends
                    succeeded=Run.succeeded + sum(1 for o in finals if o.status == RowStatus.SUCCEEDED),
                    failed=Run.failed + sum(1 for o in finals if o.status == RowStatus.FAILED),
                    heartbeat_at=now,
                )
            )
            if fresh:
                run = conn.execute(select(Run.provider, Run.model).where(Run.id == run_id)).one()
                # One compiled statement, many parameter sets: a multi-row VALUES per batch cost
                # most of the writer thread's time (benchmarks/README.md).
                conn.execute(
                    insert_ignoring(conn, CacheEntry),
                    [
                        {
                            "key": o.cache_key,
                            "provider": run.provider,
                            "model": run.model,
                            "raw": o.raw,
                            "parsed": o.parsed,
                            "tokens_in": o.tokens_in,
                            "tokens_out": o.tokens_out,
                            "created_at": now,
                            "model_reported": o.model_reported,
                        }
                        for o in fresh
                    ],
                )
            row = conn.execute(select(Run.status, Run.owner, Run.stop_reason).where(Run.id == run_id)).one()
        return RunControl(RunStatus(row.status), row.owner, row.stop_reason)


def _spent_params(o: RowOutcome) -> dict[str, Any]:
    return {
        "b_id": o.result_id,
        "add_calls": o.calls,
        "add_in": o.tokens_in,
        "add_out": o.tokens_out,
        "add_cost": o.cost_usd,
    }


def _count_rows(run_id: int, status: RowStatus) -> Any:
    """A run's row count in one status, as a subquery, so History's figures stay live mid-run."""
    return (
        select(func.count())
        .select_from(Result)
        .where(Result.run_id == run_id, Result.status == status)
        .scalar_subquery()
    )
