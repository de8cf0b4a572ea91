"""No poison record, the agency half: whatever one agency record holds, it is quarantined and the run goes on.

Generated malformed agency records (a valid complaint or follow-up with fields replaced by any
JSON value, huge or negative ints, ids that are not strings, lone surrogates, NUL, 20,000-character
text, deep nesting, timestamps without an offset, unknown codes, a follow-up naming a complaint
that does not exist, or fields dropped) go through the rest adapter's readers directly, and
through the intake-out and follow-ups-out flows against the LAPOR! simulator and the demo agency
system (``/_sim/inject``), 50 to a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters import rest
from connector.clock import FakeClock
from connector.errors import RecordError
from connector.flows.followups_out import run_followups_out
from connector.flows.intake_out import run_intake_out
from connector.lapor.client import LaporClient
from connector.mappings import load_mappings
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator
from connector.state import StateStore
from connector.sync import Sync
from tests.conftest import INSTITUTION_ID
from tests.test_agency_adapter import AGENCY_TOKEN, adapter_for
from tests.test_fuzz import SETTINGS, as_json, as_received, mutated, nasty_values, storable

# --- valid records (as the demo agency system renders them) --------------------------------

REPORTER: dict[str, Any] = {"name": "Ani", "email": "ani@contoh.id", "phone": None}
ATTACHMENT: dict[str, Any] = {
    "id": "F-1", "file_name": "bukti.pdf", "content_type": "application/pdf", "size": 10, "url": None,
}  # fmt: skip
COMPLAINT: dict[str, Any] = {
    "id": "ADU-FUZZ", "source": "internal", "channel": "whatsapp", "title": "Sertifikat belum terbit",
    "content": "Berkas diajukan Maret, sampai kini belum ada kabar.", "category_code": "PTN-SRT",
    "unit_code": "KANTAH-BDG", "status": "baru", "is_secret": False, "is_anonymous": False,
    "reporter": REPORTER, "lapor": None, "report_to_lapor": True, "incident_date": "2026-10-01",
    "tags": "tanah", "attachments": [ATTACHMENT],
    "created_at": "2026-11-01T09:00:00+07:00", "updated_at": "2026-11-01T09:00:00+07:00",
}  # fmt: skip
LAPOR_REF = {
    "id": 5010653,
    "tracking_id": "1916449",
    "status_code": "in_process",
    "disposition_id": 145,
}
FOLLOWUP = {
    "id": "TL-FUZZ", "complaint_id": "ADU-2026-00001", "author": "agency", "content": "Sedang ditangani.",
    "is_secret": False, "status_after": None, "lapor_followup_id": None,
    "created_at": "2026-11-02T09:00:00+07:00", "updated_at": "2026-11-02T09:00:00+07:00",
}  # fmt: skip
#: Agency-side values the mappings or the agency system do not know.
_unknown = st.sampled_from(["TIDAK-ADA", "ditutup-paksa", "ADU-2026-99999", "", "baru ", "PTN-srt"])


def _nested(
    base: dict[str, Any], key: str, inner: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with its ``key`` object mutated."""
    return mutated(inner).map(lambda value: {**base, key: value})


complaints = st.one_of(
    mutated(COMPLAINT),
    _nested(COMPLAINT, "reporter", REPORTER),
    _nested(COMPLAINT, "lapor", LAPOR_REF),
    mutated(ATTACHMENT).map(lambda a: {**COMPLAINT, "attachments": [a]}),
    st.tuples(st.sampled_from(["status", "category_code", "unit_code"]), _unknown).map(
        lambda kv: {**COMPLAINT, kv[0]: kv[1]}
    ),
)
followups = st.one_of(
    mutated(FOLLOWUP),
    st.tuples(st.sampled_from(["status_after", "complaint_id", "author"]), _unknown).map(
        lambda kv: {**FOLLOWUP, kv[0]: kv[1]}
    ),
)


def test_the_valid_records_are_valid() -> None:
    """The records the properties mutate are read as they are."""
    assert rest._complaint(COMPLAINT).report_to_lapor
    assert rest._complaint({**COMPLAINT, "lapor": LAPOR_REF}).lapor is not None
    assert rest._followup(FOLLOWUP).author == "agency"


# --- the readers: a canonical model or a RecordError, nothing else -------------------------


@SETTINGS
@given(raw=st.one_of(complaints, nasty_values))
def test_complaint_reader_never_raises_anything_else(raw: object) -> None:
    """An agency complaint, however broken, is a complaint or a RecordError (also as decoded)."""
    for record in (raw, as_received(raw)):
        with contextlib.suppress(RecordError):
            storable(rest._complaint(record))


@SETTINGS
@given(raw=st.one_of(followups, nasty_values))
def test_followup_reader_never_raises_anything_else(raw: object) -> None:
    """An agency follow-up, however broken, is a follow-up or a RecordError (also as decoded)."""
    for record in (raw, as_received(raw)):
        with contextlib.suppress(RecordError):
            storable(rest._followup(record))


@pytest.mark.parametrize("reader", [rest._complaint, rest._followup], ids=["complaint", "followup"])
def test_python_nesting_beyond_any_recursion_limit_is_a_record_error(
    reader: Callable[[object], object],
) -> None:
    """A value nested 100,000 levels deep (built in Python) is refused, without recursing."""
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecordError, match="nested deeper"):
        reader({**COMPLAINT, **FOLLOWUP, "title": deep, "content": deep})


# --- the flows: bad records quarantined, every good one synced -----------------------------

SEEDED = 3  # valid internal complaints marked report_to_lapor in each fresh agency system
RECORDS = 50  # injected records per run
EXAMPLES = 12  # runs of each flow: 2 x 12 x 50 = 1,200 malformed agency records in all
assert 2 * EXAMPLES * RECORDS >= 1_000


@pytest.fixture
def flow(
    client: LaporClient, clock: FakeClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], tuple[Sync, AgencyControl, list[str]]]]:
    """A fresh agency system (with seeded complaints) and state store for each run."""
    opened: list[Any] = []
    mappings = load_mappings(Path("mappings"))

    def fresh() -> tuple[Sync, AgencyControl, list[str]]:
        where = tmp_path_factory.mktemp("run")
        system = AgencySystem(where / "agency.sqlite", token=AGENCY_TOKEN, complaints=0).start()
        adapter = adapter_for("rest", system.base_url, clock)
        store = StateStore(where / "state.sqlite", clock)
        opened.extend([store, adapter, system])
        sync = Sync(lapor=client, agency=adapter, mappings=mappings, store=store, clock=clock,
                    institution_id=INSTITUTION_ID, intake_user_id=1)  # fmt: skip
        sync.load_trees()
        agency = AgencyControl(system.root_url)
        seeded = [
            agency.add_internal_complaint(
                title=f"Sertifikat belum terbit {n}",
                content="Sudah enam bulan.",
                channel="whatsapp",
                category_code="PTN-SRT",
                report_to_lapor=True,
                reporter={"name": "Ani", "email": "ani@contoh.id", "phone": None},
            )
            for n in range(SEEDED)
        ]
        return sync, agency, seeded

    yield fresh
    for thing in reversed(opened):
        thing.stop() if isinstance(thing, AgencySystem) else thing.close()


def _verdict(reader: Callable[[object], object], raw: object) -> RecordError | None:
    try:
        reader(as_received(raw))
    except RecordError as error:
        return error
    return None


def _check_quarantine(
    sync: Sync, flow: str, bad: Sequence[tuple[object, RecordError]], seen: int
) -> None:
    """One entry per distinct invalid record id; records without a usable id are counted."""
    entries = [e for e in sync.store.quarantined() if e.source == flow]
    assert all(e.problems for e in entries)
    named = [e for e in entries if e.record_id]
    by_id = {e.record_id: e for e in named}
    assert len(by_id) == len(named)  # one entry per id; nameless ones are keyed by their content
    with_id = {error.record_id for _, error in bad if error.record_id}
    assert with_id <= set(by_id)
    for raw, error in bad:  # an id is kept only when it is one: a short string
        if error.record_id is not None:
            assert isinstance(raw, dict)
            assert raw.get("id") == error.record_id
    without_id = sum(1 for _, error in bad if not error.record_id)
    nameless = [e for e in entries if e.record_id in (None, "", "(no id)")]
    assert sum(e.times_seen for e in nameless) == without_id
    assert sum(e.times_seen for e in entries) == seen


def _filed(sim: LaporSimulator, before: set[int], agency_id: str) -> int:
    return sum(
        1
        for i, c in sim.state.complaints.items()
        if i not in before and c["external_ref"] == agency_id
    )


@settings(SETTINGS, max_examples=EXAMPLES)
@given(records=st.lists(complaints, min_size=RECORDS, max_size=RECORDS))
def test_poison_agency_complaints_are_quarantined_and_the_rest_is_filed(
    records: list[dict[str, Any]],
    flow: Callable[[], tuple[Sync, AgencyControl, list[str]]],
    sim: LaporSimulator,
) -> None:
    """50 generated complaints in one agency page: each bad one quarantined, every good one filed once."""
    for index, record in enumerate(records):
        if record.get("id") == COMPLAINT["id"]:
            record["id"] = f"ADU-FUZZ-{index}"  # unknown to the agency system and to LAPOR!
    verdicts = [_verdict(rest._complaint, r) for r in records]
    sync, agency, seeded = flow()
    agency.inject("complaints", raw_json=[as_json(r) for r in records])
    before = set(sim.state.complaints)

    report = run_intake_out(sync)

    for agency_id in seeded:
        assert _filed(sim, before, agency_id) == 1
    linked = {c["id"] for c in agency.complaints() if c["lapor"]}
    assert linked == set(seeded)
    bad = [(r, e) for r, e in zip(records, verdicts, strict=True) if e is not None]
    _check_quarantine(sync, "intake_out", bad, report.quarantined)
    assert report.quarantined >= len(bad)
    assert not {e.record_id for e in sync.store.quarantined()} & set(seeded)


@settings(SETTINGS, max_examples=EXAMPLES)
@given(items=st.lists(followups, min_size=RECORDS, max_size=RECORDS))
def test_poison_agency_followups_are_quarantined_and_the_rest_is_posted(
    items: list[dict[str, Any]],
    flow: Callable[[], tuple[Sync, AgencyControl, list[str]]],
    sim: LaporSimulator,
) -> None:
    """50 generated follow-ups in one agency page: each bad one quarantined, every real one posted once."""
    for index, item in enumerate(items):
        if item.get("id") == FOLLOWUP["id"]:
            item["id"] = f"TL-FUZZ-{index}"
    verdicts = [_verdict(rest._followup, i) for i in items]
    sync, agency, seeded = flow()
    run_intake_out(sync)
    staff = {
        agency_id: agency.add_staff_followup(agency_id, f"Tindak lanjut {agency_id}")
        for agency_id in seeded
    }
    agency.inject("followups", raw_json=[as_json(i) for i in items])

    report = run_followups_out(sync)

    for agency_id, followup_id in staff.items():
        link = sync.links.by_agency_id(agency_id)
        assert link is not None
        assert link.lapor_id is not None
        posted = [
            f
            for f in sim.state.followups.get(link.lapor_id, [])
            if f["content"] == f"Tindak lanjut {agency_id}"
        ]
        assert len(posted) == 1
        assert sync.links.followup_linked(agency_followup_id=followup_id)
    bad = [(i, e) for i, e in zip(items, verdicts, strict=True) if e is not None]
    _check_quarantine(sync, "followups_out", bad, report.quarantined)
    assert report.quarantined >= len(bad)
