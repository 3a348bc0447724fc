"""What a run's log says about its calls: failures, retries, rate-limit pauses and concurrency
changes. The first few of each kind are written as they happen, the rest as counts at the end,
so a 429 storm or a dead endpoint leaves a readable log, not thousands of lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from handai_errors import ClassifiedError

SHOWN_PER_KIND = 3


class Journal:
    def __init__(self, write: Callable[[str, str], object]) -> None:
        self.write = write
        self.failed: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.pauses = 0

    def failure(self, row: int, err: ClassifiedError) -> None:
        self.failed[err.kind.value] += 1
        if self.failed[err.kind.value] <= SHOWN_PER_KIND:
            self.write("warning", f"Row {row} failed ({err.kind.value}): {err.user_text()}")

    def retry(self, row: int, err: ClassifiedError, attempt: int, delay: float) -> None:
        self.retried[err.kind.value] += 1
        if self.retried[err.kind.value] <= SHOWN_PER_KIND:
            self.write("info", f"Row {row}: {err.kind.value}, retry {attempt} in {delay:.1f} s.")

    def rate_limited(self, pause: float, old: int, new: int) -> None:
        self.pauses += 1
        if self.pauses <= SHOWN_PER_KIND * 2:
            self.write("warning", f"Rate limited (429): all calls paused {pause:.1f} s; concurrency {old} → {new}.")

    def concurrency_restored(self, limit: int) -> None:
        self.write("info", f"Concurrency back to {limit}.")

    def close(self) -> None:
        """The counts the log did not show one by one."""
        if any(n > SHOWN_PER_KIND for n in self.retried.values()):
            self.write("info", f"Retried calls by kind: {_counts(self.retried)}.")
        if self.pauses > SHOWN_PER_KIND * 2:
            self.write("warning", f"Rate limited {self.pauses} times in all (each halved the concurrency).")
        if any(n > SHOWN_PER_KIND for n in self.failed.values()):
            self.write("warning", f"Failed rows by kind: {_counts(self.failed)}.")


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{kind} {n:,}" for kind, n in counter.most_common())
