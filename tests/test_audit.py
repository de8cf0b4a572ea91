"""The audit log on a real SQLite file: chained, append-only, verifiable, exportable."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.audit import GENESIS, AuditLog, export_csv, export_jsonl
from connector.cli import cli
from connector.clock import FakeClock
from connector.links import Links
from connector.state import StateStore
from tests.test_cli import ENV, write_config


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state.sqlite", clock) as opened:
        yield opened


def fill(store: StateStore, count: int = 5) -> AuditLog:
    log = AuditLog(store)
    with store.transaction():
        for n in range(count):
            store.clock.advance(60)  # type: ignore[attr-defined]
            log.append(
                actor="daemon", flow="inbound", direction="inbound", action=f"create_complaint_{n}",
                outcome="ok", lapor_id=5010600 + n, tracking_id=str(1916400 + n), agency_id=f"AG-{n}",
                changed_fields=["title", "status"], mapping_version="abc123",
            )  # fmt: skip
    return log


def test_entries_are_chained(store: StateStore) -> None:
    """The first entry follows the genesis hash; each next one follows its predecessor."""
    entries = list(fill(store).entries())
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert AuditLog(store).verify().ok


def test_only_field_names_are_stored(store: StateStore) -> None:
    """changed_fields holds sorted, unique names, never values."""
    log = AuditLog(store)
    with store.transaction():
        entry = log.append(actor="op:siti", flow="resync", direction="local", action="x", outcome="ok",
                           changed_fields=["status", "title", "status"])  # fmt: skip
    assert json.loads(entry.changed_fields) == ["status", "title"]


def test_append_rolls_back_with_its_transaction(store: StateStore) -> None:
    """An entry written in a failed transaction disappears with the change it recorded."""
    log = AuditLog(store)

    def failing() -> None:
        with store.transaction():
            log.append(
                actor="daemon", flow="inbound", direction="inbound", action="x", outcome="ok"
            )
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        failing()
    assert list(log.entries()) == []


def test_the_table_is_append_only(store: StateStore) -> None:
    """UPDATE and DELETE are refused by the database itself."""
    fill(store, 1)
    for statement in ("UPDATE audit_log SET outcome = 'failed'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            store.db.execute(statement)


def drop_guards(store: StateStore) -> None:
    store.db.execute("DROP TRIGGER audit_log_no_update")
    store.db.execute("DROP TRIGGER audit_log_no_delete")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("at", "2020-01-01T00:00:00.000000+00:00"),
        ("actor", "someone-else"),
        ("flow", "other"),
        ("direction", "outbound"),
        ("lapor_id", 1),
        ("tracking_id", "1"),
        ("agency_id", "AG-X"),
        ("action", "delete_everything"),
        ("outcome", "failed"),
        ("error_code", "X"),
        ("changed_fields", "[]"),
        ("mapping_version", "zzz"),
        ("prev_hash", "f" * 64),
        ("hash", "e" * 64),
    ],
)
def test_any_changed_column_is_found(store: StateStore, column: str, value: object) -> None:
    """Changing any column of entry 3 makes verify point at entry 3."""
    log = fill(store)
    drop_guards(store)
    store.db.execute(f"UPDATE audit_log SET {column} = ? WHERE id = 3", [value])  # noqa: S608
    result = log.verify()
    assert (result.ok, result.first_bad_id, result.checked) == (False, 3, 2)


def test_deleted_and_reordered_entries_are_found(store: StateStore) -> None:
    """A missing entry, or two entries swapped, breaks the chain there."""
    log = fill(store)
    drop_guards(store)
    store.db.execute("DELETE FROM audit_log WHERE id = 2")
    assert log.verify().first_bad_id == 3
    store.db.execute("UPDATE audit_log SET id = 2 WHERE id = 4")
    assert log.verify().first_bad_id == 2


def test_a_flipped_byte_in_the_file_is_found(tmp_path: Path, clock: FakeClock) -> None:
    """Changing one byte of the state file where an entry is stored breaks verification there."""
    path = tmp_path / "state.sqlite"
    with StateStore(path, clock) as store:
        fill(store)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    at = data.find(b"create_complaint_3")
    assert at > 0
    data[at + len("create_complaint_")] = ord("8")
    path.write_bytes(bytes(data))
    with StateStore(path, clock) as reopened:
        result = AuditLog(reopened).verify()
    assert not result.ok
    assert result.first_bad_id == 4


def test_filters_and_timeline(store: StateStore, clock: FakeClock) -> None:
    """Entries filter by id, outcome and time; a complaint's entries are found by any of its ids."""
    log = fill(store)
    with store.transaction():
        Links(store).add(origin="lapor", lapor_id=5010602, tracking_id="1916402", agency_id="AG-2")
        log.append(actor="daemon", flow="followups_out", direction="outbound", action="add_followup",
                   outcome="failed", agency_id="AG-2", error_code="NotDisposed")  # fmt: skip
    assert [e.action for e in log.entries(outcome="failed")] == ["add_followup"]
    assert [e.lapor_id for e in log.entries(lapor_id=5010601)] == [5010601]
    assert (
        len(list(log.entries(since=clock.now() - timedelta(seconds=90)))) == 3
    )  # 02:04, 02:05, 02:05
    found = log.for_complaint(lapor_id=5010602, tracking_id="1916402", agency_id="AG-2")
    assert [e.action for e in found] == ["create_complaint_2", "add_followup"]


def test_csv_export_is_formula_safe(store: StateStore) -> None:
    """Cells that a spreadsheet would run as a formula are prefixed with a quote."""
    log = AuditLog(store)
    with store.transaction():
        log.append(
            actor='=HYPERLINK("http://x")',
            flow="+flow",
            direction="local",
            action="-1",
            outcome="ok",
        )
    out = io.StringIO()
    assert export_csv(log.entries(), out) == 1
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    record = dict(zip(header, row, strict=False))
    assert record["actor"].startswith("'=")
    assert record["flow"] == "'+flow"
    assert record["action"] == "'-1"


def test_jsonl_export_round_trips(store: StateStore) -> None:
    """JSON Lines carry every column, changed fields as a list."""
    log = fill(store, 2)
    out = io.StringIO()
    export_jsonl(log.entries(), out)
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["changed_fields"] == ["status", "title"]
    assert first["hash"] == next(log.entries()).hash


def test_log_commands(tmp_path: Path, clock: FakeClock) -> None:
    """log lists and exports, log verify passes then reports a break with exit code 4, timeline
    explains an id no link holds (exit 6; tests/test_timeline.py has the rest)."""
    config = write_config(tmp_path, "https://lapor.example.go.id/lapor/3.0.0")
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        fill(store)
    runner = CliRunner()
    listed = runner.invoke(
        cli,
        ["log", "--config", str(config), "--format", "jsonl", "--tracking-id", "1916401"],
        env=ENV,
    )
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["lapor_id"] for line in listed.output.splitlines()] == [5010601]
    exported = tmp_path / "audit.csv"
    result = runner.invoke(
        cli, ["log", "--config", str(config), "--format", "csv", "--output", str(exported)], env=ENV
    )
    assert result.exit_code == 0
    assert len(exported.read_text().splitlines()) == 6
    ok = runner.invoke(cli, ["log", "verify", "--config", str(config)], env=ENV)
    assert ok.output.startswith("audit log intact: 5 entries (unkeyed: truncation and recomputed")
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        drop_guards(store)
        store.db.execute("UPDATE audit_log SET outcome = 'failed' WHERE id = 2")
    broken = runner.invoke(cli, ["log", "verify", "--config", str(config)], env=ENV)
    assert broken.exit_code == 4
    assert "audit log broken at entry 2" in broken.output
    timeline = runner.invoke(
        cli, ["log", "timeline", "1916403", "--config", str(config)], env={**ENV, "COLUMNS": "250"}
    )
    assert timeline.exit_code == 6
    assert "1916403 is not the tracking id, LAPOR! id or agency id of a linked" in timeline.output
    bad = runner.invoke(cli, ["log", "--config", str(config), "--since", "yesterday"], env=ENV)
    assert bad.exit_code == 2
    assert "not an ISO 8601 date" in bad.output


@pytest.mark.parametrize("tz", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_a_time_without_an_offset_is_wib_whatever_the_hosts_zone(
    tz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`log --since 2026-12-01T23:45` means 23:45 WIB on any host (it gave 0, 59 or 373 entries
    depending on TZ)."""
    import time

    from connector.cli.log import IsoDateTime

    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        moment = IsoDateTime().convert("2026-12-01T23:45", None, None)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert moment == datetime(2026, 12, 1, 16, 45, tzinfo=timezone.utc)
