"""Runs: the run row written before any call, its guarded status changes (DESIGN decision 9), its owner's
claim, heartbeat and last write, and the recovery of runs whose process is gone."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from handai_errors import RunStartError
from ledger.models import ACTIVE_STATUSES, ALLOWED, LogRow, Result, RowStatus, Run, RunStatus, sources, utcnow
from ledger.owners import HEARTBEAT_STALE, describe_owner, owner_alive, owner_id
from ledger.records import RunControl, RunFilter
from ledger.store import Store, lock_for_update


class RunsMixin(Store):
    """A run's life in the ledger; every status write is a compare-and-set."""

    def create_run(
        self, rows: Iterable[dict[str, Any]], cells: Sequence[tuple[int, int, int]] = ((0, 0, 0),), **fields: Any
    ) -> int:
        """Write the run and one pending result per cell (row, step, arm, sample) before any call
        is made. The row's input is stored once, on its first cell."""
        pending = RowStatus.PENDING.value
        with self.session() as s, s.begin():
            run = Run(status=RunStatus.QUEUED.value, **fields)
            s.add(run)
            s.flush()
            batch: list[dict[str, Any]] = []
            total = 0
            for index, row in enumerate(rows):
                for n, (step, arm, sample) in enumerate(cells):
                    batch.append(
                        {
                            "run_id": run.id,
                            "row_index": index,
                            "step": step,
                            "arm": arm,
                            "sample": sample,
                            "input": row if n == 0 else {},
                            "status": pending,
                        }
                    )
                total += len(cells)
                if len(batch) >= 5000:
                    s.execute(insert(Result), batch)
                    batch = []
            if batch:
                s.execute(insert(Result), batch)
            run.total_rows = total
            return run.id

    def get_run(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def update_run(self, run_id: int, **values: Any) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(update(Run).where(Run.id == run_id).values(**values))

    def update_params(self, run_id: int, changes: dict[str, Any]) -> None:
        """Merge `changes` into a run's recorded parameters, read and written in one transaction
        (locked: another process's change is never lost)."""
        with self._write_lock, self.session() as s, s.begin():
            lock_for_update(s.connection())
            params = s.scalar(select(Run.params).where(Run.id == run_id).with_for_update()) or {}
            s.execute(update(Run).where(Run.id == run_id).values(params={**params, **changes}))

    def set_run_status(
        self, run_id: int, status: RunStatus, *, only_from: Sequence[RunStatus] | None = None, **values: Any
    ) -> bool:
        """Compare-and-set: moves the run only from `only_from` (default: every status `ALLOWED`
        to reach `status`); returns False when the run was in none of them. `running` is entered
        only by `claim_run`, which also takes ownership: asking for it here is a ValueError."""
        status = RunStatus(status)
        if status == RunStatus.RUNNING:
            raise ValueError("only claim_run sets a run running: it also makes this process the owner")
        allowed = sources(status) if only_from is None else tuple(only_from)
        if any(status not in ALLOWED[RunStatus(s)] for s in allowed):
            raise ValueError(f"a run cannot move to {status} from every one of {allowed}")
        values = {"status": status.value, **values}
        if status != RunStatus.QUEUED:
            values.setdefault("finished_at", utcnow())
        stmt = update(Run).where(Run.id == run_id, Run.status.in_([s.value for s in allowed])).values(**values)
        with self._write_lock, self.session() as s, s.begin():
            return s.execute(stmt).rowcount > 0

    def check_claimable(self, run_id: int) -> Run:
        """The run, if this process may claim it now; else RunStartError saying why (naming the
        live process that runs it). Resume and retry ask this before they write anything."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        _refuse_other_owner(run)
        status = RunStatus(run.status)
        if status.active and run.owner == owner_id():
            raise RunStartError(f"Run {run_id} is already running in this process.")
        if RunStatus.RUNNING not in ALLOWED[status] and not status.active:
            raise RunStartError(f"Run {run_id} is {status} and cannot be started.")
        return run

    def check_editable(self, run_id: int) -> Run:
        """The run, unless another live process is running it (RunStartError naming that
        process): its settings are then that process's, not ours to change."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(f"No run {run_id}")
        _refuse_other_owner(run)
        return run

    def claim_run(self, run_id: int) -> Run:
        """Make this process the run's owner and set it `running`, atomically: a run that another
        live process runs is refused (RunStartError naming it), a dead owner's run is taken over,
        and of two processes claiming at once exactly one wins."""
        run = self.check_claimable(run_id)
        if RunStatus(run.status).active and run.owner is not None and self.interrupt_if_orphaned(run_id):
            run = self.check_claimable(run_id)  # the dead owner's stretch is counted before it is taken over
        me = owner_id()
        status = RunStatus(run.status)
        now = utcnow()
        stmt = (
            update(Run)
            .where(Run.id == run_id, Run.status == status.value)
            .where(Run.owner.is_(None) if run.owner is None else Run.owner == run.owner)
            .values(
                status=RunStatus.RUNNING.value,
                owner=me,
                heartbeat_at=now,
                started_at=run.started_at or now,
                resumed_at=now,
                finished_at=None,
                stop_reason=None,
            )
        )
        with self._write_lock, self.session() as s, s.begin():
            if s.execute(stmt).rowcount == 0:
                raise RunStartError(f"Run {run_id} was started by another process a moment ago.")
        claimed = self.get_run(run_id)
        assert claimed is not None
        return claimed

    def finish_run(self, run_id: int, status: RunStatus, stop_reason: str | None, active_seconds: float) -> bool:
        """The owner's last write: the time it ran is added (once: not when the run was meanwhile
        judged orphaned, which counted it), and the status moves only from `running` and only
        while this process owns the run, so a stop or pause written meanwhile by anyone is never
        turned into `completed`."""
        me = owner_id()
        with self._write_lock, self.session() as s, s.begin():
            s.execute(
                update(Run)
                .where(Run.id == run_id, Run.owner == me, Run.resumed_at.is_not(None))
                .values(active_seconds=func.coalesce(Run.active_seconds, 0.0) + active_seconds, resumed_at=None)
            )
        stmt = (
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.RUNNING.value, Run.owner == me)
            .values(status=RunStatus(status).value, stop_reason=stop_reason, finished_at=utcnow())
        )
        with self._write_lock, self.session() as s, s.begin():
            return s.execute(stmt).rowcount > 0

    def run_control(self, run_id: int) -> RunControl:
        with self.session() as s:
            row = s.execute(select(Run.status, Run.owner, Run.stop_reason).where(Run.id == run_id)).one_or_none()
        if row is None:  # deleted while running: stop
            return RunControl(RunStatus.STOPPED, None, "The run was deleted.")
        return RunControl(RunStatus(row.status), row.owner, row.stop_reason)

    def heartbeat(self, run_id: int) -> RunControl:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(update(Run).where(Run.id == run_id, Run.owner == owner_id()).values(heartbeat_at=utcnow()))
        return self.run_control(run_id)

    def list_runs(self, flt: RunFilter | None = None) -> list[Run]:
        flt = flt or RunFilter()
        stmt = select(Run).order_by(Run.id.desc()).limit(flt.limit)
        if flt.status:
            stmt = stmt.where(Run.status.in_(flt.status))
        if flt.kind:
            stmt = stmt.where(Run.kind.in_(flt.kind))
        if flt.provider:
            stmt = stmt.where(Run.provider.in_(flt.provider))
        if flt.since:
            stmt = stmt.where(Run.created_at >= flt.since)
        if flt.until:
            stmt = stmt.where(Run.created_at < flt.until)
        if flt.session_id is not None:
            stmt = stmt.where(Run.session_id == flt.session_id)
        with self.session() as s:
            return list(s.scalars(stmt))

    def active_runs(self) -> list[Run]:
        return self.list_runs(RunFilter(status=ACTIVE_STATUSES))

    def delete_run(self, run_id: int) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(delete(Result).where(Result.run_id == run_id))
            s.execute(delete(LogRow).where(LogRow.run_id == run_id))
            s.execute(delete(Run).where(Run.id == run_id))

    def mark_interrupted_runs(self) -> list[int]:
        """Runs left queued/running by a process that is gone become `interrupted` (resumable)."""
        return [run.id for run in self.active_runs() if self.interrupt_if_orphaned(run.id)]

    def interrupt_if_orphaned(self, run_id: int) -> bool:
        """Judged on read: a queued or running run whose owner is gone becomes `interrupted`, and
        the time it ran until its last heartbeat is counted (once). A compare-and-set on the status,
        owner and heartbeat read, so a run claimed or beating meanwhile is left alone."""
        run = self.get_run(run_id)
        if run is None or not RunStatus(run.status).active or run.owner == owner_id():
            return False
        just_made = run.owner is None and run.created_at > utcnow() - HEARTBEAT_STALE
        if just_made or owner_alive(run.owner, run.heartbeat_at):
            return False
        values: dict[str, Any] = {
            "status": RunStatus.INTERRUPTED.value,
            "stop_reason": "The process running this run stopped before it finished.",
            "finished_at": utcnow(),
            "resumed_at": None,
        }
        if run.resumed_at is not None and run.heartbeat_at is not None:
            ran = max(0.0, (run.heartbeat_at - run.resumed_at).total_seconds())
            values["active_seconds"] = func.coalesce(Run.active_seconds, 0.0) + ran
        stmt = (
            update(Run)
            .where(Run.id == run_id, Run.status == run.status)
            .where(Run.owner.is_(None) if run.owner is None else Run.owner == run.owner)
            .where(Run.heartbeat_at.is_(None) if run.heartbeat_at is None else Run.heartbeat_at == run.heartbeat_at)
            .values(**values)
        )
        with self._write_lock, self.session() as s, s.begin():
            if s.execute(stmt).rowcount == 0:
                return False
        self.log(run_id, "warning", "Run marked interrupted: its process is no longer running.")
        self.refresh_run_counts(run_id)
        return True


def _refuse_other_owner(run: Run) -> None:
    """RunStartError naming the live process, when one other than this runs the run."""
    if RunStatus(run.status).active and run.owner != owner_id() and owner_alive(run.owner, run.heartbeat_at):
        raise RunStartError(
            f"Run {run.id} is being run by {describe_owner(run.owner)}. "
            "Pause or stop it first (from any window or `handai_cli.py runs pause`), then resume it here."
        )
