"""The C1 inbox order of one institution, kept sorted so a page costs O(log N + page size)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import datetime

Key = tuple[datetime, int]


class InboxIndex:
    """Complaint ids sorted by ``(updated_at, id)``, moved on every change of either."""

    def __init__(self) -> None:
        self._keys: list[Key] = []
        self._key_of: dict[int, Key] = {}

    def rebuild(self, entries: Iterable[Key]) -> None:
        """Start again from ``(updated_at, id)`` pairs, in any order."""
        self._keys = sorted(entries)
        self._key_of = {key[1]: key for key in self._keys}

    def put(self, complaint_id: int, updated_at: datetime) -> None:
        """Add a complaint, or move it to where its (new) ``updated_at`` puts it."""
        key = (updated_at, complaint_id)
        old = self._key_of.get(complaint_id)
        if old == key:
            return
        if old is not None:
            del self._keys[bisect.bisect_left(self._keys, old)]
        bisect.insort(self._keys, key)
        self._key_of[complaint_id] = key

    def discard(self, complaint_id: int) -> None:
        """Take a complaint out (it is no longer visible); nothing if it was not in."""
        old = self._key_of.pop(complaint_id, None)
        if old is not None:
            del self._keys[bisect.bisect_left(self._keys, old)]

    def __contains__(self, complaint_id: object) -> bool:
        return complaint_id in self._key_of

    def __len__(self) -> int:
        return len(self._keys)

    def _first(self, since: datetime | None) -> int:
        return 0 if since is None else bisect.bisect_left(self._keys, (since,))

    def count_since(self, since: datetime | None) -> int:
        """How many complaints have ``updated_at >= since`` (all of them for None)."""
        return len(self._keys) - self._first(since)

    def page_since(self, since: datetime | None, offset: int, size: int) -> list[int]:
        """The ids of positions ``offset`` to ``offset + size`` among those since ``since``."""
        start = self._first(since) + offset
        return [complaint_id for _, complaint_id in self._keys[start : start + size]]
