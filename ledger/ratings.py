"""Ratings that are not a model's cell: imported or hand-made human codes, and adjudicated decisions."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, select

from ledger.models import ADJUDICATED_RATER, Rating, RatingKind, utcnow
from ledger.store import Store
from ledger.upserts import upsert


class RatingsMixin(Store):
    """Save, settle, read and delete ratings."""

    def save_ratings(
        self,
        run_id: int,
        rater: str,
        values: dict[int, Any],
        *,
        kind: RatingKind = RatingKind.HUMAN,
        author: str = "",
        notes: dict[int, str] | None = None,
    ) -> int:
        """Write (or overwrite) one rater's answers for rows of a run: {row_index: value}. A value
        of None is kept as an explicit "not coded" (missing), never turned into a code."""
        rater = rater.strip()
        if not rater:
            raise ValueError("A rater needs a name.")
        if (rater == ADJUDICATED_RATER) != (RatingKind(kind) == RatingKind.ADJUDICATED):
            raise ValueError(f"'{ADJUDICATED_RATER}' holds the settled decisions only; give the coder another name.")
        if self.get_run(run_id) is None:
            raise KeyError(f"No run {run_id}")
        now = utcnow()
        rows = [
            {
                "run_id": run_id,
                "row_index": int(index),
                "rater": rater,
                "kind": RatingKind(kind).value,
                "value": value,
                "note": (notes or {}).get(index, ""),
                "author": author,
                "updated_at": now,
            }
            for index, value in values.items()
        ]
        with self._write_lock, self.engine.begin() as conn:
            write = upsert(conn, Rating, ("run_id", "row_index", "rater"))  # atomic: two saves never collide
            for start in range(0, len(rows), 5000):
                conn.execute(write, rows[start : start + 5000])
        return len(rows)

    def settle(self, run_id: int, row_index: int, value: Any, *, author: str, note: str = "") -> None:
        """Record a person's decision on a disagreement (who, when, why), and log it."""
        if not author.strip():
            raise ValueError("Say who settled it: a decision needs a name.")
        self.save_ratings(
            run_id,
            ADJUDICATED_RATER,
            {row_index: value},
            kind=RatingKind.ADJUDICATED,
            author=author.strip(),
            notes={row_index: note},
        )
        shown = json.dumps(value, ensure_ascii=False)
        self.log(run_id, "info", f"Row {row_index + 1} settled as {shown} by {author.strip()}")

    def ratings(self, run_id: int, kind: RatingKind | None = None) -> list[Rating]:
        stmt = select(Rating).where(Rating.run_id == run_id)
        if kind is not None:
            stmt = stmt.where(Rating.kind == RatingKind(kind).value)
        with self.session() as s:
            return list(s.scalars(stmt.order_by(Rating.rater, Rating.row_index)))

    def ratings_stamp(self, run_id: int) -> tuple[int, str]:
        """How many ratings a run has and when the last changed: a cache of its raters table
        is stale when this changes."""
        stmt = select(func.count(), func.max(Rating.updated_at)).where(Rating.run_id == run_id)
        with self.session() as s:
            count, latest = s.execute(stmt).one()
        return int(count), str(latest)

    def delete_ratings(self, run_id: int, rater: str) -> int:
        with self._write_lock, self.session() as s, s.begin():
            return s.execute(delete(Rating).where(Rating.run_id == run_id, Rating.rater == rater)).rowcount
