"""Inbound: complaints disposed to the agency on LAPOR! reach the agency system, and so do their updates.

Reads the LAPOR! inbox since the flow's watermark (minus an overlap window), skips what has not
changed since it was last synced (no request at all), reads the detail (C2) only of complaints
that are new to the agency, and for changed ones sends the agency what LAPOR! owns: its status
(never backwards), a re-disposition away, the rahasia/anonim flags (never downgraded), and the
citizen's and admin's replies. The cursor advances with each committed page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Any

from connector import errors
from connector import models as m
from connector.flows.attachments import FileJob, parse_record_id, transfer
from connector.flows.lapor_changes import change_patch, changed_fields, lapor_fields
from connector.links import Link
from connector.logs import get_logger
from connector.sla import TERMINAL, SlaFacts, deadline, facts_from, review
from connector.sync import Sync, lapor_state

log = get_logger("inbound")

FLOW = "inbound"
BEGINNING = datetime(2000, 1, 1, tzinfo=timezone.utc)
OVERLAP = timedelta(minutes=5)
#: How far after the service's own clock a record's ``updated_at`` may be (clock skew).
FUTURE_TOLERANCE = timedelta(days=1)
_REPLY_AUTHORS = {m.Author.REPORTER: "reporter", m.Author.ADMIN: "lapor_admin"}


@dataclass
class InboundReport:
    """What one inbound run did."""

    created: int = 0
    updated: int = 0
    replies: int = 0
    attachments: int = 0
    unchanged: int = 0
    skipped: int = 0
    quarantined: int = 0
    watermark: datetime | None = None
    errors: list[str] = field(default_factory=list)
    #: LAPOR! ids whose SLA facts this run changed.
    observed: set[int] = field(default_factory=set)
    #: Complaints left for the next run because this run's request budget was spent.
    deferred: int = 0


def run_inbound(
    sync: Sync, *, since: datetime | None = None, until: datetime | None = None, force: bool = False
) -> InboundReport:
    """One inbound pass: first finish interrupted writes, then read what changed on LAPOR!.

    With ``since`` (an operator's resync of a time range) the cursor is left alone, and with
    ``force`` complaints are sent again even if they look unchanged.
    """
    report = InboundReport()
    finished = {
        int(o.item.payload["lapor_id"])
        for o in sync.drain(FLOW)
        if o.state == "done"
        and isinstance(o.item.payload.get("lapor_id"), int)
        and o.item.operation != "agency_add_attachment"  # a file owes its complaint nothing
    }
    for lapor_id in sorted(finished):
        # A write interrupted by a crash (or retried) finished only now: its complaint still
        # owes the rest of its run (replies, the in-step mark), and the listing may not show
        # it again, so it is read once more here.
        resync_complaint(sync, lapor_id, report)
    watermark = sync.store.watermark(FLOW)
    start = since or (BEGINNING if watermark is None else watermark - OVERLAP)
    backfill = since is None and not sync.dry_run and SlaFacts(sync.store).needs_backfill()
    if backfill:
        # Linked complaints without SLA facts (a state from before them): one listing from the
        # beginning fills them from the summaries (list pages only; nothing else is re-read).
        start = BEGINNING
        log.info("sla_backfill_started")
    budget = _Budget(sync)
    handled = 0
    listing = sync.lapor.inbox(start)
    for page in listing.pages():
        report.quarantined += sync.quarantine_page(FLOW, page.invalid, "LAPOR! record")
        records = _not_in_the_future(sync, page.records, page.server_time, report)
        due = by_urgency(sync, [s for s in records if until is None or s.updated_at < until])
        # Most urgent first (docs/sla.md), in batches of a few slots' worth: a paced budget
        # reaches the agency steadily, and a stop loses at most one batch's detail reads.
        done = 0
        while done < len(due):
            size = budget.batch(sync.batch_size)
            if size == 0:
                break
            batch = due[done : done + size]
            sync_page(sync, batch, report, force=force)
            done += len(batch)
            if sync.progress is not None:
                handled += len(batch)
                sync.progress.update(handled, listing.total)
        if done < len(due):
            # The run's request budget is spent: the rest of the page waits for the next run
            # (the cursor stays before it, so the page is listed again and what was done is
            # skipped at no cost).
            report.deferred = len(due) - done
            log.info("inbound_budget_spent", deferred=report.deferred, budget=budget.limit)
            break
        if records and since is None:
            sync.advance(FLOW, max(c.updated_at for c in records))
    else:
        if since is None:
            sync.advance(FLOW, listing.server_time)
        if backfill and not sync.dry_run:
            SlaFacts(sync.store).backfilled()
    report.watermark = sync.store.watermark(FLOW)
    if not sync.dry_run:
        review(sync, sync.sla_at_risk_days, report.observed)
    return report


class _Budget:
    """The LAPOR! requests one run may make (``sync.requests_per_run``; None: no limit)."""

    #: LAPOR! requests a complaint may cost in a batch (its detail and its follow-ups).
    PER_COMPLAINT = 2

    def __init__(self, sync: Sync) -> None:
        self.limit = sync.requests_per_run
        self._transport = sync.lapor.transport
        self._start = self._transport.requests_sent

    def batch(self, size: int) -> int:
        """How many complaints the next batch may take: ``size``, fewer near the end of the
        budget, 0 once it is spent."""
        if self.limit is None:
            return size
        left = self.limit - (self._transport.requests_sent - self._start)
        if left <= 0:
            return 0
        return max(1, min(size, left // self.PER_COMPLAINT))


def by_urgency(sync: Sync, records: list[m.ComplaintSummary]) -> list[m.ComplaintSummary]:
    """A page's complaints in the order the budget should go to them (docs/sla.md): those
    already in step first (they cost nothing), then complaints new to the agency waiting for
    verification or their first follow-up, nearest that deadline first, then the other open
    ones (replies to complaints in process), by their SLA due date, then the closed ones; ties
    keep the listing's order."""
    calendar = sync.mappings.calendar
    facts = SlaFacts(sync.store)
    never = date.max

    def key(summary: m.ComplaintSummary) -> tuple[int, date]:
        link = sync.links.by_lapor_id(summary.lapor_id)
        if (
            link is not None
            and link.lapor_updated_at is not None
            and summary.updated_at <= link.lapor_updated_at
        ):
            return (0, never)
        if summary.status in TERMINAL:
            return (3, never)
        if link is None:
            unit = sync.mappings.unit_for_disposition(summary.disposition_id)
            found = deadline(facts_from(summary, unit), calendar)
        else:
            known = facts.get(summary.lapor_id)
            found = deadline(known, calendar) if known is not None else None
        if found is None:
            return (2, never)
        return (1 if link is None and found.stage in ("verify", "first_followup") else 2, found.due)

    return sorted(records, key=key)


def _not_in_the_future(
    sync: Sync, records: list[m.ComplaintSummary], server_time: datetime | None,
    report: InboundReport,
) -> list[m.ComplaintSummary]:  # fmt: skip
    """The page's records, less any updated after the service's own clock (by more than a day):
    such a timestamp cannot be right, and taken as the cursor it would hide every complaint
    updated before it. Each one is quarantined (replayable by hand; the cursor is left alone)."""
    now = server_time or sync.clock.now()
    kept = []
    for summary in records:
        if summary.updated_at <= now + FUTURE_TOLERANCE:
            kept.append(summary)
            continue
        error = errors.MalformedRecord(
            f"LAPOR! complaint {summary.lapor_id} is dated after the service's own clock",
            [errors.FieldProblem("updated_at", f"{(summary.updated_at - now).days} day(s) after the service's server_time; "
                                 "the moment cannot be right (the cursor does not follow it)")],
            record_id=str(summary.lapor_id),
        )  # fmt: skip
        sync.quarantine(FLOW, str(summary.lapor_id), error, summary.model_dump(mode="json"),
                        lapor_id=summary.lapor_id, tracking_id=summary.tracking_id)  # fmt: skip
        report.quarantined += 1
    return kept


@dataclass
class _Work:
    """One complaint of a page, through the phases of ``sync_page``."""

    summary: m.ComplaintSummary
    link: Link | None
    new: bool
    force: bool = False
    #: False once the complaint was set aside (or its create is not done): nothing more now.
    ok: bool = True
    #: False when one of its writes is not done yet: it is not marked in step this run.
    complete: bool = True
    read_replies: bool = True
    #: What was read of it this run (its detail, its follow-ups): the SLA facts fold them in.
    detail: m.Complaint | None = None
    followups: list[m.FollowUp] | None = None
    followups_seen: int | None = None
    last_followup_at: datetime | None = None
    disposed_back: bool = False
    #: Changed on LAPOR! with nothing in the listing to say what (status, disposition, flags,
    #: title, category, report type all as the agency has them): a reply, or else something
    #: only the detail shows (its content, a new file); see ``_details_of_unexplained``.
    unexplained: bool = False
    #: What the agency holds of LAPOR!'s own fields once this run is done (marked in step).
    lapor_fields: dict[str, Any] | None = None
    #: The citizen's replies and the admin's notes the follow-ups read (C3) found.
    replies: list[m.FollowUp] = field(default_factory=list)


def sync_complaint(
    sync: Sync, summary: m.ComplaintSummary, report: InboundReport, *, force: bool = False
) -> None:
    """Bring one LAPOR! complaint to the agency (create, or send what changed)."""
    sync_page(sync, [summary], report, force=force)


def sync_page(
    sync: Sync, summaries: list[m.ComplaintSummary], report: InboundReport, *, force: bool = False
) -> None:
    """Bring a page of LAPOR! complaints to the agency, in phases that each batch their work.

    1. new complaints: their details (C2) read side by side, then every agency create recorded
       as an intent in one commit, sent side by side, results in one commit;
    2. changed complaints: what LAPOR! owns sent to the agency (one PATCH each);
    3. replies: the follow-ups read (C3), only of complaints where something says there may be
       new ones (docs/sync.md), side by side, after every detail read of the page; the new
       replies written like the creates;
    4. every complaint whose work is all done is marked in step, in one commit.

    A complaint's own work keeps its order (create, then replies, then the mark); a bad record
    or a mapping gap sets only that complaint aside.
    """
    work: list[_Work] = []
    unchanged: list[m.ComplaintSummary] = []
    for summary in summaries:
        link = sync.links.by_lapor_id(summary.lapor_id)
        if link is not None and link.gone is not None:
            # Reconcile found one side gone (404) and marked the link: nothing more to sync.
            report.skipped += 1
            continue
        if (
            link is not None
            and not force
            and link.lapor_updated_at is not None
            and summary.updated_at <= link.lapor_updated_at
        ):
            unchanged.append(summary)
            if summary.updated_at < link.lapor_updated_at:
                # Older than what was already synced (a lagging replica, a repeated page): ignored.
                log.info(
                    "stale_update_ignored",
                    lapor_id=summary.lapor_id,
                    seen=link.lapor_updated_at.isoformat(),
                    got=summary.updated_at.isoformat(),
                )
            report.unchanged += 1
            continue
        if link is None and (
            summary.disposition_id != sync.institution_id or summary.external_ref is not None
        ):
            # Not ours now (only previously), or one we filed ourselves (the intake flow links it).
            report.skipped += 1
            continue
        detail = summary if isinstance(summary, m.Complaint) else None
        work.append(_Work(summary, link, new=link is None, force=force, detail=detail))

    _create_all(sync, [w for w in work if w.new], report)
    for item in work:
        if not item.new:
            _guarded(sync, item, report, partial(_update, sync, item, report))
    _replies_all(sync, [w for w in work if w.ok], report)
    _details_of_unexplained(sync, [w for w in work if w.ok], report)
    _attachments_all(sync, [w for w in work if w.ok], report)
    done = [w for w in work if w.ok and w.complete]
    facts = SlaFacts(sync.store)
    known = facts.known(s.lapor_id for s in unchanged) if unchanged else set()
    unknown = [s for s in unchanged if s.lapor_id not in known]
    if not sync.dry_run and (done or unknown):
        with sync.store.transaction():
            for item in done:
                _mark_in_step(sync, item)
                sync.store.release(FLOW, str(item.summary.lapor_id))
                _observe(sync, facts, item.detail or item.summary, item.followups, report)
            for summary in unknown:  # linked before the SLA facts were kept (an upgrade)
                _observe(sync, facts, summary, None, report)
    for item in work:
        if item.disposed_back and item.ok and item.link is not None and not sync.dry_run:
            # Held while the complaint was disposed elsewhere; posted once it is back.
            _push_held_followups(sync, item.link.agency_id or "")


def _observe(
    sync: Sync, facts: SlaFacts, complaint: m.ComplaintSummary,
    followups: list[m.FollowUp] | None, report: InboundReport,
) -> None:  # fmt: skip
    """Fold what this run read of a complaint into its SLA facts (no request of its own)."""
    unit = sync.mappings.unit_for_disposition(complaint.disposition_id)
    facts.observe(complaint, unit, institution_id=sync.institution_id, followups=followups)
    report.observed.add(complaint.lapor_id)


def _guarded(sync: Sync, item: _Work, report: InboundReport, step: Callable[[], None]) -> None:
    """Run one complaint's step; a bad record, a mapping gap, a 404 or a 403 sets it aside."""
    try:
        step()
    except Exception as error:  # sorted by _set_aside; the rest re-raised
        if not _set_aside(sync, item, error, report):
            raise


def _set_aside(sync: Sync, item: _Work, error: Exception, report: InboundReport) -> bool:
    """Handle a complaint's error the way contract section 6 says; False: not ours to handle."""
    summary = item.summary
    item.ok = False
    if isinstance(error, (errors.MappingError, errors.RecordError, errors.NotFound)):
        # A bad record, a mapping gap, or a complaint LAPOR! no longer finds (404): set aside
        # with the reason; the rest of the run goes on.
        sync.quarantine(FLOW, str(summary.lapor_id), error, summary.model_dump(mode="json"),
                        lapor_id=summary.lapor_id, tracking_id=summary.tracking_id)  # fmt: skip
        report.quarantined += 1
        return True
    if isinstance(error, errors.NotDisposed):
        # 403 on its detail or replies: it left us since the listing was read.
        if item.link is not None:
            mark_redisposed(sync, summary.lapor_id)
        report.skipped += 1
        return True
    return False


def _create_all(sync: Sync, items: list[_Work], report: InboundReport) -> None:
    """Phase 1: new complaints' details side by side, then their creates as one batch."""
    details = sync.parallel(lambda w: sync.lapor.complaint(w.summary.lapor_id), items)
    intents: list[tuple[_Work, dict[str, Any]]] = []
    for item, detail in zip(items, details, strict=True):
        if isinstance(detail, Exception):
            if not _set_aside(sync, item, detail, report):
                raise detail
            continue
        item.detail = detail
        _guarded(sync, item, report, partial(_add_create_intent, sync, item, detail, intents))
    outcomes = sync.write_many([intent for _, intent in intents])
    for (item, _), outcome in zip(intents, outcomes, strict=True):
        if outcome is not None and outcome.state == "done":
            report.created += 1
            item.link = sync.links.by_lapor_id(item.summary.lapor_id)
        elif sync.dry_run:
            report.created += 1
            item.ok, item.read_replies = True, False
        else:
            item.ok = False  # not yet created: the next run finishes it (drain)


def _add_create_intent(
    sync: Sync, item: _Work, detail: m.Complaint, intents: list[tuple[_Work, dict[str, Any]]]
) -> None:
    intents.append((item, _create_intent(sync, item, detail)))


def _create_intent(sync: Sync, item: _Work, detail: m.Complaint) -> dict[str, Any]:
    summary = item.summary
    record = f"complaint {summary.lapor_id}"
    # The detail may carry a follow-up count (not in the contract): none means no C3 read.
    item.read_replies = detail.followups_count != 0 and summary.followups_count != 0
    new = m.NewAgencyComplaint(
        source="lapor",
        channel="lapor",
        title=detail.title,
        content=detail.content,
        category_code=sync.mappings.category_to_agency(detail.category_id or 0, record=record),
        unit_code=sync.mappings.unit_for_disposition(detail.disposition_id),
        status=sync.mappings.status_to_agency(detail.status, record=record),
        is_secret=detail.is_secret,
        is_anonymous=detail.is_anonymous,
        reporter=None if detail.is_anonymous or not detail.reporter.is_known else detail.reporter,
        lapor=m.LaporRef(
            lapor_id=detail.lapor_id,
            tracking_id=detail.tracking_id,
            status=detail.status,
            disposition_id=detail.disposition_id,
        ),
    )
    return {
        "key": f"agency.create:{summary.lapor_id}",
        "flow": FLOW,
        "target": "agency",
        "operation": "agency_create_complaint",
        "subject": summary.tracking_id,
        "payload": {
            "complaint": new.model_dump(mode="json"),
            "lapor_id": summary.lapor_id,
            "tracking_id": summary.tracking_id,
            "lapor_status": summary.status.value,
            "lapor_updated_at": summary.updated_at.isoformat(),
            "lapor_state": _state(summary),
            "lapor_fields": lapor_fields(detail),
            # Its files' writes are recorded with the create's result (flows/attachments.py).
            "attachments": [a.model_dump(mode="json") for a in detail.attachments],
            "_fields": [
                "title",
                "content",
                "category_code",
                "unit_code",
                "status",
                "is_secret",
                "is_anonymous",
                "reporter",
                "lapor",
            ],
        },
        "lookup": {"lapor_id": summary.lapor_id, "tracking_id": summary.tracking_id},
    }


def _state(complaint: m.ComplaintSummary) -> str:
    return lapor_state(
        complaint.status, complaint.disposition_id, complaint.is_secret, complaint.is_anonymous
    )


def _update(sync: Sync, item: _Work, report: InboundReport) -> None:
    """Phase 2: send the agency what LAPOR! owns of a changed complaint (one PATCH)."""
    summary, link = item.summary, item.link
    assert link is not None
    record = f"complaint {summary.lapor_id}"
    item.read_replies = _followups_may_have_changed(sync, item)
    if link.agency_id is None:
        item.ok = False  # nothing to write to yet: the link is not complete
        return
    redisposed = summary.disposition_id != sync.institution_id
    seen = lapor_fields(summary)
    # Not ours now: its fields are compared again once it is back (the agency was not told).
    changed = [] if redisposed else changed_fields(link.lapor_fields, seen)
    item.lapor_fields = link.lapor_fields if redisposed else {**(link.lapor_fields or {}), **seen}
    if link.lapor_state == _state(summary) and not changed:
        # Nothing the agency holds changed (a reply, say): no PATCH, only the replies.
        report.unchanged += 1  # checked, and in step once the replies are in
        item.unexplained = not redisposed and item.detail is None
        return
    patch: dict[str, object] = {}
    if changed:
        patch.update(change_patch(sync.mappings, summary, changed, record=record))
        log.info("lapor_change_found", lapor_id=summary.lapor_id, fields=changed)
    disposed_back = not redisposed and link.disposed_away
    if redisposed and not link.disposed_away:
        status = sync.mappings.status_when_redisposed()
        if not sync.dry_run:
            with sync.store.transaction():
                sync.links.mark_disposed_away(summary.lapor_id)
        if status is not None:
            patch["status"] = status
    elif not redisposed:
        status = sync.mappings.status_to_agency(summary.status, record=record)
        if status != link.agency_status and (
            disposed_back or not sync.mappings.is_backwards_agency(link.agency_status, status)
        ):
            # Disposed back to us, the agency's "dialihkan" gives way to LAPOR!'s status.
            patch["status"] = status
        if disposed_back and not sync.dry_run:
            with sync.store.transaction():
                sync.links.clear_disposed_away(summary.lapor_id)
            log.info("complaint_disposed_back", lapor_id=summary.lapor_id)
    if summary.is_secret:  # flags only ever go up: never downgrade rahasia or anonim
        patch["is_secret"] = True
    if summary.is_anonymous:
        patch["is_anonymous"] = True
    patch["lapor"] = m.LaporRef(lapor_id=summary.lapor_id, tracking_id=summary.tracking_id, status=summary.status,
                                disposition_id=summary.disposition_id).model_dump(mode="json")  # fmt: skip
    outcome = sync.write(
        key=f"agency.update:{summary.lapor_id}:{summary.updated_at.isoformat()}",
        flow=FLOW,
        target="agency",
        operation="agency_update_complaint",
        subject=summary.tracking_id,
        payload={
            "agency_id": link.agency_id,
            "patch": patch,
            "lapor_id": summary.lapor_id,
            "lapor_status": summary.status.value,
            "lapor_updated_at": summary.updated_at.isoformat(),
            "lapor_state": _state(summary),
            "lapor_fields": item.lapor_fields,
            "_fields": sorted(patch),
        },
        lookup={
            "lapor_id": summary.lapor_id,
            "tracking_id": summary.tracking_id,
            "agency_id": link.agency_id,
        },
    )
    done = outcome is not None and outcome.state == "done"
    if done or sync.dry_run:
        report.updated += 1
    # Replies are still read when the PATCH is not done; only the in-step mark waits for it.
    item.complete = done or sync.dry_run
    item.disposed_back = disposed_back


def _followups_may_have_changed(sync: Sync, item: _Work) -> bool:
    """Whether something says a changed complaint may have new follow-ups (else no C3 read)."""
    summary, link = item.summary, item.link
    assert link is not None
    if summary.disposition_id != sync.institution_id:
        return False  # not ours now: LAPOR! would refuse the read (403)
    if item.force:
        return True
    if summary.followups_count is not None and link.followups_seen is not None:
        return summary.followups_count != link.followups_seen
    if summary.last_followup_at is not None and link.last_followup_at is not None:
        return summary.last_followup_at > link.last_followup_at
    # Without a hint any change may be a reply, also on a closed complaint (LAPOR! keeps a
    # citizen's word after Selesai): a lost reply costs more than a read.
    return True


def _mark_in_step(sync: Sync, item: _Work) -> None:
    """Everything this run owed the complaint is committed (agency record, flags, replies):
    only now does its LAPOR! ``updated_at`` count as synced. A kill before this point leaves
    it changed, so the next run does the rest (inside the caller's transaction)."""
    changes: dict[str, Any] = {"lapor_updated_at": item.summary.updated_at}
    seen = item.followups_seen if item.followups_seen is not None else item.summary.followups_count
    if seen is not None:
        changes["followups_seen"] = seen
    last = item.last_followup_at or item.summary.last_followup_at
    if last is not None:
        changes["last_followup_at"] = last
    if item.lapor_fields is not None:
        changes["lapor_fields"] = item.lapor_fields
    sync.links.update(item.summary.lapor_id, **changes)


def _push_held_followups(sync: Sync, agency_id: str) -> None:
    """Post the agency's follow-ups that waited while the complaint was disposed elsewhere."""
    from connector.flows.followups_out import FollowupsReport, push_followup

    for followup in sync.agency.followups(agency_id):
        push_followup(sync, followup, FollowupsReport())


def mark_redisposed(sync: Sync, lapor_id: int) -> None:
    """A complaint LAPOR! no longer shows us (403): mark it and give the agency the mapped
    status (``redisposed`` in statuses.yaml, "dialihkan"), through the outbox."""
    link = sync.links.by_lapor_id(lapor_id)
    if link is None or link.disposed_away or sync.dry_run:
        return
    with sync.store.transaction():
        sync.links.mark_disposed_away(lapor_id)
    status = sync.mappings.status_when_redisposed()
    if status is None or link.agency_id is None:
        return
    sync.write(
        key=f"agency.redisposed:{lapor_id}:{sync.clock.now().isoformat()}",
        flow=FLOW,
        target="agency",
        operation="agency_update_complaint",
        subject=link.tracking_id or str(lapor_id),
        payload={
            "agency_id": link.agency_id,
            "patch": {"status": status},
            "lapor_id": lapor_id,
            "_fields": ["status"],
        },
        lookup={"lapor_id": lapor_id, "tracking_id": link.tracking_id, "agency_id": link.agency_id},
    )


def _replies_all(sync: Sync, items: list[_Work], report: InboundReport) -> None:
    """Phase 3: the citizen's replies and the admin's notes on LAPOR! (C3) reach the agency
    once each, for every complaint where there may be new ones, read side by side.

    A follow-up that fails validation does not stop the others; once they are sent, the
    complaint is quarantined as a ``MalformedRecord`` naming every invalid one (source
    ``inbound``, its LAPOR! id: replayed later) and not marked in step.
    """
    want = [w for w in items if w.read_replies and w.link is not None and w.link.agency_id]
    listed = sync.parallel(lambda w: list(sync.lapor.followups(w.summary.lapor_id)), want)
    intents: list[dict[str, Any]] = []
    owners: list[_Work] = []
    invalid: dict[int, list[m.InvalidRecord]] = {}
    for work, found in zip(want, listed, strict=True):
        if isinstance(found, Exception):
            if not _set_aside(sync, work, found, report):
                raise found
            continue
        valid = [f for f in found if isinstance(f, m.FollowUp)]
        work.followups = valid
        work.followups_seen = len(found)
        work.last_followup_at = max((f.at for f in valid), default=None)
        invalid[id(work)] = [f for f in found if isinstance(f, m.InvalidRecord)]
        for followup in valid:
            if followup.author not in _REPLY_AUTHORS:
                continue
            work.replies.append(followup)
            if sync.links.followup_linked(lapor_followup_id=followup.id):
                continue
            intents.append(_reply_intent(sync, work, followup))
            owners.append(work)
    outcomes = sync.write_many(intents)
    for work, intent, outcome in zip(owners, intents, outcomes, strict=True):
        if sync.dry_run:
            report.replies += 1
            continue
        written = outcome.item if outcome is not None else sync.outbox.get(intent["key"])
        state = outcome.state if outcome is not None else (written.state if written else "pending")
        if outcome is not None and state == "done":
            report.replies += 1
        work.complete = work.complete and state in ("done", "acknowledged")
    for work in want:
        bad = invalid.get(id(work))
        if bad:
            _set_aside_invalid_followups(sync, work, bad, report)


def _attachments_all(sync: Sync, items: list[_Work], report: InboundReport) -> None:
    """Phase 3b: the files of complaints whose detail was read, and of their replies, reach the
    agency once each (one C9 per new file; a file already stored costs nothing)."""
    jobs: list[FileJob] = []
    for work in items:
        link, summary = work.link, work.summary
        if link is None or not link.agency_id:
            continue
        if work.detail is not None:
            jobs += [FileJob(summary.lapor_id, summary.tracking_id, link.agency_id, f)
                     for f in work.detail.attachments]  # fmt: skip
        for reply in work.replies:
            agency_followup_id = (
                sync.links.agency_followup_id(reply.id) if reply.attachments else None
            )
            if agency_followup_id is None:
                continue  # no files, or the reply itself is not in yet: its files follow it
            jobs += [FileJob(summary.lapor_id, summary.tracking_id, link.agency_id, f, reply.id,
                             agency_followup_id) for f in reply.attachments]  # fmt: skip
    report.attachments += transfer(sync, jobs)


def _details_of_unexplained(sync: Sync, items: list[_Work], report: InboundReport) -> None:
    """Phase 3a: a changed complaint whose listing entry shows nothing new and whose
    follow-ups read found no new one (or was not needed: the hints did not move) changed in
    what only its detail (C2) shows: its content, or a new file. One C2 each, read side by
    side; what changed is sent as the update of phase 2 would (``changed_on_lapor``), and its
    new files follow in phase 3b."""
    want = [w for w in items if w.unexplained and w.link is not None and not _new_followups(w)]
    details = sync.parallel(lambda w: sync.lapor.complaint(w.summary.lapor_id), want)
    for work, detail in zip(want, details, strict=True):
        if isinstance(detail, Exception):
            if not _set_aside(sync, work, detail, report):
                raise detail
            continue
        work.unexplained = False
        # The detail may be newer than the listing (changed again since): the listing's moment
        # is the one marked in step, so a change after it is read again next run, not lost.
        work.detail = detail.model_copy(update={"updated_at": work.summary.updated_at})
        work.summary = work.detail
        report.unchanged -= 1  # counted by the first look; the second counts for itself
        _guarded(sync, work, report, partial(_update, sync, work, report))


def _new_followups(work: _Work) -> bool:
    """Whether the follow-ups read of this run explains the change (a new follow-up)."""
    if work.followups is None:
        return False  # not read: the hints said none is new
    seen = work.link.followups_seen if work.link is not None else None
    return seen is None or work.followups_seen != seen


def _reply_intent(sync: Sync, work: _Work, item: m.FollowUp) -> dict[str, Any]:
    summary, link = work.summary, work.link
    assert link is not None
    # A reply on a rahasia complaint stays rahasia, whatever the item's own flag says.
    new = m.NewAgencyFollowUp(author=_REPLY_AUTHORS[item.author], content=item.content,
                              is_secret=item.is_secret or summary.is_secret, lapor_followup_id=item.id)  # fmt: skip
    return {
        "key": f"agency.followup:{item.id}",
        "flow": FLOW,
        "target": "agency",
        "operation": "agency_add_followup",
        "subject": f"{summary.tracking_id}/{item.id}",
        "payload": {
            "agency_id": link.agency_id,
            "followup": new.model_dump(mode="json"),
            "lapor_id": summary.lapor_id,
            "lapor_followup_id": item.id,
            "attachments": [a.model_dump(mode="json") for a in item.attachments],
            "_fields": ["content", "author"],
        },
        "lookup": {
            "lapor_id": summary.lapor_id,
            "tracking_id": summary.tracking_id,
            "agency_id": link.agency_id,
        },
    }


def _set_aside_invalid_followups(
    sync: Sync, work: _Work, invalid: list[m.InvalidRecord], report: InboundReport
) -> None:
    summary, link = work.summary, work.link
    assert link is not None
    if (
        not sync.dry_run
        and link.agency_id is not None
        and (work.disposed_back or link.disposed_away)
        and summary.disposition_id == sync.institution_id
    ):
        _push_held_followups(sync, link.agency_id)  # the caller's turn to do it is skipped
    work.disposed_back = False
    problems = [
        errors.FieldProblem(f"followups[{bad.record_id or '?'}].{p.path}", p.problem)
        for bad in invalid
        for p in bad.problems
    ]
    error = errors.MalformedRecord(
        f"LAPOR! sent {len(invalid)} invalid follow-up(s) on complaint {summary.lapor_id}",
        problems,
        record_id=str(summary.lapor_id),
    )
    _set_aside(sync, work, error, report)


def resync_complaint(
    sync: Sync, lapor_id: int, report: InboundReport | None = None
) -> InboundReport:
    """Sync one LAPOR! complaint now, whatever the cursor says (an operator's resync, a replay)."""
    report = report or InboundReport()
    try:
        detail = sync.lapor.complaint(lapor_id)
    except (errors.RecordError, errors.MappingError, errors.NotFound) as error:
        sync.quarantine(FLOW, str(lapor_id), error, {"id": lapor_id}, lapor_id=lapor_id)
        report.quarantined += 1
        return report
    except errors.NotDisposed:
        mark_redisposed(sync, lapor_id)
        report.skipped += 1
        return report
    sync_complaint(sync, detail, report, force=True)
    return report


def resync_quarantined(sync: Sync) -> InboundReport:
    """Replay every complaint this flow quarantined (after the mapping or the data was fixed)."""
    report = InboundReport()
    for entry in sync.store.quarantined():
        lapor_id = quarantined_complaint(entry.source, entry.record_id)
        if lapor_id is not None:
            resync_complaint(sync, lapor_id, report)
    return report


def quarantined_complaint(source: str, record_id: str | None) -> int | None:
    """The LAPOR! complaint an inbound quarantine entry replays: the complaint itself, or the
    one a quarantined file (``<complaint id>/<file id>``) belongs to."""
    if source != FLOW or not record_id:
        return None
    if record_id.isdigit():
        return int(record_id)
    file = parse_record_id(record_id)
    return file[0] if file else None
