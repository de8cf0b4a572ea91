"""The request pacer, on an injected clock: one budget per token, even spacing, no bursts."""

from __future__ import annotations

import itertools

import pytest

from connector import errors
from connector.clock import FakeClock
from connector.ratelimit import Pacer, pacer_for


def in_any_minute(starts: list[float]) -> int:
    """The most requests any sliding 60-second window holds (an independent count)."""
    return max(sum(1 for t in starts if s <= t < s + 60) for s in starts)


def starts_of(pacer: Pacer, clock: FakeClock, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        pacer.acquire()
        starts.append(clock.monotonic())
    return starts


def test_requests_are_spaced_evenly_from_the_first_one(clock: FakeClock) -> None:
    """No burst allowance: at 60/min the second request waits a second, also at start-up."""
    pacer = Pacer(60, clock)
    waits = [pacer.acquire() for _ in range(4)]
    assert waits == pytest.approx([0, 1.0, 1.0, 1.0], rel=1e-3)


def test_no_minute_ever_holds_more_than_the_rate(clock: FakeClock) -> None:
    pacer = Pacer(115, clock)
    starts = starts_of(pacer, clock, 400)
    assert in_any_minute(starts) <= 115
    assert in_any_minute(starts) >= 114  # and the budget is used, not wasted


def test_idle_time_gives_no_burst_afterwards(clock: FakeClock) -> None:
    """A token bucket would let a burst through after an idle hour; the pacer does not."""
    pacer = Pacer(60, clock)
    pacer.acquire()
    clock.advance(3600)
    assert [pacer.acquire() for _ in range(3)] == pytest.approx([0, 1.0, 1.0], rel=1e-3)


def test_a_short_pause_is_made_up_within_the_minute_and_at_most_twice_the_pace(
    clock: FakeClock,
) -> None:
    """A restart or a stretch of agency writes costs turns; a tenth of a minute's budget at most
    is made up, at no more than twice the pace, and no sliding minute holds more than the rate."""
    pacer = Pacer(120, clock)
    starts = starts_of(pacer, clock, 200)
    clock.advance(4)  # 4 s without a request: 8 turns lost
    after = starts_of(pacer, clock, 200)
    gaps = [b - a for a, b in itertools.pairwise(after)]
    assert min(gaps) >= 0.25 * 0.999  # twice the pace at most
    assert sum(1 for g in gaps if g < 0.49) <= 24  # 12 turns (a tenth of the budget) made up
    everything = starts + after
    assert in_any_minute(everything) <= 120
    # every minute that holds the pause still uses nearly all of the budget
    assert min(sum(1 for t in everything if s <= t < s + 60) for s in starts[-60:]) >= 118


def test_zero_rate_never_waits(clock: FakeClock) -> None:
    pacer = Pacer(0, clock)
    assert all(pacer.acquire() == 0 for _ in range(1000))
    assert clock.sleeps == []


def test_one_pacer_per_token_shared_by_every_caller(clock: FakeClock) -> None:
    first, second = pacer_for("token-a", 60, clock), pacer_for("token-a", 60, clock)
    other = pacer_for("token-b", 60, clock)
    assert first is second
    assert first is not other
    first.acquire()
    assert second.acquire() == pytest.approx(
        1.0, rel=1e-3
    )  # the second caller queues behind the first
    assert other.acquire() == 0  # another token has its own budget


def test_a_429_slows_down_below_what_the_minute_held_and_waits_as_told(clock: FakeClock) -> None:
    pacer = Pacer(120, clock)
    starts_of(pacer, clock, 100)  # 100 in the last 50 s, then the service says no
    pacer.rate_limited_by_service(retry_after=7)
    assert pacer.rate < 100
    assert pacer.acquire() >= 7.0  # the Retry-After, and until the minute is below the new pace
    after = starts_of(pacer, clock, 300)
    assert in_any_minute(after) < 100  # and stays below the observed limit afterwards


def test_a_restart_continues_the_last_minute_instead_of_bursting(clock: FakeClock) -> None:
    before = Pacer(60, clock)
    starts_of(before, clock, 30)
    saved = before.snapshot()
    clock.advance(0.2)  # the process restarts at once
    after = Pacer(60, clock)
    after.restore(saved)
    assert after.acquire() == pytest.approx(0.8, abs=0.01)  # one second after the last one


def test_a_restart_keeps_what_a_429_taught(clock: FakeClock) -> None:
    before = Pacer(120, clock)
    starts_of(before, clock, 80)
    before.rate_limited_by_service(retry_after=None)
    learned = before.rate
    after = Pacer(120, clock)
    after.restore(before.snapshot())
    assert after.rate == pytest.approx(learned)


def test_when_stopping_no_request_starts_and_no_wait_is_cut_short(clock: FakeClock) -> None:
    pacer = Pacer(60, clock)
    pacer.acquire()
    clock.stopping = True
    with pytest.raises(errors.Stopping):
        pacer.acquire()


def test_a_restart_of_four_seconds_costs_almost_nothing_of_the_budget(clock: FakeClock) -> None:
    """SIGTERM and a restart (the daemon's stop and start take a few seconds): the new process
    takes the last minute from the state and makes up the turns lost, within the minute."""
    before = Pacer(115, clock)
    starts = starts_of(before, clock, 200)
    saved = before.snapshot()
    clock.advance(3.7)
    after = Pacer(115, clock)
    after.restore(saved)
    everything = starts + starts_of(after, clock, 200)
    windows = [sum(1 for t in everything if s <= t < s + 60) for s in starts[-100:]]
    assert max(windows) <= 115
    assert min(windows) >= 113  # 98% of the pace in every minute that holds the restart


def test_a_turn_cancelled_by_a_stop_is_not_kept_as_sent(clock: FakeClock) -> None:
    """Turns reserved by waiting workers are not requests: a restart must not count them."""
    pacer = Pacer(60, clock)
    starts_of(pacer, clock, 5)
    real_sleep = clock.sleep

    def sleep_then_stop(seconds: float) -> None:
        real_sleep(seconds)
        clock.stopping = True

    clock.sleep = sleep_then_stop  # type: ignore[method-assign]
    with pytest.raises(errors.Stopping):
        pacer.acquire()
    assert len(pacer.snapshot()["sent"]) == 5


def test_a_429_after_a_few_requests_teaches_nothing(clock: FakeClock) -> None:
    """A 429 on demand (or another client on the token) after three requests in the minute says
    nothing about the limit: the wait is honoured, the pace stays."""
    pacer = Pacer(60, clock)
    starts_of(pacer, clock, 3)
    pacer.rate_limited_by_service(retry_after=5)
    assert pacer.rate == 60
    assert pacer.acquire() == pytest.approx(5.0, abs=1.1)
