"""Follow-ups out: the agency's follow-ups (tindak lanjut) and status changes reach LAPOR!.

Reads agency follow-ups since the flow's watermark; each one written by the agency on a
complaint linked to LAPOR! is posted once (C4). The service does not deduplicate follow-ups, so
each post is an outbox intent looked up by its content fingerprint before any re-send. A status
the agency moved to with the follow-up becomes the LAPOR! action its mapping names. A complaint
no longer disposed to the agency (403) is marked and no longer pushed to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector import errors
from connector import models as m
from connector.lapor.client import content_fingerprint
from connector.sync import Sync

FLOW = "followups_out"
_EXPECT = {"postpone": "postponed", "archive": "archived", "verify": "verified"}


@dataclass
class FollowupsReport:
    """What one follow-ups-out run did."""

    posted: int = 0
    actions: int = 0
    skipped: int = 0
    quarantined: int = 0
    watermark: datetime | None = None


def run_followups_out(sync: Sync) -> FollowupsReport:
    """One pass: finish interrupted posts, then post the agency's new follow-ups."""
    report = FollowupsReport()
    sync.drain(FLOW)
    held: datetime | None = None  # the first follow-up waiting for its complaint's link
    for page in sync.agency.followups_since(sync.store.watermark(FLOW)):
        report.quarantined += sync.quarantine_page(FLOW, page.invalid, "agency follow-up")
        for followup in page.items:
            if not push_followup(sync, followup, report) and held is None:
                held = followup.updated_at
        if page.items:
            # The cursor stops at a follow-up that is waiting, so the next run reads it again.
            sync.advance(FLOW, held or max(f.updated_at for f in page.items))
    report.watermark = sync.store.watermark(FLOW)
    return report


def push_followup(
    sync: Sync, followup: m.AgencyFollowUp, report: FollowupsReport, *, replay: bool = False
) -> bool:
    """Post one agency follow-up to LAPOR! if it is the agency's and its complaint is linked.

    Return False when it must wait: its complaint belongs on LAPOR! but is not linked yet (a
    create still in flight), so the caller reads it again next time. With ``replay`` (a
    quarantined follow-up replayed after a fix) a follow-up already posted still gets the status
    action its ``status_after`` names, if that was what was set aside.
    """
    if followup.author != "agency":
        return True
    posted = sync.links.followup_linked(agency_followup_id=followup.id)
    if posted and not (replay and followup.status_after is not None):
        return True
    link = sync.links.by_agency_id(followup.complaint_id)
    if link is None or link.lapor_id is None:
        try:
            complaint = sync.agency.complaint(followup.complaint_id)
        except (errors.NotFound, errors.RecordError) as missing:  # no such complaint, or a bad one
            sync.quarantine(
                FLOW, followup.id, missing, _raw(followup), agency_id=followup.complaint_id
            )
            report.quarantined += 1
            return True
        belongs_on_lapor = complaint.lapor is not None or (
            complaint.source == "internal" and complaint.report_to_lapor
        )
        return not belongs_on_lapor
    if link.disposed_away or link.gone is not None:  # left us, or gone on one side (reconcile)
        report.skipped += 1
        return True
    subject = f"{link.tracking_id}/{followup.id}"
    ids = {
        "lapor_id": link.lapor_id,
        "tracking_id": link.tracking_id,
        "agency_id": followup.complaint_id,
    }
    problems = [] if posted else _problems(sync, followup)
    if problems and sync.outbox.get(f"lapor.followup:{followup.id}") is None:
        error = errors.RecordNotSendable(
            f"agency follow-up {followup.id} would be refused by LAPOR!; fix it in the agency "
            "system, then run lapor-connector quarantine retry",
            problems,
            record_id=followup.id,
        )
        if not sync.dry_run:
            sync.quarantine(FLOW, followup.id, error, _raw(followup), **ids)
        report.quarantined += 1
        return True
    outcome = (
        None
        if posted
        else sync.write(
            key=f"lapor.followup:{followup.id}",
            flow=FLOW,
            target="lapor",
            operation="lapor_add_followup",
            subject=subject,
            payload={
                "complaint_id": link.lapor_id,
                "content": followup.content,
                "is_secret": followup.is_secret,
                "agency_id": followup.complaint_id,
                "agency_followup_id": followup.id,
                # Sent with the C4 as attachment[i] (one request; C8 ids are for C7 creates).
                "attachments": [a.model_dump(mode="json") for a in followup.attachments],
                "_fields": ["content", "attachments"] if followup.attachments else ["content"],
            },
            lookup={**ids, "fingerprint": content_fingerprint(followup.content)},
        )
    )
    if (outcome is not None and outcome.state == "done") or (sync.dry_run and not posted):
        report.posted += 1
    if followup.status_after is None:
        return True
    try:
        action = sync.mappings.action_for_agency_status(
            followup.status_after, record=f"follow-up {followup.id}"
        )
    except errors.MappingError as error:
        sync.quarantine(FLOW, followup.id, error, _raw(followup), **ids)
        report.quarantined += 1
        return True
    current = sync.links.by_agency_id(followup.complaint_id)
    if action in _EXPECT and (current is None or current.agency_status != followup.status_after):
        sync.write(
            key=f"lapor.process:{followup.id}:{action}",
            flow=FLOW,
            target="lapor",
            operation="lapor_process",
            subject=subject,
            payload={
                "complaint_id": link.lapor_id,
                "action": action,
                "expect_status": _EXPECT[action],
                "_fields": ["status"],
            },
            lookup=ids,
        )
        report.actions += 1
        if not sync.dry_run:
            with (
                sync.store.transaction()
            ):  # so the intake pass does not act on the same change again
                sync.links.update(link.lapor_id, agency_status=followup.status_after)
    return True


def _problems(sync: Sync, followup: m.AgencyFollowUp) -> list[errors.FieldProblem]:
    """Why this follow-up and its files would not reach LAPOR! (its text, LAPOR!'s file rules,
    ``attachments`` limits); files are named by their agency id, never by their name."""
    files = followup.attachments
    problems = sync.lapor.followup_problems(
        followup.content, [(a.file_name, a.size) for a in files]
    )
    for attachment in files:
        kind = attachment.file_name.rsplit(".", 1)[-1] if "." in attachment.file_name else ""
        refusal = sync.attachments.refusal(kind, attachment.size)
        if refusal is not None:
            problems.append(errors.FieldProblem(f"attachments[{attachment.id}]", refusal))
    return problems


def _raw(followup: m.AgencyFollowUp) -> dict[str, object]:
    """What a quarantine entry keeps of a follow-up: where to find it again, not its text."""
    return {"id": followup.id, "complaint_id": followup.complaint_id, "author": followup.author}


def resync_agency_followup(
    sync: Sync, complaint_id: str, followup_id: str, report: FollowupsReport | None = None
) -> FollowupsReport:
    """Post one agency follow-up now, from the agency's current data (a replay after a fix)."""
    report = report or FollowupsReport()
    for followup in sync.agency.followups(complaint_id):
        if followup.id == followup_id:
            before = report.quarantined
            push_followup(sync, followup, report, replay=True)
            if report.quarantined == before and not sync.dry_run:
                with sync.store.transaction():
                    sync.store.release(FLOW, followup_id)
            return report
    return report
