"""Figures over a run's cells: counts by status and error kind, per-step and per-arm figures, each
model's share of every run (History's statistics), and the per-row averages of a test run that
estimates start from."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import case, func, select

from ledger.models import Result, RowStatus, Run, RunStatus
from ledger.records import CellFigures, RunCounts
from ledger.store import Store


class FiguresMixin(Store):
    """Counts and figures over a run's cells."""

    def latest_test_run_stats(self, input_hash: str, provider: str, model: str) -> dict[str, float] | None:
        """Per-row averages of the newest finished test run on this input and model, for estimates."""
        with self.session() as s:
            run_id = s.scalar(
                select(Run.id)
                .where(
                    Run.input_hash == input_hash,
                    Run.provider == provider,
                    Run.model == model,
                    Run.name == "Test run",
                    Run.status == RunStatus.COMPLETED,
                )
                .order_by(Run.id.desc())
                .limit(1)
            )
        if run_id is None:
            return None
        with self.session() as s:
            row = s.execute(
                select(
                    func.avg(Result.tokens_in),
                    func.avg(Result.tokens_out),
                    func.avg(Result.latency_ms),
                    func.count(),
                ).where(Result.run_id == run_id, Result.status == RowStatus.SUCCEEDED, Result.cached.is_(False))
            ).one()
        if not row[3]:
            return None
        return {
            "tokens_in": float(row[0] or 0),
            "tokens_out": float(row[1] or 0),
            "latency_ms": float(row[2] or 0),
            "rows": int(row[3]),
        }

    def run_counts(self, run_id: int) -> RunCounts:
        with self.session() as s:
            by_status = dict(
                s.execute(
                    select(Result.status, func.count()).where(Result.run_id == run_id).group_by(Result.status)
                ).all()
            )
            kinds = dict(
                s.execute(
                    select(Result.error_kind, func.count())
                    .where(Result.run_id == run_id, Result.status == RowStatus.FAILED)
                    .group_by(Result.error_kind)
                ).all()
            )
            run = s.get(Run, run_id)
        return RunCounts(
            total=sum(by_status.values()),
            pending=by_status.get(RowStatus.PENDING, 0),
            succeeded=by_status.get(RowStatus.SUCCEEDED, 0),
            failed=by_status.get(RowStatus.FAILED, 0),
            skipped=by_status.get(RowStatus.SKIPPED, 0),
            tokens_in=run.tokens_in if run else 0,
            tokens_out=run.tokens_out if run else 0,
            errors_by_kind={str(k): v for k, v in kinds.items()},
        )

    def cell_figures(self, run_id: int) -> list[CellFigures]:
        stmt = (
            select(
                Result.step,
                Result.arm,
                Result.status,
                func.count(),
                func.coalesce(func.sum(Result.tokens_in), 0),
                func.coalesce(func.sum(Result.tokens_out), 0),
                func.sum(Result.cost_usd),
                func.coalesce(func.sum(Result.attempts), 0),
                func.avg(Result.latency_ms),
            )
            .where(Result.run_id == run_id)
            .group_by(Result.step, Result.arm, Result.status)
        )
        with self.session() as s:
            return [CellFigures(*row) for row in s.execute(stmt)]

    def reported_models(self, run_id: int) -> dict[tuple[int, int], dict[str, int]]:
        """(step, arm) -> {model id the provider reported: cells}, over the cells that hold an
        answer naming one (a reply without `model` makes no claim and is not counted)."""
        stmt = (
            select(Result.step, Result.arm, Result.model_reported, func.count())
            .where(Result.run_id == run_id, Result.model_reported.is_not(None))
            .group_by(Result.step, Result.arm, Result.model_reported)
            .order_by(Result.step, Result.arm, func.count().desc(), Result.model_reported)
        )
        found: dict[tuple[int, int], dict[str, int]] = {}
        with self.session() as s:
            for step, arm, model, cells in s.execute(stmt):
                found.setdefault((step, arm), {})[model] = cells
        return found

    def arm_stats(self) -> pd.DataFrame:
        """One row per (run, arm): the arm's provider and model (from the run's plan), its cells'
        outcomes and mean latency. A run of several models counts under each of them, not under
        its first arm's provider with every model's name."""
        succeeded = Result.status == RowStatus.SUCCEEDED
        cells = (
            select(
                Result.run_id,
                Result.arm,
                func.sum(case((succeeded, 1), else_=0)),
                func.sum(case((Result.status == RowStatus.FAILED, 1), else_=0)),
                func.avg(case((succeeded, Result.latency_ms))),
            )
            .group_by(Result.run_id, Result.arm)
            .order_by(Result.run_id, Result.arm)
        )
        with self.session() as s:
            runs = {r.id: r for r in s.execute(select(Run.id, Run.provider, Run.model, Run.plan, Run.created_at))}
            figures = s.execute(cells).all()
        rows = []
        for run_id, arm, ok, failed, latency in figures:
            run = runs[run_id]
            arms = (run.plan or {}).get("arms") or [{"provider": run.provider, "model": run.model}]
            which = arms[arm] if arm < len(arms) else {"provider": run.provider, "model": run.model}
            rows.append(
                {
                    "run": run_id,
                    "arm": arm,
                    "created_at": run.created_at,
                    "provider": which["provider"],
                    "model": which["model"],
                    "succeeded": int(ok or 0),
                    "failed": int(failed or 0),
                    "avg_latency_ms": latency,
                }
            )
        columns = ["run", "arm", "created_at", "provider", "model", "succeeded", "failed", "avg_latency_ms"]
        return pd.DataFrame(rows, columns=columns).astype({"avg_latency_ms": "float64"})

    def refresh_run_counts(self, run_id: int) -> RunCounts:
        counts = self.run_counts(run_id)
        self.update_run(run_id, succeeded=counts.succeeded, failed=counts.failed, total_rows=counts.total)
        return counts
