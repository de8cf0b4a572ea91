"""The LAPOR! client against the real simulator on loopback: every endpoint, in the canonical model."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connector import errors
from connector import models as m
from connector.lapor.client import LaporClient, content_fingerprint
from connector.simulators.lapor import LaporSimulator, SimControl
from tests.conftest import INSTITUTION_ID, all_dialects

BEGINNING = datetime(2000, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(params=all_dialects())
def dialect(request: pytest.FixtureRequest) -> str:
    """This end-to-end suite runs against every simulator dialect (contract section 2 [INF])."""
    return str(request.param)


def valid(items: object) -> list[m.ComplaintSummary]:
    return [c for c in items if isinstance(c, m.ComplaintSummary)]  # type: ignore[attr-defined]


def held(client: LaporClient) -> list[m.ComplaintSummary]:
    """Complaints currently disposed to us and not closed."""
    return [
        c
        for c in valid(client.inbox(BEGINNING))
        if c.disposition_id == INSTITUTION_ID and not c.status.is_terminal
    ]


def new_complaint(ref: str, **overrides: object) -> m.NewComplaint:
    fields: dict[str, object] = {
        "external_ref": ref,
        "title": "Pungutan liar di loket pelayanan",
        "content": "Petugas meminta uang tambahan untuk mempercepat berkas.",
        "channel_id": 26,
        "classification_id": 2,
        "category_id": 0,
        "disposition_id": INSTITUTION_ID,
        "location_id": 3273,
        "reporter": m.Reporter(name="Siti Aminah", phone="081234567890"),
        **overrides,
    }
    return m.NewComplaint(**fields)  # type: ignore[arg-type]


@pytest.fixture
def category_id(client: LaporClient) -> int:
    return next(c.id for c in client.categories() if c.parent_id is not None)


def test_master_data(client: LaporClient) -> None:
    """Categories form a tree, our institution is listed, and every status and report type is named."""
    categories = client.categories()
    assert any(c.parent_id is None for c in categories)
    assert {c.parent_id for c in categories} - {None} <= {c.id for c in categories}
    assert INSTITUTION_ID in {i.id for i in client.institutions()}
    assert "disposition" in {t.code for t in client.templates()}
    assert {s.status for s in client.statuses()} == set(m.ComplaintStatus)
    assert {c.name for c in client.classifications()} >= {
        "Aspirasi",
        "Pengaduan",
        "Permintaan Informasi",
    }
    topics = client.topics()
    assert topics
    assert all(isinstance(t.id, int) for t in topics)


def test_inbox_lists_what_is_disposed_to_us_in_order(
    client: LaporClient, sim: LaporSimulator
) -> None:
    """The inbox is ordered by (updated_at, id), has no duplicates, and gives a watermark."""
    listing = client.inbox(BEGINNING, page_size=7)
    items = valid(listing)
    keys = [(c.updated_at, c.lapor_id) for c in items]
    assert keys == sorted(keys)
    assert len({c.lapor_id for c in items}) == len(items)
    assert listing.stats.requests > 1
    assert listing.server_time is not None
    others = [c for c in sim.state.complaints.values() if INSTITUTION_ID not in _holders(c)]
    assert others, "the seed should hold complaints of other institutions"
    assert not {c["id"] for c in others} & {c.lapor_id for c in items}


def _holders(complaint: dict[str, object]) -> set[int]:
    history = complaint.get("disposition_history") or complaint.get("holders") or []
    return set(history) | {complaint.get("disposition_id")}  # type: ignore[arg-type]


def test_inbox_since_watermark_shows_only_changes(client: LaporClient, control: SimControl) -> None:
    """After a full read, the watermark lists only what changed since (a citizen reply here)."""
    first = client.inbox(BEGINNING)
    list(first)
    target = held(client)[0]
    control.advance_seconds(60)
    control.reply(target.lapor_id, "Mohon segera ditindaklanjuti.")
    assert first.server_time is not None
    changed = valid(client.inbox(first.server_time))
    assert [c.lapor_id for c in changed] == [target.lapor_id]


def test_complaint_detail_with_history(client: LaporClient) -> None:
    """C2 gives content, history with rendered templates, and hides an anonymous reporter."""
    summaries = valid(client.inbox(BEGINNING))
    details = [client.complaint(c.lapor_id) for c in summaries[:12]]
    assert all(d.content for d in details)
    assert any(d.history for d in details)
    assert all("{{" not in e.text for d in details for e in d.history)
    for detail in details:
        if detail.is_anonymous:
            assert not detail.reporter.is_known


def test_followup_moves_verified_to_in_process(client: LaporClient, control: SimControl) -> None:
    """C4 on a Terverifikasi complaint moves it to Dalam Proses and shows up in C3."""
    complaint_id = control.submit(title="Jalan rusak", content="Jalan berlubang di depan kantor.")
    control.dispose(complaint_id, INSTITUTION_ID)
    assert client.complaint(complaint_id).status is m.ComplaintStatus.VERIFIED
    created = client.add_followup(
        m.NewFollowUp(complaint_id=complaint_id, content="Sedang kami tangani.")
    )
    assert created.complaint_id == complaint_id
    assert client.complaint(complaint_id).status is m.ComplaintStatus.IN_PROCESS
    followups = valid_followups(client, complaint_id)
    assert followups[-1].id == created.id
    assert followups[-1].author is m.Author.INSTITUTION
    control.reply(complaint_id, "Terima kasih")
    assert valid_followups(client, complaint_id)[-1].author is m.Author.REPORTER


def valid_followups(client: LaporClient, complaint_id: int) -> list[m.FollowUp]:
    return [f for f in client.followups(complaint_id) if isinstance(f, m.FollowUp)]


def test_reject_moves_the_disposition_away(client: LaporClient, control: SimControl) -> None:
    """C5 (bukan wewenang) forwards the complaint; we may no longer post to it."""
    target = held(client)[0]
    other = next(i.id for i in client.institutions() if i.id != INSTITUTION_ID)
    client.reject(target.lapor_id, other, "Bukan kewenangan kami; wewenang instansi lain.")
    assert client.complaint(target.lapor_id).disposition_id == other
    with pytest.raises(errors.NotDisposed):
        client.add_followup(m.NewFollowUp(complaint_id=target.lapor_id, content="Tindak lanjut"))


def test_reject_to_unknown_institution_is_rejected(client: LaporClient) -> None:
    """A target institution that does not exist is a 422 naming the field."""
    target = held(client)[0]
    with pytest.raises(errors.RecordRejected) as caught:
        client.reject(target.lapor_id, 999_999_999, "salah alamat")
    assert caught.value.problems


def test_process_actions_and_closed_complaints(client: LaporClient, control: SimControl) -> None:
    """C6 moves statuses; a follow-up on an archived complaint is a 409 conflict."""
    complaint_id = control.submit(title="Antrian panjang", content="Antrian loket sangat panjang.")
    control.dispose(complaint_id, INSTITUTION_ID)
    client.process(complaint_id, "postpone")
    assert client.complaint(complaint_id).status is m.ComplaintStatus.POSTPONED
    client.process(complaint_id, "verify", note="Data pelapor sudah lengkap")
    assert client.complaint(complaint_id).status is m.ComplaintStatus.VERIFIED
    with pytest.raises(errors.Conflict) as invalid:
        client.process(complaint_id, "verify")
    assert invalid.value.code == "INVALID_TRANSITION"
    client.process(complaint_id, "archive")
    assert client.complaint(complaint_id).status is m.ComplaintStatus.ARCHIVED
    with pytest.raises(errors.Conflict) as caught:
        client.add_followup(m.NewFollowUp(complaint_id=complaint_id, content="Terlambat"))
    assert caught.value.code == "COMPLAINT_CLOSED"


def test_create_upload_and_download(client: LaporClient, category_id: int) -> None:
    """C8 then C7: the complaint starts Belum Terverifikasi, is findable by external_ref, and its file downloads."""
    files = client.upload(
        [
            ("foto.jpg", b"\xff\xd8jpeg-bytes", "image/jpeg"),
            ("surat.pdf", b"%PDF-1.4", "application/pdf"),
        ]
    )
    assert [f.is_image for f in files] == [True, False]
    created = client.create_complaint(
        new_complaint(
            "WA-2026-0001", category_id=category_id, attachment_ids=tuple(f.id for f in files)
        )
    )
    assert created.status_name == "Belum Terverifikasi"
    assert created.tracking_id.isdigit()
    found = client.find_created("WA-2026-0001")
    assert found is not None
    assert found.lapor_id == created.lapor_id
    assert client.find_created("WA-unknown") is None
    detail = client.complaint(created.lapor_id)
    assert client.download(created.lapor_id, detail.attachments[0].id) == b"\xff\xd8jpeg-bytes"


def test_create_anonymous_under_intake_account(
    client: LaporClient, category_id: int, sim: LaporSimulator
) -> None:
    """An anonymous complaint is created with the intake account and no reporter identity."""
    created = client.create_complaint(
        new_complaint(
            "WA-ANON-1", category_id=category_id, is_anonymous=True, reporter=None, user_id=1
        )
    )
    detail = client.complaint(created.lapor_id)
    assert detail.is_anonymous
    assert not detail.reporter.is_known


def test_invalid_create_is_rejected_with_field_errors(client: LaporClient) -> None:
    """An unknown category is a 422 whose field errors name category_id."""
    with pytest.raises(errors.RecordRejected) as caught:
        client.create_complaint(new_complaint("WA-BAD", category_id=987654))
    assert "category_id" in {p.path for p in caught.value.problems}


def test_too_long_followup_is_refused_before_sending(
    client: LaporClient, sim: LaporSimulator
) -> None:
    """A follow-up over 5000 characters is refused locally, naming the field."""
    target = held(client)[0]
    with pytest.raises(errors.MalformedRecord, match="content: at most 5000"):
        client.add_followup(m.NewFollowUp(complaint_id=target.lapor_id, content="x" * 5001))


def test_secret_complaint_of_another_institution_is_not_found(
    client: LaporClient, sim: LaporSimulator
) -> None:
    """A secret complaint we never held answers 404; a non-secret one 403."""
    foreign = [c for c in sim.state.complaints.values() if INSTITUTION_ID not in _holders(c)]
    secret = next(c for c in foreign if c["is_secret"])
    with pytest.raises(errors.NotFound):
        client.complaint(secret["id"])
    public = next(c for c in foreign if not c["is_secret"])
    with pytest.raises(errors.NotDisposed):
        client.complaint(public["id"])


def test_find_followup_by_fingerprint(client: LaporClient) -> None:
    """Our own follow-up is found again by the fingerprint of its content."""
    target = held(client)[0]
    client.add_followup(
        m.NewFollowUp(complaint_id=target.lapor_id, content="Berkas sudah diperiksa.")
    )
    found = client.find_followup(target.lapor_id, content_fingerprint("Berkas sudah diperiksa."))
    assert found is not None
    assert found.content == "Berkas sudah diperiksa."
    assert client.find_followup(target.lapor_id, content_fingerprint("tidak ada")) is None
