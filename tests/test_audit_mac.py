"""The keyed audit log holds against someone with the state file but not the key.

A seeded mutation suite edits copies of a real state file with plain sqlite3, as an administrator
with file access would (triggers dropped first), and ``verify`` must catch every mutation; the
CLI verifies with only the state file and the key.
"""

from __future__ import annotations

import json
import random
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from connector.audit import (
    _CHECKPOINT,
    _CHECKPOINT_CONTENT,
    GENESIS,
    AuditKey,
    AuditKeyMismatch,
    AuditLog,
    Checkpoint,
    entry_hash,
)
from connector.cli import cli
from connector.clock import FakeClock
from connector.config import settings_from_mapping
from connector.errors import ConfigError
from connector.state import MIGRATIONS, StateStore
from tests.test_config import valid

KEY = AuditKey.from_hex("11" * 32)
ENTRIES = 300
FLOWS = ("inbound", "followups_out", "intake_out", "quarantine")
CONTENT_COLUMNS = (
    "at", "actor", "flow", "direction", "lapor_id", "tracking_id", "agency_id", "action",
    "outcome", "error_code", "changed_fields", "mapping_version",
)  # fmt: skip


def write_entries(log: AuditLog, rng: random.Random, count: int) -> None:
    """Append ``count`` entries in runs of a few transactions, checkpointing at each run's end."""
    written = 0
    while written < count:
        for _ in range(rng.randint(1, 4)):  # transactions in one run
            with log.store.transaction():
                for _ in range(min(rng.randint(1, 9), count - written)):
                    log.store.clock.advance(rng.randint(1, 90))  # type: ignore[attr-defined]
                    n = written
                    log.append(
                        actor="daemon", flow=FLOWS[n % 4], direction=("inbound", "outbound", "local")[n % 3],
                        action=f"action_{n}", outcome=("ok", "failed", "ambiguous")[n % 3],
                        lapor_id=5010000 + n, tracking_id=str(1916000 + n), agency_id=f"AG-{n}",
                        error_code=None if n % 3 == 0 else "E42", changed_fields=["status", "title"][: n % 3],
                        mapping_version="abc123",
                    )  # fmt: skip
                    written += 1
        log.checkpoint()


@dataclass(frozen=True)
class Master:
    """A state file with a few hundred keyed entries and checkpoints, and its anchor."""

    data: bytes
    anchor: Path


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Master:
    folder = tmp_path_factory.mktemp("master")
    path, anchor = folder / "state.sqlite", folder / "anchors" / "audit.anchor"
    with StateStore(path, FakeClock()) as store:
        log = AuditLog(store, KEY, anchor_path=anchor, checkpoint_every=50)
        write_entries(log, random.Random(7), ENTRIES)
        assert log.verify().ok
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return Master(path.read_bytes(), anchor)


def copy_of(master: Master, folder: Path) -> Path:
    path = folder / "copy.sqlite"
    for leftover in (folder / "copy.sqlite-wal", folder / "copy.sqlite-shm"):
        leftover.unlink(missing_ok=True)
    path.write_bytes(master.data)
    return path


def verify(path: Path, anchor: Path, key: AuditKey = KEY) -> tuple[bool, int | None]:
    with StateStore(path, FakeClock()) as store:
        result = AuditLog(store, key).verify(anchor)
    return result.ok, result.first_bad_id


# --- the attacker's tools: plain sqlite3 on the file ----------------------------------------


def open_as_attacker(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA synchronous = OFF")  # the attacker's edits need not survive a power cut
    for name in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        db.execute(f'DROP TRIGGER "{name[0]}"')
    return db


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM audit_log").fetchone()[0])


def other_value(rng: random.Random, column: str, current: object) -> object:
    """A value for ``column`` that differs from ``current``, of a plausible kind."""
    while True:
        candidates: dict[str, Callable[[], object]] = {
            "lapor_id": lambda: rng.choice([None, rng.randint(1, 9_999_999)]),
            "changed_fields": lambda: rng.choice(["[]", '["status"]', '["title"]', '["reporter"]']),
            "hash": lambda: rng.randbytes(32).hex(),
            "prev_hash": lambda: rng.choice([GENESIS, rng.randbytes(32).hex()]),
            "key_id": lambda: rng.choice([None, rng.randbytes(8).hex()]),
            "direction": lambda: rng.choice(["inbound", "outbound", "local"]),
            "outcome": lambda: rng.choice(["ok", "failed", "dead", "skipped"]),
        }
        value = candidates.get(column, lambda: rng.choice([None, "x", f"forged-{rng.random()}"]))()
        if value != current and not (column in ("at", "actor", "flow", "action") and value is None):
            return value


def edit_field(db: sqlite3.Connection, rng: random.Random) -> None:
    entry = rng.randint(1, count(db))
    column = rng.choice([*CONTENT_COLUMNS, "prev_hash", "hash", "key_id"])
    current = db.execute(f"SELECT {column} FROM audit_log WHERE id = ?", [entry]).fetchone()[0]  # noqa: S608
    db.execute(
        f"UPDATE audit_log SET {column} = ? WHERE id = ?",  # noqa: S608
        [other_value(rng, column, current), entry],
    )


def delete_entry(db: sqlite3.Connection, rng: random.Random) -> None:
    db.execute("DELETE FROM audit_log WHERE id = ?", [rng.randint(1, count(db))])


def reorder_two(db: sqlite3.Connection, rng: random.Random) -> None:
    a, b = rng.sample(range(1, count(db) + 1), 2)
    db.execute("UPDATE audit_log SET id = -1 WHERE id = ?", [a])
    db.execute("UPDATE audit_log SET id = ? WHERE id = ?", [a, b])
    db.execute("UPDATE audit_log SET id = ? WHERE id = -1", [b])


def insert_forged(db: sqlite3.Connection, rng: random.Random) -> None:
    at = rng.randint(1, count(db) + 1)
    db.execute("UPDATE audit_log SET id = -(id + 1) WHERE id >= ?", [at])
    db.execute("UPDATE audit_log SET id = -id WHERE id < 0")
    before = db.execute("SELECT hash FROM audit_log WHERE id = ?", [at - 1]).fetchone()
    values: dict[str, object] = {
        "id": at, "at": "2026-01-01T00:00:00.000000+00:00", "actor": "daemon", "flow": "inbound",
        "direction": "inbound", "lapor_id": 1, "tracking_id": "1", "agency_id": "AG-forged",
        "action": "create_complaint", "outcome": "ok", "error_code": None, "changed_fields": "[]",
        "mapping_version": "abc123", "prev_hash": before[0] if before else GENESIS,
    }  # fmt: skip
    how = rng.choice(["unkeyed", "random", "wrong key", "our key id, wrong key"])
    wrong = AuditKey(rng.randbytes(32))
    values["key_id"] = (
        None if how == "unkeyed" else KEY.key_id if how != "wrong key" else wrong.key_id
    )
    values["hash"] = (
        entry_hash(values) if how == "unkeyed" else rng.randbytes(32).hex() if how == "random"
        else wrong.entry_mac(values)
    )  # fmt: skip
    if rng.random() < 0.5:  # and make the next entry follow it, as far as that goes without the key
        db.execute("UPDATE audit_log SET prev_hash = ? WHERE id = ?", [values["hash"], at + 1])
    db.execute(
        f"INSERT INTO audit_log ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",  # noqa: S608
        list(values.values()),
    )


def truncate_tail(db: sqlite3.Connection, rng: random.Random) -> None:
    keep = rng.randint(0, count(db) - 1)
    db.execute("DELETE FROM audit_log WHERE id > ?", [keep])
    if rng.random() < 0.8:
        db.execute("DELETE FROM audit_checkpoints WHERE entry_count > ?", [keep])


def empty_table(db: sqlite3.Connection, rng: random.Random) -> None:
    db.execute("DELETE FROM audit_log")
    if rng.random() < 0.7:
        db.execute("DELETE FROM audit_checkpoints")


def recompute(db: sqlite3.Connection, rng: random.Random, key: AuditKey | None) -> None:
    """Rewrite the whole chain (after an edit, or a deletion, or as it is) without our key."""
    if rng.random() < 0.5:
        db.execute("DELETE FROM audit_log WHERE id = ?", [rng.randint(1, count(db))])
    rows = [dict(r) for r in db.execute("SELECT * FROM audit_log ORDER BY id")]
    db.execute("BEGIN")
    db.execute("DELETE FROM audit_log")
    previous = GENESIS
    for number, row in enumerate(rows, start=1):
        if rng.random() < 0.05:
            row["outcome"] = "ok"
        row.update(id=number, prev_hash=previous)
        row["key_id"] = None if key is None else rng.choice([key.key_id, KEY.key_id])
        row["hash"] = previous = entry_hash(row) if key is None else key.entry_mac(row)
        db.execute(
            f"INSERT INTO audit_log ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",  # noqa: S608
            list(row.values()),
        )
    checkpoints = [Checkpoint(**r) for r in db.execute("SELECT * FROM audit_checkpoints")]
    db.execute("DELETE FROM audit_checkpoints")
    if key is not None and rng.random() < 0.7:  # checkpoints made anew with that key, else dropped
        remake_checkpoints(db, checkpoints, key)
    db.execute("COMMIT")


def remake_checkpoints(
    db: sqlite3.Connection, checkpoints: list[Checkpoint], key: AuditKey
) -> None:
    last = {r["id"]: r["hash"] for r in db.execute("SELECT id, hash FROM audit_log")}
    for c in checkpoints:
        values = {**asdict(c), "last_mac": last.get(c.entry_count, GENESIS), "key_id": key.key_id}
        values["mac"] = key.mac(_CHECKPOINT, values, _CHECKPOINT_CONTENT)
        db.execute(
            "INSERT INTO audit_checkpoints VALUES (:seq, :entry_count, :last_mac, :at, :key_id, :mac)",
            values,
        )


def edit_checkpoint(db: sqlite3.Connection, rng: random.Random) -> None:
    seq = rng.choice([r[0] for r in db.execute("SELECT seq FROM audit_checkpoints")])
    column = rng.choice(["entry_count", "last_mac", "at", "key_id", "mac", "seq"])
    sql = f"SELECT {column} FROM audit_checkpoints WHERE seq = ?"  # noqa: S608
    current = db.execute(sql, [seq]).fetchone()[0]
    value = current
    while value == current:
        value = rng.randint(0, 400) if column in ("entry_count", "seq") else rng.randbytes(16).hex()
    if column == "seq":
        db.execute("DELETE FROM audit_checkpoints WHERE seq = ?", [value])
    db.execute(f"UPDATE audit_checkpoints SET {column} = ? WHERE seq = ?", [value, seq])  # noqa: S608


def delete_checkpoint(db: sqlite3.Connection, rng: random.Random) -> None:
    seqs = [r[0] for r in db.execute("SELECT seq FROM audit_checkpoints")]
    db.execute("DELETE FROM audit_checkpoints WHERE seq = ?", [rng.choice(seqs)])


MUTATIONS: dict[str, Callable[[sqlite3.Connection, random.Random], None]] = {
    "edit a field": edit_field,
    "delete an entry": delete_entry,
    "reorder two": reorder_two,
    "insert a forged entry": insert_forged,
    "truncate the tail": truncate_tail,
    "empty the table": empty_table,
    "recompute unkeyed": lambda db, rng: recompute(db, rng, None),
    "recompute with a wrong key": lambda db, rng: recompute(db, rng, AuditKey(rng.randbytes(32))),
    "edit a checkpoint": edit_checkpoint,
    "delete a checkpoint": delete_checkpoint,
}
SEEDS_PER_KIND = 120  # 10 kinds: 1,200 mutations


@pytest.mark.parametrize("kind", list(MUTATIONS))
def test_every_mutation_is_detected(kind: str, master: Master, tmp_path: Path) -> None:
    """Each of 120 seeded mutations of this kind, on a fresh copy of the file, fails verify."""
    undetected = []
    for seed in range(SEEDS_PER_KIND):
        path = copy_of(master, tmp_path)
        db = open_as_attacker(path)
        MUTATIONS[kind](db, random.Random(f"{kind}:{seed}"))
        db.close()
        ok, _ = verify(path, master.anchor)
        if ok:
            undetected.append(seed)
    assert undetected == []


def test_the_unmutated_copy_verifies(master: Master, tmp_path: Path) -> None:
    """A plain copy of the file, triggers dropped and nothing else, verifies intact."""
    path = copy_of(master, tmp_path)
    open_as_attacker(path).close()
    with StateStore(path, FakeClock()) as store:
        result = AuditLog(store, KEY).verify(master.anchor)
    assert (result.ok, result.checked, result.anchored) == (True, ENTRIES, ENTRIES)
    assert result.checkpoints > ENTRIES // 50


def test_edits_name_the_entry(master: Master, tmp_path: Path) -> None:
    """An edited entry is named by its sequence number; a cut tail by the first missing one."""
    path = copy_of(master, tmp_path)
    db = open_as_attacker(path)
    db.execute("UPDATE audit_log SET outcome = 'failed' WHERE id = 123")
    db.close()
    assert verify(path, master.anchor) == (False, 123)
    path = copy_of(master, tmp_path)
    db = open_as_attacker(path)
    db.execute("DELETE FROM audit_log WHERE id > 250")
    db.execute("DELETE FROM audit_checkpoints WHERE entry_count > 250")
    db.close()
    assert verify(path, master.anchor) == (False, 251)


# --- writing: checkpoints, the anchor, keys --------------------------------------------------


def test_checkpoints_reach_the_anchor_file(tmp_path: Path, clock: FakeClock) -> None:
    """Every N entries and at checkpoint(), a checkpoint is stored and appended to a 0600 anchor."""
    anchor = tmp_path / "var" / "log" / "audit.anchor"
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        log = AuditLog(store, KEY, anchor_path=anchor, checkpoint_every=3)
        write_entries(log, random.Random(1), 10)
        assert log.checkpoint() == log.checkpoints()[-1]  # nothing new: no second checkpoint
        stored = log.checkpoints()
    lines = [json.loads(line) for line in anchor.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [c.seq for c in stored]
    assert lines[-1]["entry_count"] == 10
    assert {3, 6, 9} <= {c.entry_count for c in stored}
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600


def test_an_unkeyed_log_keeps_the_sha256_chain(tmp_path: Path, clock: FakeClock) -> None:
    """Without a key entries are chained with plain SHA-256 and no checkpoint is made."""
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        log = AuditLog(store)
        write_entries(log, random.Random(2), 5)
        assert log.checkpoints() == []
        assert {e.key_id for e in log.entries()} == {None}
        assert log.verify().ok


def test_a_keyed_log_refuses_other_keys(tmp_path: Path, clock: FakeClock) -> None:
    """Appending without the key, or with another key, to a keyed log is refused."""
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        write_entries(AuditLog(store, KEY), random.Random(3), 2)
        for other in (None, AuditKey(b"\x02" * 32)):
            with pytest.raises(AuditKeyMismatch, match=f"MACed with key id {KEY.key_id}"):
                AuditLog(store, other).append(
                    actor="daemon", flow="x", direction="local", action="x", outcome="ok"
                )


def old_state(path: Path, entries: int) -> None:
    """A state file at schema version 2, with a plain SHA-256 chain."""
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    previous = GENESIS
    for n in range(1, entries + 1):
        row: dict[str, object] = {
            "id": n, "at": f"2026-01-01T00:00:{n:02d}.000000+00:00", "actor": "daemon",
            "flow": "inbound", "direction": "inbound", "lapor_id": n, "tracking_id": str(n),
            "agency_id": None, "action": "create_complaint", "outcome": "ok", "error_code": None,
            "changed_fields": "[]", "mapping_version": None, "prev_hash": previous,
        }  # fmt: skip
        row["hash"] = previous = entry_hash(row)
        db.execute(
            f"INSERT INTO audit_log VALUES ({', '.join('?' for _ in row)})",  # noqa: S608
            list(row.values()),
        )
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()


def test_an_old_state_migrates_and_is_sealed_by_the_first_keyed_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A version-2 file migrates; its SHA-256 entries verify, then are sealed when a key arrives."""
    path, anchor = tmp_path / "state.sqlite", tmp_path / "audit.anchor"
    old_state(path, 4)
    with StateStore(path, clock) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert AuditLog(store).verify().ok
        unsealed = AuditLog(store, KEY).verify(anchor)
        assert (unsealed.ok, unsealed.first_bad_id) == (False, 1)
        log = AuditLog(store, KEY, anchor_path=anchor)
        write_entries(log, random.Random(4), 3)
        assert log.checkpoints()[0].entry_count == 4  # the seal, before the first keyed entry
        result = log.verify()
        assert (result.ok, result.checked) == (True, 7)


# --- configuration ---------------------------------------------------------------------------


def test_the_audit_section_is_optional_and_validated(tmp_path: Path) -> None:
    """No audit section: no key; a literal key, a short key, or a key without an anchor is refused."""
    env = {"LAPOR_API_KEY": "k", "LAPOR_TOKEN": "{11111111-2222-3333-4444-555555555555}",
           "LAPOR_INSTITUTION_ID": "145", "AUDIT_KEY": "ab" * 32, "SHORT": "ab" * 8}  # fmt: skip
    assert settings_from_mapping(valid(), env=env).audit.key is None
    good = {**valid(), "audit": {"key": "${AUDIT_KEY}", "anchor_path": str(tmp_path / "a")}}
    assert settings_from_mapping(good, env=env).audit.checkpoint_every == 100
    assert "ab" * 32 not in repr(settings_from_mapping(good, env=env))
    cases = {
        "literal": ({"key": "ab" * 32, "anchor_path": "a"}, "audit.key: a secret is written"),
        "short": ({"key": "${SHORT}", "anchor_path": "a"}, "audit.key: the key must be at least 32 bytes"),
        "no anchor": ({"key": "${AUDIT_KEY}"}, "audit: Value error, key needs anchor_path"),
    }  # fmt: skip
    for audit, expected in cases.values():
        with pytest.raises(ConfigError) as caught:
            settings_from_mapping({**valid(), "audit": audit}, env=env)
        assert any(
            p.startswith(expected.replace("Value error, ", "")) for p in caught.value.problems
        ), caught.value.problems
        assert "ab" * 32 not in str(caught.value)


# --- the command line ------------------------------------------------------------------------


def keyed_state(folder: Path) -> tuple[Path, Path, Path]:
    """A state with keyed entries, its key file and its anchor."""
    key_file, state, anchor = folder / "audit.key", folder / "state.sqlite", folder / "audit.anchor"
    key_file.write_text("11" * 32 + "\n")
    with StateStore(state, FakeClock()) as store:
        write_entries(
            AuditLog(store, KEY, anchor_path=anchor, checkpoint_every=5), random.Random(5), 12
        )
    return state, key_file, anchor


def test_verify_needs_only_the_state_and_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """log verify --state --key-file --anchor runs with no config file and no LAPOR! secrets."""
    state, key_file, anchor = keyed_state(tmp_path)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")  # no config.yaml here
    runner = CliRunner()
    args = [
        "log",
        "verify",
        "--state",
        str(state),
        "--key-file",
        str(key_file),
        "--anchor",
        str(anchor),
    ]
    ok = runner.invoke(cli, args, env={"LAPOR_API_KEY": None, "LAPOR_TOKEN": None})
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"audit log intact: 12 entries, MACed with key {KEY.key_id}")
    db = open_as_attacker(state)
    db.execute("UPDATE audit_log SET outcome = 'dead' WHERE id = 7")
    db.close()
    broken = runner.invoke(cli, args)
    assert broken.exit_code == 4
    assert "audit log broken at entry 7" in broken.output
    assert "action_" not in broken.output  # no entry contents
    assert "AG-" not in broken.output


def test_verify_from_a_config_never_reads_the_lapor_section(tmp_path: Path) -> None:
    """With --config, only state and audit are read: unset LAPOR! variables do not matter."""
    state, key_file, anchor = keyed_state(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "lapor": {"api_key": "${LAPOR_API_KEY}", "token": "${LAPOR_TOKEN}", "institution_id": 1},
        "state": {"path": str(state)},
        "audit": {"key": f"${{file:{key_file}}}", "anchor_path": str(anchor)},
    }))  # fmt: skip
    result = CliRunner().invoke(
        cli, ["log", "verify", "--config", str(config)], env={"LAPOR_API_KEY": None}
    )
    assert result.exit_code == 0, result.output
    assert "intact: 12 entries" in result.output
    keyless = CliRunner().invoke(cli, ["log", "verify", "--state", str(state)])
    assert keyless.exit_code == 3
    assert f"MACed with key id {KEY.key_id}; pass --key-file" in keyless.output


def test_verify_refuses_a_missing_state_and_creates_nothing(tmp_path: Path) -> None:
    """A mistyped state path is one line naming it, exit 3, and no file or folder appears."""
    missing = tmp_path / "typo" / "state.sqlite"
    result = CliRunner().invoke(cli, ["log", "verify", "--state", str(missing)])
    assert result.exit_code == 3
    assert str(missing) in result.output
    assert "no state file there" in result.output
    assert not missing.parent.exists()


def test_verify_says_when_the_log_is_unkeyed(tmp_path: Path) -> None:
    """An unkeyed log verifies with a warning of what cannot be detected."""
    with StateStore(tmp_path / "state.sqlite", FakeClock()) as store:
        write_entries(AuditLog(store), random.Random(6), 3)
    result = CliRunner().invoke(cli, ["log", "verify", "--state", str(tmp_path / "state.sqlite")])
    assert result.exit_code == 0
    assert (
        "intact: 3 entries (unkeyed: truncation and recomputed chains cannot be detected"
        in result.output
    )


def test_keygen_writes_a_private_key_once(tmp_path: Path) -> None:
    """keygen writes 32 random bytes in hex to a new 0600 file, says how to reference it, never overwrites."""
    out = tmp_path / "secrets" / "audit.key"
    runner = CliRunner()
    made = runner.invoke(cli, ["log", "keygen", "--out", str(out)])
    assert made.exit_code == 0, made.output
    text = out.read_text()
    assert len(bytes.fromhex(text.strip())) == 32
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"key: ${{file:{out.resolve()}}}" in made.output
    assert text.strip() not in made.output
    again = runner.invoke(cli, ["log", "keygen", "--out", str(out)])
    assert again.exit_code == 3
    assert "never overwritten" in again.output
    assert out.read_text() == text
