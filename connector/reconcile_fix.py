"""Repairs for reconcile's findings, each through the path the flows use (outbox, audited).

- ``missing_in_agency``: the inbound flow's create path (``agency.create:<lapor id>``);
- ``not_filed``: the intake flow's path (the create looked up by ``external_ref`` first, then the
  ids written back);
- ``followup_drift``: replies through the inbound flow, the agency's follow-ups through the
  follow-ups flow (each keyed by its follow-up id, so never twice);
- ``status_drift`` and ``flag_drift``: one PATCH of the agency complaint through the outbox
  (LAPOR! owns its lifecycle; flags only ever go up);
- ``lapor_gone`` and ``agency_gone``: the link is marked gone, with an audit entry, in one
  transaction (nothing is deleted; the flows skip it from then on).

A finding whose ``fixable`` is False (a flag only the agency has: LAPOR! has no endpoint for
it) is left as the instruction its ``fix`` gives.
"""

from __future__ import annotations

from typing import Literal

from connector.flows.followups_out import FollowupsReport, push_followup
from connector.flows.inbound import InboundReport, sync_complaint
from connector.flows.intake_out import IntakeReport, file_complaint
from connector.logs import get_logger
from connector.outbox import OutboxItem
from connector.reconcile import FLOW, Finding
from connector.sync import Sync

log = get_logger("reconcile")

Repair = Literal["fixed", "failed", "in_doubt", "manual"]


def repair(sync: Sync, finding: Finding) -> Repair:
    """Repair one finding; say whether it is done, failed, in doubt, or left to a person."""
    if not finding.fixable:
        return "manual"
    if finding.kind in ("lapor_gone", "agency_gone"):
        return _mark_gone(sync, finding)
    if finding.kind == "missing_in_agency":
        assert finding.summary is not None
        sync_complaint(sync, finding.summary, InboundReport(), force=True)
        linked = sync.links.by_lapor_id(finding.summary.lapor_id)
        return _states(sync, [f"agency.create:{finding.summary.lapor_id}"], linked is not None)
    if finding.kind == "not_filed":
        assert finding.agency is not None
        file_complaint(sync, finding.agency, IntakeReport())
        return _states(sync, [f"lapor.create:{finding.agency.id}", f"agency.link:{finding.agency.id}"],
                       sync.links.by_agency_id(finding.agency.id) is not None, optional=1)  # fmt: skip
    if finding.kind == "followup_drift":
        return _followups(sync, finding)
    if finding.kind in ("status_drift", "flag_drift"):
        return _patch(sync, finding)
    raise ValueError(f"no repair for finding kind {finding.kind!r}")


def _mark_gone(sync: Sync, finding: Finding) -> Repair:
    assert finding.lapor_id is not None
    side: Literal["lapor", "agency"] = "lapor" if finding.kind == "lapor_gone" else "agency"
    with sync.store.transaction():
        sync.links.mark_gone(finding.lapor_id, side)
        sync.record(flow=FLOW, direction="local", action="mark_link_gone", outcome="ok",
                    lapor_id=finding.lapor_id, tracking_id=finding.tracking_id,
                    agency_id=finding.agency_id, changed_fields=["gone"])  # fmt: skip
    log.warning(
        "link_marked_gone", side=side, lapor_id=finding.lapor_id, agency_id=finding.agency_id
    )
    return "fixed"


def _followups(sync: Sync, finding: Finding) -> Repair:
    keys = [f"agency.followup:{reply}" for reply in finding.replies]
    if finding.replies:
        assert finding.summary is not None
        sync_complaint(sync, finding.summary, InboundReport(), force=True)
    for followup in finding.followups:
        push_followup(sync, followup, FollowupsReport())
        keys.append(f"lapor.followup:{followup.id}")
    return _states(sync, keys, True)


def _patch(sync: Sync, finding: Finding) -> Repair:
    summary, record = finding.summary, finding.agency
    assert summary is not None
    assert record is not None
    patch = dict(finding.patch)
    key = f"reconcile.{finding.kind}:{summary.lapor_id}:{record.updated_at.isoformat()}"
    sync.write(
        key=key,
        flow=FLOW,
        target="agency",
        operation="agency_update_complaint",
        subject=summary.tracking_id,
        payload={
            "agency_id": record.id,
            "patch": patch,
            "lapor_id": summary.lapor_id,
            "lapor_status": summary.status.value,
            "_fields": sorted(patch),
        },
        lookup={
            "lapor_id": summary.lapor_id,
            "tracking_id": summary.tracking_id,
            "agency_id": record.id,
        },
    )
    return _states(sync, [key], True)


def _states(sync: Sync, keys: list[str], linked: bool, *, optional: int = 0) -> Repair:
    """Done when every write of the repair is done (the first ``optional`` may never have been
    needed: a complaint already filed only needs its ids written back)."""
    items: list[OutboxItem | None] = [sync.outbox.get(key) for key in keys]
    if any(item is not None and item.state == "in_flight" for item in items):
        return "in_doubt"
    needed = items[optional:]
    if (
        linked
        and all(item is not None and item.state == "done" for item in needed)
        and all(item is None or item.state == "done" for item in items[:optional])
    ):
        return "fixed"
    return "failed"


def repair_all(sync: Sync, findings: list[Finding]) -> list[Repair]:
    """Repair each finding in turn (a failure does not stop the others)."""
    return [repair(sync, finding) for finding in findings]
