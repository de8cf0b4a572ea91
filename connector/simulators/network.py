"""What both simulators share about the network they pretend to be behind: latency and backlog."""

from __future__ import annotations

import math
import threading

#: Pending connections the listening socket holds, so many concurrent clients are not refused.
REQUEST_QUEUE_SIZE = 128


def checked_latency(value: object) -> float:
    """A latency in milliseconds from a control-plane body; ValueError saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"ms: a number of milliseconds, 0 or more (got {value!r})")
    if value < 0:
        raise ValueError(f"ms: a latency cannot be negative (got {value!r})")
    return float(value)


def wait_half(latency_ms: float, stopping: threading.Event) -> None:
    """Wait half of a request's latency on the real clock (released at once when stopping).

    A request waits half after it was read and half before it is answered, so a write is
    applied in the middle, as over a real network.
    """
    if latency_ms > 0:
        stopping.wait(latency_ms / 2000)
