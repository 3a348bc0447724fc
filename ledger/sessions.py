"""Sessions: named groups of runs."""

from __future__ import annotations

from sqlalchemy import select, update

from ledger.models import SessionRow
from ledger.store import Store


class SessionsMixin(Store):
    """Create, rename, list and read sessions."""

    def create_session(self, name: str) -> int:
        with self.session() as s, s.begin():
            row = SessionRow(name=name)
            s.add(row)
            s.flush()
            return row.id

    def rename_session(self, session_id: int, name: str) -> None:
        with self.session() as s, s.begin():
            s.execute(update(SessionRow).where(SessionRow.id == session_id).values(name=name))

    def list_sessions(self) -> list[SessionRow]:
        with self.session() as s:
            return list(s.scalars(select(SessionRow).order_by(SessionRow.id.desc())))

    def get_session(self, session_id: int) -> SessionRow | None:
        with self.session() as s:
            return s.get(SessionRow, session_id)
