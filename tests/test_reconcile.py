"""Reconcile end to end: drift of every kind made on purpose on both simulators, reported once,
repaired once, and nothing duplicated on either side."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connector.adapters import AgencyAdapter
from connector.audit import AuditLog
from connector.clock import FakeClock
from connector.config import ReconcileSettings
from connector.flows.followups_out import run_followups_out
from connector.flows.inbound import run_inbound
from connector.flows.intake_out import run_intake_out
from connector.lapor.client import LaporClient
from connector.reconcile import Finding, reconcile_all
from connector.reconcile_fix import repair_all
from connector.reconcile_sweep import run_sweep, slice_budget
from connector.simulators.agency import AgencyControl
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.sync import Sync
from tests.test_sync import (
    adapter,
    agency_control,
    agency_linked,
    agency_system,
    make_sync,
    mappings_dir,
    ours,
)

#: The end-to-end world's fixtures, shared with tests/test_sync.py.
FIXTURES = (adapter, agency_control, agency_system, make_sync, mappings_dir)
REPLY = "Sudah dua minggu belum ada kabar, mohon ditindaklanjuti."
STAFF = "Petugas ukur dijadwalkan datang hari Kamis."


def synced(make_sync: Callable[..., Sync]) -> Sync:
    """A sync whose flows have all run once (everything in step)."""
    sync = make_sync(intake_user_id=1)
    run_flows(sync)
    return sync


def run_flows(sync: Sync) -> None:
    run_inbound(sync), run_intake_out(sync), run_followups_out(sync)


def skip_past(sync: Sync, flow: str, moment: datetime) -> None:
    """What a pagination shift does: the flow's cursor is past a change it never read."""
    with sync.store.transaction():
        sync.store.set_watermark(flow, moment + timedelta(hours=1))


def kinds(findings: list[Finding]) -> Counter[str]:
    return Counter(f.kind for f in findings)


def pick(sim: LaporSimulator, linked: dict[int, dict[str, Any]], used: set[int],
         **wanted: object) -> dict[str, Any]:  # fmt: skip
    """A complaint of ours, linked, with the wanted LAPOR! fields, not used by another drift."""
    for c in sorted(ours(sim), key=lambda c: c["id"]):
        if c["id"] in linked and c["id"] not in used and all(c[k] == v for k, v in wanted.items()):
            used.add(c["id"])
            return c
    raise AssertionError(f"the seeded world has no free complaint with {wanted}")


def test_a_complete_sync_has_no_drift(make_sync: Callable[..., Sync]) -> None:
    """After every flow has run, reconcile finds nothing on any side."""
    sync = synced(make_sync)
    comparison = reconcile_all(sync)
    assert comparison.findings == []
    assert comparison.compared > 0


@pytest.fixture
def drifted(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> tuple[Sync, dict[str, Any]]:
    """A synced world with one drift of every kind made on purpose, on both sides."""
    sync = synced(make_sync)
    linked = agency_linked(agency_control)
    used: set[int] = set()
    made: dict[str, Any] = {}
    # LAPOR! side, then the inbound cursor skips past all of it.
    control.advance_seconds(60)
    made["missing"] = control.submit(
        title="Sertifikat ganda", content="Dua sertifikat satu bidang."
    )
    control.dispose(made["missing"], 145)
    made["reply_on"] = pick(sim, linked, used, status="in_process")["id"]
    control.reply(made["reply_on"], REPLY)
    made["lapor_gone"] = pick(sim, linked, used)["id"]
    control.remove(made["lapor_gone"])
    skip_past(sync, "inbound", control.now())
    # Agency side: each change made after the flows ran, the cursors skip past it.
    made["done"] = pick(sim, linked, used, status="done")["id"]
    agency_control.set_status(linked[made["done"]]["id"], "diproses")  # changed back
    made["secret"] = pick(sim, linked, used, is_secret=True)["id"]
    agency_control.edit(linked[made["secret"]]["id"], is_secret=False)
    made["staff_on"] = pick(sim, linked, used, status="in_process", is_secret=False)["id"]
    made["staff"] = agency_control.add_staff_followup(linked[made["staff_on"]]["id"], STAFF)
    made["agency_gone"] = pick(sim, linked, used)["id"]
    agency_control.delete(linked[made["agency_gone"]]["id"])
    made["not_filed"] = agency_control.add_internal_complaint(
        title="Loket tutup sebelum jam", content="Loket tutup pukul 11.", channel="counter",
        category_code="YAN-ANT", report_to_lapor=True,
    )  # fmt: skip
    now = datetime.now(timezone.utc)
    for flow in ("intake_out", "followups_out"):
        skip_past(sync, flow, now)
    made["linked"] = linked
    return sync, made


def test_every_kind_of_drift_is_reported_once(drifted: tuple[Sync, dict[str, Any]]) -> None:
    """Each drift made on purpose is one finding of its kind, naming the complaint on both sides."""
    sync, made = drifted
    findings = reconcile_all(sync).findings
    linked = made["linked"]
    assert kinds(findings) == {"missing_in_agency": 1, "not_filed": 1, "lapor_gone": 1,
                               "agency_gone": 1, "status_drift": 1, "followup_drift": 2,
                               "flag_drift": 1}  # fmt: skip
    by_kind = {(f.kind, f.lapor_id or f.agency_id) for f in findings}
    assert ("missing_in_agency", made["missing"]) in by_kind
    assert ("not_filed", made["not_filed"]) in by_kind
    for kind, key in (("lapor_gone", "lapor_gone"), ("agency_gone", "agency_gone"),
                      ("status_drift", "done"), ("flag_drift", "secret"),
                      ("followup_drift", "reply_on"), ("followup_drift", "staff_on")):  # fmt: skip
        assert (kind, made[key]) in by_kind, kind
        finding = next(f for f in findings if f.kind == kind and f.lapor_id == made[key])
        assert finding.agency_id == linked[made[key]]["id"]
    assert all(f.fixable for f in findings)


def test_fix_repairs_each_drift_once_and_a_second_reconcile_finds_none(
    drifted: tuple[Sync, dict[str, Any]],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    adapter: AgencyAdapter,
) -> None:
    """--fix repairs every finding; again finds nothing; fixing twice writes nothing twice."""
    sync, made = drifted
    findings = reconcile_all(sync).findings
    assert repair_all(sync, findings) == ["fixed"] * len(findings)
    assert reconcile_all(sync).findings == []
    lapor_writes, agency_writes = control.stats()["writes"], agency_control.stats()["writes"]
    assert repair_all(sync, findings) == ["fixed"] * len(findings)  # the same repairs, again
    run_flows(sync)
    assert reconcile_all(sync).findings == []
    assert control.stats()["writes"] == lapor_writes
    assert agency_control.stats()["writes"] == agency_writes
    # Each repair happened once, on the side it belongs to.
    agency = {c["id"]: c for c in agency_control.complaints()}
    from_lapor = [c for c in agency.values() if c["lapor"] and c["lapor"]["id"] == made["missing"]]
    assert len(from_lapor) == 1
    linked = made["linked"]
    assert agency[linked[made["done"]]["id"]]["status"] == "selesai"
    assert agency[linked[made["secret"]]["id"]]["is_secret"] is True
    replies = [f for f in adapter.followups(linked[made["reply_on"]]["id"]) if f.content == REPLY]
    assert len(replies) == 1
    assert [f["content"] for f in sim.state.followups[made["staff_on"]]].count(STAFF) == 1
    filed = [c for c in control.complaints() if c["external_ref"] == made["not_filed"]]
    assert len(filed) == 1
    assert agency[made["not_filed"]]["lapor"]["id"] == filed[0]["id"]
    assert sync.links.by_lapor_id(made["lapor_gone"]).gone == "lapor"  # type: ignore[union-attr]
    assert sync.links.by_lapor_id(made["agency_gone"]).gone == "agency"  # type: ignore[union-attr]
    # A link marked gone is skipped by the flows: a reply on it is not sent to a 404.
    control.advance_seconds(2 * 3600)  # past the cursor the drift skipped: the flows read it
    control.reply(made["agency_gone"], REPLY)
    run_flows(sync)
    assert agency_control.stats()["writes"] == agency_writes
    assert list(sync.outbox.items("failed")) + list(sync.outbox.items("dead")) == []


def test_a_change_the_flows_have_not_read_yet_is_left_to_them(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A reply after the inbound cursor, or an agency edit after the intake cursor, is not drift."""
    sync = synced(make_sync)
    linked, used = agency_linked(agency_control), set[int]()
    control.advance_seconds(60)
    control.reply(pick(sim, linked, used, status="in_process")["id"], REPLY)
    agency_control.edit(
        linked[pick(sim, linked, used, is_secret=True)["id"]]["id"], is_secret=False
    )
    comparison = reconcile_all(sync)
    assert comparison.findings == []
    assert comparison.pending >= 2


@pytest.fixture
def client(make_client: Callable[..., LaporClient]) -> LaporClient:
    """Small inbox pages, so a pass of the inbox takes several pages and slices."""
    return make_client(page_size=7)


def test_a_flag_only_the_agency_has_is_a_manual_finding(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """LAPOR! has no endpoint to raise a flag: the finding says what to do, and no write is made."""
    sync = synced(make_sync)
    linked = agency_linked(agency_control)
    target = pick(sim, linked, set(), is_anonymous=False)
    agency_control.edit(linked[target["id"]]["id"], is_anonymous=True)
    skip_past(sync, "intake_out", datetime.now(timezone.utc))
    findings = reconcile_all(sync).findings
    assert [(f.kind, f.lapor_id, f.fixable) for f in findings] == [
        ("flag_drift", target["id"], False)
    ]
    assert findings[0].fix.startswith("manual: LAPOR! has no endpoint to raise is_anonymous")
    assert repair_all(sync, findings) == ["manual"]
    assert [f.kind for f in reconcile_all(sync).findings] == ["flag_drift"]  # still there
    assert agency_linked(agency_control)[target["id"]]["is_anonymous"] is True  # never lowered


def test_the_sweep_recovers_a_complaint_skipped_past_the_watermark(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl
) -> None:
    """A complaint the inbound cursor skipped is found by the sweep and created once."""
    sync = synced(make_sync)
    control.advance_seconds(60)
    skipped = control.submit(title="Antrean loket", content="Antrean sangat panjang.")
    control.dispose(skipped, 145)
    skip_past(sync, "inbound", control.now())
    run_inbound(sync)  # the cursor is past it: the flow never sees it
    assert skipped not in agency_linked(agency_control)
    report = run_sweep(sync, ReconcileSettings(), requests_per_minute=0)
    assert (report.found, report.fixed, report.reported) == (1, 1, 0)
    assert report.findings[0].kind == "missing_in_agency"
    run_flows(sync)
    assert (
        sum(1 for c in agency_control.complaints() if c["lapor"] and c["lapor"]["id"] == skipped)
        == 1
    )
    assert run_sweep(sync, ReconcileSettings(), requests_per_minute=0).idle  # the pass is done


def test_the_sweep_reports_what_is_not_safe_to_repair(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """A status the agency set back is left as it is, and reported in the log and the audit log."""
    sync = synced(make_sync)
    linked = agency_linked(agency_control)
    target = pick(sim, linked, set(), status="done")
    agency_control.set_status(linked[target["id"]]["id"], "diproses")
    run_intake_out(sync)
    report = run_sweep(sync, ReconcileSettings(), requests_per_minute=0)
    assert (report.found, report.fixed, report.reported) == (1, 0, 1)
    assert agency_linked(agency_control)[target["id"]]["status"] == "diproses"
    entries = list(AuditLog(sync.store).entries())
    reported = [e for e in entries if e.action == "drift_status_drift"]
    assert [(e.lapor_id, e.outcome) for e in reported] == [(target["id"], "skipped")]


def test_the_sweep_spreads_a_pass_over_its_slices(
    make_sync: Callable[..., Sync], clock: FakeClock, control: SimControl
) -> None:
    """Each slice reads its share of the pages; the pass ends once per interval; an idle slice is free."""
    sync = synced(make_sync)
    settings = ReconcileSettings(every_hours=24, slices=3)
    first = run_sweep(sync, settings, requests_per_minute=0)  # no history yet: one whole pass
    assert first.pass_ended
    control.reset_stats()
    assert run_sweep(sync, settings, requests_per_minute=0).idle
    assert control.stats()["requests"] == {}  # an idle slice costs nothing
    clock.advance(24 * 3600)
    slices = [run_sweep(sync, settings, requests_per_minute=0) for _ in range(3)]
    assert [s.pass_ended for s in slices] == [False, False, True]
    assert sum(s.pages for s in slices) >= first.pages
    assert max(s.pages for s in slices) <= -(-first.pages // 3) + 1


def test_a_slice_stops_at_its_share_of_the_request_budget(make_sync: Callable[..., Sync]) -> None:
    """A first slice (no pass to size it by) reads only as far as its budget: 5% of a minute's 50."""
    sync = synced(make_sync)
    tight = ReconcileSettings(every_hours=1, slices=60)  # a slice of one minute: 2.5 requests
    assert slice_budget(tight, 50) == 2.5
    paced = run_sweep(sync, tight, requests_per_minute=50)
    assert not paced.pass_ended
    assert 0 < paced.lapor_requests <= 3


def test_an_agency_ahead_of_lapor_is_not_drift(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """An officer's closing follow-up ('selesai') while LAPOR! still says Dalam Proses is not drift."""
    sync = synced(make_sync)
    linked = agency_linked(agency_control)
    target = pick(sim, linked, set(), status="in_process", is_secret=False)
    agency_control.add_staff_followup(linked[target["id"]]["id"], STAFF, status_after="selesai")
    run_flows(sync)
    run_flows(sync)  # the follow-up on LAPOR! read back: in step on both sides
    assert sim.state.complaints[target["id"]]["status"] == "in_process"
    assert reconcile_all(sync).findings == []
