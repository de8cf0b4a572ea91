"""The operator commands against both simulators, as an operator types them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from tests.test_agency_adapter import AGENCY_TOKEN
from tests.test_cli import ENV

CLI_ENV = {**ENV, "AGENCY_TOKEN": AGENCY_TOKEN, "COLUMNS": "250"}


@pytest.fixture
def agency_system(tmp_path: Path) -> Iterator[AgencySystem]:
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=4
    ).start() as system:
        yield system


@pytest.fixture
def config(tmp_path: Path, sim: LaporSimulator, agency_system: AgencySystem) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "lapor": {"base_url": sim.base_url, "institution_id": 145, "api_key": "${LAPOR_API_KEY}",
                  "token": "${LAPOR_TOKEN}", "requests_per_minute": 0, "intake_user_id": 1},
        "agency": {"base_url": agency_system.base_url, "token": "${AGENCY_TOKEN}"},
        "state": {"path": str(tmp_path / "state.sqlite")},
        "mappings": {"path": "mappings"},
        "logging": {"level": "ERROR", "format": "json"},
    }))  # fmt: skip
    return path


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], env=CLI_ENV)


def test_dry_run_plans_and_writes_nothing(
    config: Path, control: SimControl, agency_system: AgencySystem
) -> None:
    """sync --dry-run lists the planned writes; neither side receives one."""
    result = run(config, "sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "write(s) planned, none sent" in result.output
    assert "agency_create_complaint" in result.output
    assert control.stats()["writes"] == {}
    assert AgencyControl(agency_system.root_url).stats()["writes"] == {}


def test_sync_then_status(config: Path) -> None:
    """sync runs every flow; status reports each one, as a table or JSON."""
    assert run(config, "sync").exit_code == 0
    status = json.loads(run(config, "status", "--json").output)
    assert set(status["flows"]) == {"inbound", "intake_out", "followups_out"}
    assert status["linked"] > 0
    assert status["flows"]["inbound"]["watermark"] is not None
    assert "linked complaints" in run(config, "status").output


def test_resync_one_complaint_by_tracking_id(config: Path, sim: LaporSimulator) -> None:
    """resync --tracking-id works on a linked complaint and explains an unlinked one."""
    run(config, "sync")
    linked = next(c for c in sim.state.complaints.values() if c["disposition_id"] == 145)
    assert (
        run(
            config, "resync", "--tracking-id", linked["tracking_id"], "--operator", "siti"
        ).exit_code
        == 0
    )
    unknown = run(config, "resync", "--tracking-id", "9999999")
    assert unknown.exit_code == 6
    assert "--complaint" in unknown.output


def test_quarantine_list_retry_and_ack(config: Path, tmp_path: Path, control: SimControl) -> None:
    """A malformed record shows in the quarantine with its reason, and can be acknowledged."""
    control.add_fault("inbox", "malformed", count=1, variant="naive_timestamp")
    run(config, "sync", "--flow", "inbound")
    listing = run(config, "quarantine", "list")
    assert "updated_at: timestamp has no UTC offset" in listing.output
    assert run(config, "quarantine", "ack", "--record", "1", "--operator", "siti").exit_code == 0
    assert "Quarantined records (0)" in run(config, "quarantine", "list").output
    missing = run(config, "quarantine", "retry", "--record", "99")
    assert missing.exit_code == 2
    log = run(config, "log", "--format", "jsonl", "--flow", "quarantine")
    assert json.loads(log.output.splitlines()[-1])["actor"] == "operator:siti"


def test_mappings_check(config: Path, tmp_path: Path) -> None:
    """The shipped mappings pass; a gap is listed with file and key, exit code 3."""
    checked = run(config, "mappings", "check").output
    assert "every value on both sides is mapped" in checked
    assert "a category changed on LAPOR! keeps the agency's unit" in checked
    broken = tmp_path / "mappings"
    broken.mkdir()
    for name in ("categories", "statuses", "classifications", "units"):
        (broken / f"{name}.yaml").write_text(Path(f"mappings/{name}.yaml").read_text())
    (broken / "units.yaml").write_text(
        (broken / "units.yaml").read_text().replace("  SUBBAG-TU: 145\n", "")
    )
    data = yaml.safe_load(config.read_text())
    data["mappings"]["path"] = str(broken)
    config.write_text(yaml.safe_dump(data))
    result = run(config, "mappings", "check")
    assert result.exit_code == 3
    assert "units.yaml: outbound.SUBBAG-TU: missing" in result.output


def test_daemon_runs_every_flow(
    config: Path, agency_system: AgencySystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an agency configured the daemon runs inbound, intake out and follow-ups out, then stops cleanly."""
    from connector.config import load_settings
    from connector.daemon import Daemon

    for key, value in CLI_ENV.items():
        monkeypatch.setenv(key, value)
    daemon = Daemon(load_settings(config))
    assert set(daemon.jobs()) == {
        "inbound",
        "intake_out",
        "followups_out",
        "reconcile",
        "privacy.prune",
    }
    daemon.serve(max_runs=3)
    assert daemon.runs == 3
    assert [c for c in AgencyControl(agency_system.root_url).complaints() if c["lapor"]]


def test_resync_a_time_range_and_everything_failed(
    config: Path, control: SimControl, tmp_path: Path
) -> None:
    """resync --since/--until sends a range again; resync --failed replays what was quarantined."""
    control.add_fault("inbox", "malformed", count=1, variant="naive_timestamp")
    run(config, "sync")
    status = json.loads(run(config, "status", "--json").output)
    assert status["flows"]["inbound"]["quarantined"] == 1
    ranged = run(
        config,
        "resync",
        "--since",
        "2026-01-01T00:00:00+07:00",
        "--until",
        "2026-12-31T00:00:00+07:00",
    )
    assert ranged.exit_code == 0, ranged.output
    # forced: every complaint in the range was checked again, and the one the fault had hidden
    # (quarantined) is created now; the others are counted as found in step, not as zeros
    assert "created 1" in ranged.output
    assert "unchanged 0" not in ranged.output
    failed = run(config, "resync", "--failed")
    assert failed.exit_code == 0, failed.output
    assert "0 still quarantined" in failed.output


def test_daemon_logs_mapping_gaps_at_start(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start-up the daemon checks the mappings against both sides and logs each gap (it still runs)."""
    import shutil

    from structlog.testing import capture_logs

    from connector.config import load_settings
    from connector.daemon import Daemon

    broken = tmp_path / "mappings"
    shutil.copytree("mappings", broken)
    (broken / "units.yaml").write_text(
        (broken / "units.yaml").read_text().replace("  SUBBAG-TU: 145\n", "")
    )
    data = yaml.safe_load(config.read_text())
    data["mappings"]["path"] = str(broken)
    config.write_text(yaml.safe_dump(data))
    for key, value in CLI_ENV.items():
        monkeypatch.setenv(key, value)
    import structlog

    structlog.reset_defaults()  # an earlier test may have configured ERROR level for the process
    with capture_logs() as logs:
        Daemon(load_settings(config)).serve(max_runs=3)
    gaps = [entry["problem"] for entry in logs if entry["event"] == "mapping_gap"]
    assert gaps == [
        "units.yaml: outbound.SUBBAG-TU: missing; give the LAPOR! institution its complaints are disposed to"
    ]


# --- honest outcomes -----------------------------------------------------------------------


def state_bytes(tmp_path: Path) -> tuple[bytes, list[str]]:
    """The state file's bytes and its logical content (every row), after all handles closed."""
    import sqlite3

    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        dump = list(db.iterdump())
    db.close()
    return path.read_bytes(), dump


def test_dry_run_leaves_the_state_file_byte_for_byte(
    config: Path, tmp_path: Path, control: SimControl, agency_system: AgencySystem
) -> None:
    """After a real sync, with a record to quarantine and writes due, a dry run changes not one
    byte of the state: no quarantine row, no audit entry, no link marked."""
    assert run(config, "sync").exit_code in (0, 6)
    fresh = control.submit(title="Baru", content="Isi.", category_id=436)
    control.dispose(fresh, 145)
    control.add_fault("inbox", "malformed", count=1, variant="wrong_type")
    AgencyControl(agency_system.root_url).add_internal_complaint(
        channel="web", title="Dari loket", content="Isi.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=True, reporter=None, is_anonymous=True,
    )  # fmt: skip
    before = state_bytes(tmp_path)
    result = run(config, "sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would quarantine" in result.output
    assert "lapor_create_complaint" in result.output
    assert state_bytes(tmp_path) == before


def test_sync_exits_6_when_a_record_was_quarantined(config: Path, control: SimControl) -> None:
    """A record set aside during the run is no "done": the line says it, the exit code is 6."""
    control.add_fault("inbox", "malformed", count=1, variant="wrong_type")
    result = run(config, "sync")
    assert result.exit_code == 6, result.output
    assert "quarantined 1" in result.output
    assert "needs attention" in result.output
    assert "done" not in result.output.splitlines()


def test_sync_exits_7_when_a_write_is_in_doubt(config: Path, control: SimControl) -> None:
    """A create answered 502 may have happened: it is in doubt until the next run looks it up."""
    control.add_fault("create", "bad_gateway", count=100)
    result = run(config, "sync")
    assert result.exit_code == 7, result.output
    assert "in doubt" in result.output
    control.clear_faults()
    again = run(config, "sync")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "done"


def test_quarantine_retry_reports_each_item_truthfully(
    config: Path, control: SimControl, agency_system: AgencySystem
) -> None:
    """retry says, per item, resolved or still quarantined; a write that dies again is no
    "retried", and the exit code is 6 until everything is done."""
    agency = AgencyControl(agency_system.root_url)
    agency.add_internal_complaint(
        channel="web", title="Dari web", content="Isi.", category_code="PTN-SRT",
        unit_code="KANTAH-BDG", report_to_lapor=True, reporter=None, is_anonymous=True,
    )  # fmt: skip
    control.add_fault("create", "validation", count=100)
    assert run(config, "sync", "--flow", "intake_out").exit_code == 6
    entries = json.loads(run(config, "status", "--json").output)["flows"]["intake_out"]
    assert entries["quarantined"] >= 1
    import sqlite3

    with sqlite3.connect(config.parent / "state.sqlite") as db:
        (entry_id,) = db.execute("SELECT id FROM quarantine WHERE status = 'open'").fetchone()
    still = run(config, "quarantine", "retry", "--record", str(entry_id))
    assert still.exit_code == 6, still.output
    assert "still quarantined" in still.output
    control.clear_faults()
    fixed = run(config, "quarantine", "retry", "--record", str(entry_id))
    assert fixed.exit_code == 0, fixed.output
    assert f"record {entry_id}" in fixed.output
    assert "resolved" in fixed.output


def test_a_keyed_sync_anchors_its_checkpoints_and_a_cut_tail_is_caught(
    config: Path, tmp_path: Path
) -> None:
    """With audit.key and audit.anchor_path, every sync ends with a checkpoint in the anchor;
    cutting the log's tail afterwards (triggers dropped, as an administrator could) fails
    `log verify --state --key-file` with exit 4."""
    import secrets
    import sqlite3

    key_file = tmp_path / "audit.key"
    key_file.write_text(secrets.token_hex(32))
    anchor = tmp_path / "anchor" / "audit.anchor"
    raw = yaml.safe_load(config.read_text())
    raw["audit"] = {"key": "${file:" + str(key_file) + "}", "anchor_path": str(anchor)}
    config.write_text(yaml.safe_dump(raw))
    assert run(config, "sync").exit_code in (0, 6)
    assert anchor.read_text().strip()
    state = tmp_path / "state.sqlite"
    verify = [
        "log",
        "verify",
        "--state",
        str(state),
        "--key-file",
        str(key_file),
        "--anchor",
        str(anchor),
    ]
    assert CliRunner().invoke(cli, verify).exit_code == 0
    with sqlite3.connect(state) as db:
        db.execute("DROP TRIGGER audit_log_no_delete")
        db.execute("DELETE FROM audit_log WHERE id > (SELECT max(id) - 3 FROM audit_log)")
    cut = CliRunner().invoke(cli, verify)
    assert cut.exit_code == 4, cut.output


def test_status_check_is_healthy_only_when_everything_is(
    config: Path, control: SimControl, agency_system: AgencySystem
) -> None:
    """status --json says healthy and why not; status --check exits 6 on a dead write."""
    assert run(config, "sync").exit_code in (0, 6)
    clean = json.loads(run(config, "status", "--json", "--max-quarantined", "99").output)
    assert clean["healthy"] is True, clean["problems"]
    assert clean["flows"]["inbound"]["last_outcome"] == "ok"
    assert run(config, "status", "--check", "--max-quarantined", "99").exit_code == 0
    raw = yaml.safe_load(config.read_text())
    raw["outbox"] = {"max_attempts": 1}  # the first failure uses up the budget
    raw["agency"]["retry"] = {"max_attempts": 1}  # and no real back-off sleeps in the test
    config.write_text(yaml.safe_dump(raw))
    fresh = control.submit(title="Baru lagi", content="Isi.", category_id=436)
    control.dispose(fresh, 145)
    AgencyControl(agency_system.root_url).add_fault("create", "server_error", count=100)
    assert run(config, "sync", "--flow", "inbound").exit_code == 6
    sick = run(config, "status", "--check", "--max-quarantined", "99")
    assert sick.exit_code == 6, sick.output
    assert "inbound: 1 dead write(s)" in sick.output
    report = json.loads(run(config, "status", "--json", "--max-quarantined", "99").output)
    assert report["healthy"] is False


def test_quarantine_retry_of_a_write_says_whether_it_died_again(
    config: Path, control: SimControl, agency_system: AgencySystem
) -> None:
    """retry --write N prints the write's real state: dead again (exit 6), then done (exit 0)."""
    import sqlite3

    raw = yaml.safe_load(config.read_text())
    raw["outbox"] = {"max_attempts": 1}
    raw["agency"]["retry"] = {"max_attempts": 1}
    config.write_text(yaml.safe_dump(raw))
    agency = AgencyControl(agency_system.root_url)
    assert run(config, "sync", "--flow", "inbound").exit_code in (0, 6)  # the seeded ones first
    fresh = control.submit(title="Satu lagi", content="Isi.", category_id=436)
    control.advance_seconds(60)
    control.dispose(fresh, 145)
    agency.add_fault("create", "server_error", count=2)  # the sync's attempt, and one retry
    assert run(config, "sync", "--flow", "inbound").exit_code == 6
    with sqlite3.connect(config.parent / "state.sqlite") as db:
        (write_id,) = db.execute("SELECT id FROM outbox WHERE state = 'dead' LIMIT 1").fetchone()
    again = run(config, "quarantine", "retry", "--write", str(write_id))
    assert again.exit_code == 6, again.output
    assert f"write {write_id}" in again.output
    assert ": dead" in again.output
    done = run(config, "quarantine", "retry", "--write", str(write_id))
    assert done.exit_code == 0, done.output
    assert ": done" in done.output


def test_resync_of_a_range_counts_what_it_checked(config: Path) -> None:
    """resync --since reports the complaints it found in step, not zeros."""
    assert run(config, "sync").exit_code in (0, 6)
    result = run(config, "resync", "--since", "2000-01-01T00:00:00+00:00")
    assert result.exit_code in (0, 6), result.output
    line = next(x for x in result.output.splitlines() if x.startswith("inbound:"))
    assert "unchanged 0" not in line


def test_status_last_run_is_the_flows_last_run_not_the_cursor_move(
    config: Path, control: SimControl
) -> None:
    """A run that finds nothing new moves no watermark, yet status shows it as the last run."""
    assert run(config, "sync").exit_code in (0, 6)
    before = json.loads(run(config, "status", "--json", "--max-quarantined", "99").output)
    assert run(config, "sync").exit_code in (0, 6)
    after = json.loads(run(config, "status", "--json", "--max-quarantined", "99").output)
    inbound_before, inbound_after = before["flows"]["inbound"], after["flows"]["inbound"]
    assert inbound_after["watermark"] == inbound_before["watermark"]
    assert inbound_after["last_run"] > inbound_before["last_run"]
    assert after["healthy"] is True, after["problems"]


def test_waiting_jobs_take_their_turn_in_the_flows_order() -> None:
    """A plain lock wakes waiters in no set order; the daemon's turns give the flows their order
    (inbound, intake out, follow-ups out), then the other jobs, so a cycle reads what the flow
    before it wrote."""
    import threading
    import time

    from connector.daemon import Turns

    turns = Turns(["inbound", "intake_out", "followups_out"])
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with turns.turn("reconcile"):
            holding.set()
            release.wait(5)

    def job(name: str) -> None:
        with turns.turn(name):
            order.append(name)

    first = threading.Thread(target=hold)
    first.start()
    holding.wait(5)
    waiting = [
        threading.Thread(target=job, args=(n,))
        for n in ("privacy.prune", "followups_out", "inbound", "intake_out")
    ]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 5
    while len(turns._waiting) < 4 and time.monotonic() < deadline:  # all four queued
        time.sleep(0.001)
    release.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert order == ["inbound", "intake_out", "followups_out", "privacy.prune"]
