"""Client-side pacing: stay under a service's request limit instead of collecting 429s."""

from __future__ import annotations

import threading

from connector.clock import Clock


class TokenBucket:
    """A token bucket: ``rate_per_minute`` requests a minute on average, bursts up to ``burst``.

    ``acquire()`` takes one token, waiting through the injected clock when none is left.
    A rate of 0 disables pacing. Safe to share between threads.
    """

    def __init__(self, rate_per_minute: float, clock: Clock, *, burst: int | None = None) -> None:
        if rate_per_minute < 0:
            raise ValueError("rate_per_minute must be 0 (no limit) or positive")
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, int(rate_per_minute // 6)))
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token, waiting if needed; return the seconds waited."""
        if self.rate_per_second == 0:
            return 0.0
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            # A negative balance is a reservation: this caller waits until its token has accrued,
            # and later callers queue behind it without busy-waiting.
            wait = -self._tokens / self.rate_per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def penalise(self, seconds: float) -> None:
        """Empty the bucket for ``seconds`` (a Retry-After): no caller sends early."""
        if self.rate_per_second == 0 or seconds <= 0:
            return
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 1.0 - seconds * self.rate_per_second)

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate_per_second)
        self._last = now
