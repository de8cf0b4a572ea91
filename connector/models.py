"""The canonical model: what the connector speaks internally, whatever the wire format.

No LAPOR! or agency field name appears outside the module that owns that wire format; this
module names things once, in the connector's own words. Personal data (the reporter) is kept
out of every ``repr`` so it cannot leak into a log line or an error message by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connector.errors import FieldProblem, RecordError


class Model(BaseModel):
    """Base of canonical records: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ComplaintStatus(str, Enum):
    """A complaint's place in the LAPOR! lifecycle."""

    UNVERIFIED = "unverified"  #: Belum Terverifikasi
    POSTPONED = "postponed"  #: Ditunda
    VERIFIED = "verified"  #: Terverifikasi
    IN_PROCESS = "in_process"  #: Dalam Proses
    DONE = "done"  #: Selesai
    ARCHIVED = "archived"  #: Diarsipkan
    REJECTED = "rejected"  #: Ditolak

    @property
    def is_terminal(self) -> bool:
        """True for Selesai, Diarsipkan and Ditolak: nothing more happens to the complaint."""
        return self in _TERMINAL


_TERMINAL = frozenset({ComplaintStatus.DONE, ComplaintStatus.ARCHIVED, ComplaintStatus.REJECTED})


class Author(str, Enum):
    """Who wrote a follow-up or reply."""

    INSTITUTION = "institution"
    REPORTER = "reporter"
    ADMIN = "admin"


class Reporter(Model):
    """The citizen who reported (personal data: never logged, never in a repr)."""

    name: str | None = Field(default=None, repr=False)
    email: str | None = Field(default=None, repr=False)
    phone: str | None = Field(default=None, repr=False)

    @property
    def is_known(self) -> bool:
        """True when at least one identifying field is present."""
        return any((self.name, self.email, self.phone))

    def __repr__(self) -> str:
        return "Reporter(<personal data hidden>)"

    __str__ = __repr__


class Attachment(Model):
    """A file attached to a complaint or follow-up, stored on LAPOR!."""

    id: int
    file_name: str
    extension: str | None = None
    path: str | None = None


class StatusNote(Model):
    """One line of a complaint's status history."""

    note: str
    at: datetime


class Deadlines(Model):
    """Service-rule deadlines LAPOR! computes for a complaint (working days)."""

    verify_by: datetime | None = None
    first_followup_by: datetime | None = None
    auto_close_at: datetime | None = None
    overdue: bool = False


class ComplaintSummary(Model):
    """A complaint as a listing shows it: enough to tell whether it changed."""

    lapor_id: int
    tracking_id: str
    title: str
    channel_id: int | None = None
    classification_id: int | None = None
    category_id: int | None = None
    location_id: int | None = None
    is_secret: bool
    is_anonymous: bool
    status: ComplaintStatus
    status_name: str
    disposition_id: int | None = None
    disposition_name: str | None = None
    external_ref: str | None = None
    created_at: datetime
    updated_at: datetime
    deadlines: Deadlines = Deadlines()
    #: How many follow-ups C3 lists, and the newest one's time, where the service says so (not in
    #: the contract): hints that spare a C3 read when nothing new was posted; None when absent.
    followups_count: int | None = None
    last_followup_at: datetime | None = None


class HistoryEntry(Model):
    """One entry of a complaint's history on LAPOR! (disposition, status change, ...)."""

    id: int
    at: datetime
    kind: str
    text: str
    institution_from: str | None = None
    institution_to: str | None = None
    status_old: str | None = None
    status_new: str | None = None
    attachments: tuple[Attachment, ...] = ()


class Complaint(ComplaintSummary):
    """A complaint in full, with its content, reporter and history."""

    content: str
    incident_date: date | None = None
    tags: str | None = None
    reporter: Reporter = Reporter()
    status_notes: tuple[StatusNote, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    history: tuple[HistoryEntry, ...] = ()


class FollowUp(Model):
    """A follow-up (tindak lanjut) by the institution, or a reply by the reporter or an admin."""

    id: int
    at: datetime
    content: str
    author: Author
    kind: str | None = None
    institution_from: str | None = None
    institution_to: str | None = None
    is_secret: bool = False
    attachments: tuple[Attachment, ...] = ()


class NewFollowUp(Model):
    """A follow-up to post to LAPOR!."""

    complaint_id: int
    content: str
    is_secret: bool = False
    kind: str | None = None
    rating: int | None = Field(default=None, ge=0, le=5)
    user_id: int | None = None
    institution_to_id: int | None = None
    disposition_note: str | None = None
    #: Files to attach: (file name, bytes, content type).
    files: tuple[tuple[str, bytes, str], ...] = Field(default=(), repr=False)


class CreatedFollowUp(Model):
    """What LAPOR! answered when a follow-up was added."""

    id: int
    complaint_id: int
    created_at: datetime


class NewComplaint(Model):
    """A complaint received on the agency's own channel, to be created on LAPOR!.

    Exactly one of ``reporter`` (a new reporter account) or ``user_id`` (an existing account,
    e.g. the agency's intake account for anonymous complaints) must be given.
    """

    external_ref: str
    title: str
    content: str
    channel_id: int
    classification_id: int
    category_id: int
    disposition_id: int
    location_id: int  #: the region the complaint is about (LAPOR!'s location list); required
    incident_date: date | None = None
    tags: str | None = None
    is_secret: bool = False
    is_anonymous: bool = False
    disposition_note: str | None = None
    reporter: Reporter | None = None
    user_id: int | None = None
    attachment_ids: tuple[int, ...] = ()


class CreatedComplaint(Model):
    """What LAPOR! answered when a complaint was created."""

    lapor_id: int
    tracking_id: str
    status_name: str


class UploadedFile(Model):
    """A file stored on LAPOR! by an upload, ready to attach by id."""

    id: int
    file_name: str
    is_image: bool


class Category(Model):
    """A node of LAPOR!'s category tree; ``parent_id`` is None for a root."""

    id: int
    name: str
    parent_id: int | None = None


class Topic(Model):
    """A topic from the legacy ``gettopics`` service (the older category list)."""

    id: int
    name: str
    parent_id: int | None = None


class Institution(Model):
    """An institution (K/L/D) a complaint can be disposed to."""

    id: int
    name: str
    parent_id: int | None = None


class Template(Model):
    """A message template (disposition, follow-up, ...)."""

    code: str
    title: str
    kind: str | None = None
    content: str


class StatusInfo(Model):
    """A status as LAPOR! names it; ``status`` is None for one outside the known lifecycle."""

    code: str
    status: ComplaintStatus | None = None
    name: str


class Classification(Model):
    """A report type (klasifikasi): Aspirasi, Pengaduan, ..."""

    id: int
    name: str


@dataclass(frozen=True)
class InvalidRecord:
    """A record that failed validation, kept for quarantine: where it came from and what is wrong.

    ``raw`` holds the record as received (it may contain personal data), so it is left out of
    the repr; it belongs in the state store's quarantine, never in a log line.
    """

    source: str
    record_id: str | None
    problems: tuple[FieldProblem, ...]
    raw: Any = field(repr=False, compare=False)

    @classmethod
    def from_error(cls, source: str, error: RecordError, raw: Any) -> InvalidRecord:
        """Build one from the error that rejected ``raw``."""
        return cls(source=source, record_id=error.record_id, problems=error.problems, raw=raw)

    def describe(self) -> str:
        """One line naming the record and its problems (no values)."""
        problems = "; ".join(str(p) for p in self.problems) or "invalid"
        return f"{self.source} record {self.record_id or '(no id)'}: {problems}"


# --- the agency side (agency REST contract v1; field names there, canonical here) -----------


class AgencyCategory(Model):
    """A node of the agency's own category tree."""

    code: str
    name: str
    parent_code: str | None = None


class AgencyUnit(Model):
    """A work unit a complaint can be routed to."""

    code: str
    name: str


class AgencyStatus(Model):
    """One of the agency's own statuses."""

    code: str
    name: str
    is_terminal: bool = False


class LaporRef(Model):
    """How an agency complaint is linked to LAPOR!."""

    lapor_id: int
    tracking_id: str
    status: ComplaintStatus | None = None
    disposition_id: int | None = None


class AgencyAttachment(Model):
    """A file attached to an agency complaint."""

    id: str
    file_name: str
    content_type: str | None = None
    size: int | None = None
    url: str | None = None


class AgencyComplaint(Model):
    """A complaint as the agency's own system holds it."""

    id: str
    source: str  #: "internal" (received on the agency's channels) or "lapor"
    channel: str
    title: str
    content: str
    category_code: str | None = None
    unit_code: str | None = None
    status: str
    is_secret: bool = False
    is_anonymous: bool = False
    reporter: Reporter | None = None
    lapor: LaporRef | None = None
    report_to_lapor: bool = False
    incident_date: date | None = None  #: when it happened, if the agency recorded it
    tags: str | None = None  #: free tags, comma-separated (LAPOR! ``tags_raw``)
    attachments: tuple[AgencyAttachment, ...] = ()
    created_at: datetime
    updated_at: datetime


class NewAgencyComplaint(Model):
    """A complaint to create in the agency's system (from LAPOR!)."""

    source: str = "lapor"
    channel: str = "lapor"
    title: str
    content: str
    category_code: str | None = None
    unit_code: str | None = None
    status: str
    is_secret: bool = False
    is_anonymous: bool = False
    reporter: Reporter | None = None
    lapor: LaporRef | None = None
    report_to_lapor: bool = False


class SlaStage(str, Enum):
    """Which service-rule deadline of a complaint is the one that counts now."""

    VERIFY = "verify"  #: verification and disposition, 3 working days after submission
    FIRST_FOLLOWUP = "first_followup"  #: the institution's first follow-up, 5 working days
    AUTO_CLOSE = "auto_close"  #: closed by LAPOR! 10 working days after the last follow-up
    CEILING = "ceiling"  #: the legal ceiling of 60 days (Perpres 76/2013)


class SlaStanding(str, Enum):
    """How a complaint stands against its current deadline."""

    ON_TIME = "on_time"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"


class SlaState(Model):
    """Where a complaint stands against the LAPOR! service rules, for the agency to show."""

    stage: SlaStage
    due: date  #: the day the current stage's deadline falls on (WIB)
    #: Working days (hari kerja) from the day it was computed until ``due``; negative once overdue.
    working_days_left: int
    state: SlaStanding


class LaporChange(Model):
    """Which of LAPOR!'s own fields of a complaint changed there after it reached the agency."""

    fields: tuple[str, ...]  #: of title, content, category, classification
    at: datetime  #: LAPOR!'s ``updated_at`` of the change


class AgencyComplaintPatch(Model):
    """A partial update of an agency complaint; only the fields set are sent.

    ``sla_state`` given as None (explicitly) clears it on the agency side; left out, it is not sent.
    """

    status: str | None = None
    category_code: str | None = None
    unit_code: str | None = None
    lapor: LaporRef | None = None
    is_secret: bool | None = None
    is_anonymous: bool | None = None
    title: str | None = None
    content: str | None = None
    #: The agency's code for the LAPOR! report type (klasifikasi), by classifications.yaml ``inbound``.
    classification: str | None = None
    changed_on_lapor: LaporChange | None = None
    sla_state: SlaState | None = None


class AgencyFollowUp(Model):
    """A follow-up (tindak lanjut) or a reply, as the agency's system holds it."""

    id: str
    complaint_id: str
    author: str  #: "agency", "reporter" or "lapor_admin"
    content: str
    is_secret: bool = False
    status_after: str | None = None
    lapor_followup_id: int | None = None
    attachments: tuple[AgencyAttachment, ...] = ()
    created_at: datetime
    updated_at: datetime


class NewAgencyFollowUp(Model):
    """A follow-up or reply to add to an agency complaint (from LAPOR!)."""

    author: str
    content: str
    is_secret: bool = False
    status_after: str | None = None
    lapor_followup_id: int | None = None
