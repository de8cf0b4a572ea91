"""`log timeline`: one complaint's history on LAPOR!, in the agency system and in the audit log,
as an auditor reads it; both simulators on loopback, the command as an operator types it."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from connector import errors
from connector.audit import AuditLog
from connector.cli import cli
from connector.clock import FakeClock
from connector.disclosure import WITHHELD, Redactor
from connector.links import Links
from connector.models import Reporter
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.state import StateStore
from connector.timeline import COLUMNS, SIDES, Event, find_link, local_time, merge
from connector.workdays import zone
from connector.writer import writer_lock
from tests.conftest import API_KEY, INSTITUTION_ID, TOKEN
from tests.test_agency_adapter import AGENCY_TOKEN

ENV = {"LAPOR_API_KEY": API_KEY, "LAPOR_TOKEN": TOKEN, "AGENCY_TOKEN": AGENCY_TOKEN,
       "COLUMNS": "250"}  # fmt: skip
NAME, EMAIL, PHONE = "Kanari Zulkarnaen", "kanari.zq@contoh.id", "081299990000"
PERSONAL = (NAME, "Kanari", "Zulkarnaen", EMAIL, PHONE)
REPLY = f"Saya {NAME}, mohon dihubungi di {PHONE} atau {EMAIL}."


@pytest.fixture
def sim() -> Iterator[LaporSimulator]:
    """LAPOR! with its clock two hours behind the wall clock, which the agency system and the
    connector run on; the story moves LAPOR!'s clock ten minutes before each LAPOR! action."""
    simulator = LaporSimulator(
        seed=7, complaints=2, api_key=API_KEY, token=TOKEN, institution_id=INSTITUTION_ID,
        start_time=datetime.now(timezone.utc) - timedelta(hours=2),
    ).start()  # fmt: skip
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def agency_system(tmp_path: Path) -> Iterator[AgencySystem]:
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=0
    ).start() as system:
        yield system


@pytest.fixture
def agency_control(agency_system: AgencySystem) -> AgencyControl:
    return AgencyControl(agency_system.root_url)


def write_config(tmp_path: Path, sim: LaporSimulator, agency: AgencySystem, zone_name: str) -> Path:
    mappings = tmp_path / "mappings"
    shutil.copytree("mappings", mappings)
    units = mappings / "units.yaml"
    units.write_text(units.read_text().replace("KANTAH-BDG: WIB", f"KANTAH-BDG: {zone_name}"))
    once = {"max_attempts": 1}  # a side that is down is said at once (no real backoff sleeps)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "lapor": {"base_url": sim.base_url, "institution_id": INSTITUTION_ID, "api_key": "${LAPOR_API_KEY}",
                  "token": "${LAPOR_TOKEN}", "requests_per_minute": 0, "intake_user_id": 1, "retry": once},
        "agency": {"base_url": agency.base_url, "token": "${AGENCY_TOKEN}", "retry": once},
        "state": {"path": str(tmp_path / "state.sqlite")},
        "mappings": {"path": str(mappings)},
        "logging": {"level": "ERROR", "format": "json"},
    }))  # fmt: skip
    return path


@pytest.fixture
def zone_name() -> str:
    """The zone the complaint's work unit (KANTAH-BDG) counts in; a test may override it."""
    return "WIB"


@pytest.fixture
def config(
    tmp_path: Path, sim: LaporSimulator, agency_system: AgencySystem, zone_name: str
) -> Path:
    return write_config(tmp_path, sim, agency_system, zone_name)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], env=ENV)


def later(control: SimControl) -> datetime:
    """Move LAPOR!'s clock ten minutes on; return the new moment (UTC)."""
    return control.advance_seconds(600).astimezone(timezone.utc)


def synced(config: Path) -> None:
    result = run(config, "sync")
    assert result.exit_code == 0, result.output


def story(
    config: Path, control: SimControl, agency: AgencyControl, **submit: Any
) -> dict[str, Any]:
    """A citizen files a complaint; LAPOR! disposes it to us; the connector syncs it; the citizen
    replies; an officer writes a follow-up that moves the status; the connector syncs; LAPOR!
    closes it; the connector syncs."""
    lapor_id = control.submit(
        title="Pungli di loket", content="Diminta uang tambahan", category_id=436,
        reporter={"name": NAME, "email": EMAIL, "phone": PHONE}, **submit,
    )  # fmt: skip
    disposed = later(control)
    control.dispose(lapor_id, INSTITUTION_ID)
    synced(config)
    agency_id = next(
        c["id"] for c in agency.complaints() if (c["lapor"] or {}).get("id") == lapor_id
    )
    replied = later(control)
    control.reply(lapor_id, REPLY)
    agency.add_staff_followup(
        agency_id, "Petugas sudah memeriksa loket pelayanan.", status_after="diproses"
    )
    later(control)
    synced(config)
    closed = later(control)
    control.close(lapor_id)
    synced(config)
    tracking_id = next(c["tracking_id"] for c in control.complaints() if c["id"] == lapor_id)
    return {"lapor_id": lapor_id, "tracking_id": tracking_id, "agency_id": agency_id,
            "disposed": disposed, "replied": replied, "closed": closed}  # fmt: skip


def timeline_json(config: Path, key: str, *options: str) -> list[dict[str, Any]]:
    result = run(config, "log", "timeline", key, "--format", "json", *options)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def audit_entries(config: Path, ids: dict[str, Any]) -> list[int]:
    state = Path(yaml.safe_load(config.read_text())["state"]["path"])
    with StateStore(state, FakeClock()) as store:
        found = AuditLog(store).for_complaint(
            lapor_id=ids["lapor_id"], tracking_id=ids["tracking_id"], agency_id=ids["agency_id"]
        )
        return [e.id for e in found]


def of(rows: list[dict[str, Any]], side: str) -> list[str]:
    return [r["kind"] for r in rows if r["side"] == side]


def position(rows: list[dict[str, Any]], side: str, kind: str) -> int:
    return next(i for i, r in enumerate(rows) if (r["side"], r["kind"]) == (side, kind))


def test_every_event_of_both_sides_and_the_connector_once_in_order(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """The timeline holds each side's events once, labelled, in time order, with both ids."""
    ids = story(config, control, agency_control)
    rows = timeline_json(config, ids["tracking_id"])
    assert of(rows, "lapor") == ["created", "disposition", "reply", "followup", "status", "status"]
    assert of(rows, "agency") == ["created", "followup", "reply", "updated"]
    entries = audit_entries(config, ids)
    assert len(entries) >= 3
    assert [r["text"].rsplit("audit entry ", 1)[1] for r in rows if r["side"] == "connector"] == [
        str(n) for n in entries
    ]
    assert {r["kind"] for r in rows if r["side"] == "connector"} >= {
        "sync:agency_create_complaint", "sync:agency_add_followup", "sync:lapor_add_followup"
    }  # fmt: skip
    assert len({(r["side"], r["kind"], r["text"]) for r in rows}) == len(rows)
    moments = [(datetime.fromisoformat(r["at"]), SIDES.index(r["side"])) for r in rows]
    assert moments == sorted(moments)
    assert position(rows, "agency", "created") < position(
        rows, "connector", "sync:agency_create_complaint"
    )
    assert position(rows, "agency", "followup") < position(
        rows, "connector", "sync:lapor_add_followup"
    )
    for row in rows:
        assert list(row) == list(COLUMNS)
        assert (row["lapor_id"], row["tracking_id"], row["agency_id"]) == (
            ids["lapor_id"], ids["tracking_id"], ids["agency_id"]
        )  # fmt: skip
    authors = {(r["side"], r["kind"]): r["author"] for r in rows}
    assert authors[("lapor", "reply")] == "reporter"
    assert authors[("lapor", "followup")] == "institution"
    assert authors[("agency", "followup")] == "agency"
    assert authors[("agency", "created")] == "connector"
    status = next(r for r in rows if (r["side"], r["kind"]) == ("agency", "followup"))
    assert "Petugas sudah memeriksa loket pelayanan." in status["text"]
    assert "status → diproses" in status["text"]
    posted = next(r for r in rows if (r["side"], r["kind"]) == ("lapor", "followup"))
    assert status["text"].endswith(posted["text"].rsplit("; ", 1)[1])  # "LAPOR! follow-up N"


def test_the_table_says_the_side_of_each_line_and_which_id_matched(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """The default table: one line per event, side labelled; a LAPOR! id or agency id finds it too."""
    ids = story(config, control, agency_control)
    table = run(config, "log", "timeline", ids["tracking_id"])
    assert table.exit_code == 0, table.output
    assert "matched by tracking id" in table.stdout
    events = timeline_json(config, ids["tracking_id"])
    # piped, the table is plain aligned text: columns apart by two spaces or more
    out = table.stdout.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("at (WIB)"))
    lines = [line for line in out[header + 1 :] if " WIB " in line]
    assert len(lines) == len(events)
    assert [re.split(r"\s{2,}", line.strip())[1] for line in lines] == [r["side"] for r in events]
    by_lapor = run(config, "log", "timeline", str(ids["lapor_id"]))
    assert "matched by LAPOR! id" in by_lapor.stdout
    assert timeline_json(config, str(ids["lapor_id"])) == events
    assert "matched by agency id" in run(config, "log", "timeline", ids["agency_id"]).stdout
    unknown = run(config, "log", "timeline", "9999999")
    assert unknown.exit_code == 6
    assert "9999999 is not the tracking id, LAPOR! id or agency id" in unknown.output


@pytest.mark.parametrize(("zone_name", "offset"), [("WIB", "+07:00"), ("WITA", "+08:00")])
def test_times_are_in_the_units_zone(
    config: Path, control: SimControl, agency_control: AgencyControl, zone_name: str, offset: str
) -> None:
    """Times show in the unit's zone (units.yaml time_zones): WIB, or WITA for a unit there."""
    ids = story(config, control, agency_control)
    rows = timeline_json(config, ids["tracking_id"])
    assert {r["at"][-6:] for r in rows} == {offset}
    disposition = next(r for r in rows if r["kind"] == "disposition")
    assert datetime.fromisoformat(disposition["at"]) == ids["disposed"]
    table = run(config, "log", "timeline", ids["tracking_id"]).stdout
    assert f"times in {zone_name} (unit KANTAH-BDG)" in table
    assert local_time(ids["disposed"], zone(zone_name)) in table
    assert local_time(ids["closed"], zone(zone_name)).endswith(f" {zone_name}")


def test_csv_has_the_json_columns_and_a_header(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """CSV: a header row of the JSON keys, then the same rows."""
    ids = story(config, control, agency_control)
    result = run(config, "log", "timeline", ids["tracking_id"], "--format", "csv")
    assert result.exit_code == 0, result.output
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header == list(COLUMNS)
    as_json = timeline_json(config, ids["tracking_id"])
    assert [row[:5] for row in rows] == [
        [r["at"], r["side"], r["kind"], r["author"] or "", r["text"]] for r in as_json
    ]
    assert {tuple(row[5:]) for row in rows} == {
        (str(ids["lapor_id"]), ids["tracking_id"], ids["agency_id"])
    }


def test_no_reporter_detail_in_any_output(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """The reporter's name, e-mail and phone appear in no format, not even quoted in a reply."""
    ids = story(config, control, agency_control)
    outputs = [
        run(config, "log", "timeline", ids["tracking_id"], *fmt).output
        for fmt in ((), ("--format", "json"), ("--format", "csv"))
    ]
    for output in outputs:
        for value in PERSONAL:
            assert value.lower() not in output.lower()
    reply = next(r for r in timeline_json(config, ids["tracking_id"]) if r["kind"] == "reply")
    assert reply["text"].startswith("Saya <redacted>, mohon dihubungi di <redacted>")


def test_a_secret_complaints_texts_need_show_content(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """Rahasia: follow-up texts are withheld unless --show-content; the reporter stays hidden."""
    ids = story(config, control, agency_control, is_secret=True)
    hidden = timeline_json(config, ids["tracking_id"])
    texts = [r["text"] for r in hidden if r["kind"] in ("reply", "followup")]
    assert len(texts) == 4
    assert all(t.startswith(WITHHELD) for t in texts)
    shown = run(config, "log", "timeline", ids["tracking_id"], "--format", "json", "--show-content")
    assert "mohon dihubungi" in shown.stdout
    assert "Petugas sudah memeriksa" in shown.stdout
    for value in PERSONAL:
        assert value not in shown.output


@pytest.mark.parametrize(
    ("break_side", "missing", "code"),
    [("lapor down", "lapor", 5), ("lapor 404", "lapor", 6), ("agency down", "agency", 5)],
)
def test_a_side_that_cannot_be_read_is_named_and_the_rest_still_shows(
    config: Path, control: SimControl, agency_control: AgencyControl, break_side: str, missing: str,
    code: int,
) -> None:  # fmt: skip
    """LAPOR! down or not finding the complaint, or the agency down: the other sides still
    print, a row and a message name the missing side, and the exit code is not 0."""
    ids = story(config, control, agency_control)
    if break_side == "lapor down":
        control.add_fault("complaint", "unavailable", count=5)
    elif break_side == "lapor 404":
        control.add_fault("complaint", "not_found", count=5)
    else:
        agency_control.add_fault("complaint", "unavailable", count=5)
    for fmt in ("json", "table"):
        result = run(config, "log", "timeline", ids["tracking_id"], "--format", fmt)
        assert result.exit_code == code, result.output
        assert "missing: " in result.stderr
    rows = json.loads(run(config, "log", "timeline", ids["tracking_id"], "--format", "json").stdout)
    assert of(rows, missing) == ["unreadable"]
    present = [side for side in ("lapor", "agency") if side != missing]
    assert len(of(rows, present[0])) >= 4
    assert len(of(rows, "connector")) == len(audit_entries(config, ids))
    assert rows[-1]["kind"] == "unreadable"


def test_it_reads_beside_the_daemon(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """The timeline takes no writer lock: it works while the daemon holds it, and writes nothing."""
    ids = story(config, control, agency_control)
    state = Path(yaml.safe_load(config.read_text())["state"]["path"])
    before = audit_entries(config, ids)
    lapor_writes, agency_writes = control.stats()["writes"], agency_control.stats()["writes"]
    with writer_lock(state, "run (the daemon)"):
        assert run(config, "log", "timeline", ids["tracking_id"]).exit_code == 0
    assert audit_entries(config, ids) == before
    assert control.stats()["writes"] == lapor_writes
    assert agency_control.stats()["writes"] == agency_writes


def test_a_follow_up_lapor_sends_malformed_is_named_and_the_rest_still_shows(
    config: Path, control: SimControl, agency_control: AgencyControl
) -> None:
    """One unreadable C3 item: the other follow-ups and the history show; a row names it; exit 6."""
    ids = story(config, control, agency_control)
    control.add_fault("followups", "malformed", count=1, variant="wrong_type")
    result = run(config, "log", "timeline", ids["tracking_id"], "--format", "json")
    assert result.exit_code == 6, result.output
    rows = json.loads(result.stdout)
    assert of(rows, "lapor") == [
        "created",
        "disposition",
        "followup",
        "status",
        "status",
        "unreadable",
    ]
    assert (
        "a LAPOR! follow-up: lapor.followups record (no id): id: expected an integer"
        in rows[-1]["text"]
    )
    assert "missing: a LAPOR! follow-up" in result.stderr


def test_equal_times_go_lapor_then_agency_then_connector() -> None:
    """At one moment LAPOR! comes first, then the agency, then the connector; a side keeps its order."""
    moment = datetime(2026, 12, 1, 2, 30, tzinfo=timezone.utc)

    def event(side: Any, kind: str, at: datetime = moment) -> Event:
        return Event(at, side, kind, None, "", 5010602, "1916402", "ADU-1")

    merged = merge(
        [event("connector", "first"), event("connector", "second")],
        [event("agency", "a"), event("agency", "early", moment - timedelta(seconds=1))],
        [event("lapor", "l")],
    )
    assert [e.kind for e in merged] == ["early", "l", "a", "first", "second"]


def test_the_reporters_known_details_and_personal_data_shapes_are_redacted() -> None:
    """The reporter's name (whole or a part), e-mail and phone, and NIK shapes, leave the text."""
    redact = Redactor([Reporter(name=NAME, email=EMAIL, phone="0812-3456-7890"), None])
    text = redact(f"Pak zulkarnaen ({EMAIL}, 0812-3456-7890, NIK 3273012345678901) minta ditelepon")
    assert text == "Pak <redacted> (<redacted>, <redacted>, NIK <redacted>) minta ditelepon"
    assert Redactor([])("Jalan berlubang") == "Jalan berlubang"


def test_a_missing_state_file_is_refused_and_not_created(config: Path) -> None:
    """Before any sync there is no state: the timeline says so (exit 3) and creates no file."""
    state = Path(yaml.safe_load(config.read_text())["state"]["path"])
    result = run(config, "log", "timeline", "1916402")
    assert result.exit_code == 3
    assert f"{state}: no state file there" in result.output
    assert not state.exists()


def test_an_id_naming_two_complaints_is_refused(tmp_path: Path) -> None:
    """A key that is one complaint's tracking id and another's LAPOR! id is refused, naming both."""
    with StateStore(tmp_path / "state.sqlite", FakeClock()) as store, store.transaction():
        links = Links(store)
        links.add(origin="lapor", lapor_id=5010602, tracking_id="1916402", agency_id="ADU-1")
        links.add(origin="lapor", lapor_id=1916402, tracking_id="1916999", agency_id="ADU-2")
        with pytest.raises(errors.ReconcileError, match="as tracking id and as LAPOR! id"):
            find_link(links, "1916402")
        assert find_link(links, "ADU-2")[1] == "agency id"
        assert find_link(links, "5010602")[0].agency_id == "ADU-1"
