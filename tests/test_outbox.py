"""The outbox on a real SQLite file: intent before the write, lookup before any re-send."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connector import errors
from connector.clock import FakeClock
from connector.outbox import Outbox, OutboxItem
from connector.state import StateStore


class Remote:
    """A remote service double: counts sends, remembers what it applied."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.sends = 0
        self.lookups = 0

    def send(
        self, key: str, fail: Exception | None = None, apply_first: bool = False
    ) -> dict[str, Any]:
        self.sends += 1
        if apply_first:
            self.applied.append(key)
        if fail is not None:
            raise fail
        if not apply_first:
            self.applied.append(key)
        return {"remote_id": len(self.applied)}

    def lookup(self, key: str) -> dict[str, Any] | None:
        self.lookups += 1
        return {"remote_id": self.applied.index(key) + 1} if key in self.applied else None


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.sqlite", clock) as opened:
        yield opened


def intent(outbox: Outbox, key: str = "create:WA-1") -> OutboxItem:
    with outbox.store.transaction():
        return outbox.enqueue(
            key=key, flow="intake_out", target="lapor", operation="create_complaint",
            subject="WA-1", payload={"title": "x"}, lookup={"external_ref": "WA-1"},
        )  # fmt: skip


def test_enqueue_is_idempotent_by_key(store: StateStore) -> None:
    """The same intent recorded twice is one write."""
    outbox = Outbox(store)
    first, second = intent(outbox), intent(outbox)
    assert first.id == second.id
    assert len(list(outbox.items())) == 1


def test_success_records_result_and_runs_on_done_in_the_same_transaction(store: StateStore) -> None:
    """A sent write is done, with its result, and on_done's change commits with it."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)

    def on_done(done: OutboxItem, result: dict[str, Any]) -> None:
        store.set_watermark("marker", store.clock.now())

    outcome = outbox.attempt(
        item, lambda: remote.send(item.key), lambda: remote.lookup(item.key), on_done=on_done
    )
    assert outcome.state == "done"
    assert outbox.get(item.key).result == {"remote_id": 1}  # type: ignore[union-attr]
    assert store.watermark("marker") is not None


def test_failing_on_done_leaves_the_write_in_flight_and_it_is_found_not_resent(
    store: StateStore,
) -> None:
    """If recording the result fails, the next attempt finds the write instead of sending it again."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)

    def broken(done: OutboxItem, result: dict[str, Any]) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        outbox.attempt(
            item, lambda: remote.send(item.key), lambda: remote.lookup(item.key), on_done=broken
        )
    (again,) = outbox.due()
    assert again.state == "in_flight"
    outcome = outbox.attempt(
        again, lambda: remote.send(again.key), lambda: remote.lookup(again.key)
    )
    assert outcome.found_by_lookup
    assert remote.sends == 1
    assert remote.applied == [item.key]


def test_ambiguous_write_is_looked_up_at_the_next_run_whatever_its_backoff(
    store: StateStore,
) -> None:
    """Commit-then-drop: the write stays in flight and the very next run finds it (a lookup is a
    read), rather than waiting out the back-off or sending it again."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)
    dropped = errors.AmbiguousOutcome("dropped", operation="create_complaint", lookup={})
    outcome = outbox.attempt(
        item,
        lambda: remote.send(item.key, dropped, apply_first=True),
        lambda: remote.lookup(item.key),
    )
    assert outcome.state == "in_flight"
    (again,) = outbox.due()
    outcome = outbox.attempt(
        again, lambda: remote.send(again.key), lambda: remote.lookup(again.key)
    )
    assert outcome.found_by_lookup
    assert (remote.sends, remote.applied) == (1, [item.key])


def test_unanswered_write_not_found_waits_its_backoff_before_a_resend(
    store: StateStore, clock: FakeClock
) -> None:
    """After a timeout the service may still apply the write: a lookup that finds nothing does
    not re-send before the back-off; the lookup repeats every run until then."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)
    lost = errors.AmbiguousOutcome("timed out", operation="create_complaint", lookup={})
    outbox.attempt(item, lambda: remote.send(item.key, lost), lambda: remote.lookup(item.key))
    (again,) = outbox.due()
    waiting = outbox.attempt(
        again, lambda: remote.send(again.key), lambda: remote.lookup(again.key)
    )
    assert (waiting.state, remote.sends, remote.lookups) == ("in_flight", 1, 1)
    clock.advance(61)
    (again,) = outbox.due()
    done = outbox.attempt(again, lambda: remote.send(again.key), lambda: remote.lookup(again.key))
    assert (done.state, remote.sends, remote.lookups) == ("done", 2, 2)


def test_answered_write_not_found_is_sent_again_at_the_next_run(store: StateStore) -> None:
    """After a 5xx or a soft error the service is done with the request: if the next run's
    lookup finds nothing, the write is sent again at once (no 60 s wait)."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)
    failed = errors.AmbiguousOutcome("502", operation="create_complaint", lookup={}, answered=True)
    outbox.attempt(item, lambda: remote.send(item.key, failed), lambda: remote.lookup(item.key))
    (again,) = outbox.due()
    done = outbox.attempt(again, lambda: remote.send(again.key), lambda: remote.lookup(again.key))
    assert (done.state, remote.sends, remote.applied) == ("done", 2, [item.key])


def test_ambiguous_write_that_did_not_happen_is_sent_again(
    store: StateStore, clock: FakeClock
) -> None:
    """When the lookup finds nothing, the write is sent once more."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)
    lost = errors.AmbiguousOutcome("timed out", operation="create_complaint", lookup={})
    outbox.attempt(item, lambda: remote.send(item.key, lost), lambda: remote.lookup(item.key))
    clock.advance(61)
    (again,) = outbox.due()
    assert (
        outbox.attempt(
            again, lambda: remote.send(again.key), lambda: remote.lookup(again.key)
        ).state
        == "done"
    )
    assert remote.applied == [item.key]


def test_crash_mid_write_is_resolved_on_restart(tmp_path: Path, clock: FakeClock) -> None:
    """A process killed after sending leaves the intent in flight; the next process looks it up first."""
    remote = Remote()
    with StateStore(tmp_path / "s.sqlite", clock) as store:
        outbox = Outbox(store)
        item = intent(outbox)
        with pytest.raises(SystemExit):
            outbox.attempt(
                item, lambda: remote.send(item.key, SystemExit(9), apply_first=True), lambda: None
            )
    with StateStore(tmp_path / "s.sqlite", clock) as reopened:
        outbox = Outbox(reopened)
        (pending,) = outbox.due()
        assert pending.state == "in_flight"
        outcome = outbox.attempt(
            pending, lambda: remote.send(pending.key), lambda: remote.lookup(pending.key)
        )
        assert outcome.found_by_lookup
        assert remote.sends == 1


def test_retriable_failure_backs_off_then_dies_past_the_budget(
    store: StateStore, clock: FakeClock
) -> None:
    """Transient failures are retried with growing delays, and a write that keeps failing goes dead."""
    outbox, remote = Outbox(store, max_attempts=3), Remote()
    item = intent(outbox)
    down = errors.ServiceUnavailable("503", sent=False)
    waits = []
    for _ in range(3):
        (item,) = outbox.due()
        key = item.key
        outcome = outbox.attempt(item, lambda key=key: remote.send(key, down), lambda: None)  # type: ignore[misc]
        current = outbox.get(item.key)
        assert current is not None
        if current.next_attempt_at is not None:
            waits.append(current.next_attempt_at - clock.now())
        clock.advance(24 * 3600)
    assert outcome.state == "dead"
    assert waits[:2] == [timedelta(minutes=1), timedelta(minutes=2)]


def test_record_errors_go_dead_at_once_and_can_be_retried_or_acknowledged(
    store: StateStore,
) -> None:
    """A rejected record needs a person: dead now; retry puts it back, acknowledge closes it."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)
    rejected = errors.RecordRejected("422", [errors.FieldProblem("category_id", "unknown")])
    assert (
        outbox.attempt(item, lambda: remote.send(item.key, rejected), lambda: None).state == "dead"
    )
    assert outbox.retry(item.id)
    assert outbox.get(item.key).state == "pending"  # type: ignore[union-attr]
    outbox.attempt(outbox.due()[0], lambda: remote.send(item.key, rejected), lambda: None)
    assert outbox.acknowledge(item.id)
    assert outbox.due() == []
    assert not outbox.acknowledge(item.id)


def test_fatal_error_is_recorded_and_raised(store: StateStore) -> None:
    """Refused credentials stop the caller; the write stays queued for after the fix."""
    outbox, remote = Outbox(store), Remote()
    item = intent(outbox)
    with pytest.raises(errors.AuthenticationFailed):
        outbox.attempt(
            item, lambda: remote.send(item.key, errors.AuthenticationFailed("401")), lambda: None
        )
    stored = outbox.get(item.key)
    assert stored is not None
    assert (stored.state, stored.last_error_code) == ("failed", "AuthenticationFailed")
