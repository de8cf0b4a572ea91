"""Inbound: complaints disposed to the agency on LAPOR! reach the agency system, and so do their updates.

Reads the LAPOR! inbox since the flow's watermark (minus an overlap window), skips what has not
changed since it was last synced (no request at all), reads the detail (C2) only of complaints
that are new to the agency, and for changed ones sends the agency what LAPOR! owns: its status
(never backwards), a re-disposition away, the rahasia/anonim flags (never downgraded), and the
citizen's and admin's replies. The cursor advances with each committed page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from connector import errors
from connector import models as m
from connector.links import Link
from connector.logs import get_logger
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
    unchanged: int = 0
    skipped: int = 0
    quarantined: int = 0
    watermark: datetime | None = None
    errors: list[str] = field(default_factory=list)


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
        if o.state == "done" and isinstance(o.item.payload.get("lapor_id"), int)
    }
    for lapor_id in sorted(finished):
        # A write interrupted by a crash (or retried) finished only now: its complaint still
        # owes the rest of its run (replies, the in-step mark), and the listing may not show
        # it again, so it is read once more here.
        resync_complaint(sync, lapor_id, report)
    watermark = sync.store.watermark(FLOW)
    start = since or (BEGINNING if watermark is None else watermark - OVERLAP)
    listing = sync.lapor.inbox(start)
    for page in listing.pages():
        report.quarantined += sync.quarantine_page(FLOW, page.invalid, "LAPOR! record")
        records = _not_in_the_future(sync, page.records, page.server_time, report)
        for summary in records:
            if until is not None and summary.updated_at >= until:
                continue
            sync_complaint(sync, summary, report, force=force)
        if records and since is None:
            sync.advance(FLOW, max(c.updated_at for c in records))
    if since is None:
        sync.advance(FLOW, listing.server_time)
    report.watermark = sync.store.watermark(FLOW)
    return report


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


def sync_complaint(
    sync: Sync, summary: m.ComplaintSummary, report: InboundReport, *, force: bool = False
) -> None:
    """Bring one LAPOR! complaint to the agency (create, or send what changed)."""
    link = sync.links.by_lapor_id(summary.lapor_id)
    if (
        link is not None
        and not force
        and link.lapor_updated_at is not None
        and summary.updated_at <= link.lapor_updated_at
    ):
        if summary.updated_at < link.lapor_updated_at:
            # Older than what was already synced (a lagging replica, a repeated page): ignored.
            log.info(
                "stale_update_ignored",
                lapor_id=summary.lapor_id,
                seen=link.lapor_updated_at.isoformat(),
                got=summary.updated_at.isoformat(),
            )
        report.unchanged += 1
        return
    try:
        if link is None:
            if summary.disposition_id != sync.institution_id or summary.external_ref is not None:
                # Not ours now (only previously), or one we filed ourselves (the intake flow links it).
                report.skipped += 1
                return
            _create(sync, summary, report)
        else:
            _update(sync, summary, link, report)
    except (errors.MappingError, errors.RecordError, errors.NotFound) as error:
        # A bad record, a mapping gap, or a complaint LAPOR! no longer finds (404): set aside
        # with the reason; the rest of the run goes on.
        sync.quarantine(FLOW, str(summary.lapor_id), error, summary.model_dump(mode="json"),
                        lapor_id=summary.lapor_id, tracking_id=summary.tracking_id)  # fmt: skip
        report.quarantined += 1
        return
    except errors.NotDisposed:
        # 403 on its detail or replies: it left us since the listing was read.
        if link is not None:
            mark_redisposed(sync, summary.lapor_id)
        report.skipped += 1
        return
    with sync.store.transaction():
        sync.store.release(FLOW, str(summary.lapor_id))


def _create(sync: Sync, summary: m.ComplaintSummary, report: InboundReport) -> None:
    record = f"complaint {summary.lapor_id}"
    detail = sync.lapor.complaint(summary.lapor_id)
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
    outcome = sync.write(
        key=f"agency.create:{summary.lapor_id}",
        flow=FLOW,
        target="agency",
        operation="agency_create_complaint",
        subject=summary.tracking_id,
        payload={
            "complaint": new.model_dump(mode="json"),
            "lapor_id": summary.lapor_id,
            "tracking_id": summary.tracking_id,
            "lapor_status": summary.status.value,
            "lapor_updated_at": summary.updated_at.isoformat(),
            "lapor_state": _state(summary),
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
        lookup={"lapor_id": summary.lapor_id, "tracking_id": summary.tracking_id},
    )
    if outcome is not None and outcome.state == "done":
        report.created += 1
        link = sync.links.by_lapor_id(summary.lapor_id)
        if link is not None and _replies(sync, summary, link, report) is not False:
            _in_step(sync, summary)
    elif sync.dry_run:
        report.created += 1


def _state(complaint: m.ComplaintSummary) -> str:
    return lapor_state(
        complaint.status, complaint.disposition_id, complaint.is_secret, complaint.is_anonymous
    )


def _update(sync: Sync, summary: m.ComplaintSummary, link: Link, report: InboundReport) -> None:
    record = f"complaint {summary.lapor_id}"
    if link.lapor_state == _state(summary):
        # Nothing the agency holds changed (a reply, say): no PATCH, only the replies.
        if _replies(sync, summary, link, report) is not False:
            _in_step(sync, summary)
            report.unchanged += 1  # checked, and in step
        return
    patch: dict[str, object] = {}
    redisposed = summary.disposition_id != sync.institution_id
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
    if link.agency_id is not None:
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
        replied = _replies(sync, summary, link, report)
        if done and replied is not False:
            _in_step(sync, summary)
        if disposed_back and not sync.dry_run:
            _push_held_followups(sync, link.agency_id)


def _in_step(sync: Sync, summary: m.ComplaintSummary) -> None:
    """Everything this run owed the complaint is committed (agency record, flags, replies):
    only now does its LAPOR! ``updated_at`` count as synced. A kill before this point leaves
    it changed, so the next run does the rest."""
    if not sync.dry_run:
        with sync.store.transaction():
            sync.links.update(summary.lapor_id, lapor_updated_at=summary.updated_at)


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


def _replies(sync: Sync, summary: m.ComplaintSummary, link: Link, report: InboundReport) -> bool:
    """The citizen's replies and the admin's notes on LAPOR! (C3) reach the agency once each.

    A follow-up that fails validation does not stop the others; once they are sent, the
    complaint is raised as a ``MalformedRecord`` naming every invalid one, so the caller
    quarantines it (source ``inbound``, its LAPOR! id: replayed later) and does not mark it in step.
    """
    if link.agency_id is None:
        return True
    complete = True  # False when a reply's write is not done yet: the complaint is not in step
    invalid: list[m.InvalidRecord] = []
    for item in sync.lapor.followups(summary.lapor_id):
        if isinstance(item, m.InvalidRecord):
            invalid.append(item)
            continue
        if item.author not in _REPLY_AUTHORS:
            continue
        if sync.links.followup_linked(lapor_followup_id=item.id):
            continue
        # A reply on a rahasia complaint stays rahasia, whatever the item's own flag says.
        new = m.NewAgencyFollowUp(author=_REPLY_AUTHORS[item.author], content=item.content,
                                  is_secret=item.is_secret or summary.is_secret, lapor_followup_id=item.id)  # fmt: skip
        outcome = sync.write(
            key=f"agency.followup:{item.id}",
            flow=FLOW,
            target="agency",
            operation="agency_add_followup",
            subject=f"{summary.tracking_id}/{item.id}",
            payload={
                "agency_id": link.agency_id,
                "followup": new.model_dump(mode="json"),
                "lapor_id": summary.lapor_id,
                "lapor_followup_id": item.id,
                "_fields": ["content", "author"],
            },
            lookup={
                "lapor_id": summary.lapor_id,
                "tracking_id": summary.tracking_id,
                "agency_id": link.agency_id,
            },
        )
        if sync.dry_run:
            report.replies += 1
            continue
        written = (
            outcome.item if outcome is not None else sync.outbox.get(f"agency.followup:{item.id}")
        )
        state = outcome.state if outcome is not None else (written.state if written else "pending")
        if outcome is not None and state == "done":
            report.replies += 1
        complete = complete and state in ("done", "acknowledged")
    if invalid:
        if not sync.dry_run:
            with sync.store.transaction():  # not in step: what was seen before stays the mark
                sync.links.update(summary.lapor_id, lapor_updated_at=link.lapor_updated_at)
            if link.disposed_away and summary.disposition_id == sync.institution_id:
                _push_held_followups(sync, link.agency_id)  # the caller's turn to do it is skipped
        problems = [
            errors.FieldProblem(f"followups[{bad.record_id or '?'}].{p.path}", p.problem)
            for bad in invalid
            for p in bad.problems
        ]
        raise errors.MalformedRecord(
            f"LAPOR! sent {len(invalid)} invalid follow-up(s) on complaint {summary.lapor_id}",
            problems,
            record_id=str(summary.lapor_id),
        )
    return complete


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
        if entry.source == FLOW and entry.record_id and entry.record_id.isdigit():
            resync_complaint(sync, int(entry.record_id), report)
    return report
