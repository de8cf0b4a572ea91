"""The state store on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from connector.clock import FakeClock
from connector.errors import FieldProblem
from connector.lapor import wire
from connector.models import InvalidRecord
from connector.state import MIGRATIONS, StateStore
from tests.test_lapor_wire import SUMMARY


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> StateStore:
    with StateStore(tmp_path / "state.sqlite", clock) as opened:
        yield opened


def test_opens_in_wal_with_full_sync_at_latest_schema(store: StateStore) -> None:
    """A new file is migrated to the latest schema, in WAL mode with synchronous=FULL."""
    assert store.schema_version == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_reopening_does_not_migrate_again(tmp_path: Path, clock: FakeClock) -> None:
    """Migrations run once; the data survives a reopen."""
    with StateStore(tmp_path / "s.sqlite", clock) as first:
        first.save_complaint(wire.complaint_summary(SUMMARY))
    with StateStore(tmp_path / "s.sqlite", clock) as again:
        assert again.count_complaints() == 1


def test_a_state_from_a_newer_connector_is_a_configuration_error(
    tmp_path: Path, clock: FakeClock
) -> None:
    """After a downgrade the state is refused as a configuration error (exit 3, no restart
    loop under systemd), naming the versions and the fix; nothing is changed."""
    import sqlite3

    from connector.errors import ConfigError

    path = tmp_path / "state.sqlite"
    StateStore(path, clock).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(ConfigError, match=rf"schema version {len(MIGRATIONS) + 1}, newer than"):
        StateStore(path, clock)


def test_save_says_new_changed_unchanged(store: StateStore) -> None:
    """A complaint is new once, changed when its updated_at moves forward, else unchanged."""
    complaint = wire.complaint_summary(SUMMARY)
    assert store.save_complaint(complaint) == "new"
    assert store.save_complaint(complaint) == "unchanged"
    later = complaint.model_copy(update={"updated_at": complaint.updated_at + timedelta(minutes=1)})
    assert store.save_complaint(later) == "changed"
    assert store.save_complaint(complaint) == "unchanged"  # a stale copy never overwrites


def test_watermark_never_moves_backwards(store: StateStore, clock: FakeClock) -> None:
    """A cursor only moves forward."""
    now = clock.now()
    store.set_watermark("flow", now)
    store.set_watermark("flow", now - timedelta(hours=1))
    assert store.watermark("flow") == now


def test_transaction_rolls_back_everything(store: StateStore, clock: FakeClock) -> None:
    """A failed transaction leaves neither the rows nor the cursor behind."""

    def crash_mid_page() -> None:
        with store.transaction():
            store.save_complaint(wire.complaint_summary(SUMMARY))
            store.set_watermark("flow", clock.now())
            raise RuntimeError("crash mid-page")

    with pytest.raises(RuntimeError):
        crash_mid_page()
    assert store.count_complaints() == 0
    assert store.watermark("flow") is None


def test_quarantine_counts_repeats_and_releases(store: StateStore) -> None:
    """The same bad record is kept once and counted; it is released when it syncs."""
    bad = InvalidRecord(
        "lapor.inbox", "5010653", (FieldProblem("updated_at", "no UTC offset"),), raw=SUMMARY
    )
    first = store.quarantine(bad)
    assert store.quarantine(bad) == first
    (entry,) = store.quarantined()
    assert entry.times_seen == 2
    assert entry.problems == ["updated_at: no UTC offset"]
    store.release("lapor.inbox", "5010653")
    assert store.quarantined() == []


def test_quarantine_without_id_is_keyed_by_content(store: StateStore) -> None:
    """Records without a usable id are told apart by their content."""
    for raw in ({"id": "abc", "x": 1}, {"id": "abc", "x": 2}, {"id": "abc", "x": 1}):
        store.quarantine(InvalidRecord("lapor.inbox", None, (FieldProblem("id", "bad"),), raw=raw))
    assert sorted(e.times_seen for e in store.quarantined()) == [1, 2]
