"""What the simulator counts of its API traffic for benchmarks, and its per-token rate limit."""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, deque
from typing import Any

#: The moment the simulator's code was loaded, on the monotonic clock: timeline times count from it.
STARTED = time.monotonic()
#: How many of the most recent API requests the timeline keeps.
TIMELINE_LIMIT = 200_000
#: The status recorded for a connection closed without an answer (``drop_after_commit``).
DROPPED = 0


class Arrival:
    """One API request on the timeline: its entry ``[t, route, status]`` and the counting round."""

    __slots__ = ("entry", "generation")

    def __init__(self, entry: list[Any], generation: int) -> None:
        self.entry = entry
        self.generation = generation


class Traffic:
    """Answers per HTTP status, 429s, and the timeline of the most recent API requests."""

    def __init__(self, limit: int = TIMELINE_LIMIT) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._generation = 0
        self.statuses: Counter[int] = Counter()
        self.rate_limited = 0
        self.timeline: deque[list[Any]] = deque(maxlen=limit)

    def arrived(self, route: str) -> Arrival:
        """Put a request that was just read on the timeline (its status still unknown)."""
        entry: list[Any] = [round(time.monotonic() - STARTED, 6), route, None]
        with self._lock:
            self.timeline.append(entry)
            return Arrival(entry, self._generation)

    def answered(self, arrival: Arrival, status: int) -> None:
        """Count the answer to a request (not one that arrived before the last reset)."""
        with self._lock:
            if arrival.generation != self._generation or arrival.entry[2] is not None:
                return
            arrival.entry[2] = status
            self.statuses[status] += 1
            if status == 429:
                self.rate_limited += 1

    def reset(self) -> None:
        """Zero every counter and empty the timeline."""
        with self._lock:
            self._generation += 1
            self.statuses.clear()
            self.rate_limited = 0
            self.timeline = deque(maxlen=self._limit)

    def snapshot(self, *, timeline: bool = True) -> dict[str, Any]:
        """The counters as JSON values: statuses by string code (200 and 429 always present)."""
        with self._lock:
            statuses = {"200": 0, "429": 0}
            statuses.update({str(code): n for code, n in sorted(self.statuses.items())})
            result: dict[str, Any] = {"statuses": statuses, "rate_limited": self.rate_limited}
            if timeline:
                result["timeline"] = [list(entry) for entry in self.timeline]
            return result


class SlidingWindow:
    """A true sliding 60-second window per token: at most ``limit`` admitted requests in any 60 s.

    Only admitted requests count: one answered 429 (by this limit or by a fault rule, which
    calls ``forget``) does not use up the window.
    """

    SECONDS = 60.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, token: str, now: float, limit: int) -> float | None:
        """Admit a request at monotonic time ``now`` (None), or the seconds until one may come."""
        if limit <= 0:
            return None
        with self._lock:
            window = self._admitted.setdefault(token, deque())
            while window and now - window[0] >= self.SECONDS:
                window.popleft()
            if len(window) >= limit:
                return self.SECONDS - (now - window[0])
            bisect.insort(window, now)  # stamps read just before the lock may come out of order
            return None

    def forget(self, token: str, at: float) -> None:
        """Take back the request admitted at ``at`` (it was answered 429 after all)."""
        with self._lock:
            window = self._admitted.get(token)
            if window is not None and at in window:
                window.remove(at)
