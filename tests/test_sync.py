"""The two-way sync end to end: both simulators on loopback, real SQLite files, real HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connector.adapters import AgencyAdapter
from connector.clock import FakeClock
from connector.flows.followups_out import run_followups_out
from connector.flows.inbound import run_inbound
from connector.flows.intake_out import run_intake_out
from connector.lapor.client import LaporClient
from connector.mappings import load_mappings
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.state import StateStore
from connector.sync import Sync
from tests.conftest import INSTITUTION_ID, all_dialects
from tests.test_agency_adapter import AGENCY_TOKEN, adapter_for


@pytest.fixture(params=all_dialects())
def dialect(request: pytest.FixtureRequest) -> str:
    """This end-to-end suite runs against every simulator dialect (contract section 2 [INF])."""
    return str(request.param)


@pytest.fixture
def agency_system(tmp_path: Path) -> Iterator[AgencySystem]:
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=4
    ).start() as system:
        yield system


@pytest.fixture
def agency_control(agency_system: AgencySystem) -> AgencyControl:
    return AgencyControl(agency_system.root_url)


@pytest.fixture
def adapter(agency_system: AgencySystem, clock: FakeClock) -> Iterator[AgencyAdapter]:
    made = adapter_for("rest", agency_system.base_url, clock)
    yield made
    made.close()


@pytest.fixture
def mappings_dir(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree("mappings", target)
    return target


@pytest.fixture
def make_sync(
    client: LaporClient,
    adapter: AgencyAdapter,
    tmp_path: Path,
    clock: FakeClock,
    mappings_dir: Path,
) -> Iterator[Callable[..., Sync]]:
    stores: list[StateStore] = []

    def factory(**options: object) -> Sync:
        store = StateStore(tmp_path / "state.sqlite", clock)
        stores.append(store)
        sync = Sync(lapor=client, agency=adapter, mappings=load_mappings(mappings_dir), store=store, clock=clock,
                    institution_id=INSTITUTION_ID, **options)  # type: ignore[arg-type]  # fmt: skip
        sync.load_trees()
        return sync

    yield factory
    for store in stores:
        store.close()


def ours(sim: LaporSimulator) -> list[dict[str, object]]:
    """Complaints the simulator currently disposes to us."""
    return [c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID]


def agency_linked(agency_control: AgencyControl) -> dict[int, dict[str, object]]:
    return {c["lapor"]["id"]: c for c in agency_control.complaints() if c["lapor"]}  # type: ignore[index]


def test_inbound_creates_every_complaint_disposed_to_us(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """Each complaint disposed to us becomes one agency complaint, translated through the mappings."""
    report = run_inbound(make_sync())
    expected = {c["id"] for c in ours(sim)}
    linked = agency_linked(agency_control)
    assert set(linked) == expected
    assert report.created == len(expected)
    for complaint in ours(sim):
        agency = linked[complaint["id"]]  # type: ignore[index]
        assert agency["is_secret"] == complaint["is_secret"]
        assert agency["is_anonymous"] == complaint["is_anonymous"]
        if complaint["is_anonymous"]:
            assert agency["reporter"] is None
        assert agency["source"] == "lapor"


def test_a_second_sync_writes_nothing(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl
) -> None:
    """After a complete sync, another makes no write on either side."""
    sync = make_sync()
    run_inbound(sync), run_followups_out(sync), run_intake_out(sync)
    lapor_writes, agency_writes = control.stats()["writes"], agency_control.stats()["writes"]
    run_inbound(sync), run_followups_out(sync), run_intake_out(sync)
    assert control.stats()["writes"] == lapor_writes
    assert agency_control.stats()["writes"] == agency_writes


def test_citizen_reply_reaches_the_agency_once(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    adapter: AgencyAdapter,
) -> None:
    """A reporter's reply on LAPOR! becomes one agency follow-up by the reporter."""
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "in_process")
    control.advance_seconds(60)
    control.reply(target["id"], "Mohon segera diproses, Pak.")  # type: ignore[arg-type]
    run_inbound(sync)
    run_inbound(sync)
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    replies = [
        f for f in adapter.followups(agency_id) if f.content == "Mohon segera diproses, Pak."
    ]  # type: ignore[arg-type]
    assert [f.author for f in replies] == ["reporter"]


def test_staff_followup_reaches_lapor_once_and_moves_the_status(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """An officer's tindak lanjut is posted to LAPOR! once; 'ditunda' postpones the complaint there."""
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "verified")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    agency_control.add_staff_followup(agency_id, "Berkas sedang diverifikasi ulang.")  # type: ignore[arg-type]
    report = run_followups_out(sync)
    run_followups_out(sync)
    posted = [
        f
        for f in sim.state.followups[target["id"]]
        if f["content"] == "Berkas sedang diverifikasi ulang."
    ]  # type: ignore[index]
    assert len(posted) == 1
    assert report.posted == 1
    assert sim.state.complaints[target["id"]]["status"] == "in_process"  # type: ignore[index]
    agency_control.add_staff_followup(
        agency_id, "Menunggu dokumen dari pelapor.", status_after="ditunda"
    )  # type: ignore[arg-type]
    run_followups_out(sync)
    assert sim.state.complaints[target["id"]]["status"] == "postponed"  # type: ignore[index]


def test_redisposed_complaint_is_marked_and_no_longer_pushed(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """When the admin moves a complaint elsewhere, the agency sees 'dialihkan' and nothing more is posted."""
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "in_process")
    control.advance_seconds(60)
    control.dispose(target["id"], 146)  # type: ignore[arg-type]
    run_inbound(sync)
    agency = agency_linked(agency_control)[target["id"]]  # type: ignore[index]
    assert agency["status"] == "dialihkan"
    agency_control.add_staff_followup(agency["id"], "Masih kami tangani.")  # type: ignore[arg-type]
    report = run_followups_out(sync)
    assert report.skipped == 1
    assert control.writes("followup_add") == 0


def test_intake_files_internal_complaints_and_writes_back_the_ids(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """Internal complaints marked report_to_lapor are created on LAPOR! once, and linked back."""
    sync = make_sync(intake_user_id=1)
    report = run_intake_out(sync)
    run_intake_out(sync)
    marked = [
        c for c in agency_control.complaints() if c["source"] == "internal" and c["report_to_lapor"]
    ]
    assert report.created == len(marked)
    for complaint in marked:
        created = [c for c in sim.state.complaints.values() if c["external_ref"] == complaint["id"]]
        assert len(created) == 1
        assert complaint["lapor"]["tracking_id"] == created[0]["tracking_id"]
        if complaint["is_anonymous"]:
            assert created[0]["reporter"] is None


def test_anonymous_intake_without_an_intake_account_is_quarantined(
    make_sync: Callable[..., Sync], agency_control: AgencyControl
) -> None:
    """Without lapor.intake_user_id an anonymous complaint waits in quarantine, with the fix named."""
    anonymous = agency_control.add_internal_complaint(title="Pungli", content="Diminta uang", channel="whatsapp",
                                                      category_code="YAN-PGL", is_anonymous=True, report_to_lapor=True)  # fmt: skip
    sync = make_sync()
    run_intake_out(sync)
    reasons = {e.record_id: e.problems for e in sync.store.quarantined()}
    assert "lapor.intake_user_id" in reasons[anonymous][0]


@pytest.mark.parametrize("route", ["create", "followup_add"])
def test_commit_then_drop_never_duplicates(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    clock: FakeClock,
    route: str,
) -> None:
    """A write applied on LAPOR! whose answer was lost is found on the next run, not sent again."""
    sync = make_sync(intake_user_id=1)
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "in_process")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    agency_control.add_staff_followup(agency_id, "Sudah kami survei.")  # type: ignore[arg-type]
    control.add_fault(route, "drop_after_commit", count=1)
    run = run_intake_out if route == "create" else run_followups_out
    run(sync)
    clock.advance(3600)
    run(sync)
    run(sync)
    assert control.writes(route) == (
        2 if route == "create" else 1
    )  # 2 internal complaints marked, each once
    if route == "create":
        refs = [c["external_ref"] for c in sim.state.complaints.values() if c["external_ref"]]
        assert len(refs) == len(set(refs))
    else:
        assert [f["content"] for f in sim.state.followups[target["id"]]].count(
            "Sudah kami survei."
        ) == 1  # type: ignore[index]
    assert not list(sync.outbox.items("in_flight"))


def test_mapping_gap_is_quarantined_then_replayed(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    agency_control: AgencyControl,
    mappings_dir: Path,
) -> None:
    """A LAPOR! category without a rule is quarantined with the reason; after the fix a resync creates it."""
    path = mappings_dir / "categories.yaml"
    path.write_text(path.read_text().replace("    30: LIN              # Infrastruktur\n", ""))
    sync = make_sync()
    run_inbound(sync)
    infrastructure = {c["id"] for c in ours(sim) if c["category_id"] in (30, 630, 631)}
    assert infrastructure
    quarantined = {int(e.record_id) for e in sync.store.quarantined() if e.record_id}  # type: ignore[arg-type]
    assert quarantined == infrastructure
    assert all("categories.yaml" in e.problems[0] for e in sync.store.quarantined())
    path.write_text(path.read_text().replace("    50: LIN", "    30: LIN\n    50: LIN"))
    fixed = make_sync()
    from connector.flows.inbound import resync_quarantined

    resync_quarantined(fixed)
    assert infrastructure <= set(agency_linked(agency_control))
    assert fixed.store.quarantined() == []


def test_dry_run_writes_nothing(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl
) -> None:
    """A dry run plans creates and posts but sends no write to either side."""
    sync = make_sync(dry_run=True, intake_user_id=1)
    run_inbound(sync), run_intake_out(sync), run_followups_out(sync)
    assert sync.plan.writes
    assert control.stats()["writes"] == {}
    assert agency_control.stats()["writes"] == {}


def test_every_write_is_audited_and_the_chain_verifies(make_sync: Callable[..., Sync]) -> None:
    """Each remote write leaves an audit entry; the log verifies."""
    sync = make_sync(intake_user_id=1)
    run_inbound(sync)
    run_intake_out(sync)
    entries = list(sync.audit.entries())
    assert {e.action for e in entries} >= {"agency_create_complaint", "lapor_create_complaint"}
    assert all(e.mapping_version == sync.mappings.version for e in entries)
    assert sync.audit.verify().ok
    created = [e for e in entries if e.action == "agency_create_complaint"]
    assert all(e.tracking_id and e.agency_id for e in created)


def test_followup_waits_for_a_link_still_in_flight(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl, sim: LaporSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A crash between creating the agency complaint and recording its link must not lose its follow-ups."""
    sync = make_sync()
    run_inbound(sync)
    fresh = control.submit(
        title="Sertifikat hilang", content="Sertifikat asli hilang saat banjir.", category_id=436
    )
    control.advance_seconds(60)
    control.dispose(fresh, INSTITUTION_ID)

    def die_while_linking(**link: object) -> None:
        raise SystemExit(9)  # the process dies after the agency create, before the link commits

    monkeypatch.setattr(sync.links, "add", die_while_linking)
    with pytest.raises(SystemExit):
        run_inbound(sync)
    monkeypatch.undo()
    linked = agency_linked(agency_control)
    agency_control.add_staff_followup(linked[fresh]["id"], "Petugas sudah menghubungi pelapor.")  # type: ignore[arg-type]
    assert run_followups_out(sync).posted == 0  # waits: the complaint is not linked yet
    other = next(
        a
        for lapor_id, a in linked.items()
        if lapor_id != fresh and a["status"] in ("diverifikasi", "diproses")
    )
    agency_control.add_staff_followup(other["id"], "Tindak lanjut lain yang lebih baru.")  # type: ignore[arg-type]
    assert (
        run_followups_out(sync).posted == 1
    )  # the later one goes; the cursor still holds at the first
    run_inbound(sync)  # the interrupted create is looked up, found, and linked
    assert run_followups_out(sync).posted == 1
    texts = [f["content"] for f in sim.state.followups[fresh]]
    assert texts.count("Petugas sudah menghubungi pelapor.") == 1


def test_auto_closure_on_lapor_reaches_the_agency(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """Ten working days after the last follow-up without a reply, LAPOR! closes it; the agency sees Selesai."""
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "verified")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    agency_control.add_staff_followup(agency_id, "Sertifikat sudah dapat diambil di loket 3.")  # type: ignore[arg-type]
    run_followups_out(sync)
    control.advance_workdays(10)
    run_inbound(sync)
    assert sim.state.complaints[target["id"]]["status"] == "done"  # type: ignore[index]
    assert agency_linked(agency_control)[target["id"]]["status"] == "selesai"  # type: ignore[index]


def test_status_never_moves_backwards(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """A LAPOR! change whose mapped status ranks below the agency's current one leaves the status alone."""
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "postponed")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    agency_control.set_status(agency_id, "selesai")  # type: ignore[arg-type]
    sync.links.update(target["id"], agency_status="selesai")  # type: ignore[arg-type]
    control.advance_seconds(60)
    control.dispose(target["id"], INSTITUTION_ID)  # type: ignore[arg-type]  # re-verified: Terverifikasi -> diverifikasi
    run_inbound(sync)
    after = agency_linked(agency_control)[target["id"]]  # type: ignore[index]
    assert after["status"] == "selesai"
    assert after["lapor"]["status_code"] == "verified"  # type: ignore[index]  # the LAPOR! side is still recorded


def test_agency_status_change_becomes_a_lapor_action_once(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """An officer setting 'ditunda' (no follow-up) postpones the complaint on LAPOR!, once."""
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "verified")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    agency_control.set_status(agency_id, "ditunda")  # type: ignore[arg-type]
    run_intake_out(sync)
    run_followups_out(sync)
    assert sim.state.complaints[target["id"]]["status"] == "postponed"  # type: ignore[index]
    before = control.stats()["writes"]
    run_inbound(sync), run_intake_out(sync), run_followups_out(sync)
    assert control.stats()["writes"] == before


def test_bukan_wewenang_by_the_agency_forwards_on_lapor(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl, agency_control: AgencyControl,
    adapter: AgencyAdapter, mappings_dir: Path,
) -> None:  # fmt: skip
    """'dialihkan' with a unit of another institution forwards the complaint there (C5); nothing more is pushed."""
    from connector import models as m

    units = mappings_dir / "units.yaml"
    units.write_text(units.read_text().replace("  SEKSI-SP: 145", "  SEKSI-SP: 146"))
    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "in_process")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    adapter.update_complaint(
        agency_id, m.AgencyComplaintPatch(status="dialihkan", unit_code="SEKSI-SP")
    )  # type: ignore[arg-type]
    run_intake_out(sync)
    assert sim.state.complaints[target["id"]]["disposition_id"] == 146  # type: ignore[index]
    link = sync.links.by_lapor_id(target["id"])  # type: ignore[arg-type]
    assert link is not None
    assert link.disposed_away
    agency_control.add_staff_followup(agency_id, "Catatan internal setelah dialihkan.")  # type: ignore[arg-type]
    assert run_followups_out(sync).skipped == 1


def test_bukan_wewenang_to_our_own_unit_is_quarantined(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    agency_control: AgencyControl,
    adapter: AgencyAdapter,
) -> None:
    """'dialihkan' on a unit of this very institution cannot be forwarded: quarantined with the fix."""
    from connector import models as m

    sync = make_sync()
    run_inbound(sync)
    target = next(c for c in ours(sim) if c["status"] == "in_process")
    agency_id = agency_linked(agency_control)[target["id"]]["id"]  # type: ignore[index]
    adapter.update_complaint(agency_id, m.AgencyComplaintPatch(status="dialihkan"))  # type: ignore[arg-type]
    run_intake_out(sync)
    (entry,) = [e for e in sync.store.quarantined() if e.record_id == agency_id]
    assert "route it to the unit of the institution with authority" in entry.problems[0]
    assert sim.state.complaints[target["id"]]["disposition_id"] == INSTITUTION_ID  # type: ignore[index]


def test_intake_carries_attachments_through_upload(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    agency_control: AgencyControl,
    client: LaporClient,
) -> None:
    """Files on an internal complaint are uploaded (C8) and attached to the complaint created on LAPOR!."""
    import base64

    photo, letter = b"\xff\xd8\xff\xe0 foto loket", b"%PDF-1.4 surat kuasa"
    agency_id = agency_control.add_internal_complaint(
        title="Calo di loket", content="Calo menawarkan jasa di depan loket.", channel="whatsapp", category_code="YAN-PGL",
        report_to_lapor=True, reporter={"name": "Rina", "phone": "081234567891"},
        files=[{"file_name": "foto.jpg", "content_type": "image/jpeg", "content_b64": base64.b64encode(photo).decode()},
               {"file_name": "surat.pdf", "content_type": "application/pdf", "content_b64": base64.b64encode(letter).decode()}],
    )  # fmt: skip
    run_intake_out(make_sync(intake_user_id=1))
    (created,) = [c for c in sim.state.complaints.values() if c["external_ref"] == agency_id]
    detail = client.complaint(created["id"])
    assert sorted(a.file_name for a in detail.attachments) == ["foto.jpg", "surat.pdf"]
    assert {client.download(created["id"], a.id) for a in detail.attachments} == {photo, letter}


def test_attachment_outside_the_agency_api_is_refused(adapter: AgencyAdapter) -> None:
    """The adapter never sends its token to a URL outside agency.base_url."""
    from connector import errors
    from connector import models as m

    elsewhere = m.AgencyAttachment(id="F-1", file_name="x.pdf", url="https://evil.example/steal")
    with pytest.raises(errors.MalformedRecord, match="outside the agency API"):
        adapter.download_attachment(elsewhere, max_bytes=1024)
