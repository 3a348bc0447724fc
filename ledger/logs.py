"""A run's log: append-only messages, read back in order."""

from __future__ import annotations

from sqlalchemy import select

from ledger.models import LogRow
from ledger.store import Store


class LogsMixin(Store):
    """Write and read log lines."""

    def log(self, run_id: int | None, level: str, message: str) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.add(LogRow(run_id=run_id, level=level, message=message))

    def logs(self, run_id: int | None = None, limit: int = 1000) -> list[LogRow]:
        stmt = select(LogRow).order_by(LogRow.id.desc()).limit(limit)
        if run_id is not None:
            stmt = stmt.where(LogRow.run_id == run_id)
        with self.session() as s:
            return list(reversed(list(s.scalars(stmt))))
