"""Reconcile: compare the LAPOR! inbox, the agency system and the links, and name every drift.

Each ``Finding`` names both ids, what differs (``detail``, never personal data or complaint
text) and what ``--fix`` would do (``fix``). Only what the flows have already had their turn at
is compared: a complaint updated on LAPOR! after the inbound cursor (less its overlap), an agency
record after the intake cursor, an agency follow-up after the follow-ups cursor, a complaint
with a write still open in the outbox, or a record in quarantine is left to the flows (counted
as ``pending``), so reconcile never races them. The repairs are in ``connector.reconcile_fix``,
the daemon's sweep in ``connector.reconcile_sweep``; docs/reconcile.md describes it all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector import errors
from connector import models as m
from connector.flows.inbound import BEGINNING, OVERLAP
from connector.links import Link
from connector.sync import Sync

FLOW = "reconcile"
KINDS = ("missing_in_agency", "not_filed", "lapor_gone", "agency_gone", "status_drift",
         "followup_drift", "flag_drift")  # fmt: skip
_OPEN = ("pending", "in_flight", "failed")
_REPLY_AUTHORS = (m.Author.REPORTER, m.Author.ADMIN)
_FLAGS = ("is_secret", "is_anonymous")


@dataclass(frozen=True)
class Finding:
    """One drift between the two sides (or a side and the links), and its repair."""

    kind: str
    lapor_id: int | None
    agency_id: str | None
    tracking_id: str | None
    detail: str
    fix: str
    #: False when no write can repair it: ``fix`` is then an instruction for a person.
    fixable: bool = True
    summary: m.ComplaintSummary | None = field(default=None, repr=False, compare=False)
    agency: m.AgencyComplaint | None = field(default=None, repr=False, compare=False)
    #: The agency fields a PATCH sets (status, or flags raised).
    patch: tuple[tuple[str, Any], ...] = ()
    #: LAPOR! reply ids missing in the agency; agency follow-ups missing on LAPOR!.
    replies: tuple[int, ...] = ()
    followups: tuple[m.AgencyFollowUp, ...] = field(default=(), repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        """What ``reconcile --format json`` prints of it."""
        return {"kind": self.kind, "lapor_id": self.lapor_id, "agency_id": self.agency_id,
                "detail": self.detail, "fix": self.fix}  # fmt: skip


@dataclass
class Comparison:
    """What one reconcile compared and found."""

    findings: list[Finding] = field(default_factory=list)
    compared: int = 0
    #: Records left to the flows: not yet read by them, a write open, or in quarantine.
    pending: int = 0
    lapor_requests: int = 0


class Reconciler:
    """Compares summaries, agency records and links; holds what decides "left to the flows".

    ``agency_complaints`` and ``agency_followups`` are the agency's full listings when the
    caller read them (a full reconcile); without them each record is read by its id.
    """

    def __init__(
        self,
        sync: Sync,
        *,
        agency_complaints: dict[str, m.AgencyComplaint] | None = None,
        agency_followups: dict[str, list[m.AgencyFollowUp]] | None = None,
    ) -> None:
        self.sync = sync
        store = sync.store
        self.inbound_mark = store.watermark("inbound")
        self.intake_mark = store.watermark("intake_out")
        self.followups_mark = store.watermark("followups_out")
        self.held = {(e.source, e.record_id) for e in store.quarantined()}
        self.busy_lapor, self.busy_agency = _open_work(sync)
        self._complaints = agency_complaints
        self._listed_followups = agency_followups
        self.result = Comparison()
        self._sent_before = sync.lapor.transport.requests_sent

    def spent(self) -> int:
        """LAPOR! requests sent since this comparison began (by any thread of the process)."""
        return self.sync.lapor.transport.requests_sent - self._sent_before

    def done(self) -> Comparison:
        """The findings so far, and the LAPOR! requests they cost."""
        self.result.lapor_requests = self.spent()
        return self.result

    # --- what the flows have had their turn at -------------------------------------------

    def _lapor_settled(self, summary: m.ComplaintSummary, link: Link | None) -> bool:
        """The inbound flow has seen this version of the complaint, or will never read it again."""
        seen = link.lapor_updated_at if link is not None else None
        if seen is not None and summary.updated_at <= seen:
            return True
        mark = self.inbound_mark
        return mark is not None and summary.updated_at < mark - OVERLAP

    def _agency_settled(self, complaint: m.AgencyComplaint) -> bool:
        return self.intake_mark is not None and complaint.updated_at <= self.intake_mark

    def _left_to_flows(self, summary: m.ComplaintSummary, link: Link | None,
                       complaint: m.AgencyComplaint | None) -> bool:  # fmt: skip
        lapor_id, agency_id = summary.lapor_id, complaint.id if complaint else None
        return (
            not self._lapor_settled(summary, link)
            or (complaint is not None and not self._agency_settled(complaint))
            or lapor_id in self.busy_lapor
            or (agency_id is not None and agency_id in self.busy_agency)
            or ("inbound", str(lapor_id)) in self.held
            or (agency_id is not None and ("intake_out", agency_id) in self.held)
        )

    # --- the LAPOR! inbox, a page at a time ----------------------------------------------

    def check_summaries(self, summaries: Sequence[m.ComplaintSummary]) -> list[Finding]:
        """Compare these inbox complaints with their links and agency records."""
        sync, found = self.sync, []
        pairs: list[tuple[m.ComplaintSummary, Link]] = []
        for summary in summaries:
            link = sync.links.by_lapor_id(summary.lapor_id)
            self.result.compared += 1
            if link is None:
                found += self._unlinked(summary)
            elif link.gone is None and link.agency_id is not None:
                pairs.append((summary, link))
        records = sync.parallel(lambda pair: self._agency_record(pair[1].agency_id or ""), pairs)
        compared: list[tuple[m.ComplaintSummary, Link, m.AgencyComplaint]] = []
        for (summary, link), record in zip(pairs, records, strict=True):
            if isinstance(record, errors.NotFound):
                if not self._left_to_flows(summary, link, None):
                    found.append(_agency_gone(link))
                else:
                    self.result.pending += 1
            elif isinstance(record, Exception):
                raise record
            elif self._left_to_flows(summary, link, record):
                self.result.pending += 1
            else:
                compared.append((summary, link, record))
        for summary, link, record in compared:
            found += self._flags(summary, link, record) + self._status(summary, link, record)
        found += self._followups(compared)
        self.result.findings += found
        return found

    def _agency_record(self, agency_id: str) -> m.AgencyComplaint:
        if self._complaints is not None and agency_id in self._complaints:
            return self._complaints[agency_id]
        return self.sync.agency.complaint(agency_id)  # not listed: read it (404: gone)

    def _unlinked(self, summary: m.ComplaintSummary) -> list[Finding]:
        sync = self.sync
        if summary.disposition_id != sync.institution_id or summary.external_ref is not None:
            return []  # not ours now, or filed by us (linked by the intake flow or a rebuild)
        if self._left_to_flows(summary, None, None):
            self.result.pending += 1
            return []
        existing = sync.agency.find_by_lapor_id(summary.lapor_id)
        lapor_id, tracking_id = summary.lapor_id, summary.tracking_id
        if existing is not None:
            return [Finding("missing_in_agency", lapor_id=lapor_id, tracking_id=tracking_id,
                            agency_id=existing.id, fixable=False,
                            detail="in the agency system, but not linked in the state",
                            fix="manual: run `lapor-connector state rebuild` to link it")]  # fmt: skip
        return [Finding("missing_in_agency", lapor_id=lapor_id, tracking_id=tracking_id,
                        agency_id=None, summary=summary,
                        detail=f"disposed to us on LAPOR! ({summary.status.value}), not in the agency system",
                        fix="create it in the agency system (the inbound flow's create path)")]  # fmt: skip

    def _flags(self, summary: m.ComplaintSummary, link: Link,
               record: m.AgencyComplaint) -> list[Finding]:  # fmt: skip
        ids = _ids(link)
        up = [name for name in _FLAGS if getattr(summary, name) and not getattr(record, name)]
        only_agency = [
            name for name in _FLAGS if getattr(record, name) and not getattr(summary, name)
        ]
        found = []
        if up:
            names = " and ".join(up)
            found.append(Finding("flag_drift", **ids, summary=summary, agency=record,
                                 patch=tuple((name, True) for name in up),
                                 detail=f"LAPOR! has {names} on, the agency has it off",
                                 fix=f"raise {names} on the agency complaint (flags are never lowered)"))  # fmt: skip
        if only_agency:
            names = " and ".join(only_agency)
            found.append(Finding("flag_drift", **ids, fixable=False,
                                 detail=f"the agency has {names} on, LAPOR! has it off",
                                 fix=f"manual: LAPOR! has no endpoint to raise {names}; ask the LAPOR! "
                                     f"admin to set it on complaint {link.tracking_id} (the agency's flag stays on)"))  # fmt: skip
        return found

    def _status(self, summary: m.ComplaintSummary, link: Link,
                record: m.AgencyComplaint) -> list[Finding]:  # fmt: skip
        sync = self.sync
        if link.disposed_away or summary.disposition_id != sync.institution_id:
            return []  # re-disposed: the agency shows "dialihkan"; LAPOR!'s status is not ours
        try:
            mapped = sync.mappings.status_to_agency(summary.status)
        except errors.MappingError:
            return []  # a mapping gap: the inbound flow quarantines it with the fix
        if mapped == record.status or sync.mappings.is_backwards_agency(record.status, mapped):
            return []  # in step, or the agency is ahead (a follow-up LAPOR! has not closed on yet)
        return [Finding("status_drift", **_ids(link), summary=summary, agency=record,
                        patch=(("status", mapped),),
                        detail=f"LAPOR! says {summary.status.value} (agency {mapped}), the agency says {record.status}",
                        fix=f"set the agency status to {mapped} (LAPOR! owns its lifecycle)")]  # fmt: skip

    def _followups(
        self, compared: list[tuple[m.ComplaintSummary, Link, m.AgencyComplaint]]
    ) -> list[Finding]:
        """Replies on LAPOR! missing in the agency, and agency follow-ups missing on LAPOR!.

        C3 is read only where the summary cannot decide: a complaint not in step (its replies
        were never imported for this version), or whose follow-up count moved."""
        sync = self.sync
        read = [(s, link) for s, link, _ in compared if _c3_needed(s, link)]
        listed = dict(zip([s.lapor_id for s, _ in read],
                          sync.parallel(lambda pair: list(sync.lapor.followups(pair[0].lapor_id)), read),
                          strict=True))  # fmt: skip
        agency_ids = [record.id for _, _, record in compared]
        ours: dict[str, list[m.AgencyFollowUp] | Exception]
        if self._listed_followups is not None:
            ours = {a: self._listed_followups.get(a, []) for a in agency_ids}
        else:
            ours = dict(
                zip(agency_ids, sync.parallel(sync.agency.followups, agency_ids), strict=True)
            )
        found = []
        for summary, link, record in compared:
            lapor_items, agency_items = listed.get(summary.lapor_id), ours[record.id]
            for result in (lapor_items, agency_items):
                if isinstance(result, Exception) and not isinstance(result, errors.ReconcileError):
                    raise result
            replies = self._missing_replies(lapor_items)
            posts = self._missing_posts(summary, link, agency_items)
            if not replies and not posts:
                continue
            parts = (
                [f"{len(replies)} LAPOR! reply(ies) {list(replies)} not in the agency"]
                if replies
                else []
            )
            if posts:
                parts.append(
                    f"{len(posts)} agency follow-up(s) {[f.id for f in posts]} not on LAPOR!"
                )
            fixes = (["import the replies (the inbound flow's path)"] if replies else []) + (
                ["post the follow-ups (the follow-ups flow's path)"] if posts else [])  # fmt: skip
            found.append(Finding("followup_drift", **_ids(link), summary=summary, agency=record,
                                 replies=replies, followups=tuple(posts),
                                 detail="; ".join(parts), fix="; ".join(fixes)))  # fmt: skip
        return found

    def _missing_replies(self, items: object) -> tuple[int, ...]:
        if not isinstance(items, list):
            return ()
        links, outbox = self.sync.links, self.sync.outbox
        return tuple(
            f.id
            for f in items
            if isinstance(f, m.FollowUp)
            and f.author in _REPLY_AUTHORS
            and not links.followup_linked(lapor_followup_id=f.id)
            and not _open(outbox.get(f"agency.followup:{f.id}"))
        )

    def _missing_posts(self, summary: m.ComplaintSummary, link: Link,
                       items: object) -> list[m.AgencyFollowUp]:  # fmt: skip
        if not isinstance(items, list) or link.disposed_away or self.followups_mark is None:
            return []  # held while re-disposed; or the follow-ups flow never ran
        if summary.disposition_id != self.sync.institution_id:
            return []
        links, outbox = self.sync.links, self.sync.outbox
        return [
            f
            for f in items
            if f.author == "agency"
            and f.updated_at < self.followups_mark
            and ("followups_out", f.id) not in self.held
            and not links.followup_linked(agency_followup_id=f.id)
            and not _open(outbox.get(f"lapor.followup:{f.id}"))
        ]

    # --- what only a whole pass can tell ---------------------------------------------------

    def check_unlisted(self, links: Iterable[Link]) -> list[Finding]:
        """Links the whole inbox did not list: a 404 on the detail (C2) means gone on LAPOR!."""
        sync = self.sync
        due = [
            link
            for link in links
            if link.gone is None and link.lapor_id is not None
            and link.lapor_id not in self.busy_lapor
        ]  # fmt: skip
        details = sync.parallel(lambda link: sync.lapor.complaint(link.lapor_id or 0), due)
        found = []
        for link, detail in zip(due, details, strict=True):
            if isinstance(detail, errors.NotFound):
                found.append(Finding("lapor_gone", **_ids(link),
                                     detail="linked, but LAPOR! no longer lists it and its detail is 404",
                                     fix="mark the link gone on LAPOR! (audited, kept on the record); nothing more is synced"))  # fmt: skip
            elif isinstance(detail, Exception) and not isinstance(detail, errors.ReconcileError):
                raise detail
        self.result.findings += found
        return found

    def check_agency(self, complaints: Iterable[m.AgencyComplaint]) -> list[Finding]:
        """Agency complaints marked ``report_to_lapor`` that LAPOR! does not have (or whose ids
        never came back)."""
        sync, found = self.sync, []
        for complaint in complaints:
            if complaint.source != "internal" or not complaint.report_to_lapor or complaint.lapor:
                continue
            link = sync.links.by_agency_id(complaint.id)
            if link is not None and link.gone is not None:
                continue
            self.result.compared += 1
            if (
                not self._agency_settled(complaint)
                or complaint.id in self.busy_agency
                or ("intake_out", complaint.id) in self.held
            ):
                self.result.pending += 1
                continue
            detail = (
                "marked report_to_lapor, never filed on LAPOR!"
                if link is None
                else f"filed on LAPOR! as {link.tracking_id}, but the agency record lacks the LAPOR! ids"
            )
            found.append(Finding("not_filed", lapor_id=link.lapor_id if link else None,
                                 agency_id=complaint.id, tracking_id=link.tracking_id if link else None,
                                 agency=complaint, detail=detail,
                                 fix="file it on LAPOR! (the intake flow's path: looked up by external_ref first)"
                                     if link is None else "write the LAPOR! ids back to the agency"))  # fmt: skip
        self.result.findings += found
        return found


def reconcile_all(sync: Sync) -> Comparison:
    """A full comparison: the whole LAPOR! inbox, the whole agency system, every link."""
    complaints: dict[str, m.AgencyComplaint] = {}
    for agency_page in sync.agency.complaints(None):
        complaints.update((c.id, c) for c in agency_page.items)
    followups: dict[str, list[m.AgencyFollowUp]] = {}
    for followup_page in sync.agency.followups_since(None):
        for f in followup_page.items:
            followups.setdefault(f.complaint_id, []).append(f)
    reconciler = Reconciler(sync, agency_complaints=complaints, agency_followups=followups)
    seen: set[int] = set()
    for page in sync.lapor.inbox(BEGINNING).pages():
        seen.update(s.lapor_id for s in page.records)
        seen.update(
            int(bad.record_id or "") for bad in page.invalid if (bad.record_id or "").isdigit()
        )
        for first in range(0, len(page.records), sync.batch_size):
            reconciler.check_summaries(page.records[first : first + sync.batch_size])
    reconciler.check_unlisted(link for link in sync.links.all() if link.lapor_id not in seen)
    reconciler.check_agency(complaints.values())
    return reconciler.done()


def _c3_needed(summary: m.ComplaintSummary, link: Link) -> bool:
    in_step = link.lapor_updated_at is not None and summary.updated_at <= link.lapor_updated_at
    counted = summary.followups_count is not None and link.followups_seen is not None
    return not in_step or (counted and summary.followups_count != link.followups_seen)


def _open(item: object) -> bool:
    return getattr(item, "state", None) in _OPEN


def _open_work(sync: Sync) -> tuple[set[int], set[str]]:
    """The LAPOR! ids and agency ids with a write still open in the outbox."""
    lapor_ids: set[int] = set()
    agency_ids: set[str] = set()
    for state in _OPEN:
        for item in sync.outbox.items(state):
            both = {**item.payload, **item.lookup}
            for key in ("complaint_id", "lapor_id"):
                if isinstance(both.get(key), int):
                    lapor_ids.add(both[key])
            if isinstance(both.get("agency_id"), str):
                agency_ids.add(both["agency_id"])
    return lapor_ids, agency_ids


def _ids(link: Link) -> dict[str, Any]:
    return {"lapor_id": link.lapor_id, "agency_id": link.agency_id, "tracking_id": link.tracking_id}


def _agency_gone(link: Link) -> Finding:
    return Finding("agency_gone", **_ids(link),
                   detail="linked, but the agency record is 404",
                   fix="mark the link gone in the agency (audited, kept on the record); nothing more is synced")  # fmt: skip
