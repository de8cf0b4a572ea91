"""The agency adapter contract suite, run against every adapter kind with a real agency system."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connector import errors
from connector import models as m
from connector.adapters import AgencyAdapter, make_adapter
from connector.clock import FakeClock
from connector.config import settings_from_mapping
from connector.simulators.agency import AgencyControl, AgencySystem
from tests.conftest import API_KEY, TOKEN

AGENCY_TOKEN = "agency-test-token"


@pytest.fixture
def agency_system(tmp_path: Path) -> Iterator[AgencySystem]:
    """The demo agency system on a free loopback port, on a real SQLite file."""
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=5
    ).start() as system:
        yield system


@pytest.fixture
def agency_control(agency_system: AgencySystem) -> AgencyControl:
    return AgencyControl(agency_system.root_url)


def adapter_for(
    kind: str, base_url: str, clock: FakeClock, token: str = AGENCY_TOKEN, **agency: object
) -> AgencyAdapter:
    settings = settings_from_mapping(
        {
            "lapor": {
                "institution_id": 145,
                "api_key": "${LAPOR_API_KEY}",
                "token": "${LAPOR_TOKEN}",
            },
            "agency": {"kind": kind, "base_url": base_url, "token": "${AGENCY_TOKEN}", **agency},
        },
        env={"LAPOR_API_KEY": API_KEY, "LAPOR_TOKEN": TOKEN, "AGENCY_TOKEN": token},
    )
    assert settings.agency is not None
    return make_adapter(settings.agency, clock)


@pytest.fixture(params=["rest"])
def adapter(
    request: pytest.FixtureRequest, agency_system: AgencySystem, clock: FakeClock
) -> Iterator[AgencyAdapter]:
    """Each adapter kind, pointed at the demo system."""
    made = adapter_for(request.param, agency_system.base_url, clock, page_size=2)
    yield made
    made.close()


def new_from_lapor(lapor_id: int = 5010653, **fields: object) -> m.NewAgencyComplaint:
    values: dict[str, object] = {
        "title": "Sertifikat belum terbit", "content": "Sudah enam bulan.", "category_code": "PTN-SRT",
        "unit_code": "KANTAH-BDG", "status": "diverifikasi",
        "reporter": m.Reporter(name="Budi", email="budi@contoh.id"),
        "lapor": m.LaporRef(lapor_id=lapor_id, tracking_id="1916449", status=m.ComplaintStatus.VERIFIED, disposition_id=145),
        **fields,
    }  # fmt: skip
    return m.NewAgencyComplaint(**values)  # type: ignore[arg-type]


def test_master_data(adapter: AgencyAdapter) -> None:
    """Categories form a tree; units and statuses are listed with terminal flags."""
    categories = adapter.categories()
    assert {c.parent_code for c in categories} - {None} <= {c.code for c in categories}
    assert "KANTAH-BDG" in {u.code for u in adapter.units()}
    assert {s.code for s in adapter.statuses() if s.is_terminal} >= {"selesai", "dialihkan"}


def test_complaints_are_paged_in_order(adapter: AgencyAdapter) -> None:
    """Pages follow the cursor; items come ordered by (updated_at, id), each once."""
    pages = list(adapter.complaints(None))
    items = [c for p in pages for c in p.items]
    assert len(pages) == 3
    assert len(items) == 5
    assert [(c.updated_at, c.id) for c in items] == sorted((c.updated_at, c.id) for c in items)
    assert all(c.source == "internal" for c in items)
    anonymous = [c for c in items if c.is_anonymous]
    assert anonymous
    assert all(c.reporter is None for c in anonymous)


def test_updated_since_filters(adapter: AgencyAdapter, agency_control: AgencyControl) -> None:
    """Only complaints changed at or after the watermark come back."""
    last = [c for p in adapter.complaints(None) for c in p.items][-1]
    agency_control.set_status(last.id, "diproses")
    changed = [
        c.id
        for p in adapter.complaints(last.updated_at + timedelta(microseconds=1))
        for c in p.items
    ]
    assert changed == [last.id]


def test_create_is_idempotent_by_key(adapter: AgencyAdapter, agency_control: AgencyControl) -> None:
    """The same key creates one complaint, however often it is sent; it is found by its LAPOR! id."""
    first = adapter.create_complaint(new_from_lapor(), idempotency_key="agency.create:5010653")
    again = adapter.create_complaint(new_from_lapor(), idempotency_key="agency.create:5010653")
    assert first.id == again.id
    assert agency_control.writes("create") == 1
    found = adapter.find_by_lapor_id(5010653)
    assert found is not None
    assert found.id == first.id
    assert found.lapor == m.LaporRef(
        lapor_id=5010653,
        tracking_id="1916449",
        status=m.ComplaintStatus.VERIFIED,
        disposition_id=145,
    )
    assert adapter.find_by_lapor_id(1) is None


def test_create_after_a_dropped_answer_creates_one(
    adapter: AgencyAdapter, agency_control: AgencyControl
) -> None:
    """Commit-then-drop: the retry with the same key gets the first result, not a second complaint."""
    agency_control.add_fault("create", "drop_after_commit")
    created = adapter.create_complaint(new_from_lapor(77), idempotency_key="agency.create:77")
    assert agency_control.writes("create") == 1
    assert [c["id"] for c in agency_control.complaints() if (c["lapor"] or {}).get("id") == 77] == [
        created.id
    ]


def test_anonymous_reporter_is_never_sent(adapter: AgencyAdapter) -> None:
    """An anonymous complaint reaches the agency without its reporter."""
    created = adapter.create_complaint(
        new_from_lapor(78, is_anonymous=True), idempotency_key="agency.create:78"
    )
    assert created.is_anonymous
    assert created.reporter is None


def test_update_with_and_without_precondition(adapter: AgencyAdapter) -> None:
    """A patch changes only its fields; a stale If-Unmodified-Since is a Conflict."""
    created = adapter.create_complaint(new_from_lapor(79), idempotency_key="agency.create:79")
    updated = adapter.update_complaint(
        created.id,
        m.AgencyComplaintPatch(status="diproses"),
        if_unmodified_since=created.updated_at,
    )
    assert (updated.status, updated.title) == ("diproses", created.title)
    assert updated.updated_at > created.updated_at
    with pytest.raises(errors.Conflict):
        adapter.update_complaint(
            created.id,
            m.AgencyComplaintPatch(status="selesai"),
            if_unmodified_since=created.updated_at,
        )


def test_followups_both_ways(adapter: AgencyAdapter, agency_control: AgencyControl) -> None:
    """A reply from LAPOR! is added once per key; staff follow-ups are listed across complaints."""
    created = adapter.create_complaint(new_from_lapor(80), idempotency_key="agency.create:80")
    reply = m.NewAgencyFollowUp(
        author="reporter", content="Mohon dipercepat", lapor_followup_id=991
    )
    first = adapter.add_followup(created.id, reply, idempotency_key="agency.followup:991")
    adapter.add_followup(created.id, reply, idempotency_key="agency.followup:991")
    assert [f.id for f in adapter.followups(created.id)] == [first.id]
    staff = agency_control.add_staff_followup(
        created.id, "Sedang diukur ulang", status_after="diproses"
    )
    everything = [f for p in adapter.followups_since(None) for f in p.items]
    assert staff in {f.id for f in everything}
    assert {f.complaint_id for f in everything if f.id == staff} == {created.id}


def test_errors_are_grouped(
    adapter: AgencyAdapter, agency_system: AgencySystem, clock: FakeClock
) -> None:
    """404, 422 with field problems, and a refused token map to what the caller does next."""
    with pytest.raises(errors.NotFound):
        adapter.complaint("ADU-0000-00000")
    with pytest.raises(errors.RecordRejected) as rejected:
        adapter.create_complaint(
            new_from_lapor(81, category_code="NOPE"), idempotency_key="agency.create:81"
        )
    assert [p.path for p in rejected.value.problems] == ["category_code"]
    wrong = adapter_for("rest", agency_system.base_url, clock, token="wrong")
    with pytest.raises(errors.AuthenticationFailed, match=r"agency\.token"):
        wrong.units()


def test_transient_failures_are_retried(
    adapter: AgencyAdapter, agency_control: AgencyControl, clock: FakeClock
) -> None:
    """500, an empty 503 and a 429 (waiting its Retry-After on the injected clock) are survived."""
    agency_control.add_fault("units", "server_error")
    agency_control.add_fault("units", "unavailable")
    agency_control.add_fault("units", "rate_limit")
    assert adapter.units()
    assert agency_control.requests("units") == 4
    assert clock.sleeps[-1] == 2.0


def test_malformed_record_is_set_aside(
    adapter: AgencyAdapter, agency_control: AgencyControl
) -> None:
    """A list item with a naive timestamp becomes an InvalidRecord; the rest of the page still comes."""
    agency_control.add_fault("complaints", "malformed")
    first = next(iter(adapter.complaints(None)))
    assert len(first.items) == 1
    (bad,) = first.invalid
    assert [p.path for p in bad.problems] == ["updated_at"]


def test_data_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    """The demo system keeps its data in its SQLite file across restarts."""
    path = tmp_path / "agency.sqlite"
    with AgencySystem(path, token=AGENCY_TOKEN).start() as system:
        adapter = adapter_for("rest", system.base_url, clock)
        created = adapter.create_complaint(new_from_lapor(82), idempotency_key="agency.create:82")
        adapter.close()
    with AgencySystem(path, token=AGENCY_TOKEN).start() as system:
        adapter = adapter_for("rest", system.base_url, clock)
        assert adapter.complaint(created.id).title == created.title
        assert len([c for p in adapter.complaints(None) for c in p.items]) == 6
        adapter.close()
