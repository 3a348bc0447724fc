"""The provider batches a run's cells were sent in (OpenAI / Azure OpenAI Batch API).

A batch row is written before its file is uploaded, gets its input file id and then the
provider's batch id the moment each exists, and is `collected` once every result it carried is
in the results table. A batch row not yet collected is *open*: its cells are at the provider, so
a restarted process polls it again and never sends those cells twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from ledger.models import ProviderBatch, Result, RowStatus, Run, utcnow
from ledger.store import Store


class BatchesMixin(Store):
    """Record, update and read a run's provider batches."""

    def add_batch(self, run_id: int, *, arm: int, provider: str, endpoint: str, cells: Sequence[int], size: int) -> int:
        """A batch about to be uploaded, with the result ids (custom_ids) it carries."""
        with self._write_lock, self.session() as s, s.begin():
            row = ProviderBatch(
                run_id=run_id,
                arm=arm,
                provider=provider,
                endpoint=endpoint,
                cells=list(cells),
                request_count=len(cells),
                bytes=size,
            )
            s.add(row)
            s.flush()
            return row.id

    def update_batch(self, batch_row: int, **values: Any) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(update(ProviderBatch).where(ProviderBatch.id == batch_row).values(updated_at=utcnow(), **values))

    def run_batches(self, run_id: int, *, open_only: bool = False) -> list[ProviderBatch]:
        """A run's batches in the order they were made (open ones only: those not yet collected)."""
        stmt = select(ProviderBatch).where(ProviderBatch.run_id == run_id).order_by(ProviderBatch.id)
        if open_only:
            stmt = stmt.where(ProviderBatch.collected.is_(False))
        with self.session() as s:
            return list(s.scalars(stmt))

    def batch_states(self, run_ids: Sequence[int]) -> dict[int, list[ProviderBatch]]:
        """Each run's batches, for lists of runs (History, `runs list`); runs without any are left out."""
        if not run_ids:
            return {}
        stmt = select(ProviderBatch).where(ProviderBatch.run_id.in_(run_ids)).order_by(ProviderBatch.id)
        out: dict[int, list[ProviderBatch]] = {}
        with self.session() as s:
            for row in s.scalars(stmt):
                out.setdefault(row.run_id, []).append(row)
        return out

    def still_pending(self, result_ids: Sequence[int]) -> set[int]:
        """The cells among `result_ids` not yet written: collecting a batch twice (after a crash
        between its writes and its `collected` mark) writes and bills each cell once."""
        found: set[int] = set()
        with self.session() as s:
            for start in range(0, len(result_ids), 5000):
                chunk = list(result_ids[start : start + 5000])
                stmt = select(Result.id).where(Result.id.in_(chunk), Result.status == RowStatus.PENDING.value)
                found.update(s.scalars(stmt))
        return found

    def runs_with_open_batches(self) -> list[Run]:
        """Runs that have cells at a provider still to collect: the ones to re-attach to."""
        open_runs = select(ProviderBatch.run_id).where(ProviderBatch.collected.is_(False)).distinct()
        with self.session() as s:
            return list(s.scalars(select(Run).where(Run.id.in_(open_runs)).order_by(Run.id)))
