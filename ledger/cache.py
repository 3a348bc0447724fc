"""The reply cache, read side: replies already paid for (written with the outcomes, see `cells`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from ledger.models import CacheEntry
from ledger.store import Store


class CacheMixin(Store):
    """Look up cached replies by key."""

    def cached_replies(self, keys: Sequence[str]) -> dict[str, CacheEntry]:
        """Replies already paid for, by cache key (looked up in chunks: SQLite limits parameters)."""
        found: dict[str, CacheEntry] = {}
        unique = list(dict.fromkeys(keys))
        with self.session() as s:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                found.update({e.key: e for e in s.scalars(select(CacheEntry).where(CacheEntry.key.in_(chunk)))})
        return found
