"""Client-side pacing: one request budget per LAPOR! token, used evenly, never in bursts.

A ``Pacer`` spaces requests ``60 / rate`` seconds apart, from the first one: no burst
allowance, and no sliding window of a minute ever holds more than the rate, also right after
start-up. After a pause (a restart, a stretch of work on the agency side) it makes up a little
of the lost budget, at most a tenth of a minute's worth and at twice the pace at most, still
within the sliding minute. Every flow, lookup
and retry in the process that uses the same token shares one pacer (``pacer_for``), and its
last minute is kept in the state (``snapshot`` / ``restore``), so a restart does not start with
a burst either. A 429 teaches it the service's real limit: it slows to below what it had sent in
the minute before, for good, and honours ``Retry-After``. When the process is stopping (the
clock's ``stopping`` flag, set on SIGTERM), no new request starts: ``acquire`` raises
``Stopping`` instead of sending early.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from typing import Any

from connector import errors
from connector.clock import Clock
from connector.logs import get_logger

log = get_logger("ratelimit")

WINDOW = 60.0
#: After a pause, at most this share of a minute's budget is made up (at twice the pace at most).
CATCH_UP_SHARE = 0.1
#: After a 429, the pace is this share of the requests the window held when it came.
BACKOFF_SHARE = 0.9
#: A 429 teaches a pace only when the minute held at least this many requests (and never less).
MIN_LEARNED = 10


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
        self._next = clock.monotonic()  # the next turn on the even schedule
        self._hold = 0.0  # nothing starts before this (a Retry-After)
        self._sent: deque[float] = deque()  # monotonic start times within the last window
        self.dirty = False
        self.restored = False

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

        The turns follow an even schedule of ``interval`` seconds. After a pause (a restart,
        a stretch of agency writes) the schedule may be behind: the pacer then makes up at most
        a tenth of a minute's budget, at no more than twice the pace, and never lets a sliding
        minute hold more requests than the rate (the window of the last minute is kept).

        Raises ``Stopping`` when the process is stopping, before or after the wait: a request
        that has not started yet is left for the next run."""
        if stopping(self._clock):
            raise errors.Stopping("the connector is stopping: the request was not sent")
        with self._lock:
            now = self._clock.monotonic()
            self._trim(now)
            start = self._reserve(now)
            self.dirty = self.dirty or bool(self.interval)  # only a paced budget is worth keeping
        wait = start - now
        if wait > 0:
            self._clock.sleep(wait)
            if stopping(self._clock):
                with self._lock:  # the turn was not used: it does not count as sent
                    if start in self._sent:
                        self._sent.remove(start)
                raise errors.Stopping("the connector is stopping: the request was not sent")
        return wait

    def _reserve(self, now: float) -> float:
        interval = self.interval
        if not interval:
            self._sent.append(now)
            return now
        # The schedule may lag behind the clock by a tenth of a minute's budget at most, and
        # only while the last minute saw requests (never at start-up or after an idle spell).
        ideal = max(self._next, now - CATCH_UP_SHARE * WINDOW if self._sent else now)
        start = max(now, ideal)
        if self._sent:
            start = max(start, self._sent[-1] + interval / 2)  # never above twice the pace
        held = max(start, self._hold)
        cap = max(1, math.floor(self.rate * WINDOW / 60.0))
        if len(self._sent) >= cap:
            # No sliding minute may hold more than the rate: wait for the oldest to leave it.
            held = max(held, self._sent[-cap] + WINDOW * 1.0005)
        # Held back by the sliding minute or a Retry-After: the schedule starts again from
        # there (no turns owed); otherwise it moves one turn on, making up what it lags.
        self._next = held + interval if held > start else ideal + interval
        start = held
        self._sent.append(start)
        return start

    def rate_limited_by_service(self, retry_after: float | None) -> None:
        """A 429: slow down below what the window held, and wait as long as told."""
        with self._lock:
            now = self._clock.monotonic()
            self._trim(now)
            held = len(self._sent)
            if held >= MIN_LEARNED:
                # The minute held `held` requests when the service said no: its limit is below
                # that. (Fewer in the minute: a 429 on demand, or another client on the token;
                # only Retry-After is honoured, nothing is learned from so little.)
                pace = max(float(MIN_LEARNED), (held - 1) * BACKOFF_SHARE)
                self.learned = pace if self.learned is None else min(self.learned, pace)
            self._next = max(self._next, now + (retry_after or self.interval))
            self._hold = max(self._hold, now + (retry_after or 0.0))
            self.dirty = True
        log.warning(
            "lapor_rate_limited", sent_last_minute=held, pace_per_minute=round(self.rate, 1),
            retry_after_s=retry_after,
        )  # fmt: skip

    def sent_last_minute(self) -> int:
        """Requests started within the last minute (the budget used, for monitoring)."""
        with self._lock:
            now = self._clock.monotonic()
            self._trim(now)
            return sum(1 for t in self._sent if t <= now)

    def _trim(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW * 1.001:
            self._sent.popleft()

    # --- kept in the state across restarts --------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The last minute's request times (wall clock, epoch seconds) and the learned pace."""
        with self._lock:
            mono, wall = self._clock.monotonic(), self._clock.now().timestamp()
            self._trim(mono)
            self.dirty = False
            # Turns reserved ahead of the clock are not kept: a stop may still cancel them.
            sent = [t for t in self._sent if t <= mono]
            following = min(self._next, (sent[-1] if sent else mono) + self.interval)
            return {
                "sent": [round(wall - (mono - t), 3) for t in sent],
                "next": round(wall + (following - mono), 3),
                "hold": round(wall + (self._hold - mono), 3),
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
            hold = saved.get("hold")
            if isinstance(hold, (int, float)):
                self._hold = max(self._hold, min(mono + WINDOW * 5, mono + (hold - wall)))
            following = saved.get("next")
            if earlier and self.interval:
                # The schedule goes on from where the earlier process left it (a turn lost to
                # the restart may be made up, within the sliding minute).
                self._next = earlier[-1] + self.interval
                if isinstance(following, (int, float)):
                    self._next = max(self._next, min(mono + WINDOW, mono + (following - wall)))


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
