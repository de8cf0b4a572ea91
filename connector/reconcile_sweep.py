"""The daemon's reconciliation sweep: the whole comparison, spread over the interval in slices.

A pass walks the LAPOR! inbox in its own order (keyset on ``(updated_at, id)``, from the
beginning), a slice at a time: each slice goes on from where the last one stopped, reads about
``1 / slices`` of the pages the previous pass needed, and stops sooner if it has spent its share
of the request budget (``reconcile.budget_share`` of ``lapor.requests_per_minute`` over the
slice's time). A complaint updated during the pass moves ahead of the sweep, so it is still
seen. Once the inbox is read to its end, the pass ends with what only a whole pass can tell:
links the pass never listed (a 404 on their detail: ``lapor_gone``) and the agency's complaints
marked ``report_to_lapor`` that were never filed; the next pass starts once the interval since
this one's start is over.

The sweep repairs on its own only what is safe: what a flow skipped (``missing_in_agency``: a
complaint past the inbound cursor that was never synced; ``not_filed``; ``followup_drift``), and
flags LAPOR! has raised (``flag_drift``, raise only). Everything else (``status_drift``,
``lapor_gone``, ``agency_gone``, a manual flag) is reported as a ``drift_found`` log event and
an audit entry, for ``lapor-connector reconcile --fix`` or a person.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from connector.config import ReconcileSettings
from connector.flows.inbound import BEGINNING
from connector.logs import get_logger
from connector.reconcile import FLOW, Finding, Reconciler
from connector.reconcile_fix import Repair, repair
from connector.sync import Sync

log = get_logger("reconcile")

#: Kinds the sweep repairs on its own (each recovers what a flow skipped, or raises a flag).
SAFE = frozenset({"missing_in_agency", "not_filed", "followup_drift", "flag_drift"})
_STATE = "sweep"


@dataclass
class SweepState:
    """Where the sweep stands: the pass's start, where the next slice goes on, and sizes."""

    pass_started: datetime | None = None
    #: The ``updated_at`` the next slice reads the inbox from; None: the pass is over.
    position: datetime | None = None
    pages: int = 0
    last_pass_pages: int = 0

    @classmethod
    def load(cls, sync: Sync) -> SweepState:
        row = sync.store.db.execute(
            "SELECT value FROM reconcile_sweep WHERE name = ?", [_STATE]
        ).fetchone()
        if row is None:
            return cls()
        raw = json.loads(row[0])
        return cls(
            pass_started=_time(raw.get("pass_started")),
            position=_time(raw.get("position")),
            pages=int(raw.get("pages", 0)),
            last_pass_pages=int(raw.get("last_pass_pages", 0)),
        )

    def save(self, sync: Sync) -> None:
        value = {"pass_started": _iso(self.pass_started), "position": _iso(self.position),
                 "pages": self.pages, "last_pass_pages": self.last_pass_pages}  # fmt: skip
        sync.store.db.execute(
            "INSERT OR REPLACE INTO reconcile_sweep (name, value, updated_at) VALUES (?, ?, ?)",
            [_STATE, json.dumps(value), sync.clock.now().isoformat()],
        )


@dataclass
class SweepReport:
    """What one slice of the sweep did."""

    pages: int = 0
    compared: int = 0
    pending: int = 0
    found: int = 0
    fixed: int = 0
    reported: int = 0
    lapor_requests: int = 0
    pass_ended: bool = False
    idle: bool = False
    findings: list[Finding] = field(default_factory=list)


def slice_budget(settings: ReconcileSettings, requests_per_minute: float) -> float:
    """LAPOR! requests one slice may spend (no limit when requests are not paced)."""
    if requests_per_minute == 0:
        return math.inf
    return max(2.0, requests_per_minute * settings.budget_share * settings.slice_seconds / 60)


def run_sweep(
    sync: Sync, settings: ReconcileSettings, *, requests_per_minute: float
) -> SweepReport:
    """One slice of the sweep: compare the next stretch of the inbox, repair what is safe."""
    report = SweepReport()
    state = SweepState.load(sync)
    now = sync.clock.now()
    interval = timedelta(hours=settings.every_hours)
    if state.position is None:
        if state.pass_started is not None and now - state.pass_started < interval:
            report.idle = True  # this interval's pass is done: nothing until the next one
            return report
        state = SweepState(
            pass_started=now, position=BEGINNING, last_pass_pages=state.last_pass_pages
        )
    assert state.position is not None
    assert state.pass_started is not None
    budget = slice_budget(settings, requests_per_minute)
    wanted = (
        math.ceil(state.last_pass_pages / settings.slices) if state.last_pass_pages else math.inf
    )
    reconciler = Reconciler(sync)
    start = state.position
    listing = sync.lapor.inbox(start)
    ended = True
    for page in listing.pages():
        report.pages += 1
        state.pages += 1
        for first in range(0, len(page.records), sync.batch_size):
            reconciler.check_summaries(page.records[first : first + sync.batch_size])
        if page.records:
            with sync.store.transaction():
                sync.links.mark_reconciled([s.lapor_id for s in page.records], now)
            state.position = max(s.updated_at for s in page.records)
        spent = reconciler.spent()
        moved = state.position > start  # a slice never ends inside the moment it began at
        if moved and (report.pages >= wanted or spent >= budget):
            ended = False
            break
    if ended:
        reconciler.check_unlisted(sync.links.not_reconciled_since(state.pass_started))
        complaints = [c for agency_page in sync.agency.complaints(None) for c in agency_page.items]
        reconciler.check_agency(complaints)
        state = SweepState(pass_started=state.pass_started, position=None,
                           last_pass_pages=state.pages)  # fmt: skip
        report.pass_ended = True
    comparison = reconciler.done()
    report.compared, report.pending = comparison.compared, comparison.pending
    report.findings = comparison.findings
    report.found = len(comparison.findings)
    for finding in comparison.findings:
        outcome: Repair | None = repair(sync, finding) if finding.kind in SAFE else None
        if outcome == "fixed":
            report.fixed += 1
            log.info("drift_repaired", kind=finding.kind, lapor_id=finding.lapor_id,
                     agency_id=finding.agency_id)  # fmt: skip
        else:
            _report(sync, finding, outcome)
            report.reported += 1
    with sync.store.transaction():
        state.save(sync)
    report.lapor_requests = reconciler.spent()
    return report


def _report(sync: Sync, finding: Finding, outcome: Repair | None) -> None:
    """A drift left for ``reconcile --fix`` or a person: a log event and an audit entry."""
    with sync.store.transaction():
        sync.record(flow=FLOW, direction="local", action=f"drift_{finding.kind}",
                    outcome="failed" if outcome in ("failed", "in_doubt") else "skipped",
                    lapor_id=finding.lapor_id, tracking_id=finding.tracking_id,
                    agency_id=finding.agency_id, changed_fields=[])  # fmt: skip
    log.warning("drift_found", kind=finding.kind, lapor_id=finding.lapor_id,
                agency_id=finding.agency_id, detail=finding.detail, fix=finding.fix,
                repair=outcome or "left for `lapor-connector reconcile --fix`")  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
