"""Pulling the LAPOR! inbox into a real SQLite state file, against the real simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from connector import errors
from connector.clock import FakeClock
from connector.lapor.client import LaporClient
from connector.pull import FLOW, pull_inbox
from connector.simulators.lapor import SimControl
from connector.state import StateStore
from tests.test_lapor_client import BEGINNING, held, valid


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.sqlite", clock) as opened:
        yield opened


def test_first_pull_stores_every_visible_complaint(client: LaporClient, store: StateStore) -> None:
    """Everything the inbox lists ends up in the state, with a watermark."""
    expected = {c.lapor_id for c in valid(client.inbox(BEGINNING))}
    report = pull_inbox(client, store)
    assert report.new == len(expected)
    assert report.quarantined == []
    assert {row["lapor_id"] for row in store.complaints()} == expected
    assert store.watermark(FLOW) is not None


def test_second_pull_costs_one_request_and_changes_nothing(
    client: LaporClient, store: StateStore
) -> None:
    """With nothing changed, a pull reads one (nearly empty) page and writes nothing new."""
    pull_inbox(client, store)
    again = pull_inbox(client, store)
    assert (again.new, again.changed, again.requests) == (0, 0, 1)


def test_changes_are_picked_up(client: LaporClient, store: StateStore, control: SimControl) -> None:
    """A citizen reply after a pull shows up as one changed complaint in the next."""
    pull_inbox(client, store)
    target = held(client)[0]
    control.advance_seconds(3600)
    control.reply(target.lapor_id, "Bagaimana perkembangannya?")
    report = pull_inbox(client, store)
    assert (report.new, report.changed) == (0, 1)


def test_malformed_record_is_quarantined_and_the_rest_synced(
    client: LaporClient, store: StateStore, control: SimControl
) -> None:
    """One bad record is quarantined with its field path; every other complaint is stored."""
    expected = len(valid(client.inbox(BEGINNING)))
    control.add_fault("inbox", "malformed", count=1, variant="naive_timestamp")
    report = pull_inbox(client, store)
    assert report.new == expected - 1
    assert len(report.quarantined) == 1
    (entry,) = store.quarantined()
    assert entry.source == FLOW
    assert any(p.startswith("updated_at:") for p in entry.problems)


def test_interrupted_pull_keeps_committed_pages_and_resumes(
    make_client: Callable[..., LaporClient], client: LaporClient, store: StateStore
) -> None:
    """A pull that fails after two pages keeps them and its cursor; the next pull completes the set."""
    expected = {c.lapor_id for c in valid(client.inbox(BEGINNING))}
    cut_short = make_client(page_size=4, max_pages=2)
    with pytest.raises(errors.ProtocolError):
        pull_inbox(cut_short, store)
    kept = store.count_complaints()
    assert 0 < kept < len(expected)
    assert store.watermark(FLOW) == max(
        datetime.fromisoformat(row["updated_at"]) for row in store.complaints()
    )
    report = pull_inbox(client, store)
    assert {row["lapor_id"] for row in store.complaints()} == expected
    assert report.new == len(expected) - kept
