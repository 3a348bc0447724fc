"""A run's cells as JSONL batch files, each within the provider's limits (requests and bytes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Part:
    """One input file being filled: its lines and the result ids (custom_ids) they carry."""

    arm: int
    lines: list[bytes] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)
    size: int = 0

    def data(self) -> bytes:
        return b"".join(self.lines)


def batch_line(result_id: int, url: str, body: dict[str, Any]) -> bytes:
    """One request of a batch file: the cell's result id is its custom_id, the body exactly what a
    real-time call would send."""
    line = {"custom_id": str(result_id), "method": "POST", "url": url, "body": body}
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


class Parts:
    """Fills one file per arm; a file that would pass a limit is sealed and a new one begun."""

    def __init__(self, limits: dict[int, tuple[int, int]]) -> None:
        self.limits = limits  # arm -> (requests, bytes)
        self.open: dict[int, Part] = {}
        self.sealed: list[Part] = []

    def add(self, arm: int, result_id: int, line: bytes) -> None:
        max_requests, max_bytes = self.limits[arm]
        part = self.open.get(arm)
        if part is not None and (len(part.cells) >= max_requests or part.size + len(line) > max_bytes):
            self.sealed.append(part)
            part = None
        if part is None:
            part = self.open[arm] = Part(arm)
        part.lines.append(line)
        part.cells.append(result_id)
        part.size += len(line)

    def take_sealed(self) -> list[Part]:
        sealed, self.sealed = self.sealed, []
        return sealed

    def take_all(self) -> list[Part]:
        """Every part, the open ones sealed too (the cells are all planned)."""
        parts = [*self.take_sealed(), *(p for p in self.open.values() if p.cells)]
        self.open = {}
        return parts
