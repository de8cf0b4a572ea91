"""Attachments both ways: a citizen's photo reaches the agency system, an agency PDF reaches LAPOR!.

Both simulators run on loopback (real HTTP, real SQLite files); files are compared byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from connector import models as m
from connector.adapters import AgencyAdapter
from connector.cli.sync import _replay
from connector.clock import FakeClock
from connector.config import AttachmentSettings
from connector.flows.followups_out import run_followups_out
from connector.flows.inbound import InboundReport, resync_complaint, run_inbound
from connector.lapor.client import LaporClient
from connector.mappings import load_mappings
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.agency.store import SURAT_PDF
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.simulators.lapor.seed import FOTO_JPG
from connector.state import StateStore
from connector.sync import Sync
from tests.conftest import INSTITUTION_ID, plain_session
from tests.test_agency_adapter import AGENCY_TOKEN, adapter_for

PHOTO = ("foto.jpg", FOTO_JPG, "image/jpeg")
LETTER = ("surat-balasan.pdf", SURAT_PDF, "application/pdf")


@pytest.fixture
def agency_system(tmp_path: Path) -> Iterator[AgencySystem]:
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=2
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
def make_sync(
    client: LaporClient, adapter: AgencyAdapter, tmp_path: Path, clock: FakeClock
) -> Iterator[Callable[..., Sync]]:
    """A Sync over both simulators; ``attachments=`` gives other limits."""
    mappings = tmp_path / "mappings"
    shutil.copytree("mappings", mappings)
    stores: list[StateStore] = []

    def factory(**options: Any) -> Sync:
        store = StateStore(tmp_path / "state.sqlite", clock)
        stores.append(store)
        sync = Sync(lapor=client, agency=adapter, mappings=load_mappings(mappings), store=store,
                    clock=clock, institution_id=INSTITUTION_ID, **options)  # fmt: skip
        sync.load_trees()
        return sync

    yield factory
    for store in stores:
        store.close()


def citizen_complaint(control: SimControl, *files: tuple[str, bytes, str], **fields: Any) -> int:
    """A citizen files a complaint with files; the admin disposes it to us."""
    complaint = control.submit(
        title="Jalan rusak di depan kantor", content="Lubang besar, lihat foto.",
        category_id=436, files=files, **fields,
    )  # fmt: skip
    control.dispose(complaint, INSTITUTION_ID)
    control.advance_seconds(60)
    return complaint


def agency_complaint(agency_control: AgencyControl, lapor_id: int) -> dict[str, Any]:
    return next(c for c in agency_control.complaints() if (c["lapor"] or {}).get("id") == lapor_id)


def download(agency_system: AgencySystem, url: str) -> bytes:
    """What anyone with the agency's token downloads from an attachment's ``url``."""
    response = plain_session().get(
        url, headers={"Authorization": f"Bearer {agency_system.token}"}, timeout=5
    )
    assert response.status_code == 200
    return response.content


def quarantined(sync: Sync) -> dict[str, list[str]]:
    return {e.record_id or "": e.problems for e in sync.store.quarantined()}


# --- LAPOR! -> agency ------------------------------------------------------------------------


def test_a_citizens_photo_is_downloadable_from_the_agency_system_after_a_sync(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl,
    agency_system: AgencySystem,
) -> None:  # fmt: skip
    """foto.jpg on LAPOR! is, after one inbound run, a file of the agency complaint, byte for byte."""
    lapor_id = citizen_complaint(control, PHOTO)
    report = run_inbound(make_sync())
    [attachment] = agency_complaint(agency_control, lapor_id)["attachments"]
    assert (attachment["file_name"], attachment["content_type"]) == ("foto.jpg", "image/jpeg")
    assert download(agency_system, attachment["url"]) == FOTO_JPG
    assert report.attachments == 1


def test_a_file_already_stored_is_never_fetched_again(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl
) -> None:
    """One C9 per new file: neither a second run nor a forced resync downloads or uploads it again."""
    lapor_id = citizen_complaint(control, PHOTO)
    sync = make_sync()
    run_inbound(sync)
    assert control.requests("attachment") == 1
    run_inbound(sync)
    resync_complaint(sync, lapor_id)
    assert control.requests("attachment") == 1
    assert agency_control.writes("upload") == 1


def test_a_file_added_later_goes_in_the_next_run(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl,
    agency_system: AgencySystem,
) -> None:  # fmt: skip
    """A file the citizen adds to a complaint already synced reaches the agency in the next
    run: the change is one the listing and the follow-ups do not explain, so the detail is read
    (one C2) and the new file costs one C9; the first file is not sent again."""
    lapor_id = citizen_complaint(control, PHOTO)
    sync = make_sync()
    run_inbound(sync)
    control.attach(lapor_id, LETTER)
    run_inbound(sync)
    files = agency_complaint(agency_control, lapor_id)["attachments"]
    assert [f["file_name"] for f in files] == ["foto.jpg", "surat-balasan.pdf"]
    assert download(agency_system, files[1]["url"]) == SURAT_PDF
    assert control.requests("attachment") == 2


def test_a_replys_file_goes_to_the_agency_followup_it_became(
    make_sync: Callable[..., Sync], control: SimControl, adapter: AgencyAdapter,
    agency_control: AgencyControl, agency_system: AgencySystem,
) -> None:  # fmt: skip
    """The citizen replies with a PDF (C3 attachments): the agency follow-up carries the file."""
    lapor_id = citizen_complaint(control)
    sync = make_sync()
    run_inbound(sync)
    control.reply(lapor_id, "Berikut surat dari kelurahan.", files=[LETTER])
    control.advance_seconds(60)
    run_inbound(sync)
    agency_id = agency_complaint(agency_control, lapor_id)["id"]
    [reply] = [f for f in adapter.followups(agency_id) if f.author == "reporter"]
    [attachment] = reply.attachments
    assert attachment.file_name == "surat-balasan.pdf"
    assert download(agency_system, attachment.url or "") == SURAT_PDF


def test_a_secret_complaints_files_keep_it_secret(
    make_sync: Callable[..., Sync], control: SimControl, adapter: AgencyAdapter,
    agency_control: AgencyControl, sim: LaporSimulator,
) -> None:  # fmt: skip
    """Rahasia: the photo and the reply's file arrive, on a secret complaint and a secret
    follow-up, and no audit entry names a file."""
    lapor_id = citizen_complaint(control, PHOTO, is_secret=True)
    sync = make_sync()
    run_inbound(sync)
    control.reply(lapor_id, "Foto tambahan.", files=[("foto-2.jpg", FOTO_JPG, "image/jpeg")])
    control.advance_seconds(60)
    run_inbound(sync)
    agency = agency_complaint(agency_control, lapor_id)
    assert agency["is_secret"] is True
    assert len(agency["attachments"]) == 1
    [reply] = [f for f in adapter.followups(agency["id"]) if f.author == "reporter"]
    assert reply.is_secret
    assert len(reply.attachments) == 1
    audit = json.dumps(list(sync.store.db.query("SELECT * FROM audit_log")))
    assert "foto" not in audit


# --- what is not carried: quarantined, the rest goes on, replayed after the fix ---------------


@pytest.mark.parametrize(
    ("limits", "fault", "expect", "fixed"),
    [
        pytest.param({"max_bytes": 100}, None, "over attachments.max_bytes (100 bytes)",
                     {"max_bytes": 10_000}, id="too-big"),
        pytest.param({"allowed_types": ["pdf"]}, None, "type .jpg is not carried",
                     {"allowed_types": ["pdf", "jpg"]}, id="refused-type"),
        pytest.param({}, "not_found", "LAPOR! answered 404 for this file", {}, id="gone-404"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_carried_is_quarantined_and_replayed_after_the_fix(
    make_sync: Callable[..., Sync], control: SimControl, sim: LaporSimulator,
    agency_control: AgencyControl, agency_system: AgencySystem,
    limits: dict[str, Any], fault: str | None, expect: str, fixed: dict[str, Any],
) -> None:  # fmt: skip
    """The file is set aside as inbound record <complaint>/<file> naming the limit and the fix
    (never the file's name); the complaint and every other one are created; once fixed,
    `quarantine retry` stores the file and resolves the entry."""
    lapor_id = citizen_complaint(control, PHOTO)
    file_id = sim.state.complaints[lapor_id]["attachments"][0]
    if fault:
        control.add_fault("attachment", fault, count=1)
    sync = make_sync(attachments=AttachmentSettings(**limits))
    report = run_inbound(sync)
    ours = [c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID]
    assert report.created == len(ours)  # the complaint, and the rest of the batch, went on
    assert agency_complaint(agency_control, lapor_id)["attachments"] == []
    [problem] = quarantined(sync)[f"{lapor_id}/{file_id}"]
    assert expect in problem
    assert f"attachments[{file_id}]" in problem
    assert "quarantine retry" in problem or "add the type" in problem
    assert "foto" not in problem

    fixed_sync = make_sync(attachments=AttachmentSettings(**fixed))
    [entry] = fixed_sync.store.quarantined()
    _replay(fixed_sync, entry, InboundReport(), None)  # type: ignore[arg-type]
    [attachment] = agency_complaint(agency_control, lapor_id)["attachments"]
    assert download(agency_system, attachment["url"]) == FOTO_JPG
    assert fixed_sync.store.quarantined() == []


# --- no duplicates: a retry, a kill between the intent and the send -------------------------


def test_an_upload_whose_answer_was_lost_is_retried_without_a_second_copy(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl
) -> None:
    """The agency stores the file and the connection drops: the retry with the same
    Idempotency-Key gets the first answer, and the complaint has one file."""
    lapor_id = citizen_complaint(control, PHOTO)
    agency_control.add_fault("upload", "drop_after_commit", count=1)
    sync = make_sync()
    report = run_inbound(sync)
    assert report.attachments == 1  # done, not refused as a key reused with another body
    assert sync.store.quarantined() == []
    assert len(agency_complaint(agency_control, lapor_id)["attachments"]) == 1
    assert agency_control.requests("upload") == 2
    assert agency_control.writes("upload") == 1


@pytest.mark.parametrize(
    "where",
    ["before-the-phase", "before-the-download", "after-the-upload"],
)
def test_a_kill_around_a_files_write_neither_loses_nor_duplicates_it(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl,
    monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:  # fmt: skip
    """The process dies after the create committed the file's intent, or with the write in
    flight before or after the agency stored it: the next run stores the file exactly once."""
    lapor_id = citizen_complaint(control, PHOTO)
    sync = make_sync()

    def die(*_: object, **__: object) -> None:
        raise SystemExit(9)

    if where == "before-the-phase":
        from connector.flows.attachments import transfer

        def die_with_files(sync: Sync, jobs: list[Any]) -> int:
            if jobs:
                raise SystemExit(9)
            return transfer(sync, jobs)

        monkeypatch.setattr("connector.flows.inbound.transfer", die_with_files)
    elif where == "before-the-download":
        monkeypatch.setattr(sync.lapor, "download", die)
    else:
        upload = sync.agency.upload_attachment

        def upload_then_die(*args: Any, **kwargs: Any) -> m.AgencyAttachment:
            upload(*args, **kwargs)
            raise SystemExit(9)

        monkeypatch.setattr(sync.agency, "upload_attachment", upload_then_die)
    with contextlib.suppress(SystemExit):
        run_inbound(sync)
    monkeypatch.undo()
    assert len(agency_complaint(agency_control, lapor_id)["attachments"]) == (
        1 if where == "after-the-upload" else 0
    )
    run_inbound(make_sync())
    assert len(agency_complaint(agency_control, lapor_id)["attachments"]) == 1
    assert agency_control.writes("upload") == 1


# --- agency -> LAPOR! ------------------------------------------------------------------------


def lapor_followup_files(
    client: LaporClient, lapor_id: int, content: str
) -> tuple[m.FollowUp, list[bytes]]:
    """The institution's follow-up with that text on LAPOR! (C3), and its files' bytes (C9)."""
    [followup] = [f for f in client.followups(lapor_id)
                  if isinstance(f, m.FollowUp) and f.content == content]  # fmt: skip
    return followup, [client.download(lapor_id, a.id) for a in followup.attachments]


def test_an_agency_followup_with_a_pdf_arrives_on_lapor_with_the_file(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl,
    client: LaporClient,
) -> None:  # fmt: skip
    """An officer's tindak lanjut with a PDF: one C4 carrying it as attachment[0]; LAPOR! serves
    the same bytes under the same name, and a second run posts nothing."""
    lapor_id = citizen_complaint(control)
    sync = make_sync()
    run_inbound(sync)
    agency_id = agency_complaint(agency_control, lapor_id)["id"]
    text = "Surat balasan terlampir."
    agency_control.add_staff_followup(agency_id, text, files=[LETTER])
    report = run_followups_out(sync)
    followup, contents = lapor_followup_files(client, lapor_id, text)
    assert report.posted == 1
    assert contents == [SURAT_PDF]
    assert [a.file_name for a in followup.attachments] == ["surat-balasan.pdf"]
    run_followups_out(sync)
    assert control.writes("followup_add") == 1


def test_a_secret_agency_followup_keeps_its_file_secret(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl,
    client: LaporClient,
) -> None:  # fmt: skip
    """A rahasia follow-up with a file is still rahasia on LAPOR! (is_secret sent as with no file)."""
    lapor_id = citizen_complaint(control)
    sync = make_sync()
    run_inbound(sync)
    agency_id = agency_complaint(agency_control, lapor_id)["id"]
    agency_control.add_staff_followup(
        agency_id, "Hasil pemeriksaan.", is_secret=True, files=[LETTER]
    )
    run_followups_out(sync)
    followup, contents = lapor_followup_files(client, lapor_id, "Hasil pemeriksaan.")
    assert followup.is_secret
    assert contents == [SURAT_PDF]


@pytest.mark.parametrize(
    ("file", "limits", "expect"),
    [
        pytest.param(("surat.exe", b"MZ", "application/octet-stream"), {}, "type .exe is not carried",
                     id="refused-type"),
        pytest.param(LETTER, {"max_bytes": 50}, "over attachments.max_bytes (50)", id="too-big"),
    ],
)  # fmt: skip
def test_an_agency_followup_whose_file_cannot_go_is_quarantined_and_the_rest_goes_on(
    make_sync: Callable[..., Sync], control: SimControl, agency_control: AgencyControl,
    client: LaporClient, file: tuple[str, bytes, str], limits: dict[str, Any], expect: str,
) -> None:  # fmt: skip
    """The follow-up waits in quarantine naming the file's agency id and the limit (a C4 cannot
    get its file later); another follow-up in the same run is posted."""
    lapor_id = citizen_complaint(control)
    sync = make_sync(attachments=AttachmentSettings(**limits))
    run_inbound(sync)
    agency_id = agency_complaint(agency_control, lapor_id)["id"]
    held = agency_control.add_staff_followup(agency_id, "Dengan lampiran.", files=[file])
    agency_control.add_staff_followup(agency_id, "Tanpa lampiran.")
    report = run_followups_out(sync)
    assert report.posted == 1
    assert report.quarantined == 1
    problems = " ".join(quarantined(sync)[held])
    assert expect in problems
    assert "attachments[F-" in problems
    contents = [f.content for f in client.followups(lapor_id) if isinstance(f, m.FollowUp)]
    assert "Tanpa lampiran." in contents
    assert "Dengan lampiran." not in contents


def test_a_c4_with_a_file_is_multipart_with_attachment_parts(
    make_sync: Callable[..., Sync], sim: LaporSimulator
) -> None:
    """The wire form of a C4 with a file: fields as form parts, the file as attachment[0]."""
    from connector.lapor import wire

    parts = wire.followup_form(
        m.NewFollowUp(complaint_id=5, content="Isi", is_secret=True, files=(LETTER,)), 145
    )
    assert ("is_secret", (None, "1", None)) in parts
    assert ("attachment[0]", LETTER) in parts
    prepared = requests.Request("POST", sim.base_url, files=parts).prepare()
    assert prepared.headers["Content-Type"].startswith("multipart/form-data")
