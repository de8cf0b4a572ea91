"""Links between LAPOR! and agency ids, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connector.clock import FakeClock
from connector.links import Links
from connector.state import StateStore


@pytest.fixture
def links(tmp_path: Path, clock: FakeClock) -> Iterator[Links]:
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        yield Links(store)


def test_link_is_found_from_every_id(links: Links, clock: FakeClock) -> None:
    """A linked complaint is found by its LAPOR! id, tracking id and agency id."""
    links.add(
        origin="lapor",
        lapor_id=5010653,
        tracking_id="1916449",
        agency_id="AG-1",
        lapor_updated_at=clock.now(),
    )
    for link in (
        links.by_lapor_id(5010653),
        links.by_tracking_id("1916449"),
        links.by_agency_id("AG-1"),
    ):
        assert link is not None
        assert (link.lapor_id, link.agency_id, link.origin) == (5010653, "AG-1", "lapor")
    assert links.by_lapor_id(1) is None


def test_adding_the_same_link_twice_keeps_one(links: Links) -> None:
    """Linking is idempotent."""
    for _ in range(2):
        links.add(origin="agency", lapor_id=7, tracking_id="7", agency_id="AG-7")
    assert links.count() == 1


def test_disposed_away_and_updates(links: Links, clock: FakeClock) -> None:
    """A re-disposed complaint is marked; statuses and times are recorded."""
    links.add(origin="lapor", lapor_id=7, tracking_id="7", agency_id="AG-7")
    links.update(7, lapor_status="in_process", lapor_updated_at=clock.now())
    links.mark_disposed_away(7)
    link = links.by_lapor_id(7)
    assert link is not None
    assert link.disposed_away
    assert (link.lapor_status, link.lapor_updated_at) == ("in_process", clock.now())


def test_followup_links(links: Links) -> None:
    """A follow-up linked once is known from either side."""
    links.link_followup(
        lapor_followup_id=99,
        agency_followup_id="F-1",
        lapor_id=7,
        agency_id="AG-7",
        direction="outbound",
    )
    links.link_followup(
        lapor_followup_id=99,
        agency_followup_id="F-1",
        lapor_id=7,
        agency_id="AG-7",
        direction="outbound",
    )
    assert links.followup_linked(lapor_followup_id=99)
    assert links.followup_linked(agency_followup_id="F-1")
    assert not links.followup_linked(agency_followup_id="F-2")
    assert links.linked_lapor_followups(7) == {99}


def test_lapor_timestamps_are_kept_at_the_precision_lapor_sends(
    links: Links, clock: FakeClock
) -> None:
    """A LAPOR! updated_at with a fraction of a second compares equal after a round trip (kept
    to the second, it would count as changed, and be read again, every cycle)."""
    moment = datetime(2026, 11, 3, 9, 15, 42, 123456, tzinfo=timezone(timedelta(hours=7)))
    links.add(origin="lapor", lapor_id=7, tracking_id="1", agency_id="AG-7")
    links.update(7, lapor_updated_at=moment, last_followup_at=moment)
    link = links.by_lapor_id(7)
    assert link is not None
    assert link.lapor_updated_at == moment
    assert link.last_followup_at == moment
