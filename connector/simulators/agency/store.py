"""The demo agency system's data, in its own SQLite file (it never shares the connector's)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import sqlite3
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

WIB = timezone(timedelta(hours=7))

CATEGORIES = [
    ("PTN", "Pertanahan", None), ("PTN-SRT", "Sertifikat", "PTN"), ("PTN-SKT", "Sengketa dan Konflik", "PTN"),
    ("PTN-UKR", "Pengukuran dan Pemetaan", "PTN"), ("YAN", "Pelayanan", None), ("YAN-PGL", "Pungutan Liar", "YAN"),
    ("YAN-ANT", "Antrian dan Waktu Layanan", "YAN"), ("YAN-SKP", "Sikap Petugas", "YAN"), ("LIN", "Lain-lain", None),
]  # fmt: skip
UNITS = [
    ("KANTAH-BDG", "Kantor Pertanahan Kota Bandung"), ("SEKSI-SP", "Seksi Survei dan Pemetaan"),
    ("SEKSI-HHP", "Seksi Hubungan Hukum Pertanahan"), ("SEKSI-PMP", "Seksi Penanganan Masalah dan Pengendalian"),
    ("SUBBAG-TU", "Subbagian Tata Usaha"),
]  # fmt: skip
STATUSES = [
    ("baru", "Baru", False), ("diverifikasi", "Diverifikasi", False), ("diproses", "Sedang Diproses", False),
    ("ditunda", "Ditunda", False), ("selesai", "Selesai", True), ("ditolak", "Ditolak", True),
    ("diarsipkan", "Diarsipkan", True), ("dialihkan", "Dialihkan ke instansi lain", True),
]  # fmt: skip
INTERNAL = [
    ("whatsapp", "PTN-SRT", "Sertifikat hak milik belum selesai", "Berkas diajukan Maret, sampai kini belum ada kabar."),
    ("counter", "YAN-ANT", "Loket tutup sebelum jam pelayanan berakhir", "Loket tutup pukul 14.00 padahal jadwal sampai 16.00."),
    ("web", "PTN-UKR", "Petugas ukur meminta biaya transport", "Petugas meminta uang transport di luar tarif resmi."),
    ("whatsapp", "YAN-PGL", "Calo di halaman kantor pertanahan", "Ada calo menawarkan percepatan sertifikat."),
    ("counter", "PTN-SKT", "Tumpang tindih sertifikat dengan tetangga", "Dua sertifikat terbit untuk bidang yang sama."),
]  # fmt: skip
NAMES = ["Ahmad Fauzi", "Sri Wahyuni", "Dedi Supriadi", "Lina Marlina", "Yusuf Maulana"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS complaints (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, source TEXT NOT NULL, channel TEXT NOT NULL,
    title TEXT NOT NULL, content TEXT NOT NULL, category_code TEXT, unit_code TEXT, status TEXT NOT NULL,
    is_secret INTEGER NOT NULL, is_anonymous INTEGER NOT NULL, reporter TEXT, lapor TEXT,
    report_to_lapor INTEGER NOT NULL, attachments TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    incident_date TEXT, tags TEXT, classification TEXT, changed_on_lapor TEXT, sla_state TEXT
);
CREATE TABLE IF NOT EXISTS followups (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, complaint_id TEXT NOT NULL, author TEXT NOT NULL,
    content TEXT NOT NULL, is_secret INTEGER NOT NULL, status_after TEXT, lapor_followup_id INTEGER,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, attachments TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, route TEXT NOT NULL, body_hash TEXT NOT NULL, status INTEGER NOT NULL, response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, complaint_id TEXT NOT NULL, file_name TEXT NOT NULL, content_type TEXT NOT NULL, data BLOB NOT NULL
);
"""


SLA_STAGES = ("verify", "first_followup", "auto_close", "ceiling")
SLA_STANDINGS = ("on_time", "at_risk", "overdue")
LAPOR_FIELDS = ("title", "content", "category", "classification")


def _check_sla_state(body: dict[str, Any]) -> dict[str, list[str]]:
    """Problems of a PATCH's ``sla_state`` (null, or stage, due, working_days_left, state)."""
    value = body.get("sla_state")
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) != {"stage", "due", "working_days_left", "state"}:
        return {"sla_state": ["an object of stage, due, working_days_left and state, or null"]}
    problems: dict[str, list[str]] = {}
    if value["stage"] not in SLA_STAGES:
        problems["sla_state.stage"] = [f"one of {', '.join(SLA_STAGES)}"]
    if value["state"] not in SLA_STANDINGS:
        problems["sla_state.state"] = [f"one of {', '.join(SLA_STANDINGS)}"]
    days = value["working_days_left"]
    if not isinstance(days, int) or isinstance(days, bool):
        problems["sla_state.working_days_left"] = ["an integer"]
    try:
        date.fromisoformat(str(value["due"]))
        if len(str(value["due"])) != 10:
            raise ValueError
    except ValueError:
        problems["sla_state.due"] = ["a date, YYYY-MM-DD"]
    return problems


def _check_changed_on_lapor(body: dict[str, Any]) -> dict[str, list[str]]:
    """Problems of a PATCH's ``changed_on_lapor`` (null, or fields and at)."""
    value = body.get("changed_on_lapor")
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) != {"fields", "at"}:
        return {"changed_on_lapor": ["an object of fields and at, or null"]}
    problems: dict[str, list[str]] = {}
    names = value["fields"]
    if not isinstance(names, list) or not names or not set(names) <= set(LAPOR_FIELDS):
        problems["changed_on_lapor.fields"] = [f"a non-empty list of {', '.join(LAPOR_FIELDS)}"]
    try:
        if datetime.fromisoformat(str(value["at"])).utcoffset() is None:
            raise ValueError
    except ValueError:
        problems["changed_on_lapor.at"] = ["ISO 8601 with an offset"]
    return problems


class AgencyError(Exception):
    """An error answer of the agency API."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def encode_cursor(updated_at: str, item_id: str) -> str:
    """An opaque cursor: the last (updated_at, id) key served."""
    return base64.urlsafe_b64encode(json.dumps([updated_at, item_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        updated_at, item_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(updated_at), str(item_id)
    except (ValueError, TypeError):
        raise AgencyError(
            400, "BAD_CURSOR", "cursor is not one this server issued", {"cursor": ["invalid"]}
        ) from None


class AgencyStore:
    """Complaints and follow-ups of the demo agency, with a clock that only moves forward."""

    def __init__(self, path: Path, *, complaints: int, seed: int) -> None:
        self.lock = threading.RLock()
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.executescript(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(complaints)")}
        optional = ("incident_date", "tags", "classification", "changed_on_lapor", "sla_state")
        for column in optional:  # files made before these optional fields
            if column not in columns:
                self.db.execute(f"ALTER TABLE complaints ADD COLUMN {column} TEXT")
        if "attachments" not in {row[1] for row in self.db.execute("PRAGMA table_info(followups)")}:
            self.db.execute(
                "ALTER TABLE followups ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]'"
            )
        self._last = datetime.now(timezone.utc)
        #: Optional fields this system refuses like an older agency system (``/_sim/refuse``).
        self.refused: set[str] = set()
        if self.db.execute("SELECT count(*) FROM complaints").fetchone()[0] == 0:
            self._seed(complaints, seed)

    def close(self) -> None:
        self.db.close()

    def now(self) -> str:
        """A timestamp strictly later than every one issued before (so every write moves updated_at)."""
        current = max(datetime.now(timezone.utc), self._last + timedelta(microseconds=1))
        self._last = current
        return current.astimezone(WIB).isoformat(timespec="microseconds")

    def _next(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", [name]).fetchone()
        value = int(row[0]) + 1 if row else 1
        self.db.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", [name, str(value)]
        )
        return value

    def _seed(self, count: int, seed: int) -> None:
        rng = random.Random(seed)
        for n in range(count):
            channel, category, title, content = INTERNAL[n % len(INTERNAL)]
            anonymous = n == 2
            name = NAMES[n % len(NAMES)]
            reporter = (
                None
                if anonymous
                else {
                    "name": name,
                    "email": f"{name.split()[0].lower()}@contoh.id",
                    "phone": f"0812{rng.randint(10000000, 99999999)}",
                }
            )
            complaint = self.create_complaint({
                "source": "internal", "channel": channel, "title": title, "content": content,
                "category_code": category, "unit_code": "KANTAH-BDG", "status": "baru",
                "is_secret": n == 3, "is_anonymous": anonymous, "reporter": reporter,
                "report_to_lapor": n % 2 == 0, "incident_date": f"2026-{1 + n % 10:02d}-{1 + n % 27:02d}" if n % 3 else None,
                "tags": "sertifikat" if category == "PTN-SRT" else None,
            })  # fmt: skip
            if n % 2 == 1:
                self.add_followup(
                    complaint["id"],
                    {
                        "author": "agency",
                        "content": "Laporan diterima dan sedang diperiksa petugas.",
                        "status_after": "diproses",
                    },
                )

    # --- rendering -----------------------------------------------------------------------

    @staticmethod
    def complaint_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"], "source": row["source"], "channel": row["channel"], "title": row["title"],
            "content": row["content"], "category_code": row["category_code"], "unit_code": row["unit_code"],
            "status": row["status"], "is_secret": bool(row["is_secret"]), "is_anonymous": bool(row["is_anonymous"]),
            "reporter": json.loads(row["reporter"]) if row["reporter"] else None,
            "lapor": json.loads(row["lapor"]) if row["lapor"] else None,
            "report_to_lapor": bool(row["report_to_lapor"]), "attachments": json.loads(row["attachments"]),
            "incident_date": row["incident_date"], "tags": row["tags"], "classification": row["classification"],
            "changed_on_lapor": json.loads(row["changed_on_lapor"]) if row["changed_on_lapor"] else None,
            "sla_state": json.loads(row["sla_state"]) if row["sla_state"] else None,
            "created_at": row["created_at"], "updated_at": row["updated_at"],
        }  # fmt: skip

    @staticmethod
    def followup_json(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"], "complaint_id": row["complaint_id"], "author": row["author"], "content": row["content"],
            "is_secret": bool(row["is_secret"]), "status_after": row["status_after"],
            "lapor_followup_id": row["lapor_followup_id"], "attachments": json.loads(row["attachments"]),
            "created_at": row["created_at"], "updated_at": row["updated_at"],
        }  # fmt: skip

    # --- reads ---------------------------------------------------------------------------

    def page(
        self,
        table: str,
        *,
        updated_since: str | None,
        cursor: str | None,
        limit: int,
        where: dict[str, Any],
    ) -> tuple[list[sqlite3.Row], str | None]:
        clauses, params = [], []
        if updated_since:
            clauses.append("updated_at >= ?")
            params.append(updated_since)
        if cursor:
            last_at, last_id = decode_cursor(cursor)
            clauses.append("(updated_at > ? OR (updated_at = ? AND id > ?))")
            params += [last_at, last_at, last_id]
        for column, value in where.items():
            clauses.append(f"{column} = ?")
            params.append(value)
        sql = f"SELECT * FROM {table}"  # noqa: S608 (table and columns are ours)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY updated_at, id LIMIT ?"
        rows = self.db.execute(sql, [*params, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1]["updated_at"], rows[-1]["id"]) if more else None

    def complaint(self, complaint_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM complaints WHERE id = ?", [complaint_id]
        ).fetchone()
        if row is None:
            raise AgencyError(404, "NOT_FOUND", f"no complaint {complaint_id}")
        return row

    def followups(self, complaint_id: str) -> list[sqlite3.Row]:
        self.complaint(complaint_id)
        return self.db.execute(
            "SELECT * FROM followups WHERE complaint_id = ? ORDER BY seq", [complaint_id]
        ).fetchall()

    # --- writes --------------------------------------------------------------------------

    def create_complaint(self, body: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, list[str]] = {}
        for name in ("title", "content", "status"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                fields[name] = ["required text"]
        self._check_codes(body, fields)
        if fields:
            raise AgencyError(422, "VALIDATION_ERROR", "invalid complaint", fields)
        seq = self._next("complaint")
        complaint_id = f"ADU-2026-{seq:05d}"
        now = self.now()
        self.db.execute(
            "INSERT INTO complaints (id, seq, source, channel, title, content, category_code, unit_code, status, "
            "is_secret, is_anonymous, reporter, lapor, report_to_lapor, attachments, created_at, updated_at, "
            "incident_date, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [complaint_id, seq, body.get("source", "internal"), body.get("channel", "web"), body["title"], body["content"],
             body.get("category_code"), body.get("unit_code"), body["status"], int(bool(body.get("is_secret"))),
             int(bool(body.get("is_anonymous"))), json.dumps(body["reporter"]) if body.get("reporter") else None,
             json.dumps(body["lapor"]) if body.get("lapor") else None, int(bool(body.get("report_to_lapor"))), "[]", now, now,
             body.get("incident_date"), body.get("tags")],
        )  # fmt: skip
        return self.complaint_json(self.complaint(complaint_id))

    def _check_codes(self, body: dict[str, Any], fields: dict[str, list[str]]) -> None:
        if body.get("category_code") is not None and body["category_code"] not in {
            c for c, _, _ in CATEGORIES
        }:
            fields["category_code"] = ["unknown category"]
        if body.get("unit_code") is not None and body["unit_code"] not in {u for u, _ in UNITS}:
            fields["unit_code"] = ["unknown unit"]
        if body.get("status") is not None and body["status"] not in {s for s, _, _ in STATUSES}:
            fields["status"] = ["unknown status"]

    PATCHABLE = (
        "status",
        "category_code",
        "unit_code",
        "lapor",
        "is_secret",
        "is_anonymous",
        "title",
        "content",
        "classification",
        "changed_on_lapor",
        "sla_state",
    )
    #: Fields stored as JSON.
    STRUCTURED = ("lapor", "changed_on_lapor", "sla_state")

    def patch_complaint(
        self, complaint_id: str, body: dict[str, Any], if_unmodified_since: str | None
    ) -> dict[str, Any]:
        row = self.complaint(complaint_id)
        if if_unmodified_since is not None:
            try:
                expected = datetime.fromisoformat(if_unmodified_since)
            except ValueError:
                raise AgencyError(
                    400, "BAD_REQUEST", "If-Unmodified-Since must be ISO 8601 with an offset"
                ) from None
            if expected != datetime.fromisoformat(
                row["updated_at"]
            ):  # the same instant, whatever the offset
                raise AgencyError(409, "CONFLICT", "the complaint changed since you read it")
        unknown = set(body) - (set(self.PATCHABLE) - self.refused)
        fields: dict[str, list[str]] = {name: ["cannot be changed"] for name in unknown}
        self._check_codes(body, fields)
        fields.update(_check_sla_state(body) if "sla_state" not in unknown else {})
        fields.update(_check_changed_on_lapor(body) if "changed_on_lapor" not in unknown else {})
        if fields:
            raise AgencyError(422, "VALIDATION_ERROR", "invalid change", fields)
        values = {
            k: (
                json.dumps(v)
                if k in self.STRUCTURED and v is not None
                else int(v)
                if k in ("is_secret", "is_anonymous")
                else v
            )
            for k, v in body.items()
        }
        values["updated_at"] = self.now()
        assignments = ", ".join(f"{k} = ?" for k in values)
        sql = f"UPDATE complaints SET {assignments} WHERE id = ?"  # noqa: S608 (PATCHABLE columns only)
        self.db.execute(sql, [*values.values(), complaint_id])
        return self.complaint_json(self.complaint(complaint_id))

    def delete_complaint(self, complaint_id: str) -> dict[str, Any]:
        """An officer deletes a complaint (a duplicate, a test entry): from now on it is 404."""
        self.complaint(complaint_id)
        self.db.execute("DELETE FROM followups WHERE complaint_id = ?", [complaint_id])
        self.db.execute("DELETE FROM complaints WHERE id = ?", [complaint_id])
        return {"id": complaint_id, "deleted": True}

    def attach(
        self,
        complaint_id: str,
        file_name: str,
        content_type: str,
        data: bytes,
        base_url: str,
        *,
        followup_id: str | None = None,
    ) -> dict[str, Any]:
        """Store a file on a complaint (the counter scanned a document, WhatsApp sent a photo), or
        on one of its follow-ups (an officer's letter); its ``url`` downloads it."""
        row = self.complaint(complaint_id)
        if not file_name.strip() or "/" in file_name or "\\" in file_name:
            raise AgencyError(
                422, "VALIDATION_ERROR", "invalid file", {"file": ["a file name without a path"]}
            )
        table, owner = "complaints", complaint_id
        if followup_id is not None:
            row = self.db.execute(
                "SELECT * FROM followups WHERE id = ? AND complaint_id = ?",
                [followup_id, complaint_id],
            ).fetchone()
            if row is None:
                raise AgencyError(
                    404, "NOT_FOUND", f"no follow-up {followup_id} on complaint {complaint_id}"
                )
            table, owner = "followups", followup_id
        file_id = f"F-{self._next('file'):06d}"
        self.db.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, ?)",
            [file_id, complaint_id, file_name, content_type, data],
        )
        attachments: list[dict[str, Any]] = json.loads(row["attachments"])
        attachments.append({"id": file_id, "file_name": file_name, "content_type": content_type, "size": len(data),
                            "url": f"{base_url}/complaints/{complaint_id}/attachments/{file_id}"})  # fmt: skip
        self.db.execute(
            f"UPDATE {table} SET attachments = ?, updated_at = ? WHERE id = ?",  # noqa: S608 (ours)
            [json.dumps(attachments), self.now(), owner],
        )
        return attachments[-1]

    def file(self, complaint_id: str, file_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM files WHERE id = ? AND complaint_id = ?", [file_id, complaint_id]
        ).fetchone()
        if row is None:
            raise AgencyError(404, "NOT_FOUND", f"no file {file_id} on complaint {complaint_id}")
        return row

    def add_followup(self, complaint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.complaint(complaint_id)
        fields: dict[str, list[str]] = {}
        if body.get("author") not in ("agency", "reporter", "lapor_admin"):
            fields["author"] = ["one of agency, reporter, lapor_admin"]
        if not isinstance(body.get("content"), str) or not body["content"].strip():
            fields["content"] = ["required text"]
        if body.get("status_after") is not None and body["status_after"] not in {
            s for s, _, _ in STATUSES
        }:
            fields["status_after"] = ["unknown status"]
        if fields:
            raise AgencyError(422, "VALIDATION_ERROR", "invalid follow-up", fields)
        seq = self._next("followup")
        followup_id = f"TL-{seq:06d}"
        now = self.now()
        self.db.execute(
            "INSERT INTO followups (id, seq, complaint_id, author, content, is_secret, status_after, "
            "lapor_followup_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [followup_id, seq, complaint_id, body["author"], body["content"], int(bool(body.get("is_secret"))),
             body.get("status_after"), body.get("lapor_followup_id"), now, now],
        )  # fmt: skip
        if body.get("status_after"):
            self.db.execute(
                "UPDATE complaints SET status = ?, updated_at = ? WHERE id = ?",
                [body["status_after"], self.now(), complaint_id],
            )
        else:
            self.db.execute(
                "UPDATE complaints SET updated_at = ? WHERE id = ?", [self.now(), complaint_id]
            )
        row = self.db.execute("SELECT * FROM followups WHERE id = ?", [followup_id]).fetchone()
        return self.followup_json(row)

    # --- idempotency ---------------------------------------------------------------------

    def replay(self, key: str, route: str, body: bytes) -> tuple[int, dict[str, Any]] | None:
        """The first answer to this key, or None if new; 422 if the key came with another body."""
        row = self.db.execute("SELECT * FROM idempotency WHERE key = ?", [key]).fetchone()
        if row is None:
            return None
        if row["route"] != route or row["body_hash"] != hashlib.sha256(body).hexdigest():
            raise AgencyError(
                422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request"
            )
        return int(row["status"]), json.loads(row["response"])

    def remember(
        self, key: str, route: str, body: bytes, status: int, response: dict[str, Any]
    ) -> None:
        self.db.execute(
            "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
            [key, route, hashlib.sha256(body).hexdigest(), status, json.dumps(response)],
        )


#: A small valid PDF (one blank page): the letter an officer attaches to a follow-up in the demo.
SURAT_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
