"""``state rebuild``: recover a lost state's links from both sides, so nothing is sent twice.

The agency holds, on every complaint that reached LAPOR! or came from it, the LAPOR! id and
tracking id; its replies from LAPOR! carry their LAPOR! follow-up id. LAPOR! holds, for every
complaint the agency filed, its ``external_ref``, and for every follow-up the agency posted, its
text. From these the links are rebuilt:

- each agency complaint with a LAPOR! reference is linked again;
- each agency complaint marked ``report_to_lapor`` without one is looked up on LAPOR! by
  ``external_ref`` (C1), so a create whose write-back was lost is linked, not filed again;
- each reply the agency holds with a LAPOR! follow-up id is linked again;
- each follow-up the agency wrote is matched by its content fingerprint against the
  institution's follow-ups on LAPOR! (C3), each LAPOR! item used once; one without a match was
  never posted, and the next sync posts it.

Cursors are left empty, so the next sync reads both sides from the beginning: every linked
complaint is compared once (and its replies read), and nothing linked is written again. The
rebuild is recorded in the audit log, which starts a new segment; the old anchor file, if any, is
kept beside the new one (``<anchor>.before-rebuild-<time>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone

from connector import errors
from connector import models as m
from connector.lapor.client import content_fingerprint
from connector.logs import get_logger
from connector.sync import Sync

log = get_logger("rebuild")


@dataclass
class RebuildReport:
    """What a rebuild recovered."""

    complaints_linked: int = 0
    found_on_lapor: int = 0
    replies_linked: int = 0
    followups_linked: int = 0
    followups_unposted: int = 0


def rebuild_state(sync: Sync) -> RebuildReport:
    """Recover the links of a blank state from the agency and LAPOR!; refuse a state in use."""
    if not sync.store.is_blank():
        raise errors.ConfigError(
            [
                f"state.path: {sync.store.path} is in use (it holds links or cursors); a rebuild is "
                "for a lost or emptied state: point state.path at a new file first"
            ]
        )
    report = RebuildReport()
    for page in sync.agency.complaints(None):
        for complaint in page.items:
            _relink(sync, complaint, report)
    with sync.store.transaction():
        sync.record(flow="state", direction="local", action="state_rebuild", outcome="ok",
                    changed_fields=[f"{k}={v}" for k, v in vars(report).items()])  # fmt: skip
    log.info("state_rebuilt", **vars(report))
    return report


def _relink(sync: Sync, complaint: m.AgencyComplaint, report: RebuildReport) -> None:
    ref = complaint.lapor
    origin = "lapor" if complaint.source == "lapor" else "agency"
    if ref is None and complaint.source == "internal" and complaint.report_to_lapor:
        found = sync.lapor.find_created(complaint.id)
        if found is None:
            return  # never filed: the next sync files it
        ref = m.LaporRef(
            lapor_id=found.lapor_id, tracking_id=found.tracking_id, status=found.status
        )
        report.found_on_lapor += 1
    if ref is None:
        return
    with sync.store.transaction():
        sync.links.add(origin=origin, lapor_id=ref.lapor_id, tracking_id=ref.tracking_id,  # type: ignore[arg-type]
                       agency_id=complaint.id, lapor_status=ref.status.value if ref.status else None,
                       agency_status=complaint.status)  # fmt: skip
    report.complaints_linked += 1
    followups = sync.agency.followups(complaint.id)
    ours = [f for f in followups if f.author == "agency"]
    posted: list[m.FollowUp] = []
    if ours:
        try:
            posted = [
                f
                for f in sync.lapor.followups(ref.lapor_id)
                if isinstance(f, m.FollowUp) and f.author is m.Author.INSTITUTION
            ]
        except (errors.NotDisposed, errors.NotFound):
            posted = []  # no longer visible to us: nothing more will be posted there
    taken: set[int] = set()
    with sync.store.transaction():
        for followup in followups:
            if followup.lapor_followup_id is not None and followup.author != "agency":
                sync.links.link_followup(lapor_followup_id=followup.lapor_followup_id, agency_followup_id=followup.id,
                                         lapor_id=ref.lapor_id, agency_id=complaint.id, direction="inbound")  # fmt: skip
                report.replies_linked += 1
        for followup in ours:
            fingerprint = content_fingerprint(followup.content)
            match = next((f for f in posted if f.id not in taken
                          and content_fingerprint(f.content) == fingerprint), None)  # fmt: skip
            if match is None:
                report.followups_unposted += 1
                continue
            taken.add(match.id)
            sync.links.link_followup(lapor_followup_id=match.id, agency_followup_id=followup.id,
                                     lapor_id=ref.lapor_id, agency_id=complaint.id, direction="outbound")  # fmt: skip
            report.followups_linked += 1


def rotate_anchor(sync: Sync) -> str | None:
    """Keep the lost log's anchor beside the new one; return where it went."""
    anchor = sync.audit.anchor_path
    if anchor is None or not anchor.exists():
        return None
    stamp = sync.clock.now().astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    kept = anchor.with_name(f"{anchor.name}.before-rebuild-{stamp}")
    anchor.rename(kept)
    return str(kept)
