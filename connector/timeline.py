"""One complaint's timeline for an auditor: LAPOR!'s history, the agency's, and the connector's.

``build_timeline`` finds the complaint's link in the state (by tracking id, LAPOR! id or agency
id), reads LAPOR!'s history live (C2 status logs and data logs, C3 follow-ups and replies), the
agency's complaint and follow-ups through the adapter, and the connector's audit entries, and
merges them into one list of ``Event``s in time order (UTC inside; for equal times LAPOR! first,
then the agency, then the connector: cause before record). A side that cannot be read is a
``Gap``: the other sides are still given, and an ``unreadable`` row after the events, at the
time of reading, says what is missing.

Privacy (``connector.disclosure``): every text of an event is redacted of the reporter's known
name, e-mail and phone and of anything shaped like an e-mail, phone number or NIK; follow-up
texts of a rahasia (secret) complaint are withheld unless ``show_content`` is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from connector import errors
from connector import models as m
from connector.adapters import AgencyAdapter
from connector.audit import AuditEntry, AuditLog
from connector.clock import Clock
from connector.disclosure import ContentRule, Redactor
from connector.lapor.client import LaporClient
from connector.links import Link, Links
from connector.mappings import Mappings
from connector.state import StateStore

Side = Literal["lapor", "agency", "connector"]
#: The order of the sides for events at the same moment.
SIDES: tuple[Side, ...] = ("lapor", "agency", "connector")
SIDE_NAMES = {"lapor": "LAPOR!", "agency": "the agency system", "connector": "the audit log"}
#: The columns of a timeline row (JSON keys, CSV header), in order.
COLUMNS = ("at", "side", "kind", "author", "text", "lapor_id", "tracking_id", "agency_id")

_AGENCY_AUTHORS = {"agency": "agency", "reporter": "reporter", "lapor_admin": "admin"}
_DISPOSITIONS = frozenset({"disposition", "reject"})
_DIRECTIONS = {"inbound": "LAPOR! → agency", "outbound": "agency → LAPOR!", "local": "state only"}
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One thing that happened to the complaint, on one side, at one moment (UTC)."""

    at: datetime
    side: Side
    kind: str
    author: str | None
    text: str
    lapor_id: int | None
    tracking_id: str | None
    agency_id: str | None

    def row(self, zone: ZoneInfo) -> dict[str, Any]:
        """The event as a row of ``COLUMNS``, its time ISO 8601 in ``zone`` with the offset."""
        return {
            "at": self.at.astimezone(zone).isoformat(timespec="microseconds"),
            "side": self.side, "kind": self.kind, "author": self.author, "text": self.text,
            "lapor_id": self.lapor_id, "tracking_id": self.tracking_id, "agency_id": self.agency_id,
        }  # fmt: skip


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``2026-12-01 09:30:05 WIB``: the moment in the zone, with the zone's name."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}"


@dataclass(frozen=True)
class Gap:
    """A side, or part of one, that could not be read: what and why, and the error that said so
    (its kind decides the exit code). The error's own text names status and path, no data."""

    side: Side
    problem: str
    error: errors.ConnectorError


@dataclass(frozen=True)
class Timeline:
    """A complaint's merged history, and what of it could not be read."""

    link: Link
    #: Which id the key given matched: ``tracking id``, ``LAPOR! id`` or ``agency id``.
    matched: str
    unit: str | None
    zone: ZoneInfo
    events: list[Event]
    gaps: list[Gap] = field(default_factory=list)


# --- finding the complaint ------------------------------------------------------------------


def find_link(links: Links, key: str) -> tuple[Link, str]:
    """The link whose tracking id, LAPOR! id or agency id is ``key``, and which one matched.

    ``ReconcileError`` when none matches, or when the key names different complaints by
    different ids (then the message says which).
    """
    found: dict[str, Link] = {}
    if (link := links.by_tracking_id(key)) is not None:
        found["tracking id"] = link
    if key.isdigit() and (link := links.by_lapor_id(int(key))) is not None:
        found["LAPOR! id"] = link
    if (link := links.by_agency_id(key)) is not None:
        found["agency id"] = link
    distinct = {(link.lapor_id, link.agency_id) for link in found.values()}
    if not found:
        raise errors.ReconcileError(
            f"{key} is not the tracking id, LAPOR! id or agency id of a linked complaint; "
            f"check the id (`lapor-connector log --tracking-id {key}` lists its audit entries)"
        )
    if len(distinct) > 1:
        raise errors.ReconcileError(
            f"{key} names different complaints as {' and as '.join(found)}; "
            "give the other id of the one you mean"
        )
    matched = next(iter(found))
    return found[matched], matched


# --- each side, as events (pure) ------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _lapor_followup(followup_id: int | None) -> str | None:
    return None if followup_id is None else f"LAPOR! follow-up {followup_id}"


def _join(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)


def _flags(secret: bool, anonymous: bool) -> str | None:
    names = [name for name, on in (("rahasia", secret), ("anonim", anonymous)) if on]
    return f"({', '.join(names)})" if names else None


def _maker(side: Side, link: Link, rule: ContentRule) -> Callable[..., Event]:
    """Events of one side of one complaint: UTC, both ids, every text redacted."""

    def event(at: datetime, kind: str, author: str | None, text: str) -> Event:
        return Event(_utc(at), side, kind, author, rule.redact(text), link.lapor_id,
                     link.tracking_id, link.agency_id)  # fmt: skip

    return event


def lapor_events(
    complaint: m.Complaint,
    followups: Sequence[m.FollowUp],
    link: Link,
    rule: ContentRule,
) -> list[Event]:
    """LAPOR!'s history of the complaint: filed, dispositions and status changes, follow-ups
    and replies. A status log at the moment of a data log (or of the filing) is the same
    change told twice: it joins that event instead of being one of its own."""

    event = _maker("lapor", link, rule)

    notes = list(complaint.status_notes)

    def note_at(moment: datetime) -> str | None:
        for i, note in enumerate(notes):
            if note.at == moment:
                return notes.pop(i).note
        return None

    flags = _flags(complaint.is_secret, complaint.is_anonymous)
    events = [
        event(
            complaint.created_at, "created",
            "institution" if complaint.external_ref else "reporter",
            _join("complaint filed on LAPOR!", flags, note_at(complaint.created_at)),
        )
    ]  # fmt: skip
    # For equal times (LAPOR! tells whole seconds) a follow-up comes before the history entry it
    # caused (the first follow-up moves Terverifikasi to Dalam Proses at the same moment).
    for f in followups:
        events.append(
            event(
                f.at,
                "followup" if f.author is m.Author.INSTITUTION else "reply",
                f.author.value,
                _join(rule.text(f.content, is_secret=f.is_secret), f.institution_from,
                      _lapor_followup(f.id)),
            )
        )  # fmt: skip
    for entry in complaint.history:
        changed = entry.status_new is not None and entry.status_new != entry.status_old
        kind = (
            "disposition"
            if entry.kind in _DISPOSITIONS
            else ("status" if changed else entry.kind or "history")
        )
        status = (
            f"status {entry.status_old or '?'} → {entry.status_new}"
            if changed and str(entry.status_new) not in entry.text
            else None
        )
        events.append(event(entry.at, kind, None, _join(entry.text, status, note_at(entry.at))))
    for note in notes:
        events.append(event(note.at, "status", None, note.note))
    return events


def agency_events(
    complaint: m.AgencyComplaint,
    followups: Sequence[m.AgencyFollowUp],
    link: Link,
    rule: ContentRule,
    pairs: Mapping[str, int] | None = None,
) -> list[Event]:
    """The agency system's history of the complaint: recorded, follow-ups and replies (with
    the status each moved to and the LAPOR! follow-up it is, from the record or the state's
    ``pairs``), and its last change."""

    event = _maker("agency", link, rule)

    flags = _flags(complaint.is_secret, complaint.is_anonymous)
    events = [
        event(
            complaint.created_at, "created",
            "connector" if complaint.source == "lapor" else "agency",
            _join(f"complaint recorded in the agency system (source {complaint.source}, channel "
                  f"{complaint.channel})", flags),
        )
    ]  # fmt: skip
    for f in sorted(followups, key=lambda f: f.created_at):
        author = _AGENCY_AUTHORS.get(f.author, f.author)
        events.append(
            event(
                f.created_at,
                "followup" if author == "agency" else "reply",
                author,
                _join(
                    rule.text(f.content, is_secret=f.is_secret),
                    f.status_after and f"status → {f.status_after}",
                    _lapor_followup(f.lapor_followup_id or (pairs or {}).get(f.id)),
                ),
            )
        )  # fmt: skip
    if complaint.updated_at > complaint.created_at:
        events.append(
            event(complaint.updated_at, "updated", None,
                  _join(f"last change; status now {complaint.status}",
                        complaint.unit_code and f"unit {complaint.unit_code}"))
        )  # fmt: skip
    return events


def connector_events(entries: Iterable[AuditEntry], link: Link) -> list[Event]:
    """The connector's audit entries of the complaint: what it wrote, and how that went."""
    events = []
    for e in entries:
        fields_changed = ", ".join(_names(e.changed_fields))
        events.append(
            Event(
                _utc(datetime.fromisoformat(e.at)), "connector", f"sync:{e.action}", "connector",
                _join(f"{e.outcome}{f' ({e.error_code})' if e.error_code else ''}",
                      f"{e.flow} ({_DIRECTIONS.get(e.direction, e.direction)})", f"by {e.actor}",
                      fields_changed and f"fields: {fields_changed}", f"audit entry {e.id}"),
                link.lapor_id, link.tracking_id, link.agency_id,
            )
        )  # fmt: skip
    return events


def _names(changed_fields: str) -> list[str]:
    try:
        names = json.loads(changed_fields or "[]")
    except ValueError:
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def merge(*sides: Iterable[Event]) -> list[Event]:
    """Every event in time order; for equal times LAPOR!, the agency, then the connector, and
    within one side in the order that side gave them."""
    rank = {side: i for i, side in enumerate(SIDES)}
    return sorted((e for side in sides for e in side), key=lambda e: (e.at, rank[e.side]))


# --- reading every side ---------------------------------------------------------------------


def _read(side: Side, what: str, gaps: list[Gap], read: Callable[[], T]) -> T | None:
    try:
        return read()
    except errors.ConnectorError as error:
        gaps.append(Gap(side, f"{what}: {error}", error))
        return None


def _lapor_side(
    lapor: LaporClient, lapor_id: int, gaps: list[Gap]
) -> tuple[m.Complaint | None, list[m.FollowUp]]:
    complaint = _read("lapor", f"LAPOR! complaint {lapor_id} (C2)", gaps,
                      lambda: lapor.complaint(lapor_id))  # fmt: skip
    if complaint is None:
        return None, []
    items = _read("lapor", f"LAPOR! follow-ups of {lapor_id} (C3)", gaps,
                  lambda: list(lapor.followups(lapor_id)))  # fmt: skip
    followups = []
    for item in items or []:
        if isinstance(item, m.InvalidRecord):
            error = errors.MalformedRecord(item.describe(), record_id=item.record_id)
            gaps.append(Gap("lapor", f"a LAPOR! follow-up: {item.describe()}", error))
        else:
            followups.append(item)
    return complaint, followups


def _agency_side(
    agency: AgencyAdapter | None, agency_id: str, gaps: list[Gap]
) -> tuple[m.AgencyComplaint | None, list[m.AgencyFollowUp]]:
    if agency is None:
        error = errors.ConfigError(["agency: not configured"])
        gaps.append(Gap("agency", "the agency system: not configured (no agency section)", error))
        return None, []
    complaint = _read("agency", f"agency complaint {agency_id}", gaps,
                      lambda: agency.complaint(agency_id))  # fmt: skip
    if complaint is None:
        return None, []
    followups = _read("agency", f"agency follow-ups of {agency_id}", gaps,
                      lambda: agency.followups(agency_id))  # fmt: skip
    return complaint, followups or []


def build_timeline(
    key: str,
    *,
    store: StateStore,
    lapor: LaporClient,
    agency: AgencyAdapter | None,
    mappings: Mappings,
    clock: Clock,
    show_content: bool = False,
) -> Timeline:
    """Read the complaint ``key`` names on every side and merge its history (reads only)."""
    link, matched = find_link(Links(store), key)
    gaps: list[Gap] = []
    lapor_id, agency_id = link.lapor_id, link.agency_id
    complaint, followups = _lapor_side(lapor, lapor_id, gaps) if lapor_id else (None, [])
    theirs, their_followups = _agency_side(agency, agency_id, gaps) if agency_id else (None, [])
    pairs = Links(store).followup_pairs(agency_id) if agency_id else {}
    entries = AuditLog(store).for_complaint(
        lapor_id=lapor_id, tracking_id=link.tracking_id, agency_id=agency_id
    )
    secret = any(c is not None and c.is_secret for c in (complaint, theirs))
    redact = Redactor(
        [complaint.reporter if complaint else None, theirs.reporter if theirs else None]
    )
    rule = ContentRule(secret=secret, show_content=show_content, redact=redact)
    unit = (
        theirs.unit_code
        if theirs is not None and theirs.unit_code
        else mappings.unit_for_disposition(complaint.disposition_id)
        if complaint
        else None
    )
    now = _utc(clock.now())
    unreadable = [
        Event(now, g.side, "unreadable", None,
              f"{g.problem}; its events are missing from this timeline",
              lapor_id, link.tracking_id, agency_id)
        for g in gaps
    ]  # fmt: skip
    events = merge(
        lapor_events(complaint, followups, link, rule) if complaint else [],
        agency_events(theirs, their_followups, link, rule, pairs) if theirs else [],
        connector_events(entries, link),
    )
    # What could not be read comes last, at the time of reading: it is about this reading.
    return Timeline(
        link, matched, unit, mappings.calendar.zone_for(unit), events + unreadable, gaps
    )
