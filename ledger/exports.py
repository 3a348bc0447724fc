"""Statistics over every run (the History charts) and a session or run as plain JSON-able data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from ledger.models import Result, RowStatus, Run
from ledger.records import RunFilter
from ledger.store import Store


class ExportsMixin(Store):
    """Run statistics and exports."""

    def run_stats(self) -> pd.DataFrame:
        """One row per run with the figures the History charts need."""
        latency = (
            select(Result.run_id, func.avg(Result.latency_ms).label("avg_latency_ms"))
            .where(Result.status == RowStatus.SUCCEEDED)
            .group_by(Result.run_id)
            .subquery()
        )
        stmt = select(
            Run.id,
            Run.kind,
            Run.provider,
            Run.model,
            Run.status,
            Run.created_at,
            Run.total_rows,
            Run.succeeded,
            Run.failed,
            Run.tokens_in,
            Run.tokens_out,
            latency.c.avg_latency_ms,
        ).outerjoin(latency, latency.c.run_id == Run.id)
        with self.session() as s:
            return pd.DataFrame(s.execute(stmt).mappings().all())

    def error_kind_totals(self) -> dict[str, int]:
        stmt = (
            select(Result.error_kind, func.count()).where(Result.status == RowStatus.FAILED).group_by(Result.error_kind)
        )
        with self.session() as s:
            return {str(k): v for k, v in s.execute(stmt).all()}

    def export_session(self, session_id: int) -> dict[str, Any]:
        """A session as plain JSON-able data: its runs, their settings, results and logs."""
        session = self.get_session(session_id)
        if session is None:
            raise KeyError(f"No session {session_id}")
        runs = self.list_runs(RunFilter(session_id=session_id, limit=100_000))
        return {
            "session": {"id": session.id, "name": session.name, "created_at": session.created_at.isoformat()},
            "runs": [self.export_run(run.id) for run in runs],
        }

    def export_run(self, run_id: int) -> dict[str, Any]:
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        data = {c.name: _jsonable(getattr(run, c.name)) for c in Run.__table__.columns}
        data["results"] = [
            {c.name: _jsonable(getattr(r, c.name)) for c in Result.__table__.columns} for r in self.results(run_id)
        ]
        data["logs"] = [{"ts": lg.ts.isoformat(), "level": lg.level, "message": lg.message} for lg in self.logs(run_id)]
        return data


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
