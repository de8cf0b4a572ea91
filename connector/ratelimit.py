"""Client-side pacing: one request budget per LAPOR! token, used evenly, never in bursts.

A ``Pacer`` spaces requests ``60 / rate`` seconds apart: no burst allowance, so no sliding
window of a minute ever holds more than the rate, also right after start-up. Every flow, lookup
and retry in the process that uses the same token shares one pacer (``pacer_for``), and its
last minute is kept in the state (``snapshot`` / ``restore``), so a restart does not start with
a burst either. A 429 teaches it the service's real limit: it slows to below what it had sent in
the minute before, for good, and honours ``Retry-After``. When the process is stopping (the
clock's ``stopping`` flag, set on SIGTERM), no new request starts: ``acquire`` raises
``Stopping`` instead of sending early.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from typing import Any

from connector import errors
from connector.clock import Clock
from connector.logs import get_logger

log = get_logger("ratelimit")

WINDOW = 60.0
#: After a 429, the pace is this share of the requests the window held when it came.
BACKOFF_SHARE = 0.9


def stopping(clock: Clock) -> bool:
    """Whether the process was asked to stop (no new remote request should start)."""
    return bool(getattr(clock, "stopping", False))


class Pacer:
    """Spaces requests evenly at ``rate_per_minute`` (0: no pacing). Safe to share between threads."""

    def __init__(self, rate_per_minute: float, clock: Clock) -> None:
        if rate_per_minute < 0:
            raise ValueError("rate_per_minute must be 0 (no limit) or positive")
        self._clock = clock
        self._lock = threading.Lock()
        self.configured = float(rate_per_minute)
        #: The pace learned from a 429 (requests a minute), if the service ever refused us.
        self.learned: float | None = None
        self._next = clock.monotonic()  # the earliest start of the next request
        self._sent: deque[float] = deque()  # monotonic start times within the last window
        self.dirty = False
        self.restored = False
        self.rate_limited = 0

    @property
    def rate(self) -> float:
        """Requests a minute now: the configured rate, or less after a 429."""
        if self.learned is not None and self.configured:
            return min(self.configured, self.learned)
        return self.learned or self.configured

    @property
    def interval(self) -> float:
        rate = self.rate
        # A hair over 60 / rate, so no window of exactly a minute holds rate + 1 requests.
        return 60.0 / rate * 1.0005 if rate > 0 else 0.0

    def configure(self, rate_per_minute: float) -> None:
        """Take a new configured rate (a reloaded configuration); what was learned stays."""
        with self._lock:
            self.configured = float(rate_per_minute)

    def acquire(self) -> float:
        """Wait for this request's turn; return the seconds waited.

        Raises ``Stopping`` when the process is stopping, before or after the wait: a request
        that has not started yet is left for the next run."""
        if stopping(self._clock):
            raise errors.Stopping("the connector is stopping: the request was not sent")
        with self._lock:
            now = self._clock.monotonic()
            interval = self.interval
            start = max(now, self._next) if interval else now
            self._next = start + interval
            self._sent.append(start)
            self._trim(now)
            self.dirty = self.dirty or bool(interval)  # only a paced budget is worth keeping
        wait = start - now
        if wait > 0:
            self._clock.sleep(wait)
            if stopping(self._clock):
                raise errors.Stopping("the connector is stopping: the request was not sent")
        return wait

    def rate_limited_by_service(self, retry_after: float | None) -> None:
        """A 429: slow down below what the window held, and wait as long as told."""
        with self._lock:
            now = self._clock.monotonic()
            self._trim(now)
            held = len(self._sent)
            self.rate_limited += 1
            if held > 1:
                pace = max(1.0, (held - 1) * BACKOFF_SHARE)
                self.learned = pace if self.learned is None else min(self.learned, pace)
            elif self.learned is None and self.configured:
                self.learned = max(1.0, self.configured * BACKOFF_SHARE)
            self._next = max(self._next, now + (retry_after or self.interval))
            self.dirty = True
        log.warning(
            "lapor_rate_limited", sent_last_minute=held, pace_per_minute=round(self.rate, 1),
            retry_after_s=retry_after,
        )  # fmt: skip

    # Kept for callers of the old token bucket.
    def penalise(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a Retry-After)."""
        with self._lock:
            self._next = max(self._next, self._clock.monotonic() + max(0.0, seconds))

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()

    # --- kept in the state across restarts --------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The last minute's request times (wall clock, epoch seconds) and the learned pace."""
        with self._lock:
            mono, wall = self._clock.monotonic(), self._clock.now().timestamp()
            self._trim(mono)
            self.dirty = False
            return {
                "sent": [round(wall - (mono - t), 3) for t in self._sent],
                "next": round(wall + (self._next - mono), 3),
                "learned": self.learned,
            }

    def restore(self, saved: Any) -> None:
        """Take the last minute of an earlier process (once): its requests count as sent."""
        with self._lock:
            if self.restored:
                return
            self.restored = True
            if not isinstance(saved, dict):
                return
            mono, wall = self._clock.monotonic(), self._clock.now().timestamp()
            times = [
                mono - (wall - t) for t in saved.get("sent", []) if isinstance(t, (int, float))
            ]
            earlier = sorted(t for t in times if mono - WINDOW < t <= mono)
            self._sent = deque(sorted([*earlier, *self._sent]))
            learned = saved.get("learned")
            if isinstance(learned, (int, float)) and learned > 0:
                self.learned = float(learned)
            following = saved.get("next")
            if isinstance(following, (int, float)):
                self._next = max(self._next, min(mono + WINDOW, mono + (following - wall)))
            if earlier and self.interval:
                self._next = max(self._next, earlier[-1] + self.interval)


_PACERS: weakref.WeakKeyDictionary[Any, dict[str, Pacer]] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def pacer_for(key: str, rate_per_minute: float, clock: Clock) -> Pacer:
    """The one pacer of a token (``key``) in this process, on this clock."""
    with _REGISTRY_LOCK:
        pacers = _PACERS.setdefault(clock, {})
        pacer = pacers.get(key)
        if pacer is None:
            pacer = pacers[key] = Pacer(rate_per_minute, clock)
        elif pacer.configured != rate_per_minute:
            pacer.configure(rate_per_minute)
        return pacer
