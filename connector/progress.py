"""Progress of long work (a first sync, a resync, a reconciliation): a bar on a terminal, a
``progress`` log event every so often off one, so an operator or a journal sees it move."""

from __future__ import annotations

import sys
from typing import IO, Any

from connector.clock import Clock
from connector.logs import get_logger

log = get_logger("progress")

#: Seconds between two progress log lines off a terminal.
EVERY = 10.0


class Progress:
    """``update(done, total)`` as the work goes; ``close()`` at the end (or use ``with``)."""

    def __init__(
        self, what: str, clock: Clock, *, stream: IO[str] | None = None, every: float = EVERY
    ) -> None:
        self.what = what
        self.clock = clock
        self.every = every
        self.done = 0
        self.total: int | None = None
        out = stream or sys.stderr
        self._bar: Any = None
        self._task: Any = None
        self._last_line: float | None = None
        self._started = clock.monotonic()
        if out.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=Console(file=out), transient=False)  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(what, total=None)

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` items of about ``total`` (an estimate that may grow; None: not known)."""
        self.done = done
        if total is not None:
            self.total = max(total, done)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total)
            return
        now = self.clock.monotonic()
        if self._last_line is None or now - self._last_line >= self.every:
            self._last_line = now
            self._line()

    def _line(self) -> None:
        elapsed = max(self.clock.monotonic() - self._started, 1e-9)
        log.info("progress", work=self.what, done=self.done, total=self.total,
                 per_minute=round(self.done / elapsed * 60, 1))  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.done:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
