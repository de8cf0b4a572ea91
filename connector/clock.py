"""Time, injected: everything that reads the time or waits goes through a ``Clock``."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """Reads wall time and monotonic time, and waits."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards (for rates and timeouts)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock; ``sleep`` can be interrupted by ``wake()`` for a prompt shutdown."""

    def __init__(self) -> None:
        self._wake = threading.Event()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)

    def wake(self) -> None:
        """End every current and future sleep at once (used on shutdown)."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once ``wake()`` was called: no new remote request should start."""
        return self._wake.is_set()


class FakeClock:
    """A clock for tests: it stands still until told to move, and ``sleep`` moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start time")
        self._mono = 1000.0
        self._lock = threading.Lock()
        #: Every sleep asked for, in order, so tests can assert on waits.
        self.sleeps: list[float] = []
        #: Set by a test to act as a process that was asked to stop (SIGTERM).
        self.stopping = False

    def now(self) -> datetime:
        with self._lock:
            return self._now.astimezone(timezone.utc)

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        """Move the clock forward ``seconds`` without recording a sleep."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
