"""Every LAPOR! request earns its place: the minimum of docs/sync.md, counted on the simulator.

Each test makes one kind of change on the LAPOR! simulator, runs the inbound flow, and counts the
requests the simulator received, route by route, against the documented minimum.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from connector import errors
from connector.adapters import AgencyAdapter
from connector.clock import FakeClock
from connector.flows.followups_out import run_followups_out
from connector.flows.inbound import run_inbound
from connector.flows.intake_out import run_intake_out
from connector.lapor.client import LaporClient
from connector.lapor.transport import pacer_key
from connector.mappings import load_mappings
from connector.simulators.agency import AgencyControl
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.state import StateStore
from connector.sync import Sync, keep_pacer
from tests.conftest import INSTITUTION_ID
from tests.test_sync import adapter, agency_control, agency_system, make_sync, mappings_dir

__all__ = ["adapter", "agency_control", "agency_system", "make_sync", "mappings_dir"]

ROUTES = ("categories", "inbox", "complaint", "followups")
PAGE = 100  # small pages keep the long-run case small; the default is 1000


@pytest.fixture
def client(make_client: Callable[..., LaporClient]) -> LaporClient:
    return make_client(page_size=PAGE)


def counted(control: SimControl) -> dict[str, int]:
    requests = control.stats()["requests"]
    return {route: int(requests.get(route, 0)) for route in ROUTES if requests.get(route)}


def linked_ours(sim: LaporSimulator) -> list[dict[str, object]]:
    return [c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID]


def test_the_initial_sync_costs_one_detail_and_one_followups_read_per_new_complaint(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl
) -> None:
    control.reset_stats()
    report = run_inbound(make_sync())
    assert report.created == len(linked_ours(sim))
    # one category list (master data), one inbox page (page size 1000), C2 + C3 per complaint
    assert counted(control) == {
        "categories": 1,
        "inbox": 1,
        "complaint": report.created,
        "followups": report.created,
    }


def test_an_idle_cycle_costs_one_request(
    make_sync: Callable[..., Sync], control: SimControl, clock: FakeClock
) -> None:
    sync = make_sync()
    run_inbound(sync), run_intake_out(sync), run_followups_out(sync), run_inbound(sync)
    for advance in (0, 120, 600):  # inside and beyond the 5-minute overlap window
        control.advance_seconds(advance)
        clock.advance(advance)
        control.reset_stats()
        run_inbound(make_sync())  # a new run: master data comes from the state's cache
        run_followups_out(make_sync())  # the daemon's other flows: nothing on LAPOR! when idle
        run_intake_out(make_sync())
        assert control.stats()["requests"] == {"inbox": 1}, f"after {advance} s"


def test_master_data_is_fetched_again_after_the_refresh_interval(
    make_sync: Callable[..., Sync], control: SimControl, clock: FakeClock
) -> None:
    run_inbound(make_sync())
    clock.advance(timedelta(hours=25).total_seconds())
    control.reset_stats()
    make_sync()
    assert counted(control) == {"categories": 1}


def test_a_reply_costs_the_inbox_page_and_one_followups_read(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl
) -> None:
    run_inbound(make_sync())
    open_one = next(c for c in linked_ours(sim) if c["status"] == "in_process")
    control.reply(int(str(open_one["id"])), "Sudah saya lampirkan fotonya.")
    control.reset_stats()
    report = run_inbound(make_sync())
    assert report.replies == 1
    assert counted(control) == {"inbox": 1, "followups": 1}


def test_a_reply_on_a_closed_complaint_still_reaches_the_agency(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl
) -> None:
    """A closed complaint updated again is read for replies: the citizen may have written
    after Selesai, and without a follow-up count nothing else tells."""
    run_inbound(make_sync())
    closed = next(c for c in linked_ours(sim) if c["status"] == "done")
    control.reply(int(str(closed["id"])), "Terima kasih, masalah sudah selesai.")
    control.reset_stats()
    report = run_inbound(make_sync())
    assert report.replies == 1
    assert counted(control) == {"inbox": 1, "followups": 1}


def test_a_closure_is_a_change_that_is_read_for_replies_once(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl
) -> None:
    """A reply may have come just before an admin closed it: the closing change reads C3."""
    run_inbound(make_sync())
    open_one = next(c for c in linked_ours(sim) if c["status"] == "in_process")
    control.reply(int(str(open_one["id"])), "Terima kasih, sudah beres.")
    control.close(int(str(open_one["id"])))
    control.reset_stats()
    report = run_inbound(make_sync())
    assert report.replies == 1
    assert counted(control) == {"inbox": 1, "followups": 1}


@pytest.mark.parametrize("dialect", ["counts"])
def test_with_a_follow_up_count_only_complaints_with_follow_ups_are_read(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl
) -> None:
    control.reset_stats()
    report = run_inbound(make_sync())
    with_followups = [c for c in linked_ours(sim) if sim.state.followups.get(int(str(c["id"])))]
    assert 0 < len(with_followups) < report.created
    assert counted(control)["followups"] == len(with_followups)
    # and a reply on one of them is still found by its count
    target = int(str(linked_ours(sim)[0]["id"]))
    control.reply(target, "Mohon ditindaklanjuti.")
    control.reset_stats()
    assert run_inbound(make_sync()).replies == 1
    assert counted(control) == {"inbox": 1, "followups": 1}


def test_many_complaints_closed_at_once_cost_their_pages_once_per_cycle(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl, clock: FakeClock
) -> None:
    control.reset(seed=3, complaints=240)
    run_inbound(make_sync())
    assert control.touch(count=150, close=True)["touched"] == 150  # 1.5 pages at one moment
    run_inbound(make_sync())  # the change itself
    for _ in range(3):  # then cycles inside the overlap window
        control.advance_seconds(30)
        clock.advance(30)
        control.reset_stats()
        run_inbound(make_sync())
        assert counted(control) == {"inbox": 2}


def test_a_stop_in_the_middle_of_a_run_leaves_the_rest_for_the_next_run(
    make_client: Callable[..., LaporClient],
    make_sync: Callable[..., Sync],
    adapter: AgencyAdapter,
    mappings_dir: Path,
    tmp_path: Path,
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    clock: FakeClock,
) -> None:
    """SIGTERM while paced: no request starts after it, nothing is counted as attempted that
    was not sent, and the next run finishes the work once."""
    waits = 0
    real_sleep = clock.sleep

    def sleep(seconds: float) -> None:
        nonlocal waits
        real_sleep(seconds)
        waits += 1
        if waits == 12:  # a SIGTERM arrives during the 12th wait for the pacer
            clock.stopping = True

    clock.sleep = sleep  # type: ignore[method-assign]
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        sync = Sync(lapor=make_client(requests_per_minute=60), agency=adapter, store=store,
                    mappings=load_mappings(mappings_dir), clock=clock, institution_id=INSTITUTION_ID)  # fmt: skip
        sync.load_trees()
        control.reset_stats()
        with pytest.raises(errors.Stopping):
            run_inbound(sync)
        # 12 had their turn (the category list before the count): none after the stop
        assert sum(counted(control).values()) == 11
        assert list(sync.outbox.items("in_flight")) == []  # none looks as if it may be sent
        assert all(i.attempts == 0 for i in sync.outbox.items("pending"))
        sync.close()
    clock.stopping = False
    clock.sleep = real_sleep  # type: ignore[method-assign]
    run_inbound(make_sync())
    linked = [c["lapor"]["id"] for c in agency_control.complaints() if c["lapor"]]  # type: ignore[index]
    assert sorted(linked) == sorted({c["id"] for c in linked_ours(sim)})  # each once


def test_a_follow_up_not_sent_because_of_a_stop_is_sent_once_by_the_next_run(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    clock: FakeClock,
) -> None:
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in linked_ours(sim) if c["status"] == "verified")
    agency_id = next(
        c["id"]
        for c in agency_control.complaints()
        if c["lapor"] and c["lapor"]["id"] == target["id"]  # type: ignore[index]
    )
    agency_control.add_staff_followup(str(agency_id), "Berkas sedang diverifikasi ulang.")
    control.reset_stats()
    clock.stopping = True  # SIGTERM before the follow-up's turn
    with pytest.raises(errors.Stopping):
        run_followups_out(sync)
    assert control.writes("followup_add") == 0
    waiting = [i for i in sync.outbox.items() if i.operation == "lapor_add_followup"]
    assert [(i.state, i.attempts) for i in waiting] == [("pending", 0)]  # as before, no attempt
    clock.stopping = False
    run_followups_out(sync)
    run_followups_out(sync)
    posted = [f for f in sim.state.followups[int(str(target["id"]))]
              if f["content"] == "Berkas sedang diverifikasi ulang."]  # fmt: skip
    assert len(posted) == 1


def test_a_category_the_cached_tree_does_not_know_has_the_tree_fetched_again_at_once(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """LAPOR! adds a subcategory after the tree was cached: the complaint that names it is
    mapped by its parent's rule (not quarantined as a gap), at the cost of one category list."""
    run_inbound(make_sync())
    with sim.state.lock:  # a new child of 40 Pelayanan Publik (YAN in categories.yaml)
        sim.state.categories[743] = {"id": 743, "parent_id": 40, "name": "Layanan Daring"}
    complaint_id = control.submit(category_id=743, title="Aplikasi antrean tidak bisa dibuka")
    control.dispose(complaint_id, INSTITUTION_ID)
    control.reset_stats()
    report = run_inbound(make_sync())
    assert (report.created, report.quarantined) == (1, 0)
    assert counted(control)["categories"] == 1
    created = next(c for c in agency_control.complaints() if c["lapor"] and c["lapor"]["id"] == complaint_id)  # type: ignore[index]  # fmt: skip
    assert created["category_code"] == "YAN"


def test_the_pacers_last_minute_rides_on_the_states_commits_to_the_next_process(
    make_client: Callable[..., LaporClient], tmp_path: Path, clock: FakeClock
) -> None:
    """What a restart continues from: the first process's requests are in the state after its
    next commit, and a second process (its own clock, so its own pacer) waits its turn."""
    settings = make_client(requests_per_minute=60).settings
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        first = LaporClient(settings, clock)
        keep_pacer(store, first)
        for _ in range(3):
            first.transport.limiter.acquire()
        with store.transaction():
            pass  # any commit of the run
        saved = store.pacer_state(pacer_key(settings))
        assert saved is not None
        assert len(saved["sent"]) == 3
        restarted = FakeClock(clock.now())  # a new process, a moment later
        second = LaporClient(settings, restarted)
        keep_pacer(store, second)
        assert second.transport.limiter.acquire() == pytest.approx(1.0, rel=1e-2)
        first.close(), second.close()
