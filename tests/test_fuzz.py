"""No poison record: whatever one LAPOR! record holds, it is quarantined and the run goes on.

Generated malformed records (a valid record with fields replaced by any JSON value, huge or
negative ints, lone surrogates, NUL, long text, deep nesting, or fields dropped) go through the
reader directly and through the inbound flow against the simulator and the demo agency system.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector import models as m
from connector.clock import FakeClock
from connector.errors import RecordError
from connector.flows.inbound import run_inbound
from connector.lapor import wire
from connector.lapor.client import LaporClient
from connector.mappings import load_mappings
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.state import StateStore
from connector.sync import Sync
from connector.untrusted import cut_deep_json
from tests.conftest import INSTITUTION_ID
from tests.test_agency_adapter import AGENCY_TOKEN, adapter_for

#: Stands for a value nested 10,000 levels deep (written by hand: json.dumps cannot).
DEEP = "\x00deep-nesting"
DEEP_JSON = "[" * 10_000 + "]" * 10_000
SETTINGS = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- generated values ----------------------------------------------------------------------

_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", " ", "0", "-1", "1.5", "abc", "31-12-2026 13:45:00", "2026-12-31"])
)
json_values = st.recursive(
    _leaf,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)  # fmt: skip
nasty_values = st.one_of(
    st.sampled_from([
        2**63, 2**64, 2**63 - 1, -1, -(2**63) - 1, 0, 10**30, True, False, [], {}, "", "   ",
        "\ud800", "tanpa \udfff pasangan", "a\x00b", "\x00", "x" * 20_000, "9" * 25, "-0",
        "01-01-0001 00:00:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
        "31-12-9999 23:59:59", "2026-02-30T00:00:00Z", "NaN", float("nan"), float("inf"), 1e308,
        DEEP, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    ]),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(max_value=-1),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
    json_values,
)  # fmt: skip
_mutation = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 1000), nasty_values),
    st.tuples(st.just("drop"), st.integers(0, 1000), st.none()),
    st.tuples(st.just("add"), st.text(max_size=10), nasty_values),
)


def _mutate(record: dict[str, Any], mutations: list[tuple[str, Any, Any]]) -> dict[str, Any]:
    record = json.loads(json.dumps(record))
    for kind, where, value in mutations:
        keys = sorted(record)
        if kind == "add":
            record[where] = value
        elif keys:
            key = keys[where % len(keys)]
            if kind == "drop":
                del record[key]
            else:
                record[key] = value
    return record


def mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``base`` with one to three fields replaced, dropped or added."""
    return st.lists(_mutation, min_size=1, max_size=3).map(lambda ms: _mutate(base, ms))


def as_json(record: object) -> str:
    """The record as LAPOR! would send it, with ``DEEP`` written 10,000 levels deep."""
    return json.dumps(record).replace(json.dumps(DEEP), DEEP_JSON)


def as_received(record: object) -> object:
    """The record as the connector decodes it (what the transport makes of ``as_json``)."""
    return json.loads(cut_deep_json(as_json(record)))


def storable(model: m.Model) -> None:
    """A canonical model serialises and every text and number in it fits an SQLite column."""
    values = json.loads(model.model_dump_json())
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (v)")
    stack: list[object] = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None:
            db.execute("INSERT INTO t VALUES (?)", [value])
    db.close()


# --- valid records (as the simulator renders them) -----------------------------------------

SUMMARY = {
    "id": 5010653, "tracking_id": "1916449", "title": "Sertifikat belum terbit", "channel": 13,
    "classification_id": 1, "category_id": 436, "location_id": 3273, "is_secret": False,
    "is_anonymous": False, "status_code": "in_process", "status_name": "Dalam Proses",
    "disposition_id": 999, "disposition_name": "Instansi Lain", "external_ref": None,
    "created_at": "01-11-2026 09:00:00", "updated_at": "2026-11-01T09:00:00+07:00",
    "deadlines": {"verify_by": "03-11-2026 09:00:00", "first_followup_by": "2026-11-05",
                  "auto_close_at": None, "overdue": False},
}  # fmt: skip
DETAIL = {
    **SUMMARY, "content": "Sudah enam bulan.", "date_of_incident": "2026-10-01", "tags_raw": "tanah",
    "reporter": {"name": "Budi", "email": "budi@contoh.id", "phone": None},
    "status_logs": [{"note": "Diverifikasi", "timestamp": "02-11-2026 10:00:00"}],
    "attachments": [{"id": 7, "file_name": "bukti.pdf", "extension": "pdf", "path": None}],
}  # fmt: skip
DATA_LOG = {
    "id": 1, "date": "02-11-2026 10:00:00", "template_code": "verifikasi",
    "content": "Status {{ status_old }} ke {{status_new}}", "institution_from_name": None,
    "institution_to_name": None, "attachments": [],
    "data": '{"status_old": {"name": "Belum"}, "status_new": {"name": "Terverifikasi"}}',
}  # fmt: skip
FOLLOWUP = {
    "id": 88, "created_at": "03-11-2026 08:00:00", "content": "Mohon segera diproses.",
    "template_code": None, "institution_from_name": None, "institution_to_name": None,
    "is_secret": False, "attachments": [], "author_type": "reporter",
}  # fmt: skip


def test_the_valid_records_are_valid() -> None:
    """The records the properties mutate are read as they are."""
    assert wire.complaint_summary(SUMMARY).lapor_id == 5010653
    assert wire.complaint_detail({"data": DETAIL, "data_logs": [DATA_LOG]}).history
    assert wire.followup(FOLLOWUP).author is m.Author.REPORTER


# --- the reader: a canonical model or a RecordError, nothing else --------------------------


@SETTINGS
@given(raw=st.one_of(mutated(SUMMARY), nasty_values))
def test_summary_reader_never_raises_anything_else(raw: object) -> None:
    """A C1 item, however broken, is a summary or a RecordError (also as decoded from JSON)."""
    for record in (raw, as_received(raw)):
        with contextlib.suppress(RecordError):
            storable(wire.complaint_summary(record))


@SETTINGS
@given(data=mutated(DETAIL), log=st.one_of(mutated(DATA_LOG), st.just(DATA_LOG), nasty_values),
       logs=st.one_of(st.just(None), nasty_values))  # fmt: skip
def test_detail_reader_never_raises_anything_else(data: object, log: object, logs: object) -> None:
    """A C2 answer, however broken its data or history, is a complaint or a RecordError."""
    for results in ({"data": data, "data_logs": [log]}, {"data": DETAIL, "data_logs": logs},
                    {"data": DETAIL, "data_logs": [log]}, data):  # fmt: skip
        for record in (results, as_received(results)):
            with contextlib.suppress(RecordError):
                storable(wire.complaint_detail(record))


@SETTINGS
@given(raw=st.one_of(mutated(FOLLOWUP), nasty_values))
def test_followup_reader_never_raises_anything_else(raw: object) -> None:
    """A C3 item, however broken, is a follow-up or a RecordError."""
    for record in (raw, as_received(raw)):
        with contextlib.suppress(RecordError):
            storable(wire.followup(record))


@pytest.mark.parametrize(
    ("reader", "base"),
    [(wire.complaint_summary, SUMMARY), (wire.followup, FOLLOWUP)],
    ids=["summary", "followup"],
)
def test_python_nesting_beyond_any_recursion_limit_is_a_record_error(
    reader: Callable[[object], object], base: dict[str, Any]
) -> None:
    """A value nested 100,000 levels deep (built in Python) is refused, without recursing."""
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecordError, match="nested deeper"):
        reader({**base, "title": deep, "content": deep})


# --- the inbound flow: bad records quarantined, every good one synced ----------------------


@pytest.fixture
def flow(
    sim: LaporSimulator,
    client: LaporClient,
    clock: FakeClock,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], tuple[Sync, AgencyControl]]]:
    """A fresh agency system and state store for each run, against the same simulator."""
    opened: list[Any] = []
    mappings = load_mappings(Path("mappings"))

    def fresh() -> tuple[Sync, AgencyControl]:
        where = tmp_path_factory.mktemp("run")
        system = AgencySystem(where / "agency.sqlite", token=AGENCY_TOKEN, complaints=0).start()
        adapter = adapter_for("rest", system.base_url, clock)
        store = StateStore(where / "state.sqlite", clock)
        opened.extend([store, adapter, system])
        sync = Sync(lapor=client, agency=adapter, mappings=mappings, store=store, clock=clock,
                    institution_id=INSTITUTION_ID)  # fmt: skip
        sync.load_trees()
        return sync, AgencyControl(system.root_url)

    yield fresh
    for thing in reversed(opened):
        thing.stop() if isinstance(thing, AgencySystem) else thing.close()


def ours(sim: LaporSimulator) -> set[int]:
    return {c["id"] for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID}


def linked(agency: AgencyControl) -> set[int]:
    return {c["lapor"]["id"] for c in agency.complaints() if c["lapor"]}


def _reader_verdict(raw: object, client: LaporClient) -> str:
    try:
        summary = wire.complaint_summary(as_received(raw), client.status_aliases)
    except RecordError:
        return "bad"
    ours_to_create = summary.disposition_id == INSTITUTION_ID and summary.external_ref is None
    return "unknown_to_lapor" if ours_to_create else "good"


INBOX_RECORDS = 50


@settings(SETTINGS, max_examples=16)
@given(records=st.lists(mutated(SUMMARY), min_size=INBOX_RECORDS, max_size=INBOX_RECORDS))
def test_poison_inbox_items_are_quarantined_and_the_rest_syncs(
    records: list[dict[str, Any]],
    flow: Callable[[], tuple[Sync, AgencyControl]],
    sim: LaporSimulator,
    control: SimControl,
    client: LaporClient,
) -> None:
    """50 generated items in one inbox page: each bad one quarantined, every real complaint synced."""
    for index, record in enumerate(records):
        if isinstance(record.get("id"), int) and record["id"] == SUMMARY["id"]:
            record["id"] = 9_000_000 + index  # unknown to LAPOR!, so never a real complaint
    verdicts = [_reader_verdict(r, client) for r in records]
    control.inject("inbox", raw_json=[as_json(r) for r in records])
    sync, agency = flow()

    report = run_inbound(sync)

    assert linked(agency) == ours(sim)
    bad, unknown = verdicts.count("bad"), verdicts.count("unknown_to_lapor")
    assert bad <= report.quarantined <= bad + unknown  # a valid one of ours LAPOR! cannot find: 404
    entries = sync.store.quarantined()
    assert sum(e.times_seen for e in entries) == report.quarantined
    assert all(e.problems and e.source == "inbound" for e in entries)


FOLLOWUP_ITEMS = 30
CARRIERS = 3  # follow-up answers that carry the injected items


@settings(SETTINGS, max_examples=10)
@given(items=st.lists(st.one_of(mutated(FOLLOWUP), nasty_values), min_size=FOLLOWUP_ITEMS,
                      max_size=FOLLOWUP_ITEMS))  # fmt: skip
def test_poison_followups_quarantine_their_complaint_and_the_rest_syncs(
    items: list[object],
    flow: Callable[[], tuple[Sync, AgencyControl]],
    sim: LaporSimulator,
    control: SimControl,
) -> None:
    """30 generated items on a complaint's follow-ups: the complaint is quarantined, not marked in step."""
    invalid = 0
    for item in items:
        try:
            wire.followup(as_received(item))
        except RecordError:
            invalid += 1
    control.inject("followups", raw_json=[as_json(i) for i in items], count=CARRIERS)
    sync, agency = flow()

    report = run_inbound(sync)

    assert linked(agency) == ours(sim)
    held = {e.record_id: e for e in sync.store.quarantined()}
    assert all(
        e.source == "inbound" and e.record_id and e.record_id.isdigit() for e in held.values()
    )
    if invalid:
        assert len(held) == CARRIERS == report.quarantined
        assert all(p.startswith("followups[") for e in held.values() for p in e.problems)
        for record_id in held:  # not in step: the next run reads its follow-ups again
            link = sync.links.by_lapor_id(int(record_id))
            assert link is not None
            assert link.lapor_updated_at is None
    else:
        assert len(held) <= CARRIERS  # valid, yet the agency may refuse one (too long, say)
