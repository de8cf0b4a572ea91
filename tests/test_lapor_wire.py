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
        ({"id": "abc"}, "id", "expected an integer"),
        ({"id": 2**63}, "id", "less than or equal"),
        ({"id": 0}, "id", "greater than 0"),
        ({"is_secret": "ya"}, "is_secret", "expected a flag"),
        ({"is_secret": ""}, "is_secret", "expected a flag"),
        ({"updated_at": "2026-10-28T14:30:00"}, "updated_at", "no UTC offset"),
        ({"created_at": "2026/10/28 14:30"}, "created_at", "not an ISO 8601"),
        ({"title": "Judul \ud800 rusak"}, "title", "unpaired surrogate"),
        ({"title": "NUL\x00"}, "title", "control characters"),
        ({"tracking_id": None}, "tracking_id", "numeric tracking id"),
        ({"tracking_id": "19a"}, "tracking_id", "numeric tracking id"),
    ],
    ids=[
        "wrong-type-id",
        "id-above-int64",
        "id-zero",
        "wrong-type-flag",
        "blank-required-flag",
        "naive-timestamp",
        "unknown-timestamp-format",
        "lone-surrogate",
        "nul",
        "missing",
        "non-numeric-tracking-id",
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
    location_id=3273,
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


# --- the tolerant reader: every variant the contract allows reads the same ---------------------

TOLERATED: list[tuple[str, dict[str, Any]]] = [
    ("created_at d-m-Y", {"created_at": "20-10-2026 10:00:00"}),
    ("updated_at d-m-Y", {"updated_at": "28-10-2026 14:30:00"}),
    ("updated_at Z", {"updated_at": "2026-10-28T07:30:00Z"}),
    ("created_at with fraction", {"created_at": "2026-10-20T03:00:00.000000Z"}),
    ("deadline d-m-Y", {"deadlines": {"verify_by": "23-10-2026 10:00:00", "overdue": False}}),
    ("ids as strings", {"id": "5010653", "channel": "13", "category_id": "436"}),
    ("tracking id as a number", {"tracking_id": 1916449}),
    ("flags as 0/1", {"is_secret": 0, "is_anonymous": 0}),
    ('flags as "0"/"1"', {"is_secret": "0", "is_anonymous": "0"}),
    ('flags as "true"/"false"', {"is_secret": "false", "is_anonymous": "False"}),
    ("optional values empty", {"external_ref": ""}),
    ("no status_code", {"status_code": None}),
    ("empty status_code", {"status_code": ""}),
    ("unknown extra fields", {"kanal_name": "Institusi", "_links": {"self": "/x"}}),
    (
        "overdue as string",
        {"deadlines": {"verify_by": "2026-10-23T10:00:00+07:00", "overdue": "0"}},
    ),
]


@pytest.mark.parametrize(("change"), [c for _, c in TOLERATED], ids=[n for n, _ in TOLERATED])
def test_tolerated_variant_reads_the_same(change: dict[str, Any]) -> None:
    """Each encoding the contract allows for a listing item gives the same canonical summary."""
    raw = {**SUMMARY, **change}
    if change.get("status_code") is None and "status_code" in change:
        raw.pop("status_code")
    assert wire.complaint_summary(raw) == wire.complaint_summary(SUMMARY)


def test_empty_optional_values_are_absent() -> None:
    """An empty string where a value is optional means absent."""
    raw = {
        **SUMMARY,
        "location_id": "",
        "disposition_name": " ",
        "channel": "",
        "disposition_id": "",
    }
    summary = wire.complaint_summary(raw)
    assert (summary.location_id, summary.disposition_name, summary.channel_id) == (None, None, None)
    assert summary.disposition_id is None


def test_deadline_as_bare_date_is_the_end_of_that_day_in_wib() -> None:
    """A deadlines value may be a bare date: due by 23:59:59 WIB that day."""
    summary = wire.complaint_summary({**SUMMARY, "deadlines": {"verify_by": "2026-10-23"}})
    assert summary.deadlines.verify_by == datetime(2026, 10, 23, 16, 59, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value", [None, "", [], {}], ids=["null", "empty", "empty-list", "empty-object"]
)
def test_missing_deadlines_read_as_none(value: object) -> None:
    """No deadlines at all (null, "", a PHP empty array) is no deadline, not an error."""
    summary = wire.complaint_summary({**SUMMARY, "deadlines": value})
    assert summary.deadlines == m.Deadlines()


@pytest.mark.parametrize(
    "reporter",
    [
        None,
        "",
        {"name": None, "email": None, "phone": None},
        {"name": "", "email": "", "phone": ""},
    ],
    ids=["null", "empty", "object-of-nulls", "object-of-blanks"],
)
def test_reporter_absent_in_every_shape(reporter: object) -> None:
    """A hidden reporter may come as null, "" or an object of nulls or blanks."""
    complaint = wire.complaint_detail({"data": {**DETAIL, "reporter": reporter}, "data_logs": None})
    assert not complaint.reporter.is_known


def test_detail_tolerates_php_encodings_everywhere() -> None:
    """A detail with every value as a PHP app sends it reads as the ISO/JSON-typed one does."""
    php = {
        **DETAIL,
        "id": "5010653",
        "is_secret": "0",
        "is_anonymous": "0",
        "created_at": "20-10-2026 10:00:00",
        "updated_at": "28-10-2026 14:30:00",
        "date_of_incident": "01-04-2026",
        "status_logs": [{"note": "Laporan diverifikasi", "timestamp": "2026-10-21T09:15:00+07:00"}],
        "attachments": [
            {"id": "4199656", "file_name": "ktp.jpg", "extension": "jpg", "path": "/f/4199656"}
        ],
        "deadlines": {"verify_by": "23-10-2026 10:00:00", "overdue": 0},
    }
    log = {**DATA_LOG, "id": "9001", "date": "2026-10-22T08:00:00+07:00"}
    assert wire.complaint_detail({"data": php, "data_logs": [log]}) == wire.complaint_detail(
        {"data": DETAIL, "data_logs": [DATA_LOG]}
    )


def test_status_name_alone_is_enough() -> None:
    """Without a status_code, the status name decides."""
    raw = {k: v for k, v in SUMMARY.items() if k != "status_code"}
    assert wire.complaint_summary(raw).status is m.ComplaintStatus.IN_PROCESS


def test_unknown_status_is_a_mapping_gap_fixed_by_an_alias() -> None:
    """A status the connector has never seen is a mapping gap naming the value and the fix."""
    from connector.errors import MappingError, UnmappedValue

    raw = {**SUMMARY, "status_code": "escalated", "status_name": "Dieskalasi"}
    with pytest.raises(UnmappedValue) as caught:
        wire.complaint_summary(raw)
    assert isinstance(caught.value, MappingError)
    (problem,) = caught.value.problems
    assert problem.path == "status_code"
    assert "'escalated'" in problem.problem
    assert "lapor_aliases" in problem.problem
    fixed = wire.complaint_summary(raw, {"escalated": m.ComplaintStatus.IN_PROCESS})
    assert fixed.status is m.ComplaintStatus.IN_PROCESS


@pytest.mark.parametrize(
    ("item", "author"),
    [
        ({"author_type": "reporter"}, m.Author.REPORTER),
        ({"author_type": "PELAPOR"}, m.Author.REPORTER),
        ({"author_type": ""}, m.Author.REPORTER),
        ({"institution_from_name": "Kantor Pertanahan Kota Bandung"}, m.Author.INSTITUTION),
        ({"author_type": "admin"}, m.Author.ADMIN),
    ],
    ids=["reporter", "synonym", "blank-no-institution", "missing-with-institution", "admin"],
)
def test_followup_author_is_read_leniently(item: dict[str, Any], author: m.Author) -> None:
    """author_type may be missing or a synonym; a reply is never mistaken for our own follow-up."""
    raw = {
        "id": "77",
        "created_at": "22-10-2026 08:00:00",
        "content": "Terima kasih",
        "is_secret": "0",
        **item,
    }
    assert wire.followup(raw).author is author


def test_unknown_followup_author_is_a_mapping_gap() -> None:
    """An author type the connector does not know is a mapping gap, not a silent guess."""
    from connector.errors import UnmappedValue

    raw = {"id": 77, "created_at": "22-10-2026 08:00:00", "content": "x", "author_type": "robot"}
    with pytest.raises(UnmappedValue):
        wire.followup(raw)


@pytest.mark.parametrize(
    ("body", "soft"),
    [
        ({"status": False}, True),
        ({"status": 0}, True),
        ({"status": "false"}, True),
        ({"status": "0"}, True),
        ({"status": True}, False),
        ({"status": 1}, False),
        ({"results": {}}, False),
    ],
    ids=["false", "zero", "string-false", "string-zero", "true", "one", "absent"],
)
def test_soft_error_in_every_encoding(body: dict[str, Any], soft: bool) -> None:
    """A 200 saying status false, in any encoding, is a failure."""
    assert wire.is_soft_error(body) is soft


def test_page_reads_numbers_as_strings_and_wib_server_time() -> None:
    """Paging fields may be numeric strings and server_time d-m-Y."""
    body = {"status": True, "results": {"data": [], "current_page": "2", "total": "40",
            "next_page_url": "", "server_time": "28-10-2026 14:30:00"}}  # fmt: skip
    page = wire.page(body, "/complaints/inbox", 2)
    assert (page.page, page.total, page.next_page) == (2, 40, None)
    assert page.server_time == datetime(2026, 10, 28, 7, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", wire.INBOX, "list"),
        ("GET", wire.complaint_path(5010653), "detail"),
        ("GET", wire.followups_path(5010653), "followups"),
        ("GET", wire.attachment_path(5010653, 9), "attachment"),
        ("GET", wire.CATEGORIES, "master"),
        ("POST", wire.LEGACY_TOPICS, "master"),
        ("POST", wire.FOLLOWUP_ADD, "write"),
        ("POST", wire.CREATE_COMPLAINT, "write"),
        ("POST", wire.process_path(5010653, "verify"), "write"),
    ],
    ids=["inbox", "detail", "followups", "attachment", "master", "legacy-topics", "followup-add",
         "create", "process"],
)  # fmt: skip
def test_endpoint_class_names_the_kind_of_endpoint_without_ids(
    method: str, path: str, expected: str
) -> None:
    """Each request's endpoint class (a bounded metric label) comes from its method and path."""
    assert wire.endpoint_class(method, path) == expected
    assert expected in wire.ENDPOINT_CLASSES
