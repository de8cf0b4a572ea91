"""The LAPOR! wire format: records in, bodies out, errors named by field path."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import pytest

from connector import models as m
from connector.errors import MalformedRecord, ProtocolError
from connector.lapor import wire

SUMMARY: dict[str, Any] = {
    "id": 5010653,
    "tracking_id": "1916449",
    "title": "Sertifikat tanah belum terbit",
    "channel": 13,
    "classification_id": 2,
    "category_id": 436,
    "location_id": 3273,
    "is_secret": False,
    "is_anonymous": False,
    "status_code": "in_process",
    "status_name": "Dalam Proses",
    "disposition_id": 145,
    "disposition_name": "Kantor Pertanahan Kota Bandung",
    "external_ref": None,
    "created_at": "2026-10-20T10:00:00+07:00",
    "updated_at": "2026-10-28T14:30:00+07:00",
    "deadlines": {"verify_by": "2026-10-23T10:00:00+07:00", "overdue": False},
}

DETAIL: dict[str, Any] = {
    **SUMMARY,
    "content": "Sudah enam bulan sertifikat belum terbit.",
    "date_of_incident": "2026-04-01",
    "tags_raw": "sertifikat,bpn",
    "reporter": {"name": "Budi Santoso", "email": "budi@contoh.id", "phone": "+6281234567890"},
    "status_logs": [{"note": "Laporan diverifikasi", "timestamp": "21-10-2026 09:15:00"}],
    "attachments": [
        {"id": 4199656, "file_name": "ktp.jpg", "extension": "jpg", "path": "/f/4199656"}
    ],
}

DATA_LOG = {
    "id": 9001,
    "date": "22-10-2026 08:00:00",
    "template_code": "disposition",
    "content": "Didisposisikan dari {{institution_from}} ke {{ institution_to }}: {{status_old}} → {{ status_new }}",
    "institution_from_name": "Admin Nasional",
    "institution_to_name": "Kantor Pertanahan Kota Bandung",
    "data": json.dumps(
        {"status_old": {"name": "Terverifikasi"}, "status_new": {"name": "Dalam Proses"}}
    ),
    "attachments": [],
}


def test_summary_becomes_canonical() -> None:
    """A listing item is translated field by field, timestamps to UTC."""
    summary = wire.complaint_summary(SUMMARY)
    assert summary.lapor_id == 5010653
    assert summary.tracking_id == "1916449"
    assert summary.status is m.ComplaintStatus.IN_PROCESS
    assert summary.updated_at == datetime(2026, 10, 28, 7, 30, tzinfo=timezone.utc)
    assert summary.deadlines.verify_by == datetime(2026, 10, 23, 3, 0, tzinfo=timezone.utc)


def test_detail_renders_history_templates() -> None:
    """data_logs placeholders are filled, with or without spaces inside the braces."""
    complaint = wire.complaint_detail({"data": DETAIL, "data_logs": [DATA_LOG]})
    (entry,) = complaint.history
    assert entry.text == (
        "Didisposisikan dari Admin Nasional ke Kantor Pertanahan Kota Bandung: Terverifikasi → Dalam Proses"
    )
    assert (entry.status_old, entry.status_new) == ("Terverifikasi", "Dalam Proses")
    assert entry.at == datetime(2026, 10, 22, 1, 0, tzinfo=timezone.utc)
    assert complaint.incident_date == date(2026, 4, 1)
    assert complaint.status_notes[0].at == datetime(2026, 10, 21, 2, 15, tzinfo=timezone.utc)


def test_reporter_never_in_repr() -> None:
    """The reporter's name, e-mail and phone do not appear in a complaint's repr or str."""
    complaint = wire.complaint_detail({"data": DETAIL, "data_logs": []})
    assert complaint.reporter.name == "Budi Santoso"
    for text in (repr(complaint), str(complaint)):
        assert "Budi" not in text
        assert "budi@contoh.id" not in text
        assert "6281234567890" not in text


def test_anonymous_complaint_drops_reporter_even_if_sent() -> None:
    """An anonymous (anonim) complaint keeps no reporter, whatever the service sent."""
    complaint = wire.complaint_detail({"data": {**DETAIL, "is_anonymous": True}, "data_logs": []})
    assert complaint.is_anonymous
    assert not complaint.reporter.is_known


@pytest.mark.parametrize(
    ("change", "path", "problem"),
    [
        ({"id": "abc"}, "id", "valid integer"),
        ({"is_secret": "ya"}, "is_secret", "valid boolean"),
        ({"updated_at": "2026-10-28T14:30:00"}, "updated_at", "no UTC offset"),
        ({"status_code": "escalated"}, "status_code", "Input should be"),
        ({"title": "Judul \ud800 rusak"}, "title", "unpaired surrogate"),
        ({"title": "NUL\x00"}, "title", "control characters"),
        ({"tracking_id": None}, "tracking_id", "valid string"),
    ],
    ids=[
        "wrong-type-id",
        "wrong-type-flag",
        "naive-timestamp",
        "unknown-status",
        "lone-surrogate",
        "nul",
        "missing",
    ],
)
def test_malformed_summary_names_the_field(change: dict[str, Any], path: str, problem: str) -> None:
    """An invalid record raises MalformedRecord naming the field path and the problem, not the value."""
    raw = {**SUMMARY, **change}
    with pytest.raises(MalformedRecord) as caught:
        wire.complaint_summary(raw)
    problems = {p.path: p.problem for p in caught.value.problems}
    assert path in problems
    assert problem in problems[path]
    for value in change.values():
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(caught.value)


def test_missing_field_is_reported() -> None:
    """A missing required field is named."""
    raw = {k: v for k, v in SUMMARY.items() if k != "updated_at"}
    with pytest.raises(MalformedRecord, match="updated_at: Field required"):
        wire.complaint_summary(raw)


def test_odd_but_valid_unicode_is_normalised() -> None:
    """Decomposed accents and emoji are valid text, kept in NFC form."""
    summary = wire.complaint_summary({**SUMMARY, "title": "Pelayanan lambat 😡 di Cafe\u0301"})
    assert summary.title == "Pelayanan lambat 😡 di Café"


def test_history_with_broken_data_string_names_the_entry() -> None:
    """A data_logs entry whose data is not a JSON string is reported by its index."""
    with pytest.raises(MalformedRecord, match=r"data_logs\[0\]\.data"):
        wire.complaint_detail({"data": DETAIL, "data_logs": [{**DATA_LOG, "data": "{not json"}]})


def test_followup_author_and_wib_time() -> None:
    """A follow-up's author_type says who wrote it; its d-m-Y time is read as WIB."""
    item = wire.followup(
        {
            "id": 7,
            "created_at": "01-11-2026 07:00:00",
            "content": "Terima kasih",
            "author_type": "reporter",
        }
    )
    assert item.author is m.Author.REPORTER
    assert item.at == datetime(2026, 11, 1, 0, 0, tzinfo=timezone.utc)


def test_legacy_topics_use_string_values() -> None:
    """gettopics sends ids as strings and 0 for a root."""
    assert wire.topic({"id": "13", "parent": "0", "topic_name": "Pertanahan"}) == m.Topic(
        id=13, name="Pertanahan", parent_id=None
    )


CREATED = {
    "status": True,
    "message": "Success",
    "complaint_id": 5010654,
    "data": {"complaint_id": 5010654},
    "results": {
        "complaint": {"id": 5010654, "tracking_id": "1916450", "status_name": "Belum Terverifikasi"}
    },
}


def test_create_answer_prefers_results_complaint() -> None:
    """The richest of the three answer shapes gives the tracking id."""
    answer = wire.created_complaint(CREATED)
    assert answer.created == m.CreatedComplaint(
        lapor_id=5010654, tracking_id="1916450", status_name="Belum Terverifikasi"
    )


@pytest.mark.parametrize(
    "body",
    [{"complaint_id": 5010654}, {"data": {"complaint_id": "5010654"}}],
    ids=["top-level", "data"],
)
def test_create_answer_older_shapes_give_the_id(body: dict[str, Any]) -> None:
    """Older answer shapes still give the id (the tracking id is then read separately)."""
    assert wire.created_complaint(body) == wire.CreateAnswer(5010654, None)


def test_create_answer_without_id_is_a_protocol_error() -> None:
    """An answer without any id breaks the contract."""
    with pytest.raises(ProtocolError):
        wire.created_complaint({"status": True, "results": {}})


def test_upload_answer_splits_images_and_docs() -> None:
    """Images and documents come back in two lists."""
    files = wire.uploaded_files(
        {
            "results": {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "docs": [{"id": 2, "file_name": "b.pdf"}],
            }
        }
    )
    assert [(f.id, f.is_image) for f in files] == [(1, True), (2, False)]


def test_page_takes_only_the_page_number_from_next_page_url() -> None:
    """next_page_url is never followed as a URL: only its page number is used."""
    body = {
        "results": {
            "data": [],
            "current_page": 2,
            "next_page_url": "https://evil.example/steal?page=3",
            "server_time": "2026-11-02T09:00:00+07:00",
        }
    }
    page = wire.page(body, "/complaints/inbox", 2)
    assert page.next_page == 3
    assert page.server_time == datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)


NEW = m.NewComplaint(
    external_ref="WA-2026-0001",
    title="Pungutan liar",
    content="Diminta uang tambahan di loket.",
    channel_id=26,
    classification_id=2,
    category_id=436,
    disposition_id=145,
    attachment_ids=(4199656,),
    reporter=m.Reporter(name="Siti", phone="081234567890"),
)


def test_complaint_body_for_a_new_reporter() -> None:
    """C7 carries the new reporter account, and attachments as a string holding a JSON array."""
    body = wire.complaint_body(NEW)
    assert body["attachments"] == "[4199656]"
    assert body["is_new_user_slider"] is True
    assert body["nameUser"] == "Siti"
    assert body["external_ref"] == "WA-2026-0001"


def test_anonymous_complaint_body_never_carries_the_reporter() -> None:
    """An anonymous complaint is sent under the intake account, with no reporter identity."""
    body = wire.complaint_body(NEW.model_copy(update={"is_anonymous": True, "user_id": 77}))
    assert body["user_id"] == 77
    assert body["is_anonymous"] == 1
    assert not {"nameUser", "emailUser", "phoneUser"} & body.keys()


def test_anonymous_complaint_without_intake_account_is_refused() -> None:
    """Without user_id an anonymous complaint cannot be sent, and says how to fix it."""
    with pytest.raises(ValueError, match="user_id"):
        wire.complaint_body(NEW.model_copy(update={"is_anonymous": True}))


def test_followup_form_is_multipart_from_our_institution() -> None:
    """C4 parts: our institution as sender, flags as 0/1, files as attachment[i]."""
    parts = dict(
        wire.followup_form(
            m.NewFollowUp(
                complaint_id=1,
                content="Sedang ditangani",
                is_secret=True,
                files=(("a.pdf", b"%PDF", "application/pdf"),),
            ),
            institution_id=145,
        )
    )
    assert parts["institution_from_id"] == (None, "145", None)
    assert parts["is_secret"] == (None, "1", None)
    assert parts["attachment[0]"] == ("a.pdf", b"%PDF", "application/pdf")
