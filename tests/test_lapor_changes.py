"""Later changes on LAPOR! reach the agency, and so does the optional ``sla_state``.

Both simulators run for real on loopback: an admin edits a linked complaint's title, content,
category or report type on LAPOR!, the inbound flow runs, and the demo agency system shows the
new values with the ``changed_on_lapor`` marker. The ``sla_state`` push helper is driven with
hand-made states (the SLA computation lives elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from connector import models as m
from connector.adapters import AgencyAdapter
from connector.config import settings_from_mapping
from connector.errors import ConfigError
from connector.flows.inbound import run_inbound
from connector.flows.sla_out import FLOW as SLA_FLOW
from connector.mappings import check_mappings, load_mappings
from connector.simulators.agency import AgencyControl
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.sync import Sync
from tests.conftest import INSTITUTION_ID
from tests.test_mappings import masters
from tests.test_sync import adapter, agency_control, agency_system, make_sync, mappings_dir

__all__ = ["adapter", "agency_control", "agency_system", "make_sync", "mappings_dir"]


def linked_agency(agency_control: AgencyControl) -> dict[int, dict[str, Any]]:
    """The demo agency's complaints linked to LAPOR!, by LAPOR! id."""
    return {c["lapor"]["id"]: c for c in agency_control.complaints() if c["lapor"]}


def first_linked(sim: LaporSimulator, agency_control: AgencyControl) -> tuple[int, str]:
    """A linked open complaint of ours, in none of the categories the tests move it to: its
    LAPOR! id and agency id."""
    linked = linked_agency(agency_control)
    lapor_id = min(
        int(c["id"])
        for c in sim.state.complaints.values()
        if c["disposition_id"] == INSTITUTION_ID and c["status"] == "in_process"
        and c["category_id"] not in (439, 740)
    )  # fmt: skip
    return lapor_id, str(linked[lapor_id]["id"])


# --- sla_state --------------------------------------------------------------------------------

ON_TIME = m.SlaState(stage=m.SlaStage.FIRST_FOLLOWUP, due=date(2026, 3, 9), working_days_left=3,
                     state=m.SlaStanding.ON_TIME)  # fmt: skip


def test_an_sla_state_is_pushed_once_and_the_agency_shows_it(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """The same state pushed again (a later day, a new run) sends nothing; a new state is sent."""
    run_inbound(make_sync())
    _, agency_id = first_linked(sim, agency_control)
    before = agency_control.writes("patch")
    sync = make_sync(sla_push_enabled=True)
    outcome = sync.push_sla_state(agency_id, ON_TIME)
    assert outcome is not None
    assert outcome.state == "done"
    shown = agency_control.complaints()
    assert next(c for c in shown if c["id"] == agency_id)["sla_state"] == {
        "stage": "first_followup", "due": "2026-03-09", "working_days_left": 3, "state": "on_time",
    }  # fmt: skip
    a_day_later = ON_TIME.model_copy(update={"working_days_left": 2})
    assert sync.push_sla_state(agency_id, a_day_later) is None
    assert make_sync(sla_push_enabled=True).push_sla_state(agency_id, ON_TIME) is None
    assert agency_control.writes("patch") == before + 1
    at_risk = a_day_later.model_copy(
        update={"working_days_left": 1, "state": m.SlaStanding.AT_RISK}
    )
    assert sync.push_sla_state(agency_id, at_risk) is not None
    assert agency_control.writes("patch") == before + 2
    cleared = sync.push_sla_state(agency_id, None)  # closed: nothing to count down any more
    assert cleared is not None
    assert cleared.state == "done"
    assert next(c for c in agency_control.complaints() if c["id"] == agency_id)["sla_state"] is None
    entries = [
        e for e in sync.audit.entries() if e.flow == SLA_FLOW and not e.action.startswith("sla_")
    ]
    assert [e.outcome for e in entries] == ["ok", "ok", "ok"]


def test_sla_state_is_not_pushed_unless_configured(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: AgencyControl
) -> None:
    """Off by default: the helper sends nothing and records nothing."""
    run_inbound(make_sync())
    _, agency_id = first_linked(sim, agency_control)
    before = agency_control.writes("patch")
    sync = make_sync()
    assert sync.push_sla_state(agency_id, ON_TIME) is None
    assert agency_control.writes("patch") == before
    assert list(sync.outbox.items(flow=SLA_FLOW)) == []


def test_the_switch_is_agency_push_sla_state_and_is_off_by_default() -> None:
    """``agency.push_sla_state`` in the configuration; false unless set."""
    base = {"lapor": {"base_url": "https://lapor.example", "institution_id": 1, "api_key": "${K}",
                      "token": "${T}"},
            "agency": {"base_url": "https://agency.example/api/v1", "token": "${A}"}}  # fmt: skip
    env = {"K": "k", "T": "{11111111-2222-3333-4444-555555555555}", "A": "a"}
    settings = settings_from_mapping(base, env=env)
    assert settings.agency is not None
    assert settings.agency.push_sla_state is False
    base["agency"]["push_sla_state"] = True
    on = settings_from_mapping(base, env=env)
    assert on.agency is not None
    assert on.agency.push_sla_state is True


def test_an_agency_system_that_refuses_sla_state_does_not_break_the_sync(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """The 422 naming sla_state is a dead write with that reason; nothing more is pushed in
    the run, and the inbound flow still brings a LAPOR! change to the agency."""
    run_inbound(make_sync())
    agency_control.refuse_fields("sla_state")
    linked = linked_agency(agency_control)
    ids = sorted(linked)
    sync = make_sync(sla_push_enabled=True)
    refused = sync.push_sla_state(str(linked[ids[0]]["id"]), ON_TIME)
    assert refused is not None
    assert refused.state == "dead"
    assert refused.error is not None
    assert [p.path for p in refused.error.problems] == ["sla_state"]  # type: ignore[attr-defined]
    assert sync.push_sla_state(str(linked[ids[1]]["id"]), ON_TIME) is None
    assert [i.state for i in sync.outbox.items(flow=SLA_FLOW)] == ["dead"]
    lapor_id, _ = first_linked(sim, agency_control)
    control.close(lapor_id)
    run_inbound(sync)
    assert linked_agency(agency_control)[lapor_id]["status"] == "selesai"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stage": "later"}, "sla_state.stage"),
        ({"state": "late"}, "sla_state.state"),
        ({"due": "09-03-2026"}, "sla_state.due"),
        ({"working_days_left": "3"}, "sla_state.working_days_left"),
    ],
    ids=["stage", "state", "due", "working-days"],
)
def test_the_demo_agency_system_names_the_wrong_part_of_an_sla_state(
    adapter: AgencyAdapter, agency_control: AgencyControl, change: dict[str, Any], problem: str
) -> None:
    """A malformed sla_state is a 422 naming the field (what a strict agency system answers)."""
    import requests

    complaint = agency_control.complaints()[0]
    value = {**ON_TIME.model_dump(mode="json"), **change}
    response = requests.patch(
        f"{adapter.base_url}/complaints/{complaint['id']}",  # type: ignore[attr-defined]
        json={"sla_state": value},
        headers={"Authorization": adapter.session.headers["Authorization"]},  # type: ignore[attr-defined]
        timeout=5,
    )
    assert response.status_code == 422
    assert list(response.json()["error"]["fields"]) == [problem]


# --- later changes on LAPOR! ------------------------------------------------------------------

ROUTES = ("inbox", "complaint", "followups")


def lapor_requests(control: SimControl) -> dict[str, int]:
    requests = control.stats()["requests"]
    return {route: int(requests[route]) for route in ROUTES if requests.get(route)}


@pytest.mark.parametrize(
    ("edit", "shown", "fields"),
    [
        ({"title": "Sertifikat belum terbit (judul diperbaiki admin)"},
         {"title": "Sertifikat belum terbit (judul diperbaiki admin)"}, ["title"]),
        ({"category_id": 439}, {"category_code": "PTN-UKR", "unit_code": "KANTAH-BDG"}, ["category"]),
        ({"classification_id": 4}, {"classification": "wbs"}, ["classification"]),
        ({"title": "Pungli di loket", "category_id": 740},
         {"title": "Pungli di loket", "category_code": "YAN-PGL"}, ["title", "category"]),
    ],
    ids=["title", "category", "classification", "title-and-category"],
)  # fmt: skip
def test_an_edit_on_lapor_reaches_the_agency_as_one_patch_with_the_marker(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    edit: dict[str, Any],
    shown: dict[str, Any],
    fields: list[str],
) -> None:
    """The new values, translated through the mappings, and changed_on_lapor naming the fields;
    at the cost of a reply (inbox page + C3), no more."""
    run_inbound(make_sync())
    lapor_id, agency_id = first_linked(sim, agency_control)
    before = agency_control.writes("patch")
    assert sorted(control.edit(lapor_id, **edit)) == sorted(edit)
    control.reset_stats()
    report = run_inbound(make_sync())
    assert report.updated == 1
    assert agency_control.writes("patch") == before + 1
    assert lapor_requests(control) == {"inbox": 1, "followups": 1}
    agency = linked_agency(agency_control)[lapor_id]
    assert agency["id"] == agency_id
    assert {k: agency[k] for k in shown} == shown
    assert agency["changed_on_lapor"]["fields"] == fields
    updated_at = sim.state.complaints[lapor_id]["updated_at"]
    assert datetime.fromisoformat(agency["changed_on_lapor"]["at"]) == updated_at
    run_inbound(make_sync())  # in step now: nothing more
    assert agency_control.writes("patch") == before + 1


def test_each_later_edit_is_one_more_patch(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """Edited twice, synced after each: two PATCHes, the marker naming only the latest change."""
    run_inbound(make_sync())
    lapor_id, _ = first_linked(sim, agency_control)
    before = agency_control.writes("patch")
    control.edit(lapor_id, title="Judul pertama")
    run_inbound(make_sync())
    control.edit(lapor_id, classification_id=3)
    run_inbound(make_sync())
    assert agency_control.writes("patch") == before + 2
    agency = linked_agency(agency_control)[lapor_id]
    assert (agency["title"], agency["classification"]) == ("Judul pertama", "informasi")
    assert agency["changed_on_lapor"]["fields"] == ["classification"]


def test_a_content_edit_reaches_the_agency_in_the_next_run(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """The listing carries no content: a change it does not explain, whose follow-ups read
    finds nothing new, is read in full (one C2): one PATCH with the new content and the
    marker; the next run reads nothing more and writes nothing."""
    run_inbound(make_sync())
    lapor_id, _ = first_linked(sim, agency_control)
    before = agency_control.writes("patch")
    control.edit(lapor_id, content="Isi laporan diperbaiki admin: nomor berkas 123/2026.")
    control.reset_stats()
    run_inbound(make_sync())
    assert lapor_requests(control) == {"inbox": 1, "followups": 1, "complaint": 1}
    assert agency_control.writes("patch") == before + 1
    agency = linked_agency(agency_control)[lapor_id]
    assert agency["content"] == "Isi laporan diperbaiki admin: nomor berkas 123/2026."
    assert agency["changed_on_lapor"]["fields"] == ["content"]
    control.reset_stats()
    run_inbound(make_sync())
    assert lapor_requests(control) == {"inbox": 1}
    assert agency_control.writes("patch") == before + 1


@pytest.mark.parametrize("dialect", ["counts"])
def test_where_lapor_sends_follow_up_counts_a_content_edit_costs_a_detail_read_not_a_followups_read(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """The counts did not move, so no C3; the change is read in the detail instead."""
    run_inbound(make_sync())
    lapor_id, _ = first_linked(sim, agency_control)
    control.edit(lapor_id, content="Isi laporan diperbaiki admin.")
    control.reset_stats()
    run_inbound(make_sync())
    assert lapor_requests(control) == {"inbox": 1, "complaint": 1}
    assert linked_agency(agency_control)[lapor_id]["content"] == "Isi laporan diperbaiki admin."


def test_a_reply_between_the_followups_read_and_the_detail_read_is_not_lost(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    adapter: AgencyAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The detail read for an unexplained change may already show a later change (a reply
    posted in between): the complaint is marked in step at the listing's moment, not the
    detail's, so the next run reads the reply."""
    run_inbound(make_sync())
    lapor_id, _ = first_linked(sim, agency_control)
    control.edit(lapor_id, content="Isi laporan diperbaiki admin.")
    sync = make_sync()
    read = sync.lapor.complaint

    def reply_first(complaint_id: int) -> object:
        control.advance_seconds(1)
        control.reply(complaint_id, "Balasan yang datang di antara dua bacaan.")
        return read(complaint_id)

    monkeypatch.setattr(sync.lapor, "complaint", reply_first)
    run_inbound(sync)
    monkeypatch.undo()
    run_inbound(make_sync())
    texts = [f.content for f in adapter.followups(linked_agency(agency_control)[lapor_id]["id"])]
    assert texts.count("Balasan yang datang di antara dua bacaan.") == 1


def test_an_unchanged_complaint_gets_no_patch(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """A reply moves updated_at but changes none of the fields: only the reply is written."""
    run_inbound(make_sync())
    lapor_id, _ = first_linked(sim, agency_control)
    before = agency_control.writes("patch")
    control.reply(lapor_id, "Apakah ada kabar terbaru?")
    assert control.edit(lapor_id, title=sim.state.complaints[lapor_id]["title"]) == []
    control.reset_stats()
    report = run_inbound(make_sync())
    assert report.replies == 1
    assert agency_control.writes("patch") == before
    assert "complaint" not in lapor_requests(control)  # the reply explains the change: no C2
    assert linked_agency(agency_control)[lapor_id]["changed_on_lapor"] is None


def test_a_category_change_moves_the_unit_when_the_mapping_says_so(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
    mappings_dir: Path,
) -> None:
    """on_lapor_change.move_unit: true: the PATCH carries the unit the new category names."""
    path = mappings_dir / "categories.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("move_unit: false", "move_unit: true"), encoding="utf-8")
    run_inbound(make_sync())
    lapor_id, _ = first_linked(sim, agency_control)
    control.edit(lapor_id, category_id=439)  # Pengukuran dan Pemetaan -> PTN-UKR -> SEKSI-SP
    run_inbound(make_sync())
    agency = linked_agency(agency_control)[lapor_id]
    assert (agency["category_code"], agency["unit_code"]) == ("PTN-UKR", "SEKSI-SP")


def test_a_secret_complaints_flags_survive_an_edit_and_no_text_reaches_the_audit_log(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """rahasia and anonim stay true; the audit entry names the fields, never their values."""
    run_inbound(make_sync())
    linked = linked_agency(agency_control)
    lapor_id = next(i for i, c in linked.items() if c["is_secret"] or c["is_anonymous"])
    flags = {k: linked[lapor_id][k] for k in ("is_secret", "is_anonymous")}
    control.edit(lapor_id, title="Judul baru dengan nama Budi Santoso")
    sync = make_sync()
    run_inbound(sync)
    agency = linked_agency(agency_control)[lapor_id]
    assert {k: agency[k] for k in flags} == flags
    entry = [
        e for e in sync.audit.entries(lapor_id=lapor_id) if e.action == "agency_update_complaint"
    ][-1]
    assert "title" in entry.changed_fields
    assert "Budi" not in str(entry)


# --- what the mappings decide -----------------------------------------------------------------


def edited_copy(mappings_dir: Path, name: str, old: str, new: str) -> Path:
    path = mappings_dir / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return mappings_dir


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("move_unit: false", "move_unit: sometimes",
         "categories.yaml: on_lapor_change.move_unit: Input should be a valid boolean"),
        ("move_unit: false", "move_unti: true",
         "categories.yaml: on_lapor_change.move_unti: unknown key"),
    ],
    ids=["not-a-boolean", "misspelt"],
)  # fmt: skip
def test_a_bad_on_lapor_change_setting_is_named_with_its_path(
    mappings_dir: Path, old: str, new: str, problem: str
) -> None:
    """The file and the key, as every mapping problem."""
    with pytest.raises(ConfigError) as caught:
        load_mappings(edited_copy(mappings_dir, "categories.yaml", old, new))
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_move_unit_needs_the_units_to_move_to(mappings_dir: Path) -> None:
    """move_unit: true without units is refused at load, naming the key to add."""
    text = (mappings_dir / "categories.yaml").read_text(encoding="utf-8")
    head = text.split("on_lapor_change:")[0]
    (mappings_dir / "categories.yaml").write_text(
        head + "on_lapor_change:\n  move_unit: true\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_mappings(mappings_dir)
    assert caught.value.problems[0].startswith(
        "categories.yaml: on_lapor_change.units: required with move_unit: true"
    )


@pytest.mark.parametrize(
    ("name", "old", "new", "problem"),
    [
        ("categories.yaml", "    PTN: KANTAH-BDG ", "    PTN: SEKSI-XX ",
         "categories.yaml: on_lapor_change.units.PTN: 'SEKSI-XX' is not an agency unit"),
        ("classifications.yaml", "  4: wbs ", "  #",
         "classifications.yaml: inbound.4: missing"),
    ],
    ids=["unknown-unit", "report-type-without-code"],
)  # fmt: skip
def test_mappings_check_finds_the_gaps_of_lapor_changes(
    mappings_dir: Path, name: str, old: str, new: str, problem: str
) -> None:
    """check_mappings names what a LAPOR! change would hit before one does."""
    problems = check_mappings(load_mappings(edited_copy(mappings_dir, name, old, new)), **masters())
    assert any(p.startswith(problem) for p in problems), problems


def test_with_move_unit_every_agency_category_needs_a_unit(mappings_dir: Path) -> None:
    """A category no units rule covers (nor a parent's) is a gap once move_unit is true."""
    edited_copy(mappings_dir, "categories.yaml", "move_unit: false", "move_unit: true")
    edited_copy(mappings_dir, "categories.yaml", "    YAN: SUBBAG-TU\n", "")
    problems = check_mappings(load_mappings(mappings_dir), **masters())
    assert any(
        p.startswith("categories.yaml: on_lapor_change.units: agency category YAN-PGL")
        for p in problems
    ), problems


def test_mappings_check_says_what_a_category_change_does(mappings_dir: Path) -> None:
    """The shipped setting keeps the unit; the check's summary line says so."""
    assert (
        load_mappings(mappings_dir)
        .describe_on_lapor_change()
        .startswith("a category changed on LAPOR! keeps the agency's unit")
    )
    assert check_mappings(load_mappings(mappings_dir), **masters()) == []
    edited_copy(mappings_dir, "categories.yaml", "move_unit: false", "move_unit: true")
    assert "moves the complaint" in load_mappings(mappings_dir).describe_on_lapor_change()


def test_a_link_made_before_the_fields_were_recorded_compares_from_the_first_change_seen(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    agency_control: AgencyControl,
) -> None:
    """After the upgrade nothing is known of what the agency was told: the first change seen
    only records it (no PATCH on a guess), the next one is sent."""
    sync = make_sync()
    run_inbound(sync)
    lapor_id, _ = first_linked(sim, agency_control)
    with sync.store.transaction():
        sync.store.db.execute("UPDATE links SET lapor_fields = NULL")  # as migration 7 leaves them
    before = agency_control.writes("patch")
    control.edit(lapor_id, title="Judul sebelum pembaruan tercatat")
    run_inbound(make_sync())
    assert agency_control.writes("patch") == before
    control.edit(lapor_id, title="Judul sesudahnya")
    run_inbound(make_sync())
    assert agency_control.writes("patch") == before + 1
    assert linked_agency(agency_control)[lapor_id]["title"] == "Judul sesudahnya"
