"""The audit (sync) log: one append-only, hash-chained entry per remote write and state change.

Each entry records when, who, which flow and direction, both ids, the action, its outcome, an
error code, the *names* of changed fields (never their values: no personal data enters the
log) and the mapping version. Its ``hash`` is SHA-256 over the previous entry's hash and the
entry's own canonical serialisation, so changing, removing or reordering any entry breaks the
chain from that entry on; ``verify()`` finds the first broken one. SQLite triggers refuse
UPDATE and DELETE on the table.

Entries are appended inside the caller's transaction (``with store.transaction():``), so an
entry commits or rolls back with the change it records. ``StateStore`` transactions are
``BEGIN IMMEDIATE``: one writer at a time, so reading the last hash and inserting cannot fork
the chain.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import IO, Any, Literal

from connector.state import StateStore

GENESIS = "0" * 64
OUTCOMES = ("ok", "failed", "ambiguous", "quarantined", "skipped", "not_applicable", "dead")
Direction = Literal["inbound", "outbound", "local"]


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


_CONTENT = [f.name for f in fields(AuditEntry) if f.name not in ("id", "hash")]


def entry_hash(values: dict[str, Any]) -> str:
    """SHA-256 hex of an entry's content (every column but ``id`` and ``hash``), prev_hash included."""
    canonical = json.dumps(
        {k: values[k] for k in _CONTENT}, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of recomputing the chain."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    problem: str | None = None


class AuditLog:
    """The audit log in the state file."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

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
        """Append one entry (inside the caller's transaction)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}; use one of {OUTCOMES}")
        last = self.store.db.execute(
            "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
        values: dict[str, Any] = {
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
            "prev_hash": last[0] if last else GENESIS,
        }
        values["hash"] = entry_hash(values)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        sql = f"INSERT INTO audit_log ({columns}) VALUES ({marks})"  # noqa: S608 (our columns)
        cursor = self.store.db.execute(sql, list(values.values()))
        return AuditEntry(id=int(cursor.lastrowid or 0), **values)

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

    def timeline(self, tracking_id: str) -> list[AuditEntry]:
        """One complaint's whole history on both sides, found through its links."""
        row = self.store.db.execute(
            "SELECT lapor_id, agency_id FROM links WHERE tracking_id = ?", [tracking_id]
        ).fetchone()
        lapor_id, agency_id = row if row else (None, None)
        sql = "SELECT * FROM audit_log WHERE tracking_id = ? OR lapor_id = ? OR agency_id = ? ORDER BY id"
        return [
            AuditEntry(**r) for r in self.store.db.query(sql, [tracking_id, lapor_id, agency_id])
        ]

    def verify(self) -> VerifyResult:
        """Recompute the chain from the first entry; report the first entry that does not fit."""
        previous_hash, previous_id, checked = GENESIS, 0, 0
        try:
            for row in self.store.db.query("SELECT * FROM audit_log ORDER BY id"):
                entry_id = row["id"]
                if entry_id != previous_id + 1:
                    return VerifyResult(
                        False,
                        checked,
                        entry_id,
                        f"entries {previous_id + 1}..{entry_id - 1} are missing",
                    )
                if row["prev_hash"] != previous_hash:
                    return VerifyResult(
                        False,
                        checked,
                        entry_id,
                        "it does not follow the entry before it (prev_hash differs)",
                    )
                if entry_hash(row) != row["hash"]:
                    return VerifyResult(
                        False, checked, entry_id, "its content was changed after it was written"
                    )
                previous_hash, previous_id, checked = row["hash"], entry_id, checked + 1
        except sqlite3.DatabaseError as error:
            return VerifyResult(
                False, checked, previous_id + 1, f"the state file cannot be read ({error})"
            )
        return VerifyResult(True, checked)


# --- export --------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
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
        writer.writerow([_cell(v) for v in asdict(entry).values()])
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
