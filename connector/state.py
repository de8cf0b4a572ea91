"""The connector's own state, in one SQLite file: what was pulled, cursors, and the quarantine.

The file is opened in WAL mode with ``synchronous=FULL`` and a busy timeout; its schema is
versioned (``PRAGMA user_version``) and migrated forward on open. Writes that belong together
run in one transaction (``with store.transaction():``), so a cursor never advances past rows
that were not committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from connector.clock import Clock
from connector.errors import ConfigError
from connector.models import ComplaintSummary, InvalidRecord
from connector.privacy import private_dir, private_umask, redacted_record, redacted_text, tighten

MIGRATIONS: tuple[str, ...] = (
    # 1: complaints seen on LAPOR!, cursors, quarantine
    """
    CREATE TABLE lapor_complaints (
        lapor_id INTEGER PRIMARY KEY,
        tracking_id TEXT NOT NULL,
        title TEXT NOT NULL,
        status TEXT NOT NULL,
        status_name TEXT NOT NULL,
        channel_id INTEGER,
        classification_id INTEGER,
        category_id INTEGER,
        disposition_id INTEGER,
        disposition_name TEXT,
        is_secret INTEGER NOT NULL,
        is_anonymous INTEGER NOT NULL,
        external_ref TEXT,
        overdue INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        pulled_at TEXT NOT NULL
    );
    CREATE INDEX lapor_complaints_tracking_id ON lapor_complaints (tracking_id);
    CREATE TABLE cursors (
        flow TEXT PRIMARY KEY,
        watermark TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        record_key TEXT NOT NULL,
        record_id TEXT,
        problems TEXT NOT NULL,
        raw TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        times_seen INTEGER NOT NULL DEFAULT 1,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        UNIQUE (source, record_key)
    );
    """,
    # 2: two-way sync: links between ids, the outbox of remote writes, the audit log
    """
    CREATE TABLE links (
        id INTEGER PRIMARY KEY,
        lapor_id INTEGER UNIQUE,
        tracking_id TEXT,
        agency_id TEXT UNIQUE,
        origin TEXT NOT NULL CHECK (origin IN ('lapor', 'agency')),
        disposed_away INTEGER NOT NULL DEFAULT 0,
        lapor_status TEXT,
        lapor_state TEXT,
        agency_status TEXT,
        lapor_updated_at TEXT,
        agency_updated_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX links_tracking_id ON links (tracking_id);
    CREATE TABLE followup_links (
        id INTEGER PRIMARY KEY,
        lapor_followup_id INTEGER UNIQUE,
        agency_followup_id TEXT UNIQUE,
        lapor_id INTEGER NOT NULL,
        agency_id TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
        created_at TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        flow TEXT NOT NULL,
        target TEXT NOT NULL CHECK (target IN ('lapor', 'agency')),
        operation TEXT NOT NULL,
        subject TEXT NOT NULL,
        payload TEXT NOT NULL,
        lookup TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'done', 'failed', 'dead', 'acknowledged')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        last_error_code TEXT,
        result TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        flow TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'local')),
        lapor_id INTEGER,
        tracking_id TEXT,
        agency_id TEXT,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        error_code TEXT,
        changed_fields TEXT NOT NULL,
        mapping_version TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_log_tracking_id ON audit_log (tracking_id);
    CREATE INDEX audit_log_lapor_id ON audit_log (lapor_id);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    # 3: the keyed audit log: which key MACed an entry (NULL: the plain SHA-256 chain), and
    # checkpoints, MACed with the key and also appended to the anchor file outside the state
    """
    ALTER TABLE audit_log ADD COLUMN key_id TEXT;
    CREATE TABLE audit_checkpoints (
        seq INTEGER PRIMARY KEY,
        entry_count INTEGER NOT NULL,
        last_mac TEXT NOT NULL,
        at TEXT NOT NULL,
        key_id TEXT NOT NULL,
        mac TEXT NOT NULL
    );
    CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'the audit checkpoints are append-only'); END;
    CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
        BEGIN SELECT RAISE(ABORT, 'the audit checkpoints are append-only'); END
    """,
    # 4: which installation the state belongs to (so a lost or foreign state is never taken for
    # a fresh install), and each flow's last real run (not its last cursor move)
    """
    CREATE TABLE installation (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE flow_runs (
        flow TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        outcome TEXT NOT NULL
    )
    """,
    # 5: request economy: master data cached between runs, what the last follow-ups read (C3)
    # of each complaint saw, and the request pacer's last minute (so a restart does not burst)
    """
    CREATE TABLE master_data (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    ALTER TABLE links ADD COLUMN followups_seen INTEGER;
    ALTER TABLE links ADD COLUMN last_followup_at TEXT;
    CREATE TABLE pacer (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)
    """,
    # 6: SLA: what LAPOR! said of each linked complaint's clock (its history and its own
    # deadlines), and the last SLA state recorded, so a transition is audited once
    """
    CREATE TABLE sla_facts (
        lapor_id INTEGER PRIMARY KEY,
        tracking_id TEXT,
        unit TEXT,
        status TEXT NOT NULL,
        disposition_id INTEGER,
        created_at TEXT NOT NULL,
        disposed_at TEXT,
        first_followup_at TEXT,
        last_institution_followup_at TEXT,
        last_reply_at TEXT,
        closed_at TEXT,
        verify_by TEXT,
        first_followup_by TEXT,
        auto_close_at TEXT,
        recorded_state TEXT,
        disagreement TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX sla_facts_unit ON sla_facts (unit, created_at);
    -- a state with no link yet has nothing to fill from an inbox listing from the beginning
    INSERT INTO master_data (name, body, fetched_at)
        SELECT 'sla.backfill', '{"done": true}', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')
        WHERE NOT EXISTS (SELECT 1 FROM links)
    """,
    # 7: what the agency was last told of LAPOR!'s own fields of a complaint (fingerprints of
    # its title and content, its category and report type), so a later change there is sent
    """
    ALTER TABLE links ADD COLUMN lapor_fields TEXT
    """,
    # 8: LAPOR! files (a complaint's, or a reply's) already stored in the agency system, so none is
    # fetched (C9) or uploaded twice
    """
    CREATE TABLE attachment_links (
        lapor_file_id INTEGER PRIMARY KEY,
        agency_attachment_id TEXT NOT NULL,
        lapor_id INTEGER NOT NULL,
        agency_id TEXT NOT NULL,
        lapor_followup_id INTEGER,
        created_at TEXT NOT NULL
    )
    """,
    # 9: reconcile: a link whose record is gone on one side is marked (never deleted), when the
    # daemon's sweep last saw each link, and where the sweep stands in its pass of the inbox
    """
    ALTER TABLE links ADD COLUMN gone TEXT CHECK (gone IN ('lapor', 'agency'));
    ALTER TABLE links ADD COLUMN gone_at TEXT;
    ALTER TABLE links ADD COLUMN reconciled_at TEXT;
    CREATE TABLE reconcile_sweep (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)
    """,
)

SaveOutcome = Literal["new", "changed", "unchanged"]


_STATE_FIX = (
    "create it writable by the user the connector runs as, or set state.path to a writable "
    "place (e.g. /var/lib/lapor-connector/connector.sqlite)"
)


def unusable_state_path(path: Path, error: OSError | sqlite3.Error) -> ConfigError:
    """The one-line error for a state path that cannot be created or written."""
    reason = getattr(error, "strerror", None) or str(error)
    return ConfigError(
        [f"state.path: {path} cannot be created or written ({reason}); {_STATE_FIX}"]
    )


def state_path_problems(path: Path) -> list[str]:
    """Why the state cannot live at ``path`` (its folder cannot be made or written, the file
    is not a writable file); none when it can. Probes with a temporary folder that is removed
    again; the state itself is not created."""
    if path.exists():
        if path.is_dir():
            return [f"state.path: {path} is a folder, not a file; {_STATE_FIX}"]
        if not os.access(path, os.R_OK | os.W_OK):
            return [f"state.path: {path} is not readable and writable; {_STATE_FIX}"]
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return [f"state.path: {path}: {existing} is not a folder; {_STATE_FIX}"]
    try:
        probe = tempfile.mkdtemp(prefix=".lapor-connector-probe-", dir=existing)
        os.rmdir(probe)
    except OSError as error:
        return [unusable_state_path(path, error).problems[0]]
    return []


def _statements(script: str) -> list[str]:
    """Split a migration into complete statements (trigger bodies hold semicolons)."""
    statements, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                statements.append(current.strip())
            current = ""
    return statements


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class QuarantineEntry:
    """A quarantined record: where it came from, its id, and what is wrong with it."""

    id: int
    source: str
    record_id: str | None
    problems: list[str]
    status: str
    times_seen: int
    first_seen: datetime
    last_seen: datetime
    #: The record as kept (it may hold personal data: never logged or printed).
    raw: Any = field(default=None, repr=False, compare=False)


def _entry(row: dict[str, Any]) -> QuarantineEntry:
    return QuarantineEntry(
        id=row["id"],
        source=row["source"],
        record_id=row["record_id"],
        problems=json.loads(row["problems"]),
        status=row["status"],
        times_seen=row["times_seen"],
        first_seen=_parse(row["first_seen"]),
        last_seen=_parse(row["last_seen"]),
        raw=json.loads(row["raw"]) if row.get("raw") else None,
    )


class StateStore:
    """The connector's SQLite state file."""

    def __init__(self, path: str | Path, clock: Clock) -> None:
        self.path = Path(path)
        self.clock = clock
        try:
            private_dir(self.path.parent)
            # SQLite gives the -wal and -shm files the state file's own mode: 0600, set here.
            for existing in (self.path, *(Path(f"{self.path}{end}") for end in ("-wal", "-shm"))):
                tighten(existing)
            with private_umask():
                conn = sqlite3.connect(
                    str(self.path), timeout=30, isolation_level=None, check_same_thread=False
                )
        except (OSError, sqlite3.OperationalError) as error:
            raise unusable_state_path(self.path, error) from None
        self.db = sqlite_utils.Database(conn)
        try:
            self.db.execute("PRAGMA journal_mode = WAL")
            # Deleted and overwritten rows are zeroed, not left in free pages (docs/privacy.md).
            self.db.execute("PRAGMA secure_delete = ON")
            self.db.execute("PRAGMA synchronous = FULL")
            self.db.execute("PRAGMA busy_timeout = 30000")
            self.db.execute("PRAGMA foreign_keys = ON")
            self._depth = 0
            #: Run inside every outermost transaction just before it commits (small writes that
            #: ride along with it, such as the request pacer's last minute: no extra fsync).
            self.before_commit: list[Callable[[], None]] = []
            self._migrate()
        except ConfigError:
            conn.close()
            raise
        except sqlite3.DatabaseError as error:
            conn.close()
            if isinstance(
                error, sqlite3.OperationalError
            ):  # cannot open or write it: a path problem
                raise unusable_state_path(self.path, error) from None
            raise ConfigError(
                [
                    f"state.path: {self.path} is not a usable state file ({error}); restore it "
                    "from a backup, or move it aside and run `lapor-connector state rebuild`"
                ]
            ) from None

    def close(self) -> None:
        """Close the database file."""
        self.db.conn.close()

    def checkpoint_wal(self) -> bool:
        """Copy the WAL into the state file and empty it, so pages a settled write or a prune
        replaced do not linger there; False when a reader kept it (the next one does it)."""
        self.db.execute("PRAGMA busy_timeout = 2000")
        try:
            busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            self.db.execute("PRAGMA busy_timeout = 30000")
        return not busy

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version this file is at."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            # A downgrade: exit 3 (configuration), which the systemd unit does not restart.
            raise ConfigError(
                [
                    f"state.path: {self.path} has schema version {version}, newer than this "
                    f"connector knows ({len(MIGRATIONS)}); install the newer connector again, or "
                    "restore the backup taken before the upgrade (docs/deploy.md)"
                ]
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in _statements(script):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def rehearsal(self) -> Iterator[None]:
        """Everything in the block is rolled back at its end (a dry run writes nothing at all).

        The transaction is deferred: it takes SQLite's write lock only if something in the
        block writes, so a dry run beside the daemon does not hold the daemon up."""
        self.db.execute("BEGIN")
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self.db.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block in one transaction (nested blocks join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            for hook in self.before_commit:
                hook()
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    # --- complaints seen on LAPOR! ---------------------------------------------------------

    def save_complaint(self, complaint: ComplaintSummary) -> SaveOutcome:
        """Record a complaint as listed on LAPOR!; say whether it is new, changed or unchanged."""
        row = self.db.execute(
            "SELECT updated_at FROM lapor_complaints WHERE lapor_id = ?", [complaint.lapor_id]
        ).fetchone()
        if row is not None and _parse(row[0]) >= complaint.updated_at:
            return "unchanged"
        self.db.table("lapor_complaints").upsert(
            {
                "lapor_id": complaint.lapor_id,
                "tracking_id": complaint.tracking_id,
                "title": complaint.title,
                "status": complaint.status.value,
                "status_name": complaint.status_name,
                "channel_id": complaint.channel_id,
                "classification_id": complaint.classification_id,
                "category_id": complaint.category_id,
                "disposition_id": complaint.disposition_id,
                "disposition_name": complaint.disposition_name,
                "is_secret": int(complaint.is_secret),
                "is_anonymous": int(complaint.is_anonymous),
                "external_ref": complaint.external_ref,
                "overdue": int(complaint.deadlines.overdue),
                "created_at": _iso(complaint.created_at),
                "updated_at": _iso(complaint.updated_at),
                "pulled_at": _iso(self.clock.now()),
            },
            pk="lapor_id",
        )
        return "new" if row is None else "changed"

    def complaints(self) -> list[dict[str, Any]]:
        """Every complaint seen on LAPOR!, most recently updated first."""
        return list(
            self.db.query("SELECT * FROM lapor_complaints ORDER BY updated_at DESC, lapor_id DESC")
        )

    def count_complaints(self) -> int:
        """How many complaints have been seen."""
        return int(self.db.execute("SELECT count(*) FROM lapor_complaints").fetchone()[0])

    # --- cursors ---------------------------------------------------------------------------

    def watermark(self, flow: str) -> datetime | None:
        """Where ``flow`` stopped last time (None if it never ran)."""
        row = self.db.execute("SELECT watermark FROM cursors WHERE flow = ?", [flow]).fetchone()
        return _parse(row[0]) if row else None

    def set_watermark(self, flow: str, value: datetime) -> None:
        """Move ``flow``'s cursor forward to ``value`` (never backwards)."""
        current = self.watermark(flow)
        if current is not None and value <= current:
            return
        self.db.table("cursors").upsert(
            {"flow": flow, "watermark": _iso(value), "updated_at": _iso(self.clock.now())},
            pk="flow",
        )

    # --- cached master data and other small documents ----------------------------------------

    def cached(self, name: str) -> tuple[Any, datetime] | None:
        """A cached master-data document and when it was fetched, or None."""
        row = self.db.execute(
            "SELECT body, fetched_at FROM master_data WHERE name = ?", [name]
        ).fetchone()
        return None if row is None else (json.loads(row[0]), _parse(row[1]))

    def cache(self, name: str, body: Any) -> None:
        """Keep a master-data document (inside the caller's transaction)."""
        self.db.execute(
            "INSERT INTO master_data (name, body, fetched_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at",
            [name, json.dumps(body, separators=(",", ":")), _iso(self.clock.now())],
        )

    def pacer_state(self, name: str) -> Any:
        """The request pacer's saved state for one token (None when there is none)."""
        row = self.db.execute("SELECT value FROM pacer WHERE name = ?", [name]).fetchone()
        return None if row is None else json.loads(row[0])

    def save_pacer_state(self, name: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO pacer (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [name, json.dumps(value, separators=(",", ":")), _iso(self.clock.now())],
        )

    # --- the installation and the flows' runs ------------------------------------------------

    def identity(self) -> dict[str, str]:
        """What this state belongs to (LAPOR! institution, agency system); empty when new."""
        return dict(self.db.execute("SELECT name, value FROM installation").fetchall())

    def set_identity(self, values: dict[str, str]) -> None:
        """Record what this state belongs to (inside the caller's transaction)."""
        for name, value in values.items():
            self.db.execute(
                "INSERT OR REPLACE INTO installation (name, value) VALUES (?, ?)", [name, value]
            )

    def is_blank(self) -> bool:
        """True when nothing was ever synced with this state (no link, no cursor, no write)."""
        return not any(
            self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608 (ours)
            for table in ("links", "cursors", "outbox", "followup_links")
        )

    def record_flow_run(self, flow: str, started: datetime, outcome: str) -> None:
        """A flow's run ended (``ok``, ``attention`` or ``failed``)."""
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO flow_runs (flow, started_at, finished_at, outcome) "
                "VALUES (?, ?, ?, ?)",
                [flow, _iso(started), _iso(self.clock.now()), outcome],
            )

    def flow_runs(self) -> dict[str, dict[str, str]]:
        """Each flow's last run: started_at, finished_at, outcome."""
        rows = self.db.query("SELECT * FROM flow_runs")
        return {
            row["flow"]: {k: row[k] for k in ("started_at", "finished_at", "outcome")}
            for row in rows
        }

    # --- quarantine ------------------------------------------------------------------------

    def quarantine(self, record: InvalidRecord) -> int:
        """Keep an invalid record with its problems; seeing it again counts, it is not duplicated."""
        whole = json.dumps(record.raw, sort_keys=True, default=str)
        key = record.record_id or "sha256:" + hashlib.sha256(whole.encode()).hexdigest()[:20]
        # Kept redacted: a replay reads the record again from its source.
        raw = json.dumps(redacted_record(record.raw), sort_keys=True, default=str)
        now = _iso(self.clock.now())
        problems = json.dumps([redacted_text(str(p), {"raw": record.raw}) for p in record.problems])
        self.db.execute(
            """
            INSERT INTO quarantine (source, record_key, record_id, problems, raw, first_seen, last_seen)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (source, record_key) DO UPDATE SET
                problems = excluded.problems, raw = excluded.raw, last_seen = excluded.last_seen,
                times_seen = times_seen + 1, status = 'open'
            """,
            [record.source, key, record.record_id, problems, raw, now, now],
        )
        row = self.db.execute(
            "SELECT id FROM quarantine WHERE source = ? AND record_key = ?", [record.source, key]
        ).fetchone()
        return int(row[0])

    def quarantined(self, status: str = "open") -> list[QuarantineEntry]:
        """Quarantined records with the given status, oldest first."""
        rows = self.db.query("SELECT * FROM quarantine WHERE status = ? ORDER BY id", [status])
        return [_entry(row) for row in rows]

    def quarantine_entry(self, entry_id: int) -> QuarantineEntry | None:
        """One quarantine entry, whatever its status."""
        rows = list(self.db.query("SELECT * FROM quarantine WHERE id = ?", [entry_id]))
        return _entry(rows[0]) if rows else None

    def acknowledge_quarantine(self, entry_id: int) -> bool:
        """Give up on an open quarantined record, on the record; False if there is none."""
        cursor = self.db.execute(
            "UPDATE quarantine SET status = 'acknowledged' WHERE id = ? AND status = 'open'",
            [entry_id],
        )
        return cursor.rowcount > 0

    def release(self, source: str, record_id: str) -> None:
        """Close a quarantine entry: the record has since synced."""
        self.db.execute(
            "UPDATE quarantine SET status = 'resolved' WHERE source = ? AND record_id = ? AND status = 'open'",
            [source, record_id],
        )
