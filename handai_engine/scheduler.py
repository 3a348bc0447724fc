"""Which cells to send, row by row. The run is pulled from the ledger a page of rows at a time
(memory stays flat however long the run is); a step's cells are sent once the steps it needs are
in for that row; a judge step sees every answer it judges; a row where `run_if` does not hold is
written `skipped` with the reason and costs nothing; a step whose input step failed is written
failed (not sent) and goes again with retry-failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from handai_db import LedgerRow, RowOutcome, RowStatus
from handai_errors import ErrorKind
from handai_prompts import TemplateError, user_message

from .answers import all_agree, answer_text, answer_value
from .calls import Call, StepRequest
from .conditions import evaluate
from .plan import AGREED, ANSWERS, ROW, Plan
from .progress import Progress

Cell = tuple[int, int, int]  # (step, arm, sample)
PAGE_ROWS = 1000
# Outcomes waiting for the ledger writer beyond which no new page is pulled: when the writer falls
# behind (a big ledger, a busy disk), the run slows down instead of piling outcomes up in memory.
MAX_BACKLOG = 5000
BACKLOG_WAIT = 0.05


@dataclass(slots=True)
class RowTask:
    row_index: int
    input: dict[str, Any]
    result_ids: dict[Cell, int]
    status: dict[Cell, str]
    parsed: dict[Cell, dict[str, Any] | None]
    settled: set[Cell]  # nothing more to do for this cell in this job
    in_flight: set[Cell] = field(default_factory=set)

    @classmethod
    def of(cls, row: LedgerRow, to_run: frozenset[str]) -> RowTask:
        cells = {(c.step, c.arm, c.sample): c for c in row.cells}
        return cls(
            row.row_index,
            row.input,
            {k: c.result_id for k, c in cells.items()},
            {k: c.status for k, c in cells.items()},
            {k: c.parsed for k, c in cells.items()},
            {k for k, c in cells.items() if c.status not in to_run},
        )

    @property
    def finished(self) -> bool:
        return not self.in_flight and len(self.settled) == len(self.status)


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        requests: dict[tuple[int, int], StepRequest],
        statuses: Sequence[RowStatus],
        *,
        load_page: Callable[[int, int], Awaitable[list[LedgerRow]]],
        prefetch: Callable[[list[Call]], Awaitable[None]],
        dispatch: Callable[[Call], None],
        record: Callable[[RowOutcome], None],
        progress: Progress,
        use_cache: bool,
        backlog: Callable[[], int] = lambda: 0,
        page_rows: int = PAGE_ROWS,
    ) -> None:
        self.plan = plan
        self.requests = requests
        self.to_run = frozenset(str(s) for s in statuses)
        self.load_page = load_page
        self.prefetch = prefetch
        self.dispatch = dispatch
        self.record = record
        self.progress = progress
        self.use_cache = use_cache
        self.backlog = backlog
        self.page_rows = page_rows
        self.active: dict[int, RowTask] = {}
        self.cursor = -1
        self.exhausted = False
        self.halted = False
        self.wake = asyncio.Event()
        self.step_cells: list[list[Cell]] = [[] for _ in plan.steps]
        for cell in plan.cells():
            self.step_cells[cell[0]].append(cell)
        self.deps = [plan.depends_on(s) for s in plan.steps]

    # -- the feed -------------------------------------------------------------------------------
    async def run(self) -> None:
        """Pull pages while fewer than a page of rows is open; return when every row is done or
        the pool has halted."""
        while not self.halted:
            if not self.exhausted and len(self.active) < self.page_rows:
                if self.backlog() > MAX_BACKLOG:
                    await asyncio.sleep(BACKLOG_WAIT)
                    continue
                await self._next_page()
                continue
            if self.exhausted and not self.active:
                return
            self.wake.clear()
            await self.wake.wait()

    def halt(self) -> None:
        self.halted = True
        self.wake.set()

    async def _next_page(self) -> None:
        page = await self.load_page(self.cursor, self.page_rows)
        if not page:
            self.exhausted = True
            return
        self.cursor = page[-1].row_index
        calls: list[Call] = []
        for row in page:
            task = RowTask.of(row, self.to_run)
            self.active[task.row_index] = task
            calls.extend(self._advance(task))
        await self._send(calls)

    async def _send(self, calls: list[Call]) -> None:
        if not calls:
            return
        if self.use_cache:
            await self.prefetch(calls)
        if self.halted:
            return
        for call in calls:
            self.dispatch(call)

    # -- a cell came back -----------------------------------------------------------------------
    def cell_done(self, call: Call, status: RowStatus, parsed: dict[str, Any] | None) -> None:
        task = self.active.get(call.row - 1)
        if task is None:
            return
        cell = (call.request.step, call.request.arm, call.sample)
        task.in_flight.discard(cell)
        task.status[cell] = status
        task.parsed[cell] = parsed
        task.settled.add(cell)
        if self.halted:
            return
        calls = self._advance(task)
        if calls:
            asyncio.get_running_loop().create_task(self._send(calls))

    # -- the rules ------------------------------------------------------------------------------
    def _advance(self, task: RowTask) -> list[Call]:
        """The calls this row can send now; writes skipped and upstream-failed cells on the way."""
        calls: list[Call] = []
        for si, step in enumerate(self.plan.steps):
            open_cells = [c for c in self.step_cells[si] if c not in task.settled]
            if not open_cells or any(c in task.in_flight for c in self.step_cells[si]):
                continue
            deps = [c for d in self.deps[si] for c in self.step_cells[d]]
            if any(c not in task.settled for c in deps):
                continue
            failed = [d for d in self.deps[si] if any(task.status[c] == RowStatus.FAILED for c in self.step_cells[d])]
            skipped = [d for d in self.deps[si] if all(task.status[c] == RowStatus.SKIPPED for c in self.step_cells[d])]
            scope = self._scope(task, si)
            if failed:
                names = ", ".join(f"'{self.plan.steps[d].name}'" for d in failed)
                reason = f"Not sent: step {names} failed for this row."
                self._settle(task, open_cells, RowStatus.FAILED, reason, ErrorKind.UPSTREAM_FAILED)
            elif skipped:
                names = ", ".join(f"'{self.plan.steps[d].name}'" for d in skipped)
                self._settle(task, open_cells, RowStatus.SKIPPED, f"Skipped: step {names} was skipped for this row.")
            elif step.run_if and not evaluate(step.run_if, scope):
                self._settle(task, open_cells, RowStatus.SKIPPED, skip_reason(step.run_if, scope))
            else:
                calls.extend(self._calls(task, si, open_cells, scope))
        if task.finished:
            self.active.pop(task.row_index, None)
            if len(self.active) < self.page_rows:
                self.wake.set()
        return calls

    def _calls(self, task: RowTask, si: int, cells: list[Cell], scope: dict[str, Any]) -> list[Call]:
        step = self.plan.steps[si]
        text = {k: (answer_text(v) if isinstance(v, dict) else v) for k, v in scope.items()}
        columns = list(step.columns) or [c for c in task.input]
        try:
            user = user_message(text, template=step.row_template, columns=columns)
        except TemplateError as exc:
            self._settle(task, cells, RowStatus.FAILED, str(exc), ErrorKind.BAD_REQUEST)
            return []
        if step.judge_of and not (step.row_template and "{" + ANSWERS + "}" in step.row_template):
            user = f"{user}\n\nThe answers to judge:\n{scope[ANSWERS]}"
        calls = []
        for cell in cells:
            request = self.requests[(cell[0], cell[1])]
            calls.append(request.call(task.result_ids[cell], task.row_index, cell[2], user, use_cache=self.use_cache))
            task.in_flight.add(cell)
        return calls

    def _scope(self, task: RowTask, si: int) -> dict[str, Any]:
        """What a step's template and run_if can name: the row's columns, earlier steps' answers
        (the first arm's, for a step of several) and their fields; for a judge, the answers."""
        scope: dict[str, Any] = {ROW: task.input, **task.input}  # a column named "row" wins
        for d in range(si):
            step = self.plan.steps[d]
            answers = [task.parsed[c] for c in self.step_cells[d] if task.status[c] == RowStatus.SUCCEEDED]
            first = answers[0] if answers else None
            scope[step.name] = answer_value(first)
            for f in step.fields:
                scope[f"{step.name}.{f}"] = (first or {}).get(f)
        judged = self.plan.steps[si].judge_of
        if judged:
            j = self.plan.step_index(judged)
            answers = [task.parsed[c] for c in self.step_cells[j] if task.status[c] == RowStatus.SUCCEEDED]
            scope[ANSWERS] = "\n".join(f"Answer {n}: {answer_text(a)}" for n, a in enumerate(answers, 1))
            scope[AGREED] = all_agree(answers, self.plan.steps[j].agreement_fields)
        return scope

    def _settle(
        self, task: RowTask, cells: list[Cell], status: RowStatus, reason: str, kind: ErrorKind | None = None
    ) -> None:
        """Cells decided without a call: nothing is spent, the reason is written."""
        for cell in cells:
            task.status[cell] = status
            task.settled.add(cell)
            self.record(
                RowOutcome(
                    task.result_ids[cell],
                    status,
                    error_kind=kind.value if kind else None,
                    error_message=reason,
                )
            )
            self.progress.settled(self.plan.steps[cell[0]].name, self.plan.arms[cell[1]].name, status, kind)


def skip_reason(run_if: str, scope: dict[str, Any]) -> str:
    if scope.get(AGREED) is True:  # a judge where the answers agreed
        return "Skipped: the answers agreed, so no judge was needed."
    return f"Skipped: run_if is not true ({run_if})."
