"""The two guards that end a run early: the budget cap (a pause) and the early stop (a run
whose first rows all fail the same permanent way)."""

from __future__ import annotations

from collections import Counter

from handai_errors import ClassifiedError, ErrorKind

from .progress import Progress

EARLY_STOP_ROWS = 3
# Failures that say something about the run, not the row: when the first rows all fail one of
# these ways (after their retries), going on would only spend the dataset.
RUN_STOPPING_KINDS = frozenset(
    {
        ErrorKind.INVALID_KEY,
        ErrorKind.PERMISSION,
        ErrorKind.QUOTA,
        ErrorKind.MODEL_NOT_FOUND,
        ErrorKind.BAD_REQUEST,
        ErrorKind.NETWORK,
    }
)


class BudgetGuard:
    """Pause (not fail) before a call that could take the run past the user's cap. It sees every
    billed reply, including retried and unparseable ones, through `Progress.cost_usd`."""

    def __init__(self, budget: float | None, progress: Progress) -> None:
        self.budget = budget
        self.progress = progress
        self.start_cost = progress.cost_usd or 0.0
        self.billed = 0

    def exceeded(self) -> str | None:
        if self.budget is None:
            return None
        spent = self.progress.cost_usd or 0.0
        per_call = (spent - self.start_cost) / self.billed if self.billed else 0.0
        if spent + per_call * (self.progress.in_flight + 1) <= self.budget:
            return None
        return f"Paused at the budget cap: ${spent:.4f} spent of ${self.budget:.4f}. Raise the cap and resume to go on."


class EarlyStop:
    """Judged per model (arm): in a run of several, a model whose first cells all fail the same
    permanent way (a wrong name, a wrong key) stops the run whatever the others answered, so
    the outcome never depends on which model happened to answer first."""

    def __init__(self, rows: int) -> None:
        self.needed = min(EARLY_STOP_ROWS, rows)
        self.first_failures: dict[str, Counter[ErrorKind]] = {}

    def observe(self, err: ClassifiedError, progress: Progress, arm: str = "") -> str | None:
        """The reason to stop, when the first rows (of this arm) all failed the same permanent way."""
        figures = progress.arms.get(arm)
        succeeded = figures.succeeded if figures is not None else progress.succeeded
        if succeeded or err.kind not in RUN_STOPPING_KINDS:
            return None
        seen = self.first_failures.setdefault(arm, Counter())
        seen[err.kind] += 1
        needed = min(self.needed, figures.total) if figures is not None and figures.total else self.needed
        if seen[err.kind] >= needed and len(seen) == 1:
            who = f" for model '{arm}'" if len(progress.arms) > 1 else ""
            return f"Stopped after the first {needed} rows all failed{who}: {err.user_text()}"
        return None
