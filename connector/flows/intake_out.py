"""Intake out: complaints the agency received on its own channels are filed on LAPOR!, and
the agency's status changes on linked complaints become LAPOR! actions.

An internal complaint marked ``report_to_lapor`` is created on LAPOR! (C7) with ``external_ref``
= the agency's id; the create is an outbox intent looked up by that reference before any
re-send, since the service has no idempotency key. The LAPOR! id and tracking id are then written
back to the agency complaint, and its earlier follow-ups are posted. An anonymous complaint is
filed under the agency's intake account; its reporter's identity is never sent.

The same pass notices when the agency moved a linked complaint to another status: the mapping
names the LAPOR! action (postpone, archive, verify), and ``reject`` ("bukan wewenang") forwards
it to the institution that the complaint's work unit maps to in ``units.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector import errors
from connector import models as m
from connector.flows.followups_out import FollowupsReport, push_followup
from connector.sync import Sync, write_back

FLOW = "intake_out"


@dataclass
class IntakeReport:
    """What one intake-out run did."""

    created: int = 0
    written_back: int = 0
    status_actions: int = 0
    quarantined: int = 0
    watermark: datetime | None = None


def run_intake_out(sync: Sync) -> IntakeReport:
    """One pass: finish interrupted creates, then file new internal complaints on LAPOR!."""
    report = IntakeReport()
    for outcome in sync.drain(FLOW):
        if outcome.state == "done" and outcome.item.operation == "lapor_create_complaint":
            # A create whose answer was lost, found by its lookup: write the tracking id back
            # now (the agency's listing will not show this complaint again until it changes).
            try:
                complaint = sync.agency.complaint(outcome.item.subject)
            except (errors.NotFound, errors.RecordError) as error:
                sync.quarantine(FLOW, outcome.item.subject, error, {"id": outcome.item.subject},
                                agency_id=outcome.item.subject)  # fmt: skip
                report.quarantined += 1
                continue
            file_complaint(sync, complaint, report)
    for page in sync.agency.complaints(sync.store.watermark(FLOW)):
        report.quarantined += sync.quarantine_page(FLOW, page.invalid, "agency complaint")
        for complaint in page.items:
            file_complaint(sync, complaint, report)
            push_status_change(sync, complaint, report)
        if page.items:
            sync.advance(FLOW, max(c.updated_at for c in page.items))
    report.watermark = sync.store.watermark(FLOW)
    return report


def file_complaint(sync: Sync, complaint: m.AgencyComplaint, report: IntakeReport) -> None:
    """Create one internal complaint on LAPOR!, write the ids back, post its follow-ups."""
    if complaint.source != "internal" or not complaint.report_to_lapor:
        return
    link = sync.links.by_agency_id(complaint.id)
    if complaint.lapor is not None and link is not None:
        return
    if link is None:
        try:
            new = _translate(sync, complaint)
            problems = sync.lapor.complaint_problems(
                new, [(a.file_name, a.size) for a in complaint.attachments]
            )
            if problems:
                raise errors.RecordNotSendable(
                    f"agency complaint {complaint.id} would be refused by LAPOR!; fix it in the "
                    "agency system, then run lapor-connector quarantine retry",
                    problems,
                    record_id=complaint.id,
                )
        except (errors.MappingError, errors.RecordError) as error:
            sync.quarantine(
                FLOW,
                complaint.id,
                error,
                complaint.model_dump(mode="json", exclude={"reporter"}),
                agency_id=complaint.id,
            )
            report.quarantined += 1
            return
        outcome = sync.write(
            key=f"lapor.create:{complaint.id}",
            flow=FLOW,
            target="lapor",
            operation="lapor_create_complaint",
            subject=complaint.id,
            payload={
                "complaint": new.model_dump(mode="json"),
                "attachments": [a.model_dump(mode="json") for a in complaint.attachments],
                "agency_status": complaint.status,
                "_fields": ["title", "content", "category_id", "is_secret", "is_anonymous"],
            },
            lookup={"external_ref": complaint.id, "agency_id": complaint.id},
        )
        if sync.dry_run:
            report.created += 1
            return
        if outcome is None or outcome.state != "done":
            return
        report.created += 1
        link = sync.links.by_agency_id(complaint.id)
        if link is None or link.lapor_id is None or link.tracking_id is None:
            return
        with sync.store.transaction():
            sync.store.release(FLOW, complaint.id)
    assert link.lapor_id is not None
    assert link.tracking_id is not None
    written = sync.write(**write_back(complaint.id, link.lapor_id, link.tracking_id, flow=FLOW))
    if written is not None and written.state == "done":
        report.written_back += 1
    try:
        followups = sync.agency.followups(complaint.id)
    except (errors.NotFound, errors.RecordError) as error:  # listed, yet gone, or a bad follow-up
        sync.quarantine(FLOW, complaint.id, error,
                        complaint.model_dump(mode="json", exclude={"reporter"}), agency_id=complaint.id)  # fmt: skip
        report.quarantined += 1
        return
    for followup in followups:
        push_followup(sync, followup, FollowupsReport())


def _translate(sync: Sync, complaint: m.AgencyComplaint) -> m.NewComplaint:
    record = f"agency complaint {complaint.id}"
    reporter = None if complaint.is_anonymous else complaint.reporter
    user_id = None
    if reporter is None or not (reporter.name and (reporter.email or reporter.phone)):
        if sync.intake_user_id is None:
            raise errors.MappingError(
                f"{record} has no reporter LAPOR! can open an account for (anonymous, or no e-mail or phone); "
                "set lapor.intake_user_id to the agency's intake account on LAPOR!"
            )
        reporter, user_id = None, sync.intake_user_id
    return m.NewComplaint(
        external_ref=complaint.id,
        title=complaint.title,
        content=complaint.content,
        channel_id=sync.mappings.channel_for(complaint.channel),
        classification_id=sync.mappings.classification_for(complaint.category_code, record=record),
        category_id=sync.mappings.category_to_lapor(complaint.category_code or "", record=record),
        disposition_id=sync.mappings.disposition_for_unit(complaint.unit_code, record=record),
        location_id=sync.mappings.location_for_unit(complaint.unit_code, record=record),
        incident_date=complaint.incident_date,
        tags=complaint.tags,
        is_secret=complaint.is_secret,
        is_anonymous=complaint.is_anonymous,
        reporter=reporter,
        user_id=user_id,
    )


def resync_agency_complaint(
    sync: Sync, agency_id: str, report: IntakeReport | None = None
) -> IntakeReport:
    """File one agency complaint now (an operator's resync, or a replay after a fix)."""
    report = report or IntakeReport()
    complaint = sync.agency.complaint(agency_id)
    earlier = sync.outbox.get(f"lapor.create:{agency_id}")
    if earlier is not None and earlier.state == "acknowledged" and not sync.dry_run:
        # Filed again on request after an operator gave up on it: only if LAPOR! has none.
        found = sync.lapor.find_created(agency_id)
        if found is None:
            with sync.store.transaction():
                sync.outbox.resolve(earlier, "set aside: filed again on request", set_aside=True)
    before = report.quarantined
    file_complaint(sync, complaint, report)
    push_status_change(sync, complaint, report)  # a status change set aside is replayed too
    if sync.links.by_agency_id(agency_id) is not None and report.quarantined == before:
        # Resolved only when the work was done: nothing of it was set aside again.
        with sync.store.transaction():
            sync.store.release(FLOW, agency_id)
    return report


_EXPECT = {"postpone": "postponed", "archive": "archived", "verify": "verified"}


def push_status_change(sync: Sync, complaint: m.AgencyComplaint, report: IntakeReport) -> None:
    """Turn a status the agency set on a linked complaint into the LAPOR! action its mapping names."""
    link = sync.links.by_agency_id(complaint.id)
    if (
        link is None
        or link.lapor_id is None
        or link.disposed_away
        or link.gone is not None
        or complaint.status == link.agency_status
    ):
        return
    ids = {"lapor_id": link.lapor_id, "tracking_id": link.tracking_id, "agency_id": complaint.id}
    record = f"agency complaint {complaint.id}"
    try:
        action = sync.mappings.action_for_agency_status(complaint.status, record=record)
        target = (
            sync.mappings.disposition_for_unit(complaint.unit_code, record=record)
            if action == "reject"
            else None
        )
        if target == sync.institution_id:
            raise errors.MappingError(
                f"{record} is marked {complaint.status!r} (bukan wewenang) but its unit {complaint.unit_code!r} is this "
                "institution; route it to the unit of the institution with authority (units.yaml outbound)"
            )
    except errors.MappingError as error:
        sync.quarantine(
            FLOW,
            complaint.id,
            error,
            complaint.model_dump(mode="json", exclude={"reporter"}),
            **ids,
        )
        report.quarantined += 1
        return
    key = f"lapor.status:{complaint.id}:{complaint.status}:{complaint.updated_at.isoformat()}"
    outcome = None
    if action == "reject" and target is not None:
        outcome = sync.write(key=key, flow=FLOW, target="lapor", operation="lapor_reject", subject=complaint.id,
                             payload={"complaint_id": link.lapor_id, "target": target, "_fields": ["disposition"],
                                      "description": "Bukan kewenangan instansi kami; diteruskan kepada instansi yang berwenang."},
                             lookup=ids)  # fmt: skip
    elif action in _EXPECT:
        outcome = sync.write(key=key, flow=FLOW, target="lapor", operation="lapor_process", subject=complaint.id,
                             payload={"complaint_id": link.lapor_id, "action": action, "expect_status": _EXPECT[action],
                                      "_fields": ["status"]},
                             lookup=ids)  # fmt: skip
    if outcome is not None and outcome.state == "done":
        report.status_actions += 1
    if not sync.dry_run and (outcome is None or outcome.state == "done"):
        # Recorded so the same change is not acted on twice ("none" and "followup" need no action).
        with sync.store.transaction():
            sync.links.update(link.lapor_id, agency_status=complaint.status)
