"""The client-side token bucket, on an injected clock."""

from __future__ import annotations

import pytest

from connector.clock import FakeClock
from connector.ratelimit import TokenBucket


def test_burst_then_steady_pace(clock: FakeClock) -> None:
    """A full bucket lets a burst through, then one request per 1/rate seconds."""
    bucket = TokenBucket(60, clock, burst=3)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits == pytest.approx([0, 0, 0, 1.0, 1.0])


def test_idle_time_refills_up_to_capacity(clock: FakeClock) -> None:
    """Idle time refills the bucket, never beyond its capacity."""
    bucket = TokenBucket(60, clock, burst=2)
    bucket.acquire(), bucket.acquire()
    clock.advance(3600)
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0, 0, 1.0])


def test_zero_rate_never_waits(clock: FakeClock) -> None:
    """A rate of 0 switches pacing off."""
    bucket = TokenBucket(0, clock)
    assert all(bucket.acquire() == 0 for _ in range(1000))
    assert clock.sleeps == []


def test_penalise_holds_every_caller(clock: FakeClock) -> None:
    """After a Retry-After of 10 s, the next request waits the 10 s out."""
    bucket = TokenBucket(60, clock, burst=5)
    bucket.penalise(10)
    assert bucket.acquire() == pytest.approx(10.0)


def test_average_rate_is_kept_over_a_minute(clock: FakeClock) -> None:
    """Over many requests the rate converges to rate_per_minute."""
    bucket = TokenBucket(30, clock)
    start = clock.monotonic()
    for _ in range(300):
        bucket.acquire()
    minutes = (clock.monotonic() - start) / 60
    assert 300 / minutes == pytest.approx(30, rel=0.05)
