# ruff: noqa: F811 (pytest fixtures imported from tests.test_sync are redefined as arguments)
"""Every failure of contract section 6 handled as the contract says, end to end on both
simulators; and the rahasia/anonim flags reaching every write exactly."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from connector.flows.followups_out import run_followups_out
from connector.flows.inbound import resync_quarantined, run_inbound
from connector.flows.intake_out import resync_agency_complaint, run_intake_out
from connector.simulators.agency import AgencyControl
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.sync import Sync
from tests.conftest import INSTITUTION_ID
from tests.test_sync import (  # noqa: F401 (fixtures)
    adapter,
    agency_control,
    agency_linked,
    agency_system,
    make_sync,
    mappings_dir,
    ours,
)


def linked_in_process(sim: LaporSimulator, agency_control: AgencyControl) -> tuple[int, str]:
    """A complaint disposed to us, in process on LAPOR!, and its agency id."""
    target = next(c for c in ours(sim) if c["status"] == "in_process")
    return int(target["id"]), str(agency_linked(agency_control)[target["id"]]["id"])  # type: ignore[index]


def posted(sim: LaporSimulator, lapor_id: int, content: str) -> list[dict[str, Any]]:
    return [f for f in sim.state.followups[lapor_id] if f["content"] == content]


def states(sync: Sync) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in sync.outbox.items():
        counts[item.state] = counts.get(item.state, 0) + 1
    return counts


# --- outcome unknown: looked up at the start of the next run -----------------------------------


def test_followup_after_a_5xx_reaches_lapor_once_on_the_next_run(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A 502 on C4 leaves the follow-up in doubt; the very next run (no time passing) looks it
    up, finds nothing, and posts it once; a third run writes nothing."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "Berkas diperiksa ulang.")
    control.add_fault("followup_add", "bad_gateway", count=1)
    run_followups_out(sync)
    assert posted(sim, lapor_id, "Berkas diperiksa ulang.") == []
    assert states(sync).get("in_flight") == 1
    run_followups_out(sync)
    run_followups_out(sync)
    assert len(posted(sim, lapor_id, "Berkas diperiksa ulang.")) == 1
    assert "in_flight" not in states(sync)


def test_soft_error_on_a_followup_is_in_doubt_and_found_not_resent(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A 200 with status false after the write was applied: looked up, found, never posted twice."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "Sudah dikoordinasikan.")
    control.add_fault("followup_add", "drop_after_commit", count=1)
    run_followups_out(sync)
    control.add_fault("followup_add", "soft_error", count=5)
    run_followups_out(sync)
    assert len(posted(sim, lapor_id, "Sudah dikoordinasikan.")) == 1
    assert set(states(sync)) == {"done"}


def test_soft_error_on_a_post_is_an_unknown_outcome(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """status false on C4 is not "not applied": the write stays in doubt, and the next run
    finishes it once."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "Menunggu jadwal ukur.")
    control.add_fault("followup_add", "soft_error", count=1)
    run_followups_out(sync)
    (item,) = [i for i in sync.outbox.items() if i.operation == "lapor_add_followup"]
    assert (item.state, item.last_error_code) == ("in_flight", "AmbiguousOutcome")
    run_followups_out(sync)
    assert len(posted(sim, lapor_id, "Menunggu jadwal ukur.")) == 1


# --- 409: re-read, bring the agency to LAPOR!'s state, resolve -------------------------------


def test_followup_on_a_closed_complaint_is_resolved_not_dead(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """409 COMPLAINT_CLOSED: the connector re-reads C2, the agency gets LAPOR!'s closed
    status, and the write is resolved as not applicable (audited), not left dead."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    control.advance_seconds(60)
    control.close(lapor_id)
    agency_control.add_staff_followup(agency_id, "Tindak lanjut terlambat.")
    run_followups_out(sync)  # posted before the inbound pass saw the closure
    assert posted(sim, lapor_id, "Tindak lanjut terlambat.") == []
    assert "dead" not in states(sync)
    (item,) = [i for i in sync.outbox.items() if i.operation == "lapor_add_followup"]
    assert item.state == "acknowledged"
    assert (item.result or {})["resolution"].startswith("not_applicable")
    agency = next(c for c in agency_control.complaints() if c["id"] == agency_id)
    assert agency["status"] == "selesai"
    outcomes = [e.outcome for e in sync.audit.entries() if e.action == "lapor_add_followup"]
    assert "not_applicable" in outcomes


# --- 403: confirm, mark, tell the agency, clear when disposed back ------------------------------


def test_spurious_403_is_not_taken_for_a_redisposition(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, clock: Any,
) -> None:  # fmt: skip
    """A 403 that LAPOR!'s own detail contradicts leaves the complaint ours; the follow-up is
    sent again after the back-off, once."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "Petugas sudah ke lokasi.")
    control.add_fault("followup_add", "forbidden", count=1)
    run_followups_out(sync)
    link = sync.links.by_lapor_id(lapor_id)
    assert link is not None
    assert not link.disposed_away
    (item,) = [i for i in sync.outbox.items() if i.operation == "lapor_add_followup"]
    assert item.state == "failed"  # sent again later, not given up as "not disposed"
    assert posted(sim, lapor_id, "Petugas sudah ke lokasi.") == []
    clock.advance(61)
    run_followups_out(sync)
    assert len(posted(sim, lapor_id, "Petugas sudah ke lokasi.")) == 1


def test_redisposition_found_by_a_403_then_disposed_back(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A follow-up refused with 403 because the admin moved the complaint: the agency sees
    'dialihkan'; when LAPOR! disposes it back, the mark clears, the agency gets LAPOR!'s status
    and the follow-up that waited is posted, once."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    control.advance_seconds(60)
    control.dispose(lapor_id, 146)
    agency_control.add_staff_followup(agency_id, "Kami masih menangani.")
    run_followups_out(sync)  # before the inbound pass: LAPOR! answers 403
    agency = next(c for c in agency_control.complaints() if c["id"] == agency_id)
    assert agency["status"] == "dialihkan"
    link = sync.links.by_lapor_id(lapor_id)
    assert link is not None
    assert link.disposed_away
    other = next(c for c in ours(sim) if c["status"] == "in_process" and c["id"] != lapor_id)
    other_agency = agency_linked(agency_control)[other["id"]]["id"]  # type: ignore[index]
    agency_control.add_staff_followup(str(other_agency), "Tindak lanjut lain.")
    run_followups_out(sync)  # the cursor moves past the follow-up that waits
    control.advance_seconds(60)
    control.dispose(lapor_id, INSTITUTION_ID)
    run_inbound(sync)
    assert len(posted(sim, lapor_id, "Kami masih menangani.")) == 1
    link = sync.links.by_lapor_id(lapor_id)
    assert link is not None
    assert not link.disposed_away
    agency = next(c for c in agency_control.complaints() if c["id"] == agency_id)
    assert agency["status"] != "dialihkan"
    run_followups_out(sync)
    run_inbound(sync)
    assert len(posted(sim, lapor_id, "Kami masih menangani.")) == 1


# --- 404 on one complaint: set aside, the run goes on ------------------------------------------


def test_404_on_one_complaint_sets_it_aside_and_the_run_goes_on(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """C2 answering 404 for one new complaint quarantines it; every other one is created; a
    replay after the fault brings it in."""
    sync = make_sync()
    control.add_fault("complaint", "not_found", count=1)
    report = run_inbound(sync)
    assert report.quarantined == 1
    expected = {c["id"] for c in ours(sim)}
    assert len(agency_linked(agency_control)) == len(expected) - 1
    resync_quarantined(sync)
    assert set(agency_linked(agency_control)) == expected
    assert sync.store.quarantined() == []


# --- 400/413/422 and what LAPOR! would refuse: quarantined, replayed from current data ----------


def test_rejected_create_is_quarantined_and_replayed_from_current_agency_data(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A 422 on C7 is no dead write: the agency complaint is quarantined with the field, and a
    replay after the fix files it once, with what the agency holds now."""
    sync = make_sync(intake_user_id=1)
    agency_id = agency_control.add_internal_complaint(
        channel="web", title="Judul lama", content="Isi pengaduan.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=True,
        reporter={"name": "Rina", "email": "rina@contoh.id", "phone": None},
    )  # fmt: skip
    control.add_fault("create", "validation", count=50)
    run_intake_out(sync)
    assert "dead" not in states(sync)
    (entry,) = [e for e in sync.store.quarantined() if e.record_id == agency_id]
    assert entry.source == "intake_out"
    assert any(p.startswith("content:") for p in entry.problems)
    control.clear_faults()
    agency_control.edit(agency_id, title="Judul baru")
    resync_agency_complaint(sync, agency_id)
    filed = [c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]
    assert [c["title"] for c in filed] == ["Judul baru"]
    assert [e for e in sync.store.quarantined() if e.record_id == agency_id] == []


def test_followup_too_long_for_lapor_is_quarantined_before_sending(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A follow-up over 5000 characters is never sent: quarantined with the field and the fix."""
    sync = make_sync()
    run_inbound(sync)
    _, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "x" * 5001)
    report = run_followups_out(sync)
    assert report.quarantined == 1
    assert control.writes("followup_add") == 0
    (entry,) = sync.store.quarantined()
    assert entry.source == "followups_out"
    assert "at most 5000" in entry.problems[0]


def test_unit_without_a_location_is_a_mapping_gap_before_sending(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, mappings_dir: Any,
) -> None:  # fmt: skip
    """LAPOR! requires a location: a unit with none (and no default) is quarantined, not sent."""
    units = mappings_dir / "units.yaml"
    units.write_text(units.read_text().replace("default_location: 3273", "default_location: null"))
    sync = make_sync(intake_user_id=1)
    agency_id = agency_control.add_internal_complaint(
        channel="web", title="Loket", content="Antrian panjang.", category_code="YAN-ANT",
        unit_code="SEKSI-SP", report_to_lapor=True, reporter=None, is_anonymous=True,
    )  # fmt: skip
    run_intake_out(sync)
    (entry,) = [e for e in sync.store.quarantined() if e.record_id == agency_id]
    assert "locations" in entry.problems[0]
    assert not [c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]


# --- rahasia and anonim reach every write -------------------------------------------------------


def test_secret_and_anonymous_reach_the_create_exactly(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """C7 carries is_secret and is_anonymous as the agency holds them, each combination."""
    sync = make_sync(intake_user_id=1)
    made = {}
    for secret in (False, True):
        for anonymous in (False, True):
            made[(secret, anonymous)] = agency_control.add_internal_complaint(
                channel="web", title=f"Flag {secret} {anonymous}", content="Isi.",
                category_code="PTN-SRT", unit_code="KANTAH-BDG", report_to_lapor=True,
                is_secret=secret, is_anonymous=anonymous,
                reporter=None if anonymous else {"name": "Rina", "email": "r@contoh.id", "phone": None},
            )  # fmt: skip
    run_intake_out(sync)
    for (secret, anonymous), agency_id in made.items():
        (filed,) = [c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]
        assert (filed["is_secret"], filed["is_anonymous"]) == (secret, anonymous)
        if anonymous:
            assert filed["reporter"] is None


def test_secret_followup_reaches_lapor_as_secret(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """C4 carries is_secret exactly: a rahasia follow-up is never posted publicly, and a public
    one is not marked secret."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "Rahasia: data pelapor.", is_secret=True)
    agency_control.add_staff_followup(agency_id, "Terbuka untuk umum.")
    run_followups_out(sync)
    assert [f["is_secret"] for f in posted(sim, lapor_id, "Rahasia: data pelapor.")] == [True]
    assert [f["is_secret"] for f in posted(sim, lapor_id, "Terbuka untuk umum.")] == [False]


def test_secret_reply_from_lapor_reaches_the_agency_as_secret(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, adapter: Any,
) -> None:  # fmt: skip
    """A citizen reply on a rahasia complaint keeps its flag in the agency system."""
    sync = make_sync()
    lapor_id = control.submit(title="Pungli", content="Rahasia.", category_id=436, is_secret=True)
    control.dispose(lapor_id, INSTITUTION_ID)
    run_inbound(sync)
    control.advance_seconds(60)
    control.reply(lapor_id, "Balasan pelapor rahasia.")
    run_inbound(sync)
    agency_id = agency_linked(agency_control)[lapor_id]["id"]
    replies = [f for f in adapter.followups(agency_id) if f.content == "Balasan pelapor rahasia."]
    assert [(f.author, f.is_secret) for f in replies] == [("reporter", True)]


def test_create_whose_answer_was_lost_gets_its_tracking_id_written_back_next_run(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """Commit-then-drop on C7: the next run finds the complaint by external_ref and writes the
    LAPOR! ids back to the agency at once, though the agency record did not change."""
    sync = make_sync(intake_user_id=1)
    run_intake_out(sync)  # the seeded ones, so the cursor is past them
    agency_id = agency_control.add_internal_complaint(
        channel="web", title="Sertifikat ganda", content="Dua sertifikat.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=True, reporter=None, is_anonymous=True,
    )  # fmt: skip
    control.add_fault("create", "drop_after_commit", count=1)
    run_intake_out(sync)
    (filed,) = [c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]
    # While LAPOR!'s inbox is down the lookup fails, and the agency cursor moves past the
    # complaint (a later one arrives), so only the lookup itself can bring the ids back.
    agency_control.add_internal_complaint(
        channel="counter", title="Lain", content="Tidak untuk LAPOR!.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=False, reporter=None, is_anonymous=True,
    )  # fmt: skip
    control.add_fault("inbox", "server_error", count=100)
    run_intake_out(sync)
    control.clear_faults()
    agency = next(c for c in agency_control.complaints() if c["id"] == agency_id)
    assert agency["lapor"] is None
    run_intake_out(sync)
    agency = next(c for c in agency_control.complaints() if c["id"] == agency_id)
    assert agency["lapor"]["tracking_id"] == filed["tracking_id"]
    assert len([c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]) == 1


def test_three_clean_cycles_after_a_fault_storm_leave_nothing_in_flight(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, clock: Any,
) -> None:  # fmt: skip
    """Follow-ups posted through 5xx, soft errors and commit-then-drop: within three clean
    cycles (60 s apart, the daemon's default) each is on LAPOR! exactly once, nothing is in
    doubt, and a fourth cycle writes nothing."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    texts = [f"Tindak lanjut {n}." for n in range(6)]
    for text in texts:
        agency_control.add_staff_followup(agency_id, text)
    for mode in (
        "bad_gateway",
        "drop_after_commit",
        "soft_error",
        "unavailable",
        "drop_after_commit",
    ):
        control.add_fault("followup_add", mode, count=1)
    for _ in range(3):
        run_followups_out(sync)
        clock.advance(5)
    control.clear_faults()
    for _ in range(3):
        clock.advance(60)
        run_followups_out(sync)
    assert [len(posted(sim, lapor_id, text)) for text in texts] == [1] * len(texts)
    assert "in_flight" not in states(sync)
    before = control.writes("followup_add")
    clock.advance(60)
    run_followups_out(sync)
    assert control.writes("followup_add") == before


def test_409_whose_reread_fails_still_resolves_and_the_run_goes_on(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A 409 followed by a C2 that cannot be read (404) does not crash the run: the refused
    write is resolved, and the other follow-ups still go out."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    agency_control.add_staff_followup(agency_id, "Ditolak dulu.")
    agency_control.add_staff_followup(agency_id, "Yang berikutnya.")
    control.add_fault("followup_add", "conflict", count=1)
    control.add_fault("complaint", "not_found", count=1)
    run_followups_out(sync)
    assert posted(sim, lapor_id, "Ditolak dulu.") == []
    assert len(posted(sim, lapor_id, "Yang berikutnya.")) == 1
    assert "dead" not in states(sync)


# --- no crash window ---------------------------------------------------------------------------


def test_kill_between_the_agency_create_and_the_replies_loses_no_reply(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, adapter: Any, monkeypatch: Any,
) -> None:  # fmt: skip
    """The process dies after creating the complaint in the agency, while reading its replies:
    the complaint is not "in step", so the next run imports the citizen's reply."""
    sync = make_sync()
    run_inbound(sync)
    fresh = control.submit(title="Sertifikat", content="Belum terbit.", category_id=436)
    control.dispose(fresh, INSTITUTION_ID)
    control.advance_seconds(60)
    control.reply(fresh, "Ini balasan pelapor.")
    control.advance_seconds(60)

    def die(*_: object, **__: object) -> None:
        raise SystemExit(9)

    monkeypatch.setattr(sync.lapor, "followups", die)
    with contextlib.suppress(SystemExit):
        run_inbound(sync)
    monkeypatch.undo()
    assert fresh in agency_linked(agency_control)  # the create itself went through
    run_inbound(sync)
    agency_id = agency_linked(agency_control)[fresh]["id"]
    replies = [f for f in adapter.followups(agency_id) if f.content == "Ini balasan pelapor."]
    assert len(replies) == 1


def test_a_followups_out_quarantine_entry_is_replayed_and_resolved_only_when_done(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl,
    mappings_dir: Any,
) -> None:  # fmt: skip
    """A follow-up posted whose status action had no mapping: quarantined; after the mapping is
    fixed the replay sends the action (LAPOR! shows Ditunda) and only then resolves the entry."""
    from connector.flows.followups_out import resync_agency_followup

    statuses = mappings_dir / "statuses.yaml"
    original = statuses.read_text()
    statuses.write_text(original.replace("  ditunda: postpone", ""))
    sync = make_sync()
    run_inbound(sync)
    lapor_id, agency_id = linked_in_process(sim, agency_control)
    followup_id = agency_control.add_staff_followup(
        agency_id, "Menunggu dokumen pelapor.", status_after="ditunda"
    )
    run_followups_out(sync)
    assert len(posted(sim, lapor_id, "Menunggu dokumen pelapor.")) == 1
    (entry,) = sync.store.quarantined()
    assert entry.source == "followups_out"
    statuses.write_text(original)
    fixed = make_sync()
    resync_agency_followup(fixed, agency_id, followup_id)
    assert sim.state.complaints[lapor_id]["status"] == "postponed"
    assert fixed.store.quarantined() == []
    assert len(posted(sim, lapor_id, "Menunggu dokumen pelapor.")) == 1


def test_kill_right_after_a_found_create_still_writes_the_tracking_id_back(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, monkeypatch: Any,
) -> None:  # fmt: skip
    """The write-back is an intent committed with the create's result: a kill between them
    (here: right after the next run's lookup found the create) cannot lose it, though the
    agency's listing has moved past the complaint."""
    sync = make_sync(intake_user_id=1)
    run_intake_out(sync)
    agency_id = agency_control.add_internal_complaint(
        channel="web", title="Ditemukan", content="Isi.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=True, reporter=None, is_anonymous=True,
    )  # fmt: skip
    control.add_fault("create", "drop_after_commit", count=1)
    run_intake_out(sync)  # filed, answer lost: in doubt
    agency_control.add_internal_complaint(
        channel="counter", title="Lain", content="Isi.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=False, reporter=None, is_anonymous=True,
    )  # fmt: skip
    control.add_fault("inbox", "server_error", count=100)
    run_intake_out(sync)  # the lookup fails; the cursor moves past the complaint
    control.clear_faults()

    def die(*_: object) -> None:
        raise SystemExit(9)

    monkeypatch.setattr(sync.agency, "complaint", die)
    with contextlib.suppress(SystemExit):
        run_intake_out(sync)  # the lookup finds it ... and the process dies
    monkeypatch.undo()
    run_intake_out(sync)
    (filed,) = [c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]
    agency = next(c for c in agency_control.complaints() if c["id"] == agency_id)
    assert (agency["lapor"] or {}).get("tracking_id") == filed["tracking_id"]


def test_a_record_dated_in_the_future_does_not_move_the_cursor(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl,
) -> None:  # fmt: skip
    """A complaint with updated_at in 2099 is quarantined instead of becoming the cursor, so a
    complaint updated the next minute still reaches the agency."""
    sync = make_sync()
    run_inbound(sync)
    ours_now = next(
        c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID
    )
    record = {**sim.state.summary(ours_now), "id": 9_999_001, "tracking_id": "9999001",
              "updated_at": "2099-01-01T00:00:00+07:00"}  # fmt: skip
    control.inject("inbox", record, count=1)
    report = run_inbound(sync)
    assert report.quarantined == 1
    watermark = sync.store.watermark("inbound")
    assert watermark is not None
    assert watermark.year < 2099
    control.advance_seconds(60)
    fresh = control.submit(title="Sesudahnya", content="Isi.", category_id=436)
    control.dispose(fresh, INSTITUTION_ID)
    run_inbound(sync)
    assert fresh in agency_linked(agency_control)
