"""The simulated LAPOR! world: complaints, follow-ups, uploads, the clock and the service rules.

Every operation takes the caller's institution id and applies the visibility and lifecycle rules
of the contract (sections 4 and 5). Operations raise ``ApiError`` with the HTTP status, machine
code, Indonesian message and field errors the service would answer with.
"""

from __future__ import annotations

import gc
import json
import random
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from connector.simulators.lapor import seed
from connector.simulators.lapor.inbox_index import InboxIndex
from connector.simulators.lapor.workdays import WIB, add_workdays

DEFAULT_START = datetime(2026, 11, 2, 9, 0, tzinfo=WIB)
AUTO_CLOSE_NOTE = "Laporan ditutup otomatis setelah 10 hari kerja"
MAX_FOLLOWUP = 5000
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png"})
DOC_EXTENSIONS = frozenset({"pdf", "doc", "docx", "xls", "xlsx"})
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# The first ids the simulator gives out of its own (small worlds keep them; large ones go past).
FIRST_COMPLAINT_ID = 5010600
FIRST_TRACKING_ID = 1916400
FIRST_FOLLOWUP_ID = 890001
FIRST_FILE_ID = 4199601


@dataclass
class ApiError(Exception):
    """An error answer: status, code, Indonesian message, field errors."""

    status: int
    code: str
    message: str
    errors: dict[str, list[str]] = field(default_factory=dict)


def _validation(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", "Data yang dikirim tidak valid.", errors)


def iso(moment: datetime) -> str:
    """ISO 8601 in WIB, second precision."""
    return moment.astimezone(WIB).isoformat(timespec="seconds")


def wib(moment: datetime) -> str:
    """d-m-Y H:i:s in WIB."""
    return moment.astimezone(WIB).strftime("%d-%m-%Y %H:%M:%S")


def _flag(value: object, name: str, errors: dict[str, list[str]]) -> bool:
    if value in (True, 1, "1", "true", "True"):
        return True
    if value in (None, False, 0, "0", "false", "False", ""):
        return False
    errors.setdefault(name, []).append(f"Kolom {name} harus bernilai 0 atau 1.")
    return False


def _int(
    value: object, name: str, errors: dict[str, list[str]], *, required: bool = True
) -> int | None:
    if value in (None, ""):
        if required:
            errors.setdefault(name, []).append(f"Kolom {name} wajib diisi.")
        return None
    if isinstance(value, bool):
        errors.setdefault(name, []).append(f"Kolom {name} harus berupa angka.")
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    errors.setdefault(name, []).append(f"Kolom {name} harus berupa angka.")
    return None


def _location(value: object, errors: dict[str, list[str]]) -> int | None:
    """location_id: required, an integer (or numeric string) of LAPOR!'s location list."""
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())
    ):
        errors.setdefault("location_id", []).append("location_id wajib diisi dan berupa angka")
        return None
    location = int(value)
    if location not in seed.LOCATION_IDS:
        errors.setdefault("location_id", []).append("Lokasi tidak ditemukan.")
        return None
    return location


def _is_date(value: object) -> bool:
    """A Y-m-d calendar date."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


class World:
    """All simulated state; one lock guards it."""

    def __init__(
        self,
        *,
        seed_value: int,
        complaints: int,
        institution_id: int,
        start: datetime | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.institution_id = institution_id
        self.reset(seed_value, complaints, start)

    def reset(self, seed_value: int, complaints: int, start: datetime | None = None) -> None:
        """Regenerate everything from the seed; counters start again."""
        collecting = gc.isenabled()
        gc.disable()  # 100,000 fresh dicts set off collection after collection, none of them garbage
        try:
            with self.lock:
                self._generate(seed_value, complaints, start)
        finally:
            if collecting:
                gc.enable()

    def _generate(self, seed_value: int, complaints: int, start: datetime | None) -> None:
        self.rng = random.Random(seed_value)
        self.now = (start or DEFAULT_START).replace(microsecond=0)
        self.institutions = {i["id"]: i for i in seed.institutions(self.institution_id)}
        self.categories = {c["id"]: c for c in seed.categories()}
        generated, followups = seed.complaints(self.rng, complaints, self.institution_id, self.now)
        self.complaints: dict[int, dict[str, Any]] = {c["id"]: c for c in generated}
        self.followups: dict[int, list[dict[str, Any]]] = followups
        self.uploads: dict[int, dict[str, Any]] = {}
        # New ids continue after the highest seeded one: a large world numbers past the floors.
        self.next_complaint_id: int = 1 + max([FIRST_COMPLAINT_ID - 1, *self.complaints])
        self.next_tracking: int = 1 + max(
            [FIRST_TRACKING_ID - 1, *(int(c["tracking_id"]) for c in generated)]
        )
        # next_followup_id and next_file_id are the last ids given out (incremented before use).
        self.next_followup_id: int = max(
            [FIRST_FOLLOWUP_ID - 1, *(f["id"] for items in followups.values() for f in items)]
        )
        self.next_file_id: int = max([FIRST_FILE_ID - 1, *self.uploads])
        self.requests: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.by_external_ref: dict[str, list[int]] = {}
        self.inbox_index = InboxIndex()
        self.inbox_index.rebuild(
            (c["updated_at"], c["id"]) for c in generated if self.visible(c, self.institution_id)
        )

    # --- clock and lifecycle -------------------------------------------------------------

    def set_clock(self, moment: datetime) -> None:
        """Move the clock (never backwards) and apply the working-day rules."""
        with self.lock:
            self.now = max(self.now, moment.replace(microsecond=0))
            self._apply_rules()

    def _apply_rules(self) -> None:
        for c in self.complaints.values():
            if (
                c["status"] == "in_process"
                and c["last_followup_at"]
                and not c["replied_since_followup"]
            ):
                if self.now >= add_workdays(c["last_followup_at"], 10):
                    self._change_status(c, "done", AUTO_CLOSE_NOTE, "auto_close")
            elif (
                c["status"] == "postponed"
                and c["postponed_at"]
                and self.now >= add_workdays(c["postponed_at"], 10)
            ):
                self._change_status(
                    c, "archived", "Laporan diarsipkan: data tidak dilengkapi", "status_change"
                )

    def _change_status(
        self, c: dict[str, Any], status: str, note: str, template: str = "status_change"
    ) -> None:
        old = c["status"]
        c["status"] = status
        c["postponed_at"] = self.now if status == "postponed" else None
        c["status_logs"].append({"note": note, "at": self.now})
        c["logs"].append(
            {"template_code": template, "at": self.now, "from": None, "to": None,
             "status_old": seed.STATUS_NAMES[old], "status_new": seed.STATUS_NAMES[status], "holder": c["disposition_id"]}
        )  # fmt: skip
        self._updated(c)

    def deadlines(self, c: dict[str, Any]) -> dict[str, Any]:
        verify_by = add_workdays(c["created_at"], 3)
        first_by = add_workdays(c["disposed_at"], 5) if c["disposed_at"] else None
        auto_close = (
            add_workdays(c["last_followup_at"], 10)
            if c["last_followup_at"]
            and c["status"] == "in_process"
            and not c["replied_since_followup"]
            else None
        )
        overdue = (c["status"] == "unverified" and self.now > verify_by) or (
            c["status"] == "verified" and first_by is not None and self.now > first_by
        )
        return {
            "verify_by": iso(verify_by),
            "first_followup_by": iso(first_by) if first_by else None,
            "auto_close_at": iso(auto_close) if auto_close else None,
            "overdue": overdue,
        }

    # --- visibility ----------------------------------------------------------------------

    def visible(self, c: dict[str, Any], viewer: int) -> bool:
        return viewer in c["holders"] or c["creator_id"] == viewer

    def get_visible(self, complaint_id: int, viewer: int) -> dict[str, Any]:
        c = self.complaints.get(complaint_id)
        if c is None or (not self.visible(c, viewer) and c["is_secret"]):
            raise ApiError(404, "NOT_FOUND", "Laporan tidak ditemukan.")
        if not self.visible(c, viewer):
            raise ApiError(403, "FORBIDDEN", "Laporan tidak didisposisikan kepada instansi Anda.")
        return c

    def get_held(self, complaint_id: int, viewer: int) -> dict[str, Any]:
        c = self.get_visible(complaint_id, viewer)
        if c["disposition_id"] != viewer:
            raise ApiError(
                403, "FORBIDDEN", "Laporan tidak lagi didisposisikan kepada instansi Anda."
            )
        if c["status"] in seed.TERMINAL:
            raise ApiError(409, "COMPLAINT_CLOSED", "Laporan sudah ditutup.")
        return c

    # --- renderings ----------------------------------------------------------------------

    def summary(self, c: dict[str, Any], *, followup_counts: bool = False) -> dict[str, Any]:
        """A C1 inbox item; with ``followup_counts``, what C3 lists summed up (``counts`` dialect)."""
        holder = c["disposition_id"]
        summary = {
            "id": c["id"], "tracking_id": c["tracking_id"], "title": c["title"], "channel": c["channel"],
            "classification_id": c["classification_id"], "category_id": c["category_id"],
            "location_id": c["location_id"], "is_secret": c["is_secret"], "is_anonymous": c["is_anonymous"],
            "status_code": c["status"], "status_name": seed.STATUS_NAMES[c["status"]],
            "disposition_id": holder,
            "disposition_name": self.institutions[holder]["name"] if holder in self.institutions else None,
            "external_ref": c["external_ref"], "created_at": iso(c["created_at"]),
            "updated_at": iso(c["updated_at"]), "deadlines": self.deadlines(c),
        }  # fmt: skip
        if followup_counts:
            summary.update(self.followup_counts(c))
        return summary

    def followup_counts(self, c: dict[str, Any]) -> dict[str, Any]:
        """How many items C3 lists for the complaint (every author), and the newest one's time."""
        items = self.followups.get(c["id"], [])
        newest = max((f["at"] for f in items), default=None)
        return {
            "followups_count": len(items),
            "last_followup_at": iso(newest) if newest is not None else None,
        }

    def detail(
        self, c: dict[str, Any], viewer: int, *, followup_counts: bool = False
    ) -> dict[str, Any]:
        reporter = c["reporter"] or {}
        hidden = c["is_anonymous"] or c["disposition_id"] != viewer
        data = {
            **self.summary(c, followup_counts=followup_counts),
            "content": c["content"],
            "date_of_incident": c["date_of_incident"],
            "tags_raw": c["tags_raw"],
            "reporter": {
                k: None if hidden else reporter.get(k) for k in ("name", "email", "phone")
            },
            "status_logs": [
                {"note": s["note"], "timestamp": wib(s["at"])} for s in c["status_logs"]
            ],
            "attachments": [self._attachment(f) for f in c["attachments"] if f in self.uploads],
        }
        logs = [self._data_log(c, n, log) for n, log in enumerate(c["logs"], start=1)]
        return {"data": data, "data_logs": logs}

    def _attachment(self, file_id: int) -> dict[str, Any]:
        f = self.uploads[file_id]
        return {
            "id": file_id,
            "file_name": f["file_name"],
            "extension": f["extension"],
            "path": f"/files/{file_id}",
        }

    def _data_log(self, c: dict[str, Any], number: int, log: dict[str, Any]) -> dict[str, Any]:
        template = next(t for t in seed.TEMPLATES if t["template_code"] == log["template_code"])
        holder = self.institutions.get(log["holder"]) if log["holder"] else None
        return {
            "id": c["id"] * 100 + number,
            "date": wib(log["at"]),
            "template_code": log["template_code"],
            "content": template["content"],
            "institution_from_name": log["from"] or "Admin Nasional SP4N-LAPOR!",
            "institution_to_name": log["to"] or (holder["name"] if holder else None),
            "data": json.dumps(
                {
                    "status_old": {"name": log["status_old"]},
                    "status_new": {"name": log["status_new"]},
                }
            ),
            "attachments": [],
        }

    def followup_item(self, c: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        own = self.institutions.get(c["disposition_id"]) if c["disposition_id"] else None
        return {
            "id": item["id"], "created_at": wib(item["at"]), "content": item["content"],
            "template_code": item["template_code"],
            "institution_from_name": own["name"] if own and item["author_type"] == "institution" else None,
            "institution_to_name": None, "is_secret": item["is_secret"],
            "attachments": [self._attachment(f) for f in item.get("attachments", []) if f in self.uploads],
            "author_type": item["author_type"],
        }  # fmt: skip

    # --- reads ---------------------------------------------------------------------------

    def inbox(
        self, viewer: int, since: datetime | None, external_ref: str | None
    ) -> list[dict[str, Any]]:
        """Every complaint C1 lists, in its order (a full scan: the reference for ``inbox_page``)."""
        rows = [
            c
            for c in self.complaints.values()
            if self.visible(c, viewer)
            and (since is None or c["updated_at"] >= since)
            and (external_ref is None or c["external_ref"] == external_ref)
        ]
        return sorted(rows, key=lambda c: (c["updated_at"], c["id"]))

    def inbox_page(
        self, viewer: int, since: datetime | None, external_ref: str | None, offset: int, size: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many complaints C1 lists, and ``size`` of them from ``offset``, in its order.

        The simulator's own institution pages through the sorted index (O(log N + size)); an
        ``external_ref`` search looks at the complaints created with that reference only.
        """
        if external_ref is not None:
            found = (self.complaints[i] for i in self.by_external_ref.get(external_ref, []))
            rows = sorted(
                (
                    c
                    for c in found
                    if self.visible(c, viewer) and (since is None or c["updated_at"] >= since)
                ),
                key=lambda c: (c["updated_at"], c["id"]),
            )
            return len(rows), rows[offset : offset + size]
        if viewer != self.institution_id:
            rows = self.inbox(viewer, since, None)
            return len(rows), rows[offset : offset + size]
        ids = self.inbox_index.page_since(since, offset, size)
        return self.inbox_index.count_since(since), [self.complaints[i] for i in ids]

    # --- writes by the institution -------------------------------------------------------

    def add_followup(
        self, viewer: int, form: dict[str, Any], files: list[tuple[str, str, bytes, str]]
    ) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        complaint_id = _int(form.get("complaint_id"), "complaint_id", errors)
        content = str(form.get("content") or "")
        if not content.strip():
            errors.setdefault("content", []).append("Isi tindak lanjut wajib diisi.")
        elif len(content) > MAX_FOLLOWUP:
            errors.setdefault("content", []).append("Isi tindak lanjut maksimal 5000 karakter.")
        rating = _int(form.get("rating"), "rating", errors, required=False)
        if rating is not None and not 0 <= rating <= 5:
            errors.setdefault("rating", []).append("Penilaian harus antara 0 dan 5.")
        secret = _flag(form.get("is_secret"), "is_secret", errors)
        sender = _int(
            form.get("institution_from_id"), "institution_from_id", errors, required=False
        )
        if errors:
            raise _validation(errors)
        if sender is not None and sender != viewer:
            raise ApiError(403, "FORBIDDEN", "Instansi pengirim tidak sesuai dengan akun Anda.")
        assert complaint_id is not None
        c = self.get_held(complaint_id, viewer)
        attachment_ids = [self._store_file(name, data, ctype) for _, name, data, ctype in files]
        self.next_followup_id += 1
        item = {"id": self.next_followup_id, "at": self.now, "content": content, "author_type": "institution",
                "template_code": form.get("template_code") or "followup", "is_secret": secret, "attachments": attachment_ids}  # fmt: skip
        self.followups.setdefault(c["id"], []).append(item)
        c["last_followup_at"] = self.now
        c["replied_since_followup"] = False
        if c["status"] == "verified":
            self._change_status(c, "in_process", "Instansi memberikan tindak lanjut")
        self._updated(c)
        return {"id": item["id"], "complaint_id": c["id"], "created_at": wib(self.now)}

    def reject(self, viewer: int, complaint_id: int, body: dict[str, Any]) -> None:
        errors: dict[str, list[str]] = {}
        target = _int(body.get("reason"), "reason", errors)
        if target is not None and target not in self.institutions:
            errors.setdefault("reason", []).append("Instansi tujuan tidak ditemukan.")
        if errors:
            raise _validation(errors)
        c = self.get_held(complaint_id, viewer)
        assert target is not None
        c["disposition_id"] = target
        if target not in c["holders"]:
            c["holders"].append(target)
        c["disposed_at"] = self.now
        c["logs"].append(
            {"template_code": "reject", "at": self.now, "from": self.institutions[viewer]["name"],
             "to": self.institutions[target]["name"], "status_old": seed.STATUS_NAMES[c["status"]],
             "status_new": seed.STATUS_NAMES[c["status"]], "holder": target}
        )  # fmt: skip
        self._updated(c)

    TRANSITIONS: ClassVar[dict[str, tuple[set[str], str]]] = {
        "verify": ({"unverified", "postponed"}, "verified"),
        "postpone": ({"unverified", "verified", "in_process"}, "postponed"),
        "archive": ({"unverified", "postponed", "verified", "in_process"}, "archived"),
    }

    def process(self, viewer: int, complaint_id: int, action: str, note: str | None) -> None:
        c = self.get_held(complaint_id, viewer)
        allowed, new = self.TRANSITIONS[action]
        if c["status"] not in allowed:
            raise ApiError(
                409,
                "INVALID_TRANSITION",
                f"Status {seed.STATUS_NAMES[c['status']]} tidak dapat diubah dengan aksi ini.",
            )
        self._change_status(c, new, note or f"Aksi {action} oleh instansi")

    def create(self, viewer: int, body: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        for name in ("title", "content"):
            if not str(body.get(name) or "").strip():
                errors.setdefault(name, []).append(f"Kolom {name} wajib diisi.")
        channel = _int(body.get("channel"), "channel", errors)
        classification = _int(body.get("classification_id"), "classification_id", errors)
        if classification is not None and classification not in {
            c["id"] for c in seed.CLASSIFICATIONS
        }:
            errors.setdefault("classification_id", []).append("Klasifikasi tidak ditemukan.")
        category = _int(body.get("category_id"), "category_id", errors)
        if category is not None and category not in self.categories:
            errors.setdefault("category_id", []).append("Kategori tidak ditemukan.")
        location = _location(body.get("location_id"), errors)
        incident = body.get("date_of_incident")
        if incident in (None, ""):
            incident = None
        elif not _is_date(incident):
            errors.setdefault("date_of_incident", []).append(
                "Kolom date_of_incident harus berupa tanggal Y-m-d."
            )
        disposition = _int(body.get("disposition_id"), "disposition_id", errors, required=False)
        if disposition is not None and disposition not in self.institutions:
            errors.setdefault("disposition_id", []).append("Instansi tujuan tidak ditemukan.")
        secret = _flag(body.get("is_secret"), "is_secret", errors)
        anonymous = _flag(body.get("is_anonymous"), "is_anonymous", errors)
        user_id = _int(body.get("user_id"), "user_id", errors, required=False)
        reporter = None
        if user_id is None:
            if not _flag(
                body.get("is_new_user_slider"), "is_new_user_slider", errors
            ) or not body.get("nameUser"):
                errors.setdefault("user_id", []).append(
                    "Isi user_id, atau nameUser dengan emailUser/phoneUser untuk pelapor baru."
                )
            elif not (body.get("emailUser") or body.get("phoneUser")):
                errors.setdefault("emailUser", []).append("Isi emailUser atau phoneUser.")
            else:
                reporter = {
                    "name": body.get("nameUser"),
                    "email": body.get("emailUser"),
                    "phone": body.get("phoneUser"),
                }
        attachments = self._attachment_ids(body.get("attachments"), errors)
        if errors:
            raise _validation(errors)
        complaint_id, self.next_complaint_id = self.next_complaint_id, self.next_complaint_id + 1
        tracking, self.next_tracking = str(self.next_tracking), self.next_tracking + 1
        holders = [disposition] if disposition is not None else []
        c: dict[str, Any] = {
            "id": complaint_id, "tracking_id": tracking, "title": str(body["title"]), "content": str(body["content"]),
            "channel": channel, "classification_id": classification, "category_id": category,
            "location_id": location,
            "date_of_incident": incident, "tags_raw": str(body.get("tags_raw") or ""),
            "is_secret": secret, "is_anonymous": anonymous, "status": "unverified", "disposition_id": disposition,
            "holders": holders, "creator_id": viewer, "reporter": reporter, "attachments": attachments,
            "external_ref": body.get("external_ref") or None, "created_at": self.now, "updated_at": self.now,
            "disposed_at": None, "postponed_at": None, "last_followup_at": None, "replied_since_followup": False,
            "status_logs": [{"note": "Laporan diterima dari kanal instansi", "at": self.now}], "logs": [],
        }  # fmt: skip
        self.complaints[complaint_id] = c
        self.followups[complaint_id] = []
        if isinstance(c["external_ref"], str):  # a query string can only ever match a string
            self.by_external_ref.setdefault(c["external_ref"], []).append(complaint_id)
        self._reindex(c)
        return {
            "id": complaint_id,
            "tracking_id": tracking,
            "status_name": seed.STATUS_NAMES["unverified"],
        }

    def _attachment_ids(self, value: object, errors: dict[str, list[str]]) -> list[int]:
        if value in (None, False, "false", ""):
            return []
        if isinstance(value, str):
            text = value.strip().rstrip(".")  # older clients append a stray "."
            try:
                value = json.loads(text)
            except ValueError:
                errors.setdefault("attachments", []).append(
                    "Lampiran harus berupa daftar id dalam JSON."
                )
                return []
        if not isinstance(value, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in value
        ):
            errors.setdefault("attachments", []).append(
                "Lampiran harus berupa daftar id dalam JSON."
            )
            return []
        unknown = [i for i in value if i not in self.uploads]
        if unknown:
            errors.setdefault("attachments", []).append("Lampiran tidak ditemukan.")
        return list(value)

    def upload(self, files: list[tuple[str, str, bytes, str]]) -> dict[str, list[dict[str, Any]]]:
        if not files:
            raise _validation({"attachments": ["Lampiran wajib diisi."]})
        if len(files) > 10:
            raise _validation({"attachments": ["Maksimal 10 berkas."]})
        for _, name, data, _ in files:
            extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if extension not in IMAGE_EXTENSIONS | DOC_EXTENSIONS:
                raise _validation({"attachments": [f"Jenis berkas .{extension} tidak diizinkan."]})
            if len(data) > MAX_UPLOAD_BYTES:
                raise ApiError(
                    413,
                    "PAYLOAD_TOO_LARGE",
                    "Ukuran berkas maksimal 10 MB.",
                    {"attachments": ["Ukuran berkas maksimal 10 MB."]},
                )
        result: dict[str, list[dict[str, Any]]] = {"images": [], "docs": []}
        for _, name, data, ctype in files:
            file_id = self._store_file(name, data, ctype)
            kind = "images" if self.uploads[file_id]["extension"] in IMAGE_EXTENSIONS else "docs"
            result[kind].append({"id": file_id, "file_name": name})
        return result

    def _store_file(self, name: str, data: bytes, content_type: str) -> int:
        self.next_file_id += 1
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        self.uploads[self.next_file_id] = {
            "file_name": name,
            "extension": extension,
            "data": data,
            "content_type": content_type,
        }
        return self.next_file_id

    def attachment(self, viewer: int, complaint_id: int, file_id: int) -> dict[str, Any]:
        c = self.get_visible(complaint_id, viewer)
        in_followups = any(
            file_id in f.get("attachments", []) for f in self.followups.get(c["id"], [])
        )
        if file_id not in self.uploads or (file_id not in c["attachments"] and not in_followups):
            raise ApiError(404, "NOT_FOUND", "Lampiran tidak ditemukan.")
        return self.uploads[file_id]

    # --- citizen and admin actions (control plane) ---------------------------------------

    def submit(self, spec: dict[str, Any]) -> int:
        """A citizen submits a complaint on LAPOR! (not yet verified or disposed)."""
        body = {"title": spec.get("title") or "Laporan warga", "content": spec.get("content") or "Isi laporan",
                "channel": 26, "classification_id": 2, "category_id": spec.get("category_id") or 740,
                "location_id": spec.get("location_id") or seed.DEFAULT_LOCATION,
                "is_secret": spec.get("is_secret", False), "is_anonymous": spec.get("is_anonymous", False)}  # fmt: skip
        reporter = spec.get("reporter") or {
            "name": "Warga",
            "email": "warga@contoh.id",
            "phone": None,
        }
        body.update({"is_new_user_slider": True, "nameUser": reporter.get("name"),
                     "emailUser": reporter.get("email"), "phoneUser": reporter.get("phone")})  # fmt: skip
        created = self.create(seed.ADMIN_INSTITUTION, body)
        c = self.complaints[created["id"]]
        c["creator_id"] = None
        c["channel"] = 26
        self._reindex(c)
        return int(created["id"])

    def dispose(self, complaint_id: int, institution_id: int) -> None:
        c = self._existing(complaint_id)
        if institution_id not in self.institutions:
            raise ApiError(
                422,
                "VALIDATION_ERROR",
                "Instansi tidak ditemukan.",
                {"institution_id": ["tidak ditemukan"]},
            )
        c["disposition_id"] = institution_id
        if institution_id not in c["holders"]:
            c["holders"].append(institution_id)
        c["disposed_at"] = self.now
        if c["status"] in ("unverified", "postponed"):
            self._change_status(
                c, "verified", "Laporan diverifikasi dan didisposisikan", "disposition"
            )
            c["logs"][-1]["holder"] = institution_id
        else:
            c["logs"].append({"template_code": "disposition", "at": self.now, "from": None, "to": None,
                              "status_old": seed.STATUS_NAMES[c["status"]], "status_new": seed.STATUS_NAMES[c["status"]],
                              "holder": institution_id})  # fmt: skip
        self._updated(c)

    def reply(
        self, complaint_id: int, content: str, author: str,
        files: list[tuple[str, bytes, str]] | None = None,
    ) -> int:  # fmt: skip
        """A reporter's reply or an admin's note, with files (name, bytes, content type)."""
        c = self._existing(complaint_id)
        attachments = [self._store_file(name, data, ctype) for name, data, ctype in files or []]
        self.next_followup_id += 1
        self.followups.setdefault(complaint_id, []).append(
            {"id": self.next_followup_id, "at": self.now, "content": content, "author_type": author,
             "template_code": None, "is_secret": False, "attachments": attachments}
        )  # fmt: skip
        c["replied_since_followup"] = True
        self._updated(c)
        return self.next_followup_id

    def admin_status(self, complaint_id: int, status: str) -> None:
        c = self._existing(complaint_id)
        if c["status"] in seed.TERMINAL:
            raise ApiError(409, "COMPLAINT_CLOSED", "Laporan sudah ditutup.")
        self._change_status(c, status, f"Admin: {seed.STATUS_NAMES[status]}")

    def edit(self, complaint_id: int, changes: dict[str, Any]) -> list[str]:
        """An admin edits a complaint's title, content, category or report type, as LAPOR!'s
        own edit does: ``updated_at`` moves (a second on) and the detail's history (C2 ``data_logs``) gets an
        ``edit`` entry. Returns the fields that changed; a bad value is a 422 naming it."""
        c = self._existing(complaint_id)
        problems: dict[str, list[str]] = {}
        unknown = sorted(set(changes) - {"title", "content", "category_id", "classification_id"})
        for name in unknown:
            problems[name] = ["cannot be edited (title, content, category_id, classification_id)"]
        for name in ("title", "content"):
            if name in changes and (
                not isinstance(changes[name], str) or not changes[name].strip()
            ):
                problems[name] = ["text, not empty"]
        known: dict[str, set[object]] = {
            "category_id": set(self.categories),
            "classification_id": {k["id"] for k in seed.CLASSIFICATIONS},
        }
        for name, ids in known.items():
            if name in changes and (isinstance(changes[name], bool) or changes[name] not in ids):
                problems[name] = ["not a known id"]
        if problems:
            raise _validation(problems)
        changed = sorted(k for k, v in changes.items() if c[k] != v)
        if changed:
            self.now += timedelta(seconds=1)  # an edit is a moment of its own, as touch's is
            c.update(changes)
            name = seed.STATUS_NAMES[c["status"]]
            c["logs"].append({"template_code": "edit", "at": self.now, "from": "Admin Nasional SP4N-LAPOR!",
                              "to": None, "status_old": name, "status_new": name, "holder": None})  # fmt: skip
            self._updated(c)
        return changed

    def attach(self, complaint_id: int, name: str, data: bytes, content_type: str) -> int:
        """The citizen adds a file to a complaint (a photo of the place); its id."""
        c = self._existing(complaint_id)
        file_id = self._store_file(name, data, content_type)
        c["attachments"].append(file_id)
        self._updated(c)
        return file_id

    def file(self, file_id: int) -> dict[str, Any]:
        """A stored file (name, extension, data, content type), for the control plane."""
        if file_id not in self.uploads:
            raise ApiError(404, "NOT_FOUND", "Lampiran tidak ditemukan.")
        return self.uploads[file_id]

    def remove(self, complaint_id: int) -> None:
        """The national admin removes a complaint (spam, a duplicate): from now on it is 404."""
        self._existing(complaint_id)
        del self.complaints[complaint_id]
        self.followups.pop(complaint_id, None)
        self.inbox_index.discard(complaint_id)

    def _existing(self, complaint_id: int) -> dict[str, Any]:
        if complaint_id not in self.complaints:
            raise ApiError(404, "NOT_FOUND", "Laporan tidak ditemukan.")
        return self.complaints[complaint_id]

    def touch(self, complaint_id: int) -> None:
        """Update a complaint now (a change elsewhere), moving it to the end of the inbox order."""
        self.now += timedelta(seconds=1)
        self._updated(self.complaints[complaint_id])

    def own_ids(self, count: int, status: str | None = None) -> list[int]:
        """The first ``count`` complaints disposed to the simulator's institution, by id."""
        held = sorted(
            c["id"]
            for c in self.complaints.values()
            if c["disposition_id"] == self.institution_id and status in (None, c["status"])
        )
        return held[:count]

    def touch_many(self, ids: list[int], *, close: bool = False) -> int:
        """Update many complaints at one new moment, closing them too if asked (as auto-close).

        The clock moves on one second first (applying the working-day rules), so the moment is
        new; with ``close``, complaints not already terminal become ``done`` with a status log.
        """
        missing = [i for i in ids if i not in self.complaints]
        if missing:
            raise ApiError(
                404, "NOT_FOUND", f"no complaint {missing[0]}", {"ids": [str(missing[0])]}
            )
        self.set_clock(self.now + timedelta(seconds=1))
        for complaint_id in dict.fromkeys(ids):
            c = self.complaints[complaint_id]
            if close and c["status"] not in seed.TERMINAL:
                self._change_status(c, "done", AUTO_CLOSE_NOTE, "auto_close")
            self._updated(c)
        return len(dict.fromkeys(ids))

    # --- the inbox order -----------------------------------------------------------------

    def _updated(self, c: dict[str, Any]) -> None:
        """The complaint changed now: it moves to the end of the inbox order."""
        c["updated_at"] = self.now
        self._reindex(c)

    def _reindex(self, c: dict[str, Any]) -> None:
        """Keep the inbox index in step after ``updated_at`` or visibility changed."""
        if self.visible(c, self.institution_id):
            self.inbox_index.put(c["id"], c["updated_at"])
        else:
            self.inbox_index.discard(c["id"])
