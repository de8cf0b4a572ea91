"""``lapor-connector reconcile`` as an operator types it: the JSON shape and the exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from connector.clock import SystemClock
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import SimControl
from connector.state import StateStore
from connector.writer import writer_lock
from tests.test_sync_cli import agency_system, config, run

#: The end-to-end world's fixtures, shared with tests/test_sync_cli.py.
FIXTURES = (agency_system, config)


def skip_inbound_past(config: Path, moment: datetime) -> None:
    """What a pagination shift does: the inbound cursor is past a change it never read."""
    with StateStore(config.parent / "state.sqlite", SystemClock()) as store, store.transaction():
        store.set_watermark("inbound", moment + timedelta(hours=1))


def test_reconcile_json_lists_each_finding_and_fix_repairs_it(
    config: Path, control: SimControl, agency_system: AgencySystem
) -> None:
    """--format json is one array of {kind, lapor_id, agency_id, detail, fix}; exit 6 until --fix, then 0."""
    assert run(config, "sync").exit_code == 0
    assert run(config, "reconcile").exit_code == 0  # in step: no drift
    control.advance_seconds(60)
    skipped = control.submit(title="Antrean loket", content="Antrean sangat panjang.")
    control.dispose(skipped, 145)
    skip_inbound_past(config, control.now())
    found = run(config, "reconcile", "--format", "json")
    assert found.exit_code == 6, found.output
    findings = json.loads(found.stdout)
    assert findings == [{"kind": "missing_in_agency", "lapor_id": skipped, "agency_id": None,
                         "detail": findings[0]["detail"], "fix": findings[0]["fix"]}]  # fmt: skip
    assert "Antrean" not in found.output  # no complaint text in a finding
    writes = AgencyControl(agency_system.root_url).stats()["writes"]
    fixed = run(config, "reconcile", "--fix", "--operator", "siti")
    assert fixed.exit_code == 0, fixed.output
    assert "1 fixed" in fixed.output
    assert AgencyControl(agency_system.root_url).writes("create") == writes.get("create", 0) + 1
    again = run(config, "reconcile", "--format", "json")
    assert (again.exit_code, json.loads(again.stdout)) == (0, [])


def test_reconcile_exits_6_when_only_a_person_can_fix_it(
    config: Path, agency_system: AgencySystem
) -> None:
    """A flag only the agency has cannot be written to LAPOR!: --fix says so and exits 6."""
    assert run(config, "sync").exit_code == 0
    agency = AgencyControl(agency_system.root_url)
    target = next(
        c for c in agency.complaints() if c["source"] == "lapor" and not c["is_anonymous"]
    )
    agency.edit(target["id"], is_anonymous=True)
    assert run(config, "sync", "--flow", "intake_out").exit_code == 0
    result = run(config, "reconcile", "--fix")
    assert result.exit_code == 6, result.output
    assert "1 manual" in result.output
    assert "no endpoint" in result.output


def test_reconcile_without_fix_runs_beside_the_daemon_and_writes_nothing(
    config: Path, tmp_path: Path
) -> None:
    """Without --fix it takes no writer lock and leaves the state byte for byte; --fix waits its turn (8)."""
    assert run(config, "sync").exit_code == 0
    before = (tmp_path / "state.sqlite").read_bytes()
    with writer_lock(tmp_path / "state.sqlite", "run (the daemon)"):
        assert run(config, "reconcile").exit_code == 0
        assert run(config, "reconcile", "--fix").exit_code == 8
    assert (tmp_path / "state.sqlite").read_bytes() == before


def test_reconcile_help_has_an_example() -> None:
    """reconcile --help shows an example (documentation is tested)."""
    from click.testing import CliRunner

    from connector.cli import cli

    result = CliRunner().invoke(cli, ["reconcile", "--help"])
    assert result.exit_code == 0
    assert "lapor-connector reconcile --fix" in result.output
