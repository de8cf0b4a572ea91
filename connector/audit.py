"""The audit (sync) log: one append-only, chained entry per remote write and state change.

Each entry records when, who, which flow and direction, both ids, the action, its outcome, an
error code, the *names* of changed fields (never their values: no personal data enters the
log) and the mapping version. SQLite triggers refuse UPDATE and DELETE on the table.

With an audit key (``audit.key`` in the configuration), an entry's ``hash`` is an HMAC-SHA256
under the key over its id and content, the previous entry's MAC included, and a *checkpoint*
(sequence number, entry count, last MAC, time; MACed too) is written every ``checkpoint_every``
entries and whenever ``checkpoint()`` is called: into ``audit_checkpoints`` and, once committed,
as one JSON line appended to the anchor file outside the state. ``verify()`` then detects edits,
deletions, reordering, insertions, a chain recomputed without the key, and (against the anchor)
a cut tail or an emptied table. Without a key the chain is the plain SHA-256 of
docs/audit-log.md, which anyone with the file can recompute.

Entries are appended inside the caller's transaction (``with store.transaction():``), so an
entry commits or rolls back with the change it records. ``StateStore`` transactions are
``BEGIN IMMEDIATE``: one writer at a time, so reading the last MAC and inserting cannot fork
the chain.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Literal

from connector import errors
from connector.config import AuditSettings
from connector.privacy import private_dir
from connector.state import StateStore

GENESIS = "0" * 64
OUTCOMES = ("ok", "failed", "ambiguous", "quarantined", "skipped", "not_applicable", "dead")
Direction = Literal["inbound", "outbound", "local"]
KEY_BYTES = 32
_ENTRY = b"lapor-connector audit entry v1\n"
_CHECKPOINT = b"lapor-connector audit checkpoint v1\n"
_KEY_ID = b"lapor-connector audit key id v1"


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry, as stored."""

    id: int
    at: str
    actor: str
    flow: str
    direction: str
    lapor_id: int | None
    tracking_id: str | None
    agency_id: str | None
    action: str
    outcome: str
    error_code: str | None
    changed_fields: str
    mapping_version: str | None
    prev_hash: str
    hash: str
    #: The id of the key that MACed it; None for the plain SHA-256 chain.
    key_id: str | None = None


#: What the plain SHA-256 covers: every column of the original table but ``id`` and ``hash``.
_CONTENT = (
    "at", "actor", "flow", "direction", "lapor_id", "tracking_id", "agency_id", "action",
    "outcome", "error_code", "changed_fields", "mapping_version", "prev_hash",
)  # fmt: skip
_CHECKPOINT_CONTENT = ("seq", "entry_count", "last_mac", "at", "key_id")


def _canonical(values: Mapping[str, Any], keys: Iterable[str]) -> bytes:
    record = {k: values[k] for k in keys}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(values: Mapping[str, Any]) -> str:
    """SHA-256 hex of an entry's content (every column but ``id``, ``hash`` and ``key_id``)."""
    return hashlib.sha256(_canonical(values, _CONTENT)).hexdigest()


class AuditKey:
    """The secret the chain and the checkpoints are MACed with; only its id is ever shown."""

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"an audit key has at least {KEY_BYTES} bytes")
        self._secret = secret
        #: A public fingerprint of the key (an HMAC of a constant): tells keys apart, reveals nothing.
        self.key_id = hmac.new(secret, _KEY_ID, hashlib.sha256).hexdigest()[:16]

    @classmethod
    def from_hex(cls, text: str) -> AuditKey:
        """A key written in hex (what ``log keygen`` writes)."""
        return cls(bytes.fromhex(text.strip()))

    @classmethod
    def from_file(cls, path: Path) -> AuditKey:
        """Read a key file; a missing or malformed one is a configuration error naming the file."""
        try:
            return cls.from_hex(path.read_text(encoding="ascii"))
        except OSError:
            problem = "cannot read the key file; check the path and its permissions"
        except ValueError:  # UnicodeDecodeError too
            problem = (
                f"not an audit key (at least {KEY_BYTES} bytes in hex); "
                "make one with `lapor-connector log keygen --out FILE`"
            )
        raise errors.ConfigError([problem], str(path))

    @staticmethod
    def generate() -> str:
        """A new random key, in hex."""
        return secrets.token_hex(KEY_BYTES)

    def mac(self, domain: bytes, values: Mapping[str, Any], keys: Iterable[str]) -> str:
        """HMAC-SHA256 hex of the canonical serialisation of ``keys`` of ``values``."""
        return hmac.new(self._secret, domain + _canonical(values, keys), hashlib.sha256).hexdigest()

    def entry_mac(self, values: Mapping[str, Any]) -> str:
        """An entry's MAC: its id, key id and content, the previous entry's MAC included."""
        return self.mac(_ENTRY, values, (*_CONTENT, "id", "key_id"))

    def __repr__(self) -> str:
        return f"AuditKey(key_id={self.key_id!r})"


@dataclass(frozen=True)
class Checkpoint:
    """A MACed statement: the log had ``entry_count`` entries, the last one's MAC ``last_mac``."""

    seq: int
    entry_count: int
    last_mac: str
    at: str
    key_id: str
    mac: str

    def line(self) -> bytes:
        """The checkpoint as one anchor-file line."""
        return (json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking the chain, the checkpoints and the anchor."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str | None = None
    #: Whether the entries were checked against a key (False: the plain SHA-256 chain only).
    keyed: bool = False
    checkpoints: int = 0
    #: Entries covered by the anchor's latest checkpoint; None when no anchor was read.
    anchored: int | None = None


class AnchorBroken(errors.FatalError):
    """The anchor file does not end with a checkpoint line (edited, or a torn write)."""


class AuditKeyMismatch(errors.ConfigError):
    """The log was MACed with a key the connector is not configured with."""


def _broken(checked: int, entry: int | None, problem: str, **more: Any) -> VerifyResult:
    return VerifyResult(False, checked, entry, problem, **more)


class AuditLog:
    """The audit log in the state file, MACed with ``key`` when one is given."""

    def __init__(
        self,
        store: StateStore,
        key: AuditKey | None = None,
        *,
        anchor_path: Path | None = None,
        checkpoint_every: int = 100,
    ) -> None:
        self.store = store
        self.key = key
        self.anchor_path = anchor_path
        self.checkpoint_every = checkpoint_every

    @classmethod
    def configured(cls, store: StateStore, settings: AuditSettings) -> AuditLog:
        """The audit log as the ``audit`` configuration section says (no key: plain SHA-256)."""
        key = AuditKey.from_hex(settings.key.get_secret_value()) if settings.key else None
        return cls(
            store,
            key,
            anchor_path=settings.anchor_path,
            checkpoint_every=settings.checkpoint_every,
        )

    def append(
        self,
        *,
        actor: str,
        flow: str,
        direction: Direction,
        action: str,
        outcome: str,
        lapor_id: int | None = None,
        tracking_id: str | None = None,
        agency_id: str | None = None,
        error_code: str | None = None,
        changed_fields: Sequence[str] = (),
        mapping_version: str | None = None,
    ) -> AuditEntry:
        """Append one entry (inside the caller's transaction); checkpoint every N entries."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}; use one of {OUTCOMES}")
        last = self.store.db.execute(
            "SELECT id, hash, key_id FROM audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
        last_id, last_hash, last_key_id = last if last else (0, GENESIS, None)
        self._refuse_other_keys(last_key_id)
        if self.key is not None and last_id and last_key_id is None:
            self._record_checkpoint()  # seal the entries written before the key was configured
        values: dict[str, Any] = {
            "id": last_id + 1,
            "at": self.store.clock.now()
            .astimezone(timezone.utc)
            .isoformat(timespec="microseconds"),
            "actor": actor,
            "flow": flow,
            "direction": direction,
            "lapor_id": lapor_id,
            "tracking_id": tracking_id,
            "agency_id": agency_id,
            "action": action,
            "outcome": outcome,
            "error_code": error_code,
            "changed_fields": json.dumps(sorted(set(changed_fields))),
            "mapping_version": mapping_version,
            "prev_hash": last_hash,
            "key_id": self.key.key_id if self.key else None,
        }
        values["hash"] = self.key.entry_mac(values) if self.key else entry_hash(values)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        sql = f"INSERT INTO audit_log ({columns}) VALUES ({marks})"  # noqa: S608 (our columns)
        self.store.db.execute(sql, list(values.values()))
        if self.key is not None and values["id"] % self.checkpoint_every == 0:
            self._record_checkpoint()
            self.publish()
        return AuditEntry(**values)

    def _refuse_other_keys(self, last_key_id: str | None) -> None:
        mine = self.key.key_id if self.key else None
        if last_key_id is not None and last_key_id != mine:
            raise AuditKeyMismatch(
                [
                    f"audit.key: the audit log in {self.store.path} is MACed with key id "
                    f"{last_key_id}, " + (f"not this key (id {mine})" if mine else "and no key is configured")
                    + "; configure that key (keys cannot be rotated within one log)"
                ]
            )  # fmt: skip

    # --- checkpoints and the anchor --------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        """Checkpoint the log as it stands and append it to the anchor; call at every run's end.

        Called outside a transaction the checkpoint reaches the anchor file at once; inside one,
        it does at the next call outside. Without new entries the latest checkpoint is kept.
        Without a key there is nothing to checkpoint (None).
        """
        if self.key is None:
            return None
        with self.store.transaction():
            stored = self.checkpoints(latest=True)  # one row, however many runs came before
            last = self.store.db.execute("SELECT max(id) FROM audit_log").fetchone()[0] or 0
            current = stored[-1] if stored else None
            if current is None or current.entry_count != last:
                current = self._record_checkpoint()
        self.publish()
        return current

    def checkpoints(self, *, after: int = 0, latest: bool = False) -> list[Checkpoint]:
        """The checkpoints in the state after sequence number ``after``, oldest first (with
        ``latest``, only the last one)."""
        if latest:
            sql = "SELECT * FROM audit_checkpoints WHERE seq > ? ORDER BY seq DESC LIMIT 1"
        else:
            sql = "SELECT * FROM audit_checkpoints WHERE seq > ? ORDER BY seq"
        return [Checkpoint(**row) for row in self.store.db.query(sql, [after])]

    def _record_checkpoint(self) -> Checkpoint:
        assert self.key is not None
        db = self.store.db
        last = db.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        seq = db.execute("SELECT coalesce(max(seq), 0) + 1 FROM audit_checkpoints").fetchone()[0]
        values: dict[str, Any] = {
            "seq": seq,
            "entry_count": last[0] if last else 0,
            "last_mac": last[1] if last else GENESIS,
            "at": self.store.clock.now().astimezone(timezone.utc).isoformat(timespec="seconds"),
            "key_id": self.key.key_id,
        }
        values["mac"] = self.key.mac(_CHECKPOINT, values, _CHECKPOINT_CONTENT)
        db.execute(
            "INSERT INTO audit_checkpoints (seq, entry_count, last_mac, at, key_id, mac) "
            "VALUES (:seq, :entry_count, :last_mac, :at, :key_id, :mac)",
            values,
        )
        return Checkpoint(**values)

    def publish(self) -> int:
        """Append the committed checkpoints the anchor file lacks; return how many.

        Does nothing inside a transaction (the checkpoints could still roll back) or without an
        anchor. The file is created 0600 (and its folders); a lock keeps two writers apart.
        """
        if self.anchor_path is None or self.key is None or self.store.db.conn.in_transaction:
            return 0
        private_dir(self.anchor_path.parent)
        fd = os.open(self.anchor_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            anchored = _last_seq(fd, self.anchor_path)
            new = self.checkpoints(after=anchored)
            if new:
                os.write(fd, b"".join(c.line() for c in new))
                os.fsync(fd)
            return len(new)
        finally:
            os.close(fd)

    # --- reading ------------------------------------------------------------------------

    def entries(
        self,
        *,
        lapor_id: int | None = None,
        tracking_id: str | None = None,
        agency_id: str | None = None,
        flow: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """Entries matching every filter given, oldest first, streamed."""
        clauses, params = [], []
        for column, value in (
            ("lapor_id", lapor_id),
            ("tracking_id", tracking_id),
            ("agency_id", agency_id),
            ("flow", flow),
            ("outcome", outcome),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("at >= ?")
            params.append(since.astimezone(timezone.utc).isoformat(timespec="microseconds"))
        if until is not None:
            clauses.append("at < ?")
            params.append(until.astimezone(timezone.utc).isoformat(timespec="microseconds"))
        sql = "SELECT * FROM audit_log"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self.store.db.query(sql, params):
            yield AuditEntry(**row)

    def for_complaint(
        self,
        *,
        lapor_id: int | None = None,
        tracking_id: str | None = None,
        agency_id: str | None = None,
    ) -> list[AuditEntry]:
        """Every entry naming the complaint by any of its ids, oldest first (an entry carries the
        ids known when it was written, so one id alone may name it)."""
        sql = (
            "SELECT * FROM audit_log WHERE lapor_id = ? OR tracking_id = ? OR agency_id = ? "
            "ORDER BY id"
        )
        return [
            AuditEntry(**r) for r in self.store.db.query(sql, [lapor_id, tracking_id, agency_id])
        ]

    def key_ids(self) -> set[str]:
        """The ids of the keys the entries are MACed with (empty: the plain SHA-256 chain)."""
        sql = "SELECT DISTINCT key_id FROM audit_log WHERE key_id IS NOT NULL"
        return {row[0] for row in self.store.db.execute(sql)}

    def verify(self, anchor_path: Path | None = None) -> VerifyResult:
        """Check every entry, then (keyed) the checkpoints and the anchor; report the first problem.

        The anchor is ``anchor_path``, else the log's own; a missing anchor file counts as empty.
        """
        try:
            if self.key is None:
                checked, _, broken = self._walk(0, set())
                return broken or VerifyResult(True, checked)
            return self._verify_keyed(anchor_path or self.anchor_path)
        except sqlite3.DatabaseError as error:
            return _broken(0, None, f"the state file cannot be read ({error})")

    def _genuine(self, checkpoint: Checkpoint) -> bool:
        assert self.key is not None
        expected = self.key.mac(_CHECKPOINT, asdict(checkpoint), _CHECKPOINT_CONTENT)
        return checkpoint.key_id == self.key.key_id and hmac.compare_digest(
            expected, checkpoint.mac
        )

    def _walk(
        self, sealed: int, wanted: set[int]
    ) -> tuple[int, dict[int, str], VerifyResult | None]:
        """Check the entries in order; return how many passed, the MACs at ``wanted`` counts,
        and the first problem. Unkeyed entries pass a keyed check only up to ``sealed``."""
        key = self.key
        previous_hash, previous_id, keyed_seen = GENESIS, 0, False
        found = {0: GENESIS}
        for row in self.store.db.query("SELECT * FROM audit_log ORDER BY id"):
            entry_id, key_id, problem = row["id"], row["key_id"], None
            if entry_id != previous_id + 1:
                problem = (
                    f"entries {previous_id + 1}..{entry_id - 1} are missing"
                    if isinstance(entry_id, int) and entry_id > previous_id
                    else "it is out of sequence"
                )
            elif row["prev_hash"] != previous_hash:
                problem = "it does not follow the entry before it (prev_hash differs)"
            elif key_id is None and key is not None and (keyed_seen or entry_id > sealed):
                problem = (
                    "it is not MACed with the key, and no keyed checkpoint seals it (entries "
                    "written before audit.key was set are sealed by the connector's first keyed run)"
                )
            elif key_id is None and entry_hash(row) != row["hash"]:
                problem = "its content was changed after it was written"
            elif key_id is not None and key is None:
                problem = f"it is MACed with audit key {key_id}; verify with that key (--key-file)"
            elif key is not None and key_id is not None and key_id != key.key_id:
                problem = f"it is MACed with another key (id {key_id}), not the one given (id {key.key_id})"
            elif key is not None and key_id is not None:
                keyed_seen = True
                if not hmac.compare_digest(key.entry_mac(row), str(row["hash"])):
                    problem = "its content or MAC was changed after it was written"
            if problem:
                return (
                    previous_id,
                    found,
                    _broken(previous_id, entry_id, problem, keyed=key is not None),
                )
            previous_hash, previous_id = row["hash"], entry_id
            if entry_id in wanted:
                found[entry_id] = previous_hash
        return previous_id, found, None

    def _verify_keyed(self, anchor: Path | None) -> VerifyResult:
        stored = self.checkpoints()
        anchored = _read_anchor(anchor) if anchor else []
        genuine = [
            c for c in [*stored, *anchored] if isinstance(c, Checkpoint) and self._genuine(c)
        ]
        wanted = {c.entry_count for c in stored} | {c.entry_count for c in genuine}
        sealed = max((c.entry_count for c in genuine), default=0)
        checked, macs, broken = self._walk(sealed, wanted)
        if broken:
            return broken

        def bad(entry: int | None, problem: str) -> VerifyResult:
            return _broken(checked, entry, problem, keyed=True, checkpoints=len(stored))

        previous = 0
        for position, checkpoint in enumerate(stored, start=1):
            where = f"checkpoint {checkpoint.seq} in the state"
            if checkpoint.seq != position:
                return bad(None, f"checkpoint {position} is missing from the state")
            if not self._genuine(checkpoint):
                return bad(None, f"{where} was changed, or not made with the key")
            if checkpoint.entry_count > checked:
                return bad(
                    checked + 1,
                    f"entries {checked + 1}..{checkpoint.entry_count} are missing ({where} covers them)",
                )
            if checkpoint.entry_count < previous:
                return bad(None, f"{where} covers fewer entries than the one before it")
            if macs.get(checkpoint.entry_count) != checkpoint.last_mac:
                return bad(checkpoint.entry_count, f"it does not match {where}")
            previous = checkpoint.entry_count
        if anchor is None:
            return VerifyResult(True, checked, keyed=True, checkpoints=len(stored))
        by_seq, previous_seq = {c.seq: c for c in stored}, 0
        for number, line in enumerate(anchored, start=1):
            where = f"line {number} of the anchor {anchor}"
            if not isinstance(line, Checkpoint):
                return bad(None, f"{where} is not a checkpoint")
            if not self._genuine(line):
                return bad(None, f"{where} (checkpoint {line.seq}) was not made with the key")
            if line.seq <= previous_seq:
                return bad(None, f"{where} (checkpoint {line.seq}) is out of order")
            if line.entry_count > checked:
                return bad(
                    checked + 1,
                    f"entries {checked + 1}..{line.entry_count} are missing (the anchor's checkpoint {line.seq} covers them)",
                )
            if by_seq.get(line.seq) != line:
                state = (
                    "is missing from the state"
                    if line.seq not in by_seq
                    else "differs from the state's"
                )
                return bad(None, f"the anchor's checkpoint {line.seq} {state}")
            previous_seq = line.seq
        latest = (
            anchored[-1].entry_count if anchored and isinstance(anchored[-1], Checkpoint) else 0
        )
        return VerifyResult(True, checked, keyed=True, checkpoints=len(stored), anchored=latest)


def _checkpoint_from(text: str) -> Checkpoint | str:
    """A checkpoint read from an anchor line, or the line itself when it is not one."""
    try:
        record = json.loads(text)
        types = {
            "seq": int,
            "entry_count": int,
            "last_mac": str,
            "at": str,
            "key_id": str,
            "mac": str,
        }
        if (
            isinstance(record, dict)
            and record.keys() == types.keys()
            and all(type(record[k]) is kind for k, kind in types.items())
        ):
            return Checkpoint(**record)
    except ValueError:
        pass
    return text


def _read_anchor(path: Path) -> list[Checkpoint | str]:
    """Every line of the anchor file (none if it does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError:
        raise errors.ConfigError(
            ["cannot read the anchor file; check its permissions"], str(path)
        ) from None
    return [_checkpoint_from(line) for line in text.splitlines() if line.strip()]


def _last_seq(fd: int, path: Path) -> int:
    """The sequence number of the last checkpoint in the anchor file open at ``fd`` (0: empty)."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, 65_536, max(0, size - 65_536)).decode("utf-8", errors="replace")
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return 0
    last = _checkpoint_from(lines[-1])
    if isinstance(last, str):
        raise AnchorBroken(
            f"the anchor file {path} does not end with a checkpoint line; keep it for the "
            "audit and point audit.anchor_path at a new file"
        )
    return last.seq


# --- export --------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula (CSV injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def export_csv(entries: Iterable[AuditEntry], stream: IO[str]) -> int:
    """Write entries as CSV with a header row; return how many were written."""
    writer = csv.writer(stream)
    writer.writerow([f.name for f in fields(AuditEntry)])
    count = 0
    for entry in entries:
        writer.writerow([spreadsheet_cell(v) for v in asdict(entry).values()])
        count += 1
    return count


def export_jsonl(entries: Iterable[AuditEntry], stream: IO[str]) -> int:
    """Write entries as JSON Lines; return how many were written."""
    count = 0
    for entry in entries:
        record = asdict(entry)
        record["changed_fields"] = json.loads(entry.changed_fields)
        stream.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count
