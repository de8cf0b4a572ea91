"""The ``rest`` adapter: the agency REST contract v1 (docs/agency-api.md), and its wire format.

This module is the only one that knows the agency API's field names. Reads are retried on
transient failures; creating writes carry the caller's ``Idempotency-Key``, so they are retried
safely too (the agency system answers a repeated key with the first result).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

import requests
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from connector import errors
from connector import models as m
from connector.adapters.base import AgencyAdapter, AgencyPage
from connector.clock import Clock
from connector.config import AgencySettings
from connector.http import new_session, parse_retry_after, send, with_retries
from connector.lapor.wire import parse_iso
from connector.logs import register_secret
from connector.privacy import rule_text
from connector.untrusted import MAX_NESTING, decode_json, shallow, too_deep
from connector.untrusted import MAX_SQLITE_INT as MAX_ID

T = TypeVar("T")

# --- field types: what the state store, LAPOR! and a URL path can hold ------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Longest id the connector takes from the agency system (ids name URL paths and state keys).
MAX_ID_LENGTH = 200


def _text(value: str) -> str:
    """Text that UTF-8 and SQLite can hold: no unpaired surrogate, no NUL or control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds an unpaired surrogate (broken unicode)") from None
    if _CONTROL.search(value):
        raise ValueError("text holds control characters")
    return value


def _id(value: str) -> str:
    if not value.strip() or value.strip(".") == "":
        raise ValueError("expected an id, got a blank one")
    return _text(value)


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    return value


IsoTime = Annotated[datetime, BeforeValidator(parse_iso)]
Text = Annotated[str, AfterValidator(_text)]
Id = Annotated[str, Field(max_length=MAX_ID_LENGTH), AfterValidator(_id)]
#: A number stored in an SQLite INTEGER column (LAPOR! ids, sizes).
Number = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_ID)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Reporter(_Wire):
    name: Text | None = None
    email: Text | None = None
    phone: Text | None = None


class _Lapor(_Wire):
    id: Annotated[Number, Field(gt=0)]
    tracking_id: Annotated[Text, Field(max_length=MAX_ID_LENGTH)]
    status_code: m.ComplaintStatus | None = None
    disposition_id: Number | None = None


class _Attachment(_Wire):
    id: Id
    file_name: Text
    content_type: Text | None = None
    size: Number | None = None
    url: Text | None = None


class _Complaint(_Wire):
    id: Id
    source: Literal["internal", "lapor"]
    channel: Text
    title: Text
    content: Text
    category_code: Text | None = None
    unit_code: Text | None = None
    status: Text
    is_secret: bool
    is_anonymous: bool
    reporter: _Reporter | None = None
    lapor: _Lapor | None = None
    report_to_lapor: bool = False
    incident_date: date | None = None
    tags: Text | None = None
    attachments: list[_Attachment] = []
    created_at: IsoTime
    updated_at: IsoTime


class _FollowUp(_Wire):
    id: Id
    complaint_id: Id
    author: Literal["agency", "reporter", "lapor_admin"]
    content: Text
    is_secret: bool = False
    status_after: Text | None = None
    lapor_followup_id: Annotated[Number, Field(gt=0)] | None = None
    attachments: list[_Attachment] = []
    created_at: IsoTime
    updated_at: IsoTime


def _complaint(raw: object) -> m.AgencyComplaint:
    c = _validate(_Complaint, raw, "complaint")
    return m.AgencyComplaint(
        id=c.id, source=c.source, channel=c.channel, title=c.title, content=c.content,
        category_code=c.category_code, unit_code=c.unit_code, status=c.status,
        is_secret=c.is_secret, is_anonymous=c.is_anonymous,
        reporter=None if c.is_anonymous or c.reporter is None else m.Reporter(**c.reporter.model_dump()),
        lapor=None if c.lapor is None else m.LaporRef(lapor_id=c.lapor.id, tracking_id=c.lapor.tracking_id,
                                                     status=c.lapor.status_code, disposition_id=c.lapor.disposition_id),
        report_to_lapor=c.report_to_lapor, incident_date=c.incident_date, tags=c.tags or None,
        attachments=tuple(m.AgencyAttachment(**a.model_dump()) for a in c.attachments),
        created_at=c.created_at, updated_at=c.updated_at,
    )  # fmt: skip


def _followup(raw: object) -> m.AgencyFollowUp:
    f = _validate(_FollowUp, raw, "follow-up")
    return m.AgencyFollowUp(
        **f.model_dump(exclude={"attachments"}),
        attachments=tuple(m.AgencyAttachment(**a.model_dump()) for a in f.attachments),
    )


def _attachment(raw: object) -> m.AgencyAttachment:
    return m.AgencyAttachment(**_validate(_Attachment, raw, "attachment").model_dump())


W = TypeVar("W", bound=_Wire)


def _record_id(raw: object) -> str | None:
    """The record's id, when it is one the connector can key and name it by."""
    value = raw.get("id") if isinstance(raw, Mapping) else None
    try:
        return _id(value) if isinstance(value, str) and len(value) <= MAX_ID_LENGTH else None
    except ValueError:
        return None


def _validate(model: type[W], raw: object, what: str) -> W:
    deep = too_deep(raw)  # refused before pydantic, json or SQLite has to recurse through it
    if deep is not None:
        raise errors.MalformedRecord(
            f"the agency system sent an invalid {what}",
            [errors.FieldProblem(deep, f"nested deeper than {MAX_NESTING} levels")],
            record_id=_record_id(raw),
        )
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        record_id = _record_id(raw)
        problems = [
            errors.FieldProblem(
                ".".join(str(p) for p in item["loc"]) or "(record)",
                item["msg"].removeprefix("Value error, "),
            )
            for item in error.errors(include_input=False, include_url=False, include_context=False)
        ]
        raise errors.MalformedRecord(
            f"the agency system sent an invalid {what}", problems, record_id=record_id
        ) from None


def _path(record_id: str) -> str:
    """An agency id as one URL path segment (an id holding ``/`` or ``?`` names no other route)."""
    return quote(record_id, safe="")


def _lapor_ref(ref: m.LaporRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"id": ref.lapor_id, "tracking_id": ref.tracking_id,
            "status_code": ref.status.value if ref.status else None, "disposition_id": ref.disposition_id}  # fmt: skip


def _reporter(reporter: m.Reporter | None, anonymous: bool) -> dict[str, Any] | None:
    if reporter is None or anonymous:  # an anonymous complaint's reporter is never sent
        return None
    return {"name": reporter.name, "email": reporter.email, "phone": reporter.phone}


class RestAdapter(AgencyAdapter):
    """An agency system that speaks the agency REST contract v1."""

    def __init__(
        self,
        settings: AgencySettings,
        clock: Clock,
        *,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.base_url = settings.base_url
        token = settings.token.get_secret_value()
        register_secret(token)
        self.session = session or new_session(proxy=settings.proxy, ca_bundle=settings.ca_bundle)
        self.session.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
        self._timeout = (settings.timeouts.connect, settings.timeouts.read)
        self._rng = rng or random.Random()  # noqa: S311 (backoff jitter, not security)
        self.requests_sent = 0

    def close(self) -> None:
        self.session.close()

    def download_attachment(self, attachment: m.AgencyAttachment, *, max_bytes: int) -> bytes:
        """Fetch a file from the agency API; a URL anywhere else is refused (the token stays home)."""
        url = attachment.url or ""
        if not url.startswith(self.base_url + "/"):
            raise errors.MalformedRecord(
                f"attachment {attachment.id} points outside the agency API",
                [
                    errors.FieldProblem(
                        "attachments.url", f"must start with {self.base_url}/ (agency.base_url)"
                    )
                ],
                record_id=attachment.id,
            )
        label = f"agency GET attachment {attachment.id}"

        def attempt() -> bytes:
            self.requests_sent += 1
            response = send(
                self.session,
                "GET",
                url,
                label=label,
                timeout=self._timeout,
                stream=True,
                peer="agency",
            )
            try:
                if response.status_code >= 300:
                    self._decode(response, label)
                chunks, size = [], 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise errors.MalformedRecord(
                            f"attachment {attachment.id} is too large",
                            [
                                errors.FieldProblem(
                                    "attachments",
                                    f"over {max_bytes // 2**20} MB; LAPOR! takes at most 10 MB a file",
                                )
                            ],
                            record_id=attachment.id,
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                response.close()

        return with_retries(
            attempt,
            idempotent=True,
            policy=self.settings.retry,
            clock=self.clock,
            rng=self._rng,
            label=label,
        )

    # --- HTTP ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
              json: Any = None, headers: Mapping[str, str] | None = None,
              files: list[tuple[str, tuple[str, bytes, str]]] | None = None) -> Any:  # fmt: skip
        label = f"agency {method} {path}"

        def attempt() -> Any:
            self.requests_sent += 1
            response = send(self.session, method, self.base_url + path, label=label, timeout=self._timeout,
                            params=params, json=json, headers=headers, files=files, peer="agency")  # fmt: skip
            return self._decode(response, label)

        # Reads are idempotent; creating writes carry an Idempotency-Key and PATCH sets fields,
        # so every request of this contract may be retried.
        return with_retries(
            attempt,
            idempotent=True,
            policy=self.settings.retry,
            clock=self.clock,
            rng=self._rng,
            label=label,
        )

    def _decode(self, response: requests.Response, label: str) -> Any:
        status = response.status_code
        body = decode_json(response)
        if status < 300:
            if body is None:
                raise errors.ServiceUnavailable(f"{label}: {status} with no JSON body")
            return body
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        text = f"{label}: {status} {response.reason or ''}".rstrip() + (
            f" ({code})" if code else ""
        )
        if status == 401:
            raise errors.AuthenticationFailed(f"{text}: the token was refused; check agency.token")
        if status == 404:
            raise errors.NotFound(text, code=code)
        if status == 409:
            raise errors.Conflict(text, code=code)
        if status == 429:
            raise errors.RateLimited(
                text, retry_after=parse_retry_after(response.headers.get("Retry-After"), self.clock)
            )
        if status in (400, 422):
            fields = error.get("fields") if isinstance(error, dict) else None
            problems = [
                errors.FieldProblem(
                    str(name),
                    rule_text(
                        [str(x) for x in messages] if isinstance(messages, list) else str(messages)
                    ),
                )
                for name, messages in (fields or {}).items()
            ]
            raise errors.RecordRejected(text, problems)
        if status >= 500:
            raise errors.ServiceUnavailable(text)
        raise errors.ProtocolError(f"{text}: not an answer the agency contract allows")

    def _pages(self, path: str, parse: Callable[[object], T], source: str,
               updated_since: datetime | None, extra: Mapping[str, str] | None = None) -> Iterator[AgencyPage[T]]:  # fmt: skip
        params: dict[str, str] = {"limit": str(self.settings.page_size), **(extra or {})}
        if updated_since is not None:
            params["updated_since"] = updated_since.isoformat()
        seen_cursors: set[str] = set()
        for _ in range(self.settings.max_pages):
            body = self._call("GET", path, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise errors.ProtocolError(f"agency GET {path}: the answer has no items list")
            page: AgencyPage[T] = AgencyPage(next_cursor=body.get("next_cursor"))
            for raw in body["items"]:
                try:
                    page.items.append(parse(raw))
                except errors.RecordError as error:
                    # Kept in quarantine as received, but never nested deeper than the reader takes.
                    page.invalid.append(m.InvalidRecord.from_error(source, error, shallow(raw)))
            yield page
            if not page.next_cursor:
                return
            if page.next_cursor in seen_cursors:
                raise errors.ProtocolError(
                    f"agency GET {path}: the same cursor came back twice; stopping instead of looping"
                )
            seen_cursors.add(page.next_cursor)
            params["cursor"] = page.next_cursor
        raise errors.ProtocolError(
            f"agency GET {path}: still paging after {self.settings.max_pages} pages (agency.max_pages)"
        )

    # --- the interface -------------------------------------------------------------------

    def categories(self) -> list[m.AgencyCategory]:
        return [
            m.AgencyCategory(code=c["code"], name=c["name"], parent_code=c.get("parent_code"))
            for c in self._list("/categories")
        ]

    def units(self) -> list[m.AgencyUnit]:
        return [m.AgencyUnit(code=u["code"], name=u["name"]) for u in self._list("/units")]

    def statuses(self) -> list[m.AgencyStatus]:
        return [
            m.AgencyStatus(code=s["code"], name=s["name"], is_terminal=bool(s.get("is_terminal")))
            for s in self._list("/statuses")
        ]

    def _list(self, path: str) -> list[dict[str, Any]]:
        body = self._call("GET", path)
        if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
            raise errors.ProtocolError(f"agency GET {path}: expected a list of objects")
        return body

    def complaints(self, updated_since: datetime | None) -> Iterator[AgencyPage[m.AgencyComplaint]]:
        return self._pages("/complaints", _complaint, "agency.complaints", updated_since)

    def complaint(self, complaint_id: str) -> m.AgencyComplaint:
        return _complaint(self._call("GET", f"/complaints/{_path(complaint_id)}"))

    def find_by_lapor_id(self, lapor_id: int) -> m.AgencyComplaint | None:
        for page in self._pages(
            "/complaints", _complaint, "agency.complaints", None, {"lapor_id": str(lapor_id)}
        ):
            for complaint in page.items:
                if complaint.lapor is not None and complaint.lapor.lapor_id == lapor_id:
                    return complaint
        return None

    def create_complaint(
        self, new: m.NewAgencyComplaint, *, idempotency_key: str
    ) -> m.AgencyComplaint:
        body = {
            "source": new.source, "channel": new.channel, "title": new.title, "content": new.content,
            "category_code": new.category_code, "unit_code": new.unit_code, "status": new.status,
            "is_secret": new.is_secret, "is_anonymous": new.is_anonymous,
            "reporter": _reporter(new.reporter, new.is_anonymous), "lapor": _lapor_ref(new.lapor),
            "report_to_lapor": new.report_to_lapor,
        }  # fmt: skip
        return _complaint(
            self._call(
                "POST", "/complaints", json=body, headers={"Idempotency-Key": idempotency_key}
            )
        )

    def update_complaint(
        self,
        complaint_id: str,
        patch: m.AgencyComplaintPatch,
        *,
        if_unmodified_since: datetime | None = None,
    ) -> m.AgencyComplaint:
        body = patch.model_dump(mode="json", exclude_none=True)
        if patch.lapor is not None:
            body["lapor"] = _lapor_ref(patch.lapor)
        if "sla_state" in patch.model_fields_set and patch.sla_state is None:
            body["sla_state"] = None  # given as None: cleared on the agency side
        headers = (
            {"If-Unmodified-Since": if_unmodified_since.isoformat(timespec="microseconds")}
            if if_unmodified_since
            else None
        )
        return _complaint(
            self._call("PATCH", f"/complaints/{_path(complaint_id)}", json=body, headers=headers)
        )

    def followups(self, complaint_id: str) -> list[m.AgencyFollowUp]:
        body = self._call("GET", f"/complaints/{_path(complaint_id)}/followups")
        if not isinstance(body, list):
            raise errors.ProtocolError(
                f"agency GET /complaints/{complaint_id}/followups: expected a list"
            )
        return [_followup(item) for item in body]

    def followups_since(
        self, updated_since: datetime | None
    ) -> Iterator[AgencyPage[m.AgencyFollowUp]]:
        return self._pages("/followups", _followup, "agency.followups", updated_since)

    def add_followup(
        self, complaint_id: str, new: m.NewAgencyFollowUp, *, idempotency_key: str
    ) -> m.AgencyFollowUp:
        return _followup(
            self._call(
                "POST",
                f"/complaints/{_path(complaint_id)}/followups",
                json=new.model_dump(),
                headers={"Idempotency-Key": idempotency_key},
            )
        )

    def upload_attachment(
        self,
        complaint_id: str,
        file: tuple[str, bytes, str],
        *,
        idempotency_key: str,
        followup_id: str | None = None,
    ) -> m.AgencyAttachment:
        path = f"/complaints/{_path(complaint_id)}"
        if followup_id is not None:
            path += f"/followups/{_path(followup_id)}"
        return _attachment(
            self._call(
                "POST",
                path + "/attachments",
                files=[("file", file)],
                headers={"Idempotency-Key": idempotency_key},
            )
        )
