"""SLA: each complaint's stage and due date, checked against a day-by-day count of its history."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import structlog
from click.testing import CliRunner
from structlog.testing import capture_logs

from connector import models as m
from connector.cli import cli
from connector.clock import FakeClock
from connector.flows.inbound import run_inbound
from connector.links import Links
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.sla import Facts, SlaFacts, assess, deadline, open_rows, review, summary
from connector.state import StateStore
from connector.sync import Sync
from connector.workdays import WorkCalendar, zone
from tests.conftest import INSTITUTION_ID, all_dialects
from tests.test_sync import adapter, agency_control, agency_system, make_sync, mappings_dir

__all__ = ["adapter", "agency_control", "agency_system", "make_sync", "mappings_dir"]

WIB = ZoneInfo("Asia/Jakarta")
UTC = timezone.utc


def closed_days(year: int) -> set[date]:
    return set(holidays.country_holidays("ID", years=year, categories=("public", "government")))


def oracle_add(start: datetime, days: int, tz: ZoneInfo = WIB) -> date:
    """The plain rule, one day at a time: the N-th working day after the day of ``start``."""
    current = start.astimezone(tz).date()
    while days:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in closed_days(current.year):
            days -= 1
    return current


def facts(**values: Any) -> Facts:
    base: dict[str, Any] = dict(
        lapor_id=1, tracking_id="1916000", unit="KANTAH-BDG", status=m.ComplaintStatus.VERIFIED,
        disposition_id=INSTITUTION_ID, created_at=datetime(2026, 12, 21, 3, 0, tzinfo=UTC),
        disposed_at=None, first_followup_at=None, last_institution_followup_at=None,
        last_reply_at=None, closed_at=None, verify_by=None, first_followup_by=None,
        auto_close_at=None, recorded_state=None, disagreement=None,
    )  # fmt: skip
    base.update(values)
    return Facts(**base)


CAL = WorkCalendar()


def test_verify_counts_three_working_days_across_christmas_cuti_bersama() -> None:
    """Filed Tuesday 22 December 2026: the 24th is cuti bersama, the 25th Christmas, so day 3
    is Tuesday the 29th (the 28th if cuti bersama were ignored)."""
    filed = datetime(2026, 12, 22, 2, 0, tzinfo=UTC)
    found = deadline(facts(status=m.ComplaintStatus.UNVERIFIED, created_at=filed), CAL)
    assert found is not None
    assert (found.stage, found.due, found.source) == ("verify", date(2026, 12, 29), "computed")
    assert found.due == oracle_add(filed, 3)


def test_first_followup_counts_five_from_disposition() -> None:
    disposed = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)  # Monday before Nyepi and Idulfitri
    found = deadline(facts(disposed_at=disposed, created_at=disposed - timedelta(days=1)), CAL)
    assert found is not None
    assert (found.stage, found.due) == ("first_followup", oracle_add(disposed, 5))
    assert found.due == date(2026, 3, 30)  # 17th, then 25th, 26th, 27th, 30th


def test_auto_close_counts_ten_from_the_last_institution_followup() -> None:
    last = datetime(2026, 12, 14, 4, 0, tzinfo=UTC)
    found = deadline(
        facts(status=m.ComplaintStatus.IN_PROCESS, created_at=last - timedelta(days=3),
              first_followup_at=last - timedelta(days=1), last_institution_followup_at=last),
        CAL,
    )  # fmt: skip
    assert found is not None
    assert (found.stage, found.due) == ("auto_close", oracle_add(last, 10))


def test_a_reply_after_the_last_followup_leaves_the_ceiling() -> None:
    """A reporter's answer stops the automatic closure: the 60-day ceiling binds."""
    created = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    last = datetime(2026, 11, 10, 4, 0, tzinfo=UTC)
    found = deadline(
        facts(status=m.ComplaintStatus.IN_PROCESS, created_at=created, first_followup_at=last,
              last_institution_followup_at=last, last_reply_at=last + timedelta(hours=1)),
        CAL,
    )  # fmt: skip
    assert found is not None
    assert (found.stage, found.due) == ("ceiling", date(2026, 11, 2) + timedelta(days=60))


def test_a_stage_due_after_the_ceiling_is_the_ceiling() -> None:
    created = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    last = datetime(2026, 10, 28, 4, 0, tzinfo=UTC)  # 10 working days later is after 31 Oct
    found = deadline(
        facts(status=m.ComplaintStatus.IN_PROCESS, created_at=created, first_followup_at=last,
              last_institution_followup_at=last),
        CAL,
    )  # fmt: skip
    assert found is not None
    assert (found.stage, found.due) == ("ceiling", date(2026, 10, 31))


def test_lapors_own_deadline_wins_and_a_disagreement_shows() -> None:
    created = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    same = deadline(facts(status=m.ComplaintStatus.UNVERIFIED, created_at=created,
                          verify_by=datetime(2026, 12, 4, 3, 0, tzinfo=UTC)), CAL)  # fmt: skip
    assert same is not None
    assert (same.due, same.source, same.disagrees) == (date(2026, 12, 4), "lapor", False)
    off = deadline(facts(status=m.ComplaintStatus.UNVERIFIED, created_at=created,
                         verify_by=datetime(2026, 12, 9, 3, 0, tzinfo=UTC)), CAL)  # fmt: skip
    assert off is not None
    assert (off.due, off.computed, off.disagrees) == (date(2026, 12, 9), date(2026, 12, 4), True)


def test_the_due_date_is_a_date_in_the_units_zone() -> None:
    """22:30 WIB on Thursday is 23:30 WITA the same day but 00:30 WIT on Friday."""
    calendar = WorkCalendar(zones={"MKS": zone("WITA"), "JPR": zone("WIT")})
    filed = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    due = {
        unit: deadline(facts(status=m.ComplaintStatus.UNVERIFIED, unit=unit, created_at=filed),
                       calendar).due  # type: ignore[union-attr]
        for unit in ("KANTAH-BDG", "MKS", "JPR")
    }  # fmt: skip
    assert due == {
        "KANTAH-BDG": date(2026, 12, 8),
        "MKS": date(2026, 12, 8),
        "JPR": date(2026, 12, 9),
    }


@pytest.mark.parametrize(
    ("today", "state", "left"),
    [
        (date(2026, 12, 1), "on_time", 3),
        (date(2026, 12, 2), "at_risk", 2),
        (date(2026, 12, 4), "at_risk", 0),
        (date(2026, 12, 7), "overdue", -1),
    ],
)
def test_states(today: date, state: str, left: int) -> None:
    complaint = facts(status=m.ComplaintStatus.UNVERIFIED,
                      created_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC))  # fmt: skip
    now = datetime.combine(today, datetime.min.time(), WIB) + timedelta(hours=10)
    row = assess(complaint, CAL, now, 2, "ADU-1")
    assert row is not None
    assert (row.due, row.state, row.working_days_left) == (date(2026, 12, 4), state, left)


def test_a_closed_complaint_has_no_deadline() -> None:
    assert deadline(facts(status=m.ComplaintStatus.DONE), CAL) is None


# --- end to end: the simulator's history, the inbound flow, the command ------------------------


@pytest.fixture(params=["contract", "sparse", "wib"])
def dialect(request: pytest.FixtureRequest) -> str:
    """With LAPOR!'s own deadlines (contract), without them (sparse), as bare dates (wib)."""
    assert request.param in all_dialects()
    return str(request.param)


def expected_due(c: dict[str, Any]) -> tuple[str, date]:
    """Stage and due date of a simulator complaint, from its raw history, day by day."""
    ceiling = c["created_at"].astimezone(WIB).date() + timedelta(days=60)
    if c["status"] == "unverified":
        stage, due = "verify", oracle_add(c["created_at"], 3)
    elif c["last_followup_at"] is None:
        stage, due = "first_followup", oracle_add(c["disposed_at"] or c["created_at"], 5)
    elif c["replied_since_followup"]:
        return "ceiling", ceiling
    else:
        stage, due = "auto_close", oracle_add(c["last_followup_at"], 10)
    return (stage, due) if due <= ceiling else ("ceiling", ceiling)


def test_every_open_complaint_is_due_when_a_day_by_day_count_says(
    make_sync: Callable[..., Sync],
    sim: LaporSimulator,
    control: SimControl,
    clock: FakeClock,
    dialect: str,
) -> None:
    sync = make_sync()
    run_inbound(sync)
    # history after the first sync: a reply, a re-disposition back, time passing
    ours = [c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID]
    in_process = next(c for c in ours if c["status"] == "in_process")
    control.reply(in_process["id"], "Masih belum ada tindakan")
    control.advance_workdays(2)
    clock.advance(2 * 86_400)
    run_inbound(sync)
    rows = {r.lapor_id: r for r in open_rows(sync.store, sync.mappings.calendar, clock.now(), 2)}
    open_ours = [c for c in sim.state.complaints.values()
                 if c["disposition_id"] == INSTITUTION_ID and c["status"] not in ("done", "archived", "rejected")]  # fmt: skip
    assert open_ours
    assert set(rows) == {c["id"] for c in open_ours}
    for c in open_ours:
        row = rows[c["id"]]
        assert (row.stage, row.due) == expected_due(c), c["id"]
        assert row.due_source == (
            "computed" if dialect == "sparse" or row.stage == "ceiling" else "lapor"
        )
    assert rows[in_process["id"]].stage == "ceiling"


def test_transitions_are_audited_once_each(
    make_sync: Callable[..., Sync], clock: FakeClock
) -> None:
    sync = make_sync()
    run_inbound(sync)

    def sla_entries() -> list[tuple[int | None, str]]:
        return [(e.lapor_id, e.action) for e in sync.audit.entries() if e.flow == "sla"]

    first = sla_entries()
    states = {
        r.lapor_id: r.state for r in open_rows(sync.store, sync.mappings.calendar, clock.now(), 2)
    }
    assert sorted(first) == sorted((i, f"sla_{s}") for i, s in states.items() if s != "on_time")
    run_inbound(sync)
    clock.advance(3600 * 2)
    run_inbound(sync)
    assert sla_entries() == first  # nothing moved: nothing new
    clock.advance(86_400 * 30)
    run_inbound(sync)
    later = sla_entries()[len(first) :]
    now_states = {
        r.lapor_id: r.state for r in open_rows(sync.store, sync.mappings.calendar, clock.now(), 2)
    }
    assert later  # a month on, complaints on time before are due now
    assert len(later) == len(set(later))
    for lapor_id, action in later:
        assert action == f"sla_{now_states[lapor_id]}"


def test_a_disagreement_is_logged_once(tmp_path: Path, clock: FakeClock) -> None:
    store = StateStore(tmp_path / "s.sqlite", clock)
    summary_ = m.ComplaintSummary(
        lapor_id=9, tracking_id="1916009", title="t", is_secret=False, is_anonymous=False,
        status=m.ComplaintStatus.UNVERIFIED, status_name="Belum Terverifikasi", disposition_id=INSTITUTION_ID,
        created_at=clock.now(), updated_at=clock.now(),
        deadlines=m.Deadlines(verify_by=clock.now() + timedelta(days=9)),
    )  # fmt: skip
    with store.transaction():
        SlaFacts(store).observe(summary_, "KANTAH-BDG", institution_id=INSTITUTION_ID)
        Links(store).add(origin="lapor", lapor_id=9, tracking_id="1916009", agency_id="A-9")

    class FakeSync:  # review() needs only these
        def __init__(self) -> None:
            self.store, self.clock = store, clock
            self.mappings = type("M", (), {"calendar": CAL})()
            self.recorded: list[dict[str, Any]] = []

        def record(self, **values: Any) -> None:
            self.recorded.append(values)

    fake = FakeSync()
    structlog.reset_defaults()  # an earlier test may have configured ERROR level for the process
    with capture_logs() as logs:
        review(fake, 2)
        clock.advance(7200)
        review(fake, 2)
    said = [e for e in logs if e["event"] == "sla_due_disagrees"]
    assert len(said) == 1
    assert said[0]["lapor_due"] != said[0]["computed_due"]
    assert set(said[0]) <= {
        "event",
        "log_level",
        "lapor_id",
        "stage",
        "lapor_due",
        "computed_due",
        "component",
    }
    store.close()


class FakeSync:
    """What ``review`` needs of a sync: the state, the clock, the calendar, the audit log."""

    def __init__(self, store: StateStore, clock: FakeClock) -> None:
        self.store, self.clock = store, clock
        self.mappings = type("M", (), {"calendar": CAL})()
        self.recorded: list[dict[str, Any]] = []

    def record(self, **values: Any) -> None:
        self.recorded.append(values)


def test_a_moved_due_date_in_the_same_state_is_not_a_new_transition(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = StateStore(tmp_path / "s.sqlite", clock)
    facts_ = SlaFacts(store)

    def seen(verify_by: datetime) -> None:
        with store.transaction():
            facts_.observe(
                m.ComplaintSummary(lapor_id=9, tracking_id="1916009", title="t", is_secret=False, is_anonymous=False,
                                   status=m.ComplaintStatus.UNVERIFIED, status_name="x", disposition_id=INSTITUTION_ID,
                                   created_at=clock.now() - timedelta(days=20), updated_at=clock.now(),
                                   deadlines=m.Deadlines(verify_by=verify_by)),
                "KANTAH-BDG", institution_id=INSTITUTION_ID,
            )  # fmt: skip

    with store.transaction():
        Links(store).add(origin="lapor", lapor_id=9, tracking_id="1916009", agency_id="A-9")
    seen(clock.now() - timedelta(days=10))
    fake = FakeSync(store, clock)
    review(fake, 2, [9])
    assert [r["action"] for r in fake.recorded] == ["sla_overdue"]
    seen(clock.now() - timedelta(days=8))  # LAPOR! moved its date: still overdue
    review(fake, 2, [9])
    assert [r["action"] for r in fake.recorded] == ["sla_overdue"]
    assert facts_.get(9).recorded_state.endswith(
        (clock.now() - timedelta(days=8)).astimezone(WIB).date().isoformat()
    )  # type: ignore[union-attr]
    store.close()


def test_sla_command_json_has_exactly_the_documented_keys(
    make_sync: Callable[..., Sync],
    tmp_path: Path,
    mappings_dir: Path,
    clock: FakeClock,
) -> None:
    sync = make_sync()
    run_inbound(sync)
    config = tmp_path / "config.yaml"
    config.write_text(
        "lapor:\n  base_url: https://lapor.invalid/lapor/3.0.0\n  institution_id: 145\n"
        "  api_key: ${K}\n  token: ${T}\n"
        f"state:\n  path: {tmp_path / 'state.sqlite'}\nmappings:\n  path: {mappings_dir}\n",
        encoding="utf-8",
    )
    env = {"K": "k", "T": "{00000000-0000-0000-0000-000000000000}"}
    runner = CliRunner()
    result = runner.invoke(cli, ["sla", "--config", str(config), "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert listed
    for item in listed:
        assert set(item) == {"tracking_id", "lapor_id", "agency_id", "unit", "stage", "due",
                             "due_source", "working_days_left", "state"}  # fmt: skip
        assert item["stage"] in ("verify", "first_followup", "auto_close", "ceiling")
        assert item["state"] in ("on_time", "at_risk", "overdue")
        date.fromisoformat(item["due"])
    assert [i["due"] for i in listed] == sorted(i["due"] for i in listed)
    checked = runner.invoke(cli, ["sla", "--config", str(config), "--check"], env=env)
    assert checked.exit_code == (6 if any(i["state"] == "overdue" for i in listed) else 0)
    recap = runner.invoke(
        cli, ["sla", "--config", str(config), "--format", "json", "summary"], env=env
    )
    assert recap.exit_code == 0, recap.output
    months = json.loads(recap.output)
    assert sum(r["open"] for r in months) >= len(listed)
    csv_out = runner.invoke(
        cli, ["sla", "--config", str(config), "--format", "csv", "--unit", "NONE"], env=env
    )
    assert csv_out.output.splitlines() == [
        "tracking_id,lapor_id,agency_id,unit,stage,due,due_source,working_days_left,state"
    ]


def test_summary_counts_per_unit_and_month(tmp_path: Path, clock: FakeClock) -> None:
    store = StateStore(tmp_path / "s.sqlite", clock)
    facts_ = SlaFacts(store)
    october = datetime(2026, 10, 5, 3, 0, tzinfo=UTC)

    def add(
        lapor_id: int,
        status: m.ComplaintStatus,
        followups: list[m.FollowUp] | None = None,
        created: datetime = october,
    ) -> None:
        facts_.observe(
            m.ComplaintSummary(lapor_id=lapor_id, tracking_id=str(lapor_id), title="t", is_secret=False,
                               is_anonymous=False, status=status, status_name="x", disposition_id=INSTITUTION_ID,
                               created_at=created, updated_at=created + timedelta(days=1)),
            "KANTAH-BDG", institution_id=INSTITUTION_ID, followups=followups,
        )  # fmt: skip
        Links(store).add(
            origin="lapor", lapor_id=lapor_id, tracking_id=str(lapor_id), agency_id=f"A-{lapor_id}"
        )

    def followup(at: datetime) -> m.FollowUp:
        return m.FollowUp(id=int(at.timestamp()), at=at, content="x", author=m.Author.INSTITUTION)

    with store.transaction():
        add(1, m.ComplaintStatus.DONE, [followup(october + timedelta(days=1))])  # Tue: 1 HK
        add(2, m.ComplaintStatus.DONE, [followup(october + timedelta(days=3))])  # Thu: 3 HK
        add(3, m.ComplaintStatus.ARCHIVED)
        add(4, m.ComplaintStatus.VERIFIED)  # first follow-up due 12 Oct: overdue on 2 Nov
        # Mon 12th: 5 HK; its automatic closure was due on the 26th, so it is overdue too
        add(5, m.ComplaintStatus.IN_PROCESS, [followup(october + timedelta(days=7))])
        add(6, m.ComplaintStatus.VERIFIED, created=datetime(2026, 11, 1, 3, 0, tzinfo=UTC))
    rows = summary(store, CAL, clock.now(), 2)
    assert [r.as_json() for r in rows] == [
        {"unit": "KANTAH-BDG", "month": "2026-10", "received": 5, "resolved": 2, "closed_other": 1,
         "open": 2, "overdue": 2, "median_days_to_first_followup": 3.0},
        {"unit": "KANTAH-BDG", "month": "2026-11", "received": 1, "resolved": 0, "closed_other": 0,
         "open": 1, "overdue": 0, "median_days_to_first_followup": None},
    ]  # fmt: skip
    store.close()


def test_complaints_linked_before_the_upgrade_get_their_facts_from_the_listing(
    make_sync: Callable[..., Sync], control: SimControl
) -> None:
    """A state from before the SLA facts (complaints linked, no facts): the next cycle lists
    the inbox once from the beginning and fills them from the summaries, with no other request;
    the cycle after is an idle one again."""
    sync = make_sync()
    run_inbound(sync)
    linked = {row[0] for row in sync.store.db.execute("SELECT lapor_id FROM sla_facts")}
    with sync.store.transaction():  # as migration 6 leaves a state that has links already
        sync.store.db.execute("DELETE FROM sla_facts")
        sync.store.db.execute("DELETE FROM master_data WHERE name LIKE 'sla.%'")
    sync.store.close()
    upgraded = make_sync()
    control.reset_stats()
    run_inbound(upgraded)
    assert control.stats()["requests"] == {"inbox": 1}  # 30 complaints: one page from the start
    assert {row[0] for row in upgraded.store.db.execute("SELECT lapor_id FROM sla_facts")} == linked
    control.reset_stats()
    run_inbound(upgraded)
    assert control.stats()["requests"] == {"inbox": 1}


def test_the_sla_state_reaches_the_agency_once_when_pushing_is_on(
    make_sync: Callable[..., Sync], agency_control: Any, clock: FakeClock
) -> None:
    sync = make_sync(sla_push_enabled=True)
    run_inbound(sync)
    rows = open_rows(sync.store, sync.mappings.calendar, clock.now(), 2)
    shown = {c["id"]: c.get("sla_state") for c in agency_control.complaints()}
    assert rows
    for row in rows:
        assert shown[row.agency_id] == {
            "stage": row.stage, "due": row.due.isoformat(),
            "working_days_left": row.working_days_left, "state": row.state,
        }  # fmt: skip
    writes = agency_control.stats()["writes"]
    clock.advance(7200)
    run_inbound(sync)  # a full review again: nothing moved, nothing sent
    assert agency_control.stats()["writes"] == writes


def test_the_sla_state_is_not_pushed_by_default(
    make_sync: Callable[..., Sync], agency_control: Any
) -> None:
    run_inbound(make_sync())
    assert all(c.get("sla_state") is None for c in agency_control.complaints())


# --- the budget goes where the deadline is ------------------------------------------------------


def test_with_a_short_budget_the_most_urgent_complaint_reaches_the_agency_first(
    make_sync: Callable[..., Sync], sim: LaporSimulator, agency_control: Any
) -> None:
    """Five LAPOR! requests a run: each run files the new complaints nearest their deadline
    first, the rest wait (the cursor stays), and in the end every one is filed once."""
    ours = {
        c["id"]: c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID
    }

    def rank(c: dict[str, Any]) -> tuple[int, date]:
        """Waiting for verification or a first follow-up: by that deadline; then the rest."""
        stage, due = expected_due(c)
        if c["status"] not in ("done", "archived", "rejected") and stage in (
            "verify",
            "first_followup",
        ):
            return (0, due)
        return (1, date.min)

    due = {i: rank(c) for i, c in ours.items()}
    sync = make_sync(requests_per_run=5)
    seen: set[int] = set()
    waves: list[set[int]] = []
    for _ in range(40):
        report = run_inbound(sync)
        linked = {c["lapor"]["id"] for c in agency_control.complaints() if c["lapor"]}
        waves.append(linked - seen)
        seen = linked
        if report.deferred == 0:
            break
    assert seen == set(ours)
    assert len(waves) > 3  # the budget really was short
    first = waves[0]
    assert first, "the first run filed nothing"
    assert max(due[i] for i in first) <= min(due[i] for i in set(ours) - first)
    filled = [wave for wave in waves if wave]
    for earlier, later in itertools.pairwise(
        filled
    ):  # never a later deadline before an earlier one
        assert max(due[i] for i in earlier) <= min(due[i] for i in later)
    lapor_ids = [c["lapor"]["id"] for c in agency_control.complaints() if c["lapor"]]
    assert len(lapor_ids) == len(set(lapor_ids))  # none twice
    assert sync.store.watermark("inbound") is not None
