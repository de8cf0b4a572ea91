"""`lapor-connector state backup`: a consistent copy, 0600, while the daemon writes beside it."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.clock import SystemClock
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.state import StateStore
from connector.writer import writer_lock
from tests.test_state_recovery import twice
from tests.test_sync_cli import CLI_ENV, agency_system, config, run

FIXTURES = (agency_system, config)


def backup(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["state", "backup", *args], env=CLI_ENV)
    return result.exit_code, result.output


def rows(path: Path, table: str) -> list[tuple[object, ...]]:
    with StateStore(path, SystemClock()) as store:
        return [tuple(r) for r in store.db.execute(f"SELECT * FROM {table} ORDER BY 1")]  # noqa: S608


def test_a_backup_restores_to_a_working_state(
    config: Path, tmp_path: Path, sim: LaporSimulator, agency_system: AgencySystem
) -> None:
    """Back up after a sync, lose the state, restore the copy: same links, the audit log
    verifies, and the next sync writes nothing twice on either side."""
    assert run(config, "sync").exit_code == 0
    state = tmp_path / "state.sqlite"
    copy = tmp_path / "backups" / "state.sqlite"
    copy.parent.mkdir()
    code, output = backup("--config", str(config), str(copy))
    assert code == 0, output
    assert f"backed up {state} to {copy}" in output
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert rows(copy, "links") == rows(state, "links")
    verified = CliRunner().invoke(cli, ["log", "verify", "--state", str(copy)], env=CLI_ENV)
    assert verified.exit_code == 0, verified.output
    assert "audit log intact" in verified.output

    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    shutil.copy2(copy, state)
    writes_before = dict(sim.state.writes), AgencyControl(agency_system.root_url).stats()["writes"]
    again = run(config, "sync")
    assert again.exit_code == 0, again.output
    writes_after = dict(sim.state.writes), AgencyControl(agency_system.root_url).stats()["writes"]
    assert writes_after == writes_before


def test_a_backup_runs_beside_the_writer_and_takes_only_what_is_committed(
    config: Path, tmp_path: Path
) -> None:
    """With the writer lock held and a write transaction open, the backup neither waits nor
    copies the uncommitted row."""
    assert run(config, "sync").exit_code == 0
    state = tmp_path / "state.sqlite"
    copy = tmp_path / "copy.sqlite"
    with (
        writer_lock(state, "run (the daemon)"),
        StateStore(state, SystemClock()) as daemon_store,
    ):
        daemon_store.db.execute("BEGIN IMMEDIATE")
        daemon_store.db.execute(
            "INSERT INTO installation (name, value) VALUES ('uncommitted', 'x')"
        )
        code, output = backup("--state", str(state), str(copy))
        daemon_store.db.execute("ROLLBACK")
    assert code == 0, output
    with sqlite3.connect(copy) as db:
        names = {name for (name,) in db.execute("SELECT name FROM installation")}
    db.close()
    assert "uncommitted" not in names
    assert names  # the committed identity is there


def test_an_existing_backup_is_kept_unless_forced(config: Path, tmp_path: Path) -> None:
    """An existing DEST is refused (exit 3, untouched); --force replaces it."""
    assert run(config, "sync").exit_code == 0
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(b"yesterday's backup")
    code, output = backup("--config", str(config), str(copy))
    assert code == 3
    assert f"{copy}: exists; choose a new file name, or pass --force to replace it" in output
    assert copy.read_bytes() == b"yesterday's backup"
    code, output = backup("--config", str(config), "--force", str(copy))
    assert code == 0, output
    assert copy.read_bytes().startswith(b"SQLite format 3\x00")
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".copy")) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "no state file there"), (b"\x00" * 4096, "is not a readable state file")],
    ids=["missing", "not-sqlite"],
)
def test_a_missing_or_broken_source_writes_nothing(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    """No state file, or not a database: exit 3 naming it, no backup file left behind."""
    source = tmp_path / "state.sqlite"
    if content is not None:
        source.write_bytes(content)
    copy = tmp_path / "copy.sqlite"
    code, output = backup("--state", str(source), str(copy))
    assert code == 3
    assert f"{source}: {problem}" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == (["state.sqlite"] if content else [])


def test_the_backup_reads_the_state_section_without_credentials(
    config: Path, tmp_path: Path
) -> None:
    """The configuration's secrets are not resolved: a shell without them can back up."""
    assert run(config, "sync").exit_code == 0
    result = CliRunner().invoke(
        cli, ["state", "backup", "--config", str(config), str(tmp_path / "c.sqlite")], env={
            "LAPOR_API_KEY": None, "LAPOR_TOKEN": None, "AGENCY_TOKEN": None}
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_an_older_backup_restored_files_nothing_twice(
    config: Path, tmp_path: Path, sim: LaporSimulator, control: SimControl,
    agency_system: AgencySystem,
) -> None:  # fmt: skip
    """A complaint synced after the backup was taken is not filed again once it is restored:
    the next sync finds it on the agency side, and nothing exists twice anywhere."""
    assert run(config, "sync").exit_code == 0
    state = tmp_path / "state.sqlite"
    copy = tmp_path / "before.sqlite"
    assert backup("--state", str(state), str(copy))[0] == 0
    fresh = control.submit(title="Jalan rusak", content="Jalan berlubang di depan pasar.")
    control.dispose(fresh, 145)
    assert run(config, "sync").exit_code == 0
    assert twice(sim, agency_system) == {}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    shutil.copy2(copy, state)
    again = run(config, "sync")
    assert again.exit_code == 0, again.output
    assert twice(sim, agency_system) == {}
    linked = [c for c in AgencyControl(agency_system.root_url).complaints() if c["lapor"]]
    assert [c["lapor"]["id"] for c in linked].count(fresh) == 1


def test_a_file_appearing_at_dest_during_the_copy_is_not_overwritten(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEST made by someone else while the snapshot is copied is kept; the copy is dropped."""
    import connector.backup

    assert run(config, "sync").exit_code == 0
    copy = tmp_path / "copy.sqlite"
    real_copy = connector.backup._copy

    def copy_then_race(source: Path, target: Path) -> int:
        version = real_copy(source, target)
        copy.write_bytes(b"another operator's backup")
        return version

    monkeypatch.setattr(connector.backup, "_copy", copy_then_race)
    code, output = backup("--state", str(tmp_path / "state.sqlite"), str(copy))
    assert code == 3
    assert "exists; choose a new file name" in output
    assert copy.read_bytes() == b"another operator's backup"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy.sqlite")]
