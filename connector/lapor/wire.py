"""The LAPOR! v3 wire format: every path, header, field name and format the service uses.

This module is the only place that knows what LAPOR! calls things. It follows
``shared/spec/lapor-v3-contract.md``: items tagged [OBS] there are observed in public evidence
and kept exactly; items tagged [INF] are inferred and marked ``# [INF]`` here, so that they can be
corrected in this one file when the real documentation is at hand.

Inbound, it validates raw records into the canonical model (``connector.models``) and reports
each invalid field by its path, never by its value. Outbound, it builds request bodies from
canonical records.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from connector import models as m
from connector.errors import FieldProblem, MalformedRecord, ProtocolError, UnmappedValue
from connector.untrusted import MAX_NESTING, MAX_SQLITE_INT, too_deep

# --- paths ---------------------------------------------------------------------------------

PRODUCTION_BASE_URL = "https://api-splp.layanan.go.id/lapor/3.0.0"  # [OBS]
SANDBOX_BASE_URL = "https://api-splp.layanan.go.id/sandbox-konsolidasi/1.0"  # [OBS]

CATEGORIES = "/masters/categories"  # [INF] path; tree shape [OBS]
INSTITUTIONS = "/masters/institutions/external"  # [OBS]
TEMPLATES = "/masters/templates"  # [OBS]
STATUSES = "/masters/statuses"  # [INF]
CLASSIFICATIONS = "/masters/classifications"  # [INF]
LEGACY_TOPICS = "/api/services/f01/gettopics"  # [OBS] at the host root, outside the v3 base path
INBOX = "/complaints/inbox"  # [INF]
FOLLOWUP_ADD = "/complaints/followup/add"  # [OBS]
CREATE_COMPLAINT = "/complaints/complaint"  # [OBS]
UPLOAD = "/complaints/complaint/file"  # [OBS]
PROCESS_ACTIONS = ("verify", "postpone", "archive")  # [INF]


def complaint_path(complaint_id: int) -> str:
    """C2: detail and history [OBS]."""
    return f"/complaints/{complaint_id}/complaint"


def followups_path(complaint_id: int) -> str:
    """C3: follow-ups and replies [OBS]."""
    return f"/complaints/{complaint_id}/followups"


def reject_path(complaint_id: int) -> str:
    """C5: bukan wewenang, forward to the institution with authority [OBS]."""
    return f"/complaints/process/{complaint_id}/reject"


def process_path(complaint_id: int, action: str) -> str:
    """C6: an institution admin's status action [INF]."""
    if action not in PROCESS_ACTIONS:
        raise ValueError(f"unknown process action {action!r}; use one of {PROCESS_ACTIONS}")
    return f"/complaints/process/{complaint_id}/{action}"


def attachment_path(complaint_id: int, file_id: int) -> str:
    """C9: download one attachment [INF]."""
    return f"/complaints/{complaint_id}/attachments/{file_id}"


#: Endpoint classes, for counting requests without ids (bounded metric labels).
ENDPOINT_CLASSES = ("list", "detail", "followups", "write", "master", "attachment", "other")


def endpoint_class(method: str, path: str) -> str:
    """Which kind of endpoint a request goes to: list, detail, followups, write, master, attachment."""
    if path.startswith("/masters/") or path == LEGACY_TOPICS:
        return "master"
    if method != "GET":
        return "write"
    if path == INBOX:
        return "list"
    if "/attachments/" in path:
        return "attachment"
    if path.startswith("/complaints/") and path.endswith("/followups"):
        return "followups"
    if path.startswith("/complaints/") and path.endswith("/complaint"):
        return "detail"
    return "other"


# --- headers and parameters ----------------------------------------------------------------

TOKEN_PATTERN = re.compile(
    r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$"
)  # [OBS] a braced GUID
MAX_PAGE_SIZE = 1000  # [INF]
MAX_FOLLOWUP_CHARS = 5000  # [OBS]


def auth_headers(api_key: str, token: str) -> dict[str, str]:
    """The two credentials every request carries [OBS]."""
    return {"Authorization": f"Bearer {api_key}", "token": token, "Accept": "application/json"}


def legacy_topics_form(api_key: str) -> dict[str, str]:
    """Form body of legacy gettopics: the API key as KEYTOKEN [OBS field, INF value]."""
    return {"KEYTOKEN": api_key}


def page_params(page: int, page_size: int) -> dict[str, str]:
    """Query parameters of a paged list (Laravel style) [INF names]."""
    return {"page": str(page), "page_size": str(page_size)}


def inbox_params(updated_since: datetime) -> dict[str, str]:
    """C1 filter: everything updated at or after ``updated_since`` (inclusive) [INF]."""
    return {"updated_since": format_iso(updated_since)}


def external_ref_params(external_ref: str) -> dict[str, str]:
    """C1 filter: the complaint this institution created with that reference [INF]."""
    return {"external_ref": external_ref}


# --- timestamps ----------------------------------------------------------------------------

WIB = timezone(timedelta(hours=7), "WIB")  # [INF] zone of d-m-Y H:i:s timestamps
_WIB_FORMAT = "%d-%m-%Y %H:%M:%S"  # [OBS]


def parse_wib(value: object) -> datetime:
    """Parse a ``d-m-Y H:i:s`` timestamp (WIB, UTC+07:00) into an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError("expected a timestamp string like 31-12-2026 13:45:00")
    try:
        parsed = datetime.strptime(value.strip(), _WIB_FORMAT)  # noqa: DTZ007 (zone added below)
    except ValueError:
        raise ValueError("not a d-m-Y H:i:s timestamp") from None
    return _to_utc(parsed.replace(tzinfo=WIB))


def _to_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 moved across midnight UTC
        raise ValueError("timestamp is out of range") from None


def parse_iso(value: object) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset into an aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 timestamp string with an offset")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("timestamp has no UTC offset, so the moment it names is unknown")
    return _to_utc(parsed)


_WIB_SHAPE = re.compile(r"^\d{1,2}-\d{1,2}-\d{4}[ T]\d{1,2}:\d{2}(:\d{2})?$")
_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_any_timestamp(value: object) -> datetime:
    """Parse either LAPOR! timestamp format (ISO 8601 with an offset, or d-m-Y H:i:s WIB).

    Any timestamp field may arrive in either format (contract section 2). A timestamp with no
    zone that is not ``d-m-Y H:i:s`` is refused: the moment it names is unknown.
    """
    if isinstance(value, str):
        text = value.strip()
        if _WIB_SHAPE.match(text):
            if text.count(":") == 1:
                text += ":00"
            return parse_wib(text.replace("T", " "))
        return parse_iso(text)
    return parse_iso(value)


def parse_deadline(value: object) -> datetime:
    """A ``deadlines`` value: a timestamp in either format, or a bare ``Y-m-d`` date [INF].

    A bare date means "by the end of that day" in WIB, so it is read as 23:59:59 WIB.
    """
    if isinstance(value, str) and _BARE_DATE.match(value.strip()):
        day = date.fromisoformat(value.strip())
        end = datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=WIB)
        return _to_utc(end)
    return parse_any_timestamp(value)


def timestamp_format(value: object) -> str | None:
    """Which timestamp format a raw value has: ``iso``, ``wib``, ``date``, or None (neither)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _WIB_SHAPE.match(text):
        return "wib"
    if _BARE_DATE.match(text):
        return "date"
    try:
        parse_iso(text)
    except ValueError:
        return None
    return "iso"


def format_iso(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 with its offset (never naive)."""
    if moment.tzinfo is None:
        raise ValueError("refusing to send a naive datetime to LAPOR!")
    return moment.isoformat(timespec="seconds")


def format_wib(moment: datetime) -> str:
    """Format an aware datetime as ``d-m-Y H:i:s`` in WIB."""
    if moment.tzinfo is None:
        raise ValueError("refusing to format a naive datetime")
    return moment.astimezone(WIB).strftime(_WIB_FORMAT)


# --- field types ---------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_ID = MAX_SQLITE_INT  #: ids are stored in SQLite INTEGER columns


def _clean_text(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)  # a PHP app may send a numeric text as a number
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds an unpaired surrogate (broken unicode)") from None
    if _CONTROL.search(value):
        raise ValueError("text holds control characters")
    return unicodedata.normalize("NFC", value)


def _blank(value: object) -> object:
    """``""`` (or only spaces) where a value is optional means absent [INF: PHP encodings]."""
    return None if isinstance(value, str) and not value.strip() else value


def _blank_or_zero(value: object) -> object:
    """An optional reference where ``0`` also means none (a root's ``parent_id``) [OBS]."""
    value = _blank(value)
    return None if value in (0, "0") else value


def _integer(value: object) -> object:
    """An id or number as an integer or a numeric string [INF: PHP encodings]."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > 20:
            raise ValueError("expected an integer or a numeric string")
        return int(text)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _boolean(value: object) -> object:
    """A flag as true/false, 0/1, "0"/"1" or "true"/"false" [INF: PHP encodings]."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError('expected a flag: true/false, 0/1, "0"/"1" or "true"/"false"')


def _optional_boolean(value: object) -> object:
    value = _blank(value)
    return False if value is None else _boolean(value)


def _tracking_id(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip().isdigit():
        raise ValueError("expected a numeric tracking id")
    return value.strip()


def _incident_date(value: object) -> object:
    """``date_of_incident``: ``Y-m-d``, ``d-m-Y``, or a timestamp whose day is taken."""
    value = _blank(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if re.match(r"^\d{1,2}-\d{1,2}-\d{4}$", text):
        return datetime.strptime(text, "%d-%m-%Y").date()  # noqa: DTZ007 (a calendar day)
    if len(text) > 10 and _BARE_DATE.match(text[:10]):
        return text[:10]
    return text


def _late(name: str) -> Any:
    """A validator looked up by name when it runs (tests swap in a strict one to prove that
    each tolerance is needed: tests/test_lapor_dialects.py)."""
    return BeforeValidator(lambda value: globals()[name](value))


def _optional(name: str) -> Any:
    return BeforeValidator(lambda v: None if _blank(v) is None else globals()[name](v))


Text = Annotated[str, _late("_clean_text")]
OptText = Annotated[str | None, BeforeValidator(lambda v: _clean_text(_blank(v)))]
Id = Annotated[int, _late("_integer"), Field(gt=0, le=MAX_ID)]


def _in_range(value: int | None) -> int | None:
    if value is not None and not 0 <= value <= MAX_ID:
        raise ValueError(f"expected a number from 0 to {MAX_ID}")
    return value


OptInt = Annotated[int | None, _optional("_integer"), AfterValidator(_in_range)]
OptionalId = Annotated[
    int | None, BeforeValidator(lambda v: None if _blank_or_zero(v) is None else _integer(v)),
    AfterValidator(_in_range),
]  # fmt: skip
Flag = Annotated[bool, _late("_boolean")]
OptFlag = Annotated[bool, _late("_optional_boolean")]
AnyTime = Annotated[datetime, _late("parse_any_timestamp")]
Deadline = Annotated[datetime | None, _optional("parse_deadline")]
TrackingId = Annotated[str, _late("_tracking_id")]
IncidentDate = Annotated[date | None, _late("_incident_date")]


def _hint_count(value: object) -> int | None:
    """A follow-up count the service may send [INF]: a hint, so junk reads as absent."""
    return _int(value)


def _hint_time(value: object) -> datetime | None:
    """A last-follow-up time the service may send [INF]: a hint, so junk reads as absent."""
    if _blank(value) is None or not isinstance(value, str):
        return None
    try:
        return parse_any_timestamp(value)
    except ValueError:
        return None


#: Hints of new follow-ups (not in the contract; used when present, absent otherwise) [INF].
HintCount = Annotated[int | None, BeforeValidator(_hint_count)]
HintTime = Annotated[datetime | None, BeforeValidator(_hint_time)]
FOLLOWUP_COUNT_NAMES = ("followups_count", "followup_count", "total_followups")
LAST_FOLLOWUP_NAMES = ("last_followup_at", "last_followup_date", "followup_updated_at")

#: LAPOR! status codes [INF] and names [OBS/INF] (contract section 5).
STATUS_CODES = {s.value: s for s in m.ComplaintStatus}
STATUS_NAMES = {
    "belum terverifikasi": m.ComplaintStatus.UNVERIFIED,
    "ditunda": m.ComplaintStatus.POSTPONED,
    "terverifikasi": m.ComplaintStatus.VERIFIED,
    "dalam proses": m.ComplaintStatus.IN_PROCESS,
    "selesai": m.ComplaintStatus.DONE,
    "diarsipkan": m.ComplaintStatus.ARCHIVED,
    "ditolak": m.ComplaintStatus.REJECTED,
}
#: Who wrote a C3 item: ``author_type`` [INF] and the synonyms a service might use.
AUTHOR_TYPES = {
    "institution": m.Author.INSTITUTION,
    "instansi": m.Author.INSTITUTION,
    "reporter": m.Author.REPORTER,
    "pelapor": m.Author.REPORTER,
    "citizen": m.Author.REPORTER,
    "user": m.Author.REPORTER,
    "admin": m.Author.ADMIN,
    "administrator": m.Author.ADMIN,
}


def resolve_status(
    code: str | None, name: str | None, aliases: Mapping[str, m.ComplaintStatus] | None = None
) -> m.ComplaintStatus:
    """The lifecycle status a complaint's ``status_code``/``status_name`` pair names.

    The code decides when the service sends one; without it, the name does. An operator's
    ``lapor_aliases`` (statuses.yaml) cover values the connector has never seen; anything else
    is a mapping gap, not a malformed record.
    """
    aliases = aliases or {}
    value = code if code is not None else name  # a code the service sends decides alone
    if value is None:
        raise ValueError("neither status_code nor status_name is given")
    key = value.strip()
    known = STATUS_CODES if code is not None else STATUS_NAMES
    found = known.get(key.lower()) or aliases.get(key) or aliases.get(key.lower())
    if found is None:
        raise UnknownStatus(value)
    return found


class UnknownStatus(ValueError):
    """A status value the connector has never seen (a mapping gap)."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


class _Wire(BaseModel):
    # Unknown fields are ignored: the service may add fields without breaking us.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Deadlines(_Wire):
    verify_by: Deadline = None
    first_followup_by: Deadline = None
    auto_close_at: Deadline = None
    overdue: OptFlag = False


def _deadlines(value: object) -> object:
    # [INF] absent, null, "" or an empty list (PHP's json_encode of an empty array) mean none.
    return None if _blank(value) is None or value == [] else value


class _Summary(_Wire):
    id: Id
    tracking_id: TrackingId
    title: Text
    channel: OptInt = None
    classification_id: OptInt = None
    category_id: OptInt = None
    location_id: OptInt = None
    is_secret: Flag
    is_anonymous: Flag
    status_code: OptText = None  # [INF] the name alone is enough when the code is missing
    status_name: OptText = None
    disposition_id: OptionalId = None
    disposition_name: OptText = None
    external_ref: OptText = None
    created_at: AnyTime  # [OBS] d-m-Y H:i:s; ISO accepted too
    updated_at: AnyTime  # [INF] ISO 8601; d-m-Y H:i:s accepted too
    deadlines: Annotated[_Deadlines | None, _late("_deadlines")] = None
    followups_count: Annotated[
        HintCount, Field(validation_alias=AliasChoices(*FOLLOWUP_COUNT_NAMES))
    ] = None
    last_followup_at: Annotated[
        HintTime, Field(validation_alias=AliasChoices(*LAST_FOLLOWUP_NAMES))
    ] = None

    def canonical_fields(self, status: m.ComplaintStatus) -> dict[str, Any]:
        return {
            "lapor_id": self.id,
            "tracking_id": self.tracking_id,
            "title": self.title,
            "channel_id": self.channel,
            "classification_id": self.classification_id,
            "category_id": self.category_id,
            "location_id": self.location_id,
            "is_secret": self.is_secret,
            "is_anonymous": self.is_anonymous,
            "status": status,
            "status_name": self.status_name or _STATUS_LABELS[status],
            "disposition_id": self.disposition_id,
            "disposition_name": self.disposition_name,
            "external_ref": self.external_ref,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "deadlines": m.Deadlines(**(self.deadlines or _Deadlines()).model_dump()),
            "followups_count": self.followups_count,
            "last_followup_at": self.last_followup_at,
        }


_STATUS_LABELS = {status: name.title() for name, status in STATUS_NAMES.items()}


class _Reporter(_Wire):
    name: OptText = None
    email: OptText = None
    phone: OptText = None


def _reporter(value: object) -> object:
    return None if _blank(value) is None or value == [] else value


class _Attachment(_Wire):
    id: Id
    file_name: Text
    extension: OptText = None
    path: OptText = None


def _list(value: object) -> object:
    # [INF] a missing list may come as null, "" or false from a PHP app.
    return [] if value is None or value is False or _blank(value) is None else value


def _attachments(items: Sequence[_Attachment]) -> tuple[m.Attachment, ...]:
    return tuple(m.Attachment(**a.model_dump()) for a in items)


Attachments = Annotated[list[_Attachment], _late("_list")]


class _StatusLog(_Wire):
    note: Annotated[str, BeforeValidator(lambda v: _clean_text("" if v is None else v))]
    timestamp: AnyTime


class _Detail(_Summary):
    content: Text
    date_of_incident: IncidentDate = None
    tags_raw: OptText = None
    reporter: Annotated[_Reporter | None, _late("_reporter")] = None
    status_logs: Annotated[list[_StatusLog], _late("_list")] = []
    attachments: Attachments = []


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")  # [OBS] sometimes with spaces inside the braces


class _DataLog(_Wire):
    id: Id
    date: AnyTime  # [OBS] d-m-Y H:i:s; ISO accepted too
    template_code: Text
    content: Annotated[str, BeforeValidator(lambda v: _clean_text("" if v is None else v))] = ""
    institution_from_name: OptText = None
    institution_to_name: OptText = None
    data: str | dict[str, Any] | list[Any] | None = None  # [OBS] a JSON *string*: status_old/new
    attachments: Attachments = []

    def status_names(self) -> tuple[str | None, str | None]:
        payload: Any = self.data
        if isinstance(payload, str):
            try:
                payload = json.loads(payload) if payload.strip() else {}
            except (ValueError, RecursionError):
                raise ValueError("data is not a JSON string") from None
        if not isinstance(payload, dict):
            return None, None

        def name(key: str) -> str | None:
            item = payload.get(key)
            return item.get("name") if isinstance(item, dict) else None

        return name("status_old"), name("status_new")

    def entry(self) -> m.HistoryEntry:
        old, new = self.status_names()
        values = {
            "institution_from": self.institution_from_name or "",
            "institution_to": self.institution_to_name or "",
            "status_old": old or "",
            "status_new": new or "",
        }
        text = _PLACEHOLDER.sub(
            lambda match: values.get(match.group(1), match.group(0)), self.content
        )
        return m.HistoryEntry(
            id=self.id,
            at=self.date,
            kind=self.template_code,
            text=text,
            institution_from=self.institution_from_name,
            institution_to=self.institution_to_name,
            status_old=old,
            status_new=new,
            attachments=_attachments(self.attachments),
        )


class _FollowUp(_Wire):
    id: Id
    created_at: AnyTime  # [OBS] d-m-Y H:i:s; ISO accepted too
    content: Text
    template_code: OptText = None
    institution_from_name: OptText = None
    institution_to_name: OptText = None
    is_secret: OptFlag = False
    attachments: Attachments = []
    author_type: OptText = None  # [INF]

    def author(self) -> m.Author:
        """Who wrote it; without ``author_type``, an item from no institution is a reply."""
        if self.author_type is None:
            return m.Author.INSTITUTION if self.institution_from_name else m.Author.REPORTER
        found = AUTHOR_TYPES.get(self.author_type.strip().lower())
        if found is None:
            raise ValueError(
                f"unknown author_type {self.author_type[:40]!r}; expected one of "
                f"{sorted(AUTHOR_TYPES)}"
            )
        return found


class _Category(_Wire):
    id: Id
    parent_id: OptionalId = None  # [OBS] 0 is a root
    name: Text


class _Topic(_Wire):
    id: Id  # [OBS] sent as strings: "13"
    parent: OptionalId = None
    topic_name: Text


class _Institution(_Wire):
    id: Id
    name: Text
    parent_id: OptionalId = None  # [INF]


class _Template(_Wire):
    template_code: Text
    title: Text
    type: OptText = None
    content: Annotated[str, BeforeValidator(lambda v: _clean_text("" if v is None else v))] = ""


class _Status(_Wire):
    code: OptText = None  # [INF]
    name: Text


class _Classification(_Wire):
    id: Id
    name: Text


# --- inbound translation -------------------------------------------------------------------

W = TypeVar("W", bound=_Wire)


def _problems(error: ValidationError, prefix: str = "") -> list[FieldProblem]:
    problems = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        path = prefix
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = item["msg"].removeprefix("Value error, ")
        problems.append(FieldProblem(path or "(record)", message))
    return problems


def _record_id(raw: object) -> str | None:
    if isinstance(raw, Mapping):
        value = raw.get("id")
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
            return str(value)
    return None


def _check_nesting(raw: object, what: str, record: object = None) -> None:
    field_name = too_deep(raw)
    if field_name is not None:
        record_id = _record_id(raw if record is None else record)
        label = f"{what} {record_id}" if record_id else what
        raise MalformedRecord(
            f"LAPOR! sent an invalid {label}",
            [FieldProblem(field_name, f"nested deeper than {MAX_NESTING} levels")],
            record_id=record_id,
        )


def _validate(model: type[W], raw: object, what: str) -> W:
    _check_nesting(raw, what)
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        record_id = _record_id(raw)
        label = f"{what} {record_id}" if record_id else what
        raise MalformedRecord(
            f"LAPOR! sent an invalid {label}", _problems(error), record_id=record_id
        ) from None


StatusAliases = Mapping[str, m.ComplaintStatus]


def _status(summary: _Summary, aliases: StatusAliases | None) -> m.ComplaintStatus:
    try:
        return resolve_status(summary.status_code, summary.status_name, aliases)
    except UnknownStatus as unknown:
        label = f"{unknown.value[:60]!r}"
        raise UnmappedValue(
            f"LAPOR! sent complaint {summary.id} with a status the connector does not know",
            [
                FieldProblem(
                    "status_code" if summary.status_code is not None else "status_name",
                    f"unknown LAPOR! status {label}; add it under lapor_aliases in "
                    "mappings/statuses.yaml with the lifecycle status it means (unverified, "
                    "postponed, verified, in_process, done, archived, rejected), then run "
                    "lapor-connector quarantine retry",
                )
            ],
            record_id=str(summary.id),
        ) from None
    except ValueError as error:
        raise MalformedRecord(
            f"LAPOR! sent an invalid complaint {summary.id}",
            [FieldProblem("status_code", str(error))],
            record_id=str(summary.id),
        ) from None


def complaint_summary(raw: object, aliases: StatusAliases | None = None) -> m.ComplaintSummary:
    """A C1 listing item as a canonical summary."""
    summary = _validate(_Summary, raw, "complaint")
    return m.ComplaintSummary(**summary.canonical_fields(_status(summary, aliases)))


def complaint_detail(results: object, aliases: StatusAliases | None = None) -> m.Complaint:
    """A C2 ``results`` (``data`` and ``data_logs``) as a canonical complaint."""
    if not isinstance(results, Mapping) or not isinstance(results.get("data"), Mapping):
        raise MalformedRecord("LAPOR! sent a complaint detail without data")
    _check_nesting(results, "complaint", results["data"])
    detail = _validate(_Detail, results["data"], "complaint")
    status = _status(detail, aliases)
    raw_logs = _list(results.get("data_logs"))
    if not isinstance(raw_logs, list):
        raise MalformedRecord(
            "LAPOR! sent an invalid complaint detail",
            [FieldProblem("data_logs", "expected a list")],
            record_id=str(detail.id),
        )
    history = []
    for index, raw_log in enumerate(raw_logs):
        try:
            log = _DataLog.model_validate(raw_log)
            history.append(log.entry())
        except ValidationError as error:
            raise MalformedRecord(
                f"LAPOR! sent an invalid history of complaint {detail.id}",
                _problems(error, f"data_logs[{index}]"),
                record_id=str(detail.id),
            ) from None
        except ValueError as error:
            raise MalformedRecord(
                f"LAPOR! sent an invalid history of complaint {detail.id}",
                [FieldProblem(f"data_logs[{index}].data", str(error))],
                record_id=str(detail.id),
            ) from None
    reporter = detail.reporter or _Reporter()
    return m.Complaint(
        **detail.canonical_fields(status),
        content=detail.content,
        incident_date=detail.date_of_incident,
        tags=detail.tags_raw,
        # An anonymous complaint's reporter is never kept, whatever the service sent.
        reporter=m.Reporter() if detail.is_anonymous else m.Reporter(**reporter.model_dump()),
        status_notes=tuple(m.StatusNote(note=s.note, at=s.timestamp) for s in detail.status_logs),
        attachments=_attachments(detail.attachments),
        history=tuple(history),
    )


def followup(raw: object) -> m.FollowUp:
    """A C3 item as a canonical follow-up."""
    f = _validate(_FollowUp, raw, "follow-up")
    try:
        author = f.author()
    except ValueError as error:
        raise UnmappedValue(
            f"LAPOR! sent follow-up {f.id} by an author the connector does not know",
            [FieldProblem("author_type", str(error))],
            record_id=str(f.id),
        ) from None
    return m.FollowUp(
        id=f.id,
        at=f.created_at,
        content=f.content,
        author=author,
        kind=f.template_code,
        institution_from=f.institution_from_name,
        institution_to=f.institution_to_name,
        is_secret=f.is_secret,
        attachments=_attachments(f.attachments),
    )


def category(raw: object) -> m.Category:
    c = _validate(_Category, raw, "category")
    return m.Category(id=c.id, name=c.name, parent_id=c.parent_id)


def topic(raw: object) -> m.Topic:
    t = _validate(_Topic, raw, "topic")
    return m.Topic(id=t.id, name=t.topic_name, parent_id=t.parent)


def institution(raw: object) -> m.Institution:
    i = _validate(_Institution, raw, "institution")
    return m.Institution(id=i.id, name=i.name, parent_id=i.parent_id)


def template(raw: object) -> m.Template:
    t = _validate(_Template, raw, "template")
    return m.Template(code=t.template_code, title=t.title, kind=t.type, content=t.content)


def status(raw: object) -> m.StatusInfo:
    s = _validate(_Status, raw, "status")
    try:
        known: m.ComplaintStatus | None = resolve_status(s.code, s.name)
    except ValueError:
        known = None  # listed as LAPOR! has it; a complaint in it is a mapping gap
    return m.StatusInfo(code=s.code or s.name, status=known, name=s.name)


def classification(raw: object) -> m.Classification:
    c = _validate(_Classification, raw, "classification")
    return m.Classification(id=c.id, name=c.name)


# --- envelopes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorBody:
    """What an error envelope says: a machine code and field errors (the message is not kept)."""

    code: str | None
    field_errors: dict[str, list[str]]


def error_body(body: object) -> ErrorBody:
    """Read ``{"status": false, "code": ..., "errors": {...}}`` [INF]; tolerate anything else."""
    if not isinstance(body, Mapping):
        return ErrorBody(None, {})
    code = body.get("code")
    errors = body.get("errors")
    fields: dict[str, list[str]] = {}
    if isinstance(errors, Mapping):
        for name, messages in errors.items():
            if isinstance(messages, list):
                fields[str(name)] = [str(x) for x in messages]
            elif messages is not None:
                fields[str(name)] = [str(messages)]
    return ErrorBody(code if isinstance(code, str) else None, fields)


def is_soft_error(body: object) -> bool:
    """A 200 whose envelope says ``"status": false`` (or 0, "0", "false") is a failure [INF]."""
    if not isinstance(body, Mapping) or "status" not in body:
        return False
    flag = body["status"]
    return flag is False or flag == 0 or (isinstance(flag, str) and flag.strip().lower() in _FALSE)


def results(body: object, path: str) -> Any:
    """The ``results`` of a success envelope [OBS]."""
    if not isinstance(body, Mapping) or "results" not in body:
        raise ProtocolError(f"LAPOR! {path}: the answer has no results")
    return body["results"]


@dataclass(frozen=True)
class Page:
    """One page of a Laravel-style list."""

    items: list[Any]
    page: int
    next_page: int | None
    total: int | None
    server_time: datetime | None


def page(body: object, path: str, requested_page: int) -> Page:
    """Read a paged list: ``data`` and ``next_page_url`` [OBS], the rest [INF].

    Only the page number is taken from ``next_page_url``: the connector never follows a URL
    the service hands it, so credentials cannot be sent to another host.
    """
    res = results(body, path)
    if not isinstance(res, Mapping) or not isinstance(res.get("data"), list):
        raise ProtocolError(f"LAPOR! {path}: the answer has no data list")
    current = _int(res.get("current_page"))  # [INF] may be a numeric string
    current = current if current is not None else requested_page
    next_url = res.get("next_page_url")
    next_page: int | None = None
    if isinstance(next_url, str) and next_url.strip():
        numbers = parse_qs(urlsplit(next_url).query).get("page", [])
        next_page = int(numbers[0]) if numbers and numbers[0].isdigit() else current + 1
    server_time = None
    if _blank(res.get("server_time")) is not None:  # [INF] ISO 8601; d-m-Y H:i:s accepted too
        try:
            server_time = parse_any_timestamp(res["server_time"])
        except ValueError as error:
            raise ProtocolError(f"LAPOR! {path}: server_time: {error}") from None
    return Page(
        items=list(res["data"]),
        page=current,
        next_page=next_page,
        total=_int(res.get("total")),
        server_time=server_time,
    )


def list_items(body: object, path: str) -> list[Any]:
    """Items of an unpaged list: ``results.data`` or a bare array (legacy services)."""
    if isinstance(body, list):
        return body
    res = results(body, path)
    data = res.get("data") if isinstance(res, Mapping) else res
    if not isinstance(data, list):
        raise ProtocolError(f"LAPOR! {path}: the answer has no data list")
    return data


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        number = int(value.strip())
        return number if number <= MAX_ID else None
    return None


@dataclass(frozen=True)
class CreateAnswer:
    """The id LAPOR! gave a new complaint, and its full record when the answer carried it."""

    lapor_id: int
    created: m.CreatedComplaint | None


def created_complaint(body: object) -> CreateAnswer:
    """Read a C7 answer, which carries the id three ways [OBS]; prefer the richest."""
    if isinstance(body, Mapping):
        res = body.get("results")
        complaint = res.get("complaint") if isinstance(res, Mapping) else None
        if isinstance(complaint, Mapping) and _int(complaint.get("id")) is not None:
            lapor_id = _int(complaint["id"])
            assert lapor_id is not None
            tracking = complaint.get("tracking_id")
            if isinstance(tracking, (str, int)) and str(tracking).isdigit():
                return CreateAnswer(
                    lapor_id,
                    m.CreatedComplaint(
                        lapor_id=lapor_id,
                        tracking_id=str(tracking),
                        status_name=str(complaint.get("status_name") or ""),
                    ),
                )
            return CreateAnswer(lapor_id, None)
        data = body.get("data")
        for candidate in (
            body.get("complaint_id"),
            data.get("complaint_id") if isinstance(data, Mapping) else None,
        ):
            lapor_id = _int(candidate)
            if lapor_id is not None:
                return CreateAnswer(lapor_id, None)
    raise ProtocolError(f"LAPOR! {CREATE_COMPLAINT}: the answer carries no complaint id")


def created_followup(body: object) -> m.CreatedFollowUp:
    """Read a C4 answer: ``results.data{id, complaint_id, created_at}`` [OBS]."""
    res = results(body, FOLLOWUP_ADD)
    data = res.get("data") if isinstance(res, Mapping) else None
    if not isinstance(data, Mapping):
        raise ProtocolError(f"LAPOR! {FOLLOWUP_ADD}: the answer has no data")
    try:
        return m.CreatedFollowUp(
            id=data["id"],
            complaint_id=data["complaint_id"],
            created_at=parse_any_timestamp(data["created_at"]),
        )
    except (KeyError, ValueError, ValidationError) as error:
        raise ProtocolError(
            f"LAPOR! {FOLLOWUP_ADD}: the answer's data is incomplete ({type(error).__name__})"
        ) from None


def uploaded_files(body: object) -> list[m.UploadedFile]:
    """Read a C8 answer: images and other documents come back in two lists [OBS]."""
    res = results(body, UPLOAD)
    files = []
    for key, is_image in (("images", True), ("docs", False)):
        for item in (res.get(key) or []) if isinstance(res, Mapping) else []:
            file_id = _int(item.get("id")) if isinstance(item, Mapping) else None
            if file_id is None:
                raise ProtocolError(f"LAPOR! {UPLOAD}: an uploaded file has no id")
            files.append(
                m.UploadedFile(
                    id=file_id, file_name=str(item.get("file_name", "")), is_image=is_image
                )
            )
    return files


# --- outbound bodies -----------------------------------------------------------------------


def _flag(value: bool) -> str:
    return "1" if value else "0"


#: Multipart parts as ``requests`` takes them: (field, (file name or None, content, content type)).
Parts = list[tuple[str, tuple[str | None, bytes | str, str | None]]]


def followup_form(followup: m.NewFollowUp, institution_id: int) -> Parts:
    """C4 as multipart parts [OBS fields]; ``institution_from_id`` is always the caller's."""
    fields: dict[str, str | None] = {
        "complaint_id": str(followup.complaint_id),
        "content": followup.content,
        "institution_from_id": str(institution_id),
        "institution_to_id": _opt(followup.institution_to_id),
        "user_id": _opt(followup.user_id),
        "template_code": followup.kind,
        "rating": _opt(followup.rating),
        "is_secret": _flag(followup.is_secret),
        "info_disposition": followup.disposition_note,
    }
    parts: Parts = [
        (name, (None, value, None)) for name, value in fields.items() if value is not None
    ]
    for index, (file_name, content, content_type) in enumerate(followup.files):
        parts.append((f"attachment[{index}]", (file_name, content, content_type)))
    return parts


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)


CHANNEL_INSTITUTION_API = 13  # [OBS] institution channel (API)
CHANNEL_WHATSAPP = 26  # [OBS] WhatsApp with a new reporter account


def complaint_body(complaint: m.NewComplaint) -> dict[str, Any]:
    """C7 body [OBS fields; ``external_ref`` INF]. Anonymous complaints never carry the reporter."""
    body: dict[str, Any] = {
        "title": complaint.title,
        "content": complaint.content,
        "channel": complaint.channel_id,
        "classification_id": complaint.classification_id,
        "category_id": complaint.category_id,
        "location_id": complaint.location_id,
        "date_of_incident": complaint.incident_date.isoformat()
        if complaint.incident_date
        else None,
        "tags_raw": complaint.tags or "",
        "is_secret": int(complaint.is_secret),
        "is_anonymous": int(complaint.is_anonymous),
        "disposition_id": complaint.disposition_id,
        "is_disposisi_slider": True,
        "info_disposition": complaint.disposition_note or "",
        "attachments": json.dumps(
            list(complaint.attachment_ids)
        ),  # [OBS] a string holding a JSON array
        "external_ref": complaint.external_ref,  # [INF]
    }
    reporter = complaint.reporter
    if complaint.user_id is not None:
        body["user_id"] = complaint.user_id
    elif reporter is not None and reporter.is_known and not complaint.is_anonymous:
        body.update(
            {
                "is_new_user_slider": True,
                "nameUser": reporter.name,
                "emailUser": reporter.email,
                "phoneUser": reporter.phone,
            }
        )
    else:
        raise ValueError(
            f"complaint {complaint.external_ref}: LAPOR! needs a reporter account; give user_id "
            "(the agency's intake account, required for anonymous complaints) or a reporter with "
            "a name and an email or phone"
        )
    return {k: v for k, v in body.items() if v is not None}


def reject_body(target_institution_id: int, description: str) -> dict[str, Any]:
    """C5 body: forward as not our authority (bukan wewenang) [OBS]."""
    return {
        "is_request": 1,
        "reason": str(target_institution_id),
        "reason_description": description,
        "not_authority": 1,
    }


def process_body(note: str | None) -> dict[str, Any]:
    """C6 body [INF]: an optional note."""
    return {"note": note} if note else {}


def upload_parts(files: Sequence[tuple[str, bytes, str]]) -> Parts:
    """C8 multipart parts: every file under ``attachments[]`` [OBS]."""
    return [
        ("attachments[]", (name, content, content_type)) for name, content, content_type in files
    ]


# --- what LAPOR! accepts: checked before a write is sent ----------------------------------------

UPLOAD_TYPES = frozenset({"jpg", "jpeg", "png", "pdf", "doc", "docx", "xls", "xlsx"})  # [OBS]
MAX_UPLOAD_FILES = 10  # [INF]
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # [INF] 10 MB a file


def complaint_problems(complaint: m.NewComplaint) -> list[FieldProblem]:
    """What LAPOR! would refuse in a C7 create (required fields, types, a reporter account)."""
    problems = []
    for name, value in (("title", complaint.title), ("content", complaint.content)):
        if not value.strip():
            problems.append(FieldProblem(name, "LAPOR! requires it; fill it in the agency system"))
    for name, number in (
        ("channel", complaint.channel_id),
        ("classification_id", complaint.classification_id),
        ("category_id", complaint.category_id),
        ("location_id", complaint.location_id),
    ):
        if number <= 0:
            problems.append(
                FieldProblem(name, "LAPOR! requires a positive id; check the mapping that gives it")
            )
    reporter = complaint.reporter
    if complaint.user_id is None and not (
        reporter is not None and reporter.name and (reporter.email or reporter.phone)
    ):
        problems.append(
            FieldProblem(
                "nameUser",
                "a new reporter account needs a name and an e-mail or phone; complete the "
                "reporter in the agency system, or set lapor.intake_user_id",
            )
        )
    return problems


def followup_problems(content: str) -> list[FieldProblem]:
    """What LAPOR! would refuse in a C4 follow-up: content of 1 to 5000 characters [OBS]."""
    if not content.strip():
        return [FieldProblem("content", "LAPOR! refuses an empty follow-up; write its text")]
    if len(content) > MAX_FOLLOWUP_CHARS:
        return [
            FieldProblem(
                "content",
                f"{len(content)} characters, LAPOR! takes at most {MAX_FOLLOWUP_CHARS}; "
                "shorten it or split it into two follow-ups",
            )
        ]
    return []


def attachment_problems(files: Sequence[tuple[str, int | None]]) -> list[FieldProblem]:
    """What LAPOR! would refuse in a C8 upload: (file name, size in bytes or None) each."""
    problems = []
    if len(files) > MAX_UPLOAD_FILES:
        problems.append(
            FieldProblem("attachments", f"{len(files)} files, LAPOR! takes {MAX_UPLOAD_FILES}")
        )
    for index, (name, size) in enumerate(files):
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in UPLOAD_TYPES:
            problems.append(
                FieldProblem(
                    f"attachments[{index}]",
                    f"type .{extension or '?'} is not accepted by LAPOR! (only "
                    f"{', '.join(sorted(UPLOAD_TYPES))}); convert it or remove it",
                )
            )
        if size is not None and size > MAX_UPLOAD_BYTES:
            problems.append(
                FieldProblem(
                    f"attachments[{index}]",
                    f"{size // 2**20} MB, LAPOR! takes at most {MAX_UPLOAD_BYTES // 2**20} MB",
                )
            )
    return problems


# --- what the probe expects ----------------------------------------------------------------
#
# ``lapor-connector probe`` compares what the real service sends with this reading of the
# contract. A JSON path names a field: ``results.data[].created_at`` is ``created_at`` of every
# item of ``results.data``; ``[]`` alone is an item of a bare array (legacy gettopics). A kind
# ending in " or null" is optional: null is expected, missing or ``""`` is understood but differs.

_PAGED = {
    "status": "boolean",
    "message": "string",
    "results": "object",
    "results.data": "list",
    "results.current_page": "integer",
    "results.per_page": "integer",
    "results.total": "integer",
    "results.next_page_url": "string or null",
}
_UNPAGED = {"status": "boolean", "message": "string", "results": "object", "results.data": "list"}
_ATTACHMENT = {
    "[]": "object",
    "[].id": "integer",
    "[].file_name": "string",
    "[].extension": "string or null",
    "[].path": "string or null",
}
_COMPLAINT = {
    "id": "integer",
    "tracking_id": "numeric string",  # [OBS]
    "title": "string",
    "channel": "integer or null",
    "classification_id": "integer or null",
    "category_id": "integer or null",
    "location_id": "integer or null",
    "is_secret": "boolean",
    "is_anonymous": "boolean",
    "status_code": "string or null",  # [INF]
    "status_name": "string or null",
    "disposition_id": "integer or null",
    "disposition_name": "string or null",
    "external_ref": "string or null",  # [INF]
    "created_at": "timestamp:dmy",  # [OBS]
    "updated_at": "timestamp:iso",  # [INF]
    "deadlines": "object or null",  # [INF]
    "deadlines.verify_by": "deadline or null",
    "deadlines.first_followup_by": "deadline or null",
    "deadlines.auto_close_at": "deadline or null",
    "deadlines.overdue": "boolean",
    # Not in the contract: hints of new follow-ups, used when a service sends them.
    "followups_count": "integer or null",
    "last_followup_at": "timestamp:iso or null",
}
_DETAIL = {
    **_COMPLAINT,
    "content": "string",
    "date_of_incident": "date or null",
    "tags_raw": "string or null",
    "reporter": "object or null",  # null when anonymous [INF]
    "reporter.name": "string or null",
    "reporter.email": "string or null",
    "reporter.phone": "string or null",
    "status_logs": "list",
    "status_logs[]": "object",
    "status_logs[].note": "string",
    "status_logs[].timestamp": "timestamp:dmy",
    "attachments": "list",
    **{"attachments" + k: v for k, v in _ATTACHMENT.items()},
}
_DATA_LOG = {
    "id": "integer",
    "date": "timestamp:dmy",  # [OBS]
    "template_code": "string",
    "content": "string",
    "institution_from_name": "string or null",
    "institution_to_name": "string or null",
    "data": "string or null",  # [OBS] a JSON string
    "attachments": "list",
    **{"attachments" + k: v for k, v in _ATTACHMENT.items()},
}
_FOLLOWUP = {
    "id": "integer",
    "created_at": "timestamp:dmy",  # [OBS]
    "content": "string",
    "template_code": "string or null",
    "institution_from_name": "string or null",
    "institution_to_name": "string or null",
    "is_secret": "boolean",
    "attachments": "list",
    **{"attachments" + k: v for k, v in _ATTACHMENT.items()},
    "author_type": "string or null",  # [INF]
}


_UPLOADED = {"": "list", "[]": "object", "[].id": "integer", "[].file_name": "string"}


def _under(prefix: str, fields: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}.{name}": kind for name, kind in fields.items()}


def _items(fields: Mapping[str, str]) -> dict[str, str]:
    return {"results.data[]": "object", **_under("results.data[]", fields)}


#: Fields read when present whose absence is normal (not in the contract).
OPTIONAL_FIELDS = frozenset({"followups_count", "last_followup_at"})

#: Endpoint -> {JSON path: expected kind}: the contract as this module reads it.
EXPECTED: dict[str, dict[str, str]] = {
    "categories": {
        **_PAGED,
        **_items({"id": "integer", "parent_id": "integer", "name": "string"}),
    },
    "institutions": {
        **_PAGED,
        **_items({"id": "integer", "name": "string", "parent_id": "integer or null"}),
    },
    "templates": {
        **_PAGED,
        **_items(
            {
                "template_code": "string",
                "title": "string",
                "type": "string or null",
                "content": "string",
            }
        ),
    },
    "statuses": {**_UNPAGED, **_items({"code": "string or null", "name": "string"})},
    "classifications": {**_UNPAGED, **_items({"id": "integer", "name": "string"})},
    "topics": {  # [OBS] a bare array of strings
        "": "list",
        "[]": "object",
        "[].id": "numeric string",
        "[].parent": "numeric string",
        "[].topic_name": "string",
    },
    "inbox": {**_PAGED, "results.server_time": "timestamp:iso", **_items(_COMPLAINT)},
    "complaint": {
        "status": "boolean",
        "message": "string",
        "results": "object",
        "results.data": "object",
        **_under("results.data", _DETAIL),
        "results.data_logs": "list",
        "results.data_logs[]": "object",
        **_under("results.data_logs[]", _DATA_LOG),
    },
    "followups": {**_PAGED, **_items(_FOLLOWUP)},
    "upload": {
        "status": "boolean",
        "message": "string",
        "results": "object",
        **{
            f"results.{key}{path}": kind
            for key in ("images", "docs")
            for path, kind in _UPLOADED.items()
        },
    },
    "create": {  # [OBS] the id comes back three ways
        "status": "boolean",
        "message": "string",
        "complaint_id": "integer",
        "data": "object",
        "data.complaint_id": "integer",
        "results": "object",
        "results.complaint": "object",
        "results.complaint.id": "integer",
        "results.complaint.tracking_id": "numeric string",
        "results.complaint.status_name": "string",
    },
    "followup_add": {
        "status": "boolean",
        "message": "string",
        "results": "object",
        "results.data": "object",
        "results.data.id": "integer",
        "results.data.complaint_id": "integer",
        "results.data.created_at": "timestamp:dmy",
    },
}

#: JSON paths of personal data (the reporter): the probe shows their kind, never a value.
PERSONAL = frozenset(
    {
        "results.data.reporter",
        "results.data.reporter.name",
        "results.data.reporter.email",
        "results.data.reporter.phone",
    }
)


def is_personal(path: str) -> bool:
    """True for a personal field's path, or any path under one (anything under ``reporter``)."""
    return any(path == p or path.startswith((p + ".", p + "[")) for p in PERSONAL) or (
        ".reporter." in f".{path}."
    )


def observed_kind(value: object) -> str:
    """The kind of a raw JSON value, in the probe's words; never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "0/1 integer" if value in (0, 1) else "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if not isinstance(value, str):
        return type(value).__name__
    text = value.strip()
    if not text:
        return "empty string"
    if text in ("0", "1"):
        return '"0"/"1" string'
    if text.lower() in ("true", "false"):
        return '"true"/"false" string'
    if text.lstrip("-").isdigit():
        return "numeric string"
    shape = timestamp_format(text)
    if shape is not None:
        return {"wib": "timestamp:dmy", "iso": "timestamp:iso", "date": "date"}[shape]
    if re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$", text):
        return "timestamp:naive"  # no offset: the moment it names is unknown
    return "string"


_STRING_KINDS = frozenset(
    {"string", "empty string", "numeric string", '"0"/"1" string', '"true"/"false" string',
     "timestamp:dmy", "timestamp:iso", "timestamp:naive", "date"}
)  # fmt: skip
_MATCHES = {
    "integer": frozenset({"integer", "0/1 integer"}),
    "string": _STRING_KINDS,
    "numeric string": frozenset({"numeric string", '"0"/"1" string'}),
    "deadline": frozenset({"timestamp:iso", "date"}),  # [INF] bare dates allowed
}


def kind_matches(expected: str, observed: str) -> bool:
    """Whether a value of kind ``observed`` is exactly what ``expected`` names (no tolerance)."""
    base = expected.removesuffix(" or null")
    if observed == "null":
        return base != expected
    return observed in _MATCHES.get(base, frozenset({base}))
