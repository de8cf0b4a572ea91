"""Retention: what the connector holds of a closed complaint's contents goes after a while.

A complaint closed on both sides (LAPOR! Selesai, Diarsipkan or Ditolak, or moved to another
institution; the agency at the status those map to) whose link has not changed for
``privacy.retention_days`` loses what the state still holds of its contents: its title in
``lapor_complaints``, the texts, file names and attachment lists of its settled writes in the
outbox (ids and field names stay), and its quarantined records (and any other settled
quarantine entry last seen before then). Ids, links, the SLA facts and the audit log stay: the
chain still verifies, and each pruned complaint gets an audit entry of its own. A complaint with
a write still open is left for a later prune. See docs/privacy.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connector.audit import AuditLog
from connector.clock import Clock
from connector.config import Settings
from connector.errors import MappingError
from connector.mappings import Mappings, load_mappings
from connector.models import ComplaintStatus
from connector.state import StateStore

FLOW = "privacy"
#: What a pruned payload keeps: ids and states (to explain the write), never a text.
_KEPT_KEYS = frozenset(
    {
        "lapor_id", "tracking_id", "agency_id", "complaint_id", "file_id", "lapor_followup_id",
        "agency_followup_id", "lapor_status", "agency_status", "lapor_state", "action",
        "expect_status", "target", "_fields",
    }
)  # fmt: skip
_PRUNED_RAW = json.dumps({"pruned": True})
_SETTLED = ("done", "acknowledged")
_OPEN = ("pending", "in_flight", "failed", "dead")
_TERMINAL = [s.value for s in ComplaintStatus if s.is_terminal]


@dataclass
class PruneReport:
    """What a prune removed (or, in a dry run, would remove)."""

    complaints: int = 0  #: closed complaints whose contents went
    titles: int = 0  #: titles emptied in lapor_complaints
    payloads: int = 0  #: settled writes' payloads reduced to ids
    quarantined: int = 0  #: quarantined records removed (their problems stay)

    @property
    def total(self) -> int:
        return self.titles + self.payloads + self.quarantined


@dataclass(frozen=True)
class _Closed:
    lapor_id: int
    tracking_id: str | None
    agency_id: str | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _agency_terminal(mappings: Mappings) -> list[str]:
    """The agency statuses closed LAPOR! statuses map to, and the status of a moved complaint."""
    codes: set[str] = set()
    for status in ComplaintStatus:
        if status.is_terminal:
            try:
                codes.add(mappings.status_to_agency(status))
            except MappingError:
                continue
    if mappings.status_when_redisposed() is not None:
        codes.add(str(mappings.status_when_redisposed()))
    return sorted(codes)


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values) or "NULL"


def closed_before(store: StateStore, mappings: Mappings, cutoff: datetime) -> list[_Closed]:
    """Linked complaints closed on both sides whose link last changed before ``cutoff``."""
    agency_terminal = _agency_terminal(mappings)
    sql = f"""
        SELECT lapor_id, tracking_id, agency_id FROM links
        WHERE lapor_id IS NOT NULL
          AND (lapor_status IN ({_marks(_TERMINAL)}) OR disposed_away = 1 OR gone IS NOT NULL)
          AND (agency_status IN ({_marks(agency_terminal)}) OR gone IS NOT NULL)
          AND max(updated_at, coalesce(lapor_updated_at, ''), coalesce(agency_updated_at, '')) < ?
        ORDER BY lapor_id
    """  # noqa: S608 (placeholders only)
    rows = store.db.execute(sql, [*_TERMINAL, *agency_terminal, _iso(cutoff)]).fetchall()
    return [_Closed(int(r[0]), r[1], r[2]) for r in rows]


def _writes_of(store: StateStore, closed: _Closed, states: tuple[str, ...]) -> list[dict[str, Any]]:
    subjects = [s for s in (closed.tracking_id, closed.agency_id) if s]
    sql = f"""
        SELECT id, payload FROM outbox
        WHERE state IN ({_marks(list(states))})
          AND (json_extract(lookup, '$.lapor_id') = ? OR json_extract(payload, '$.lapor_id') = ?
               OR json_extract(payload, '$.complaint_id') = ?
               OR json_extract(lookup, '$.agency_id') = ? OR json_extract(payload, '$.agency_id') = ?
               OR subject IN ({_marks(subjects)}))
    """  # noqa: S608 (placeholders only)
    params = [*states, closed.lapor_id, closed.lapor_id, closed.lapor_id,
              closed.agency_id, closed.agency_id, *subjects]  # fmt: skip
    return list(store.db.query(sql, params))


def _pruned(payload: dict[str, Any]) -> str:
    kept = {k: v for k, v in payload.items() if k in _KEPT_KEYS}
    return json.dumps({**kept, "pruned": True}, sort_keys=True, default=str)


def prune(
    store: StateStore,
    mappings: Mappings,
    audit: AuditLog,
    *,
    retention_days: int,
    actor: str = "state prune",
) -> PruneReport:
    """Remove the contents of complaints closed longer than ``retention_days`` (one transaction;
    run it inside ``store.rehearsal()`` for a dry run)."""
    cutoff = store.clock.now() - timedelta(days=retention_days)
    report = PruneReport()
    with store.transaction():
        for closed in closed_before(store, mappings, cutoff):
            if _writes_of(store, closed, _OPEN):
                continue  # still being worked on: a later prune takes it
            removed: list[str] = []
            cursor = store.db.execute(
                "UPDATE lapor_complaints SET title = '' WHERE lapor_id = ? AND title != ''",
                [closed.lapor_id],
            )
            if cursor.rowcount:
                report.titles += cursor.rowcount
                removed.append("title")
            for row in _writes_of(store, closed, _SETTLED):
                payload = json.loads(row["payload"])
                if payload.get("pruned") is True:
                    continue
                store.db.execute(
                    "UPDATE outbox SET payload = ? WHERE id = ?", [_pruned(payload), row["id"]]
                )
                report.payloads += 1
                if "payload" not in removed:
                    removed.append("payload")
            records = [r for r in (closed.agency_id, str(closed.lapor_id)) if r]
            cursor = store.db.execute(
                f"UPDATE quarantine SET raw = ? WHERE raw != ? AND (record_id IN ({_marks(records)}) "  # noqa: S608
                "OR record_id LIKE ?)",
                [_PRUNED_RAW, _PRUNED_RAW, *records, f"{closed.lapor_id}/%"],
            )
            if cursor.rowcount:
                report.quarantined += cursor.rowcount
                removed.append("quarantine")
            if removed:
                report.complaints += 1
                audit.append(actor=actor, flow=FLOW, direction="local", action="prune_contents",
                             outcome="ok", lapor_id=closed.lapor_id, tracking_id=closed.tracking_id,
                             agency_id=closed.agency_id, changed_fields=removed)  # fmt: skip
        # Settled quarantine entries of records that never became a linked complaint.
        cursor = store.db.execute(
            "UPDATE quarantine SET raw = ? WHERE raw != ? AND status != 'open' AND last_seen < ?",
            [_PRUNED_RAW, _PRUNED_RAW, _iso(cutoff)],
        )
        report.quarantined += cursor.rowcount
        # Complaints seen on LAPOR! and closed there, never linked (another institution's now).
        cursor = store.db.execute(
            f"UPDATE lapor_complaints SET title = '' WHERE title != '' AND status IN ({_marks(_TERMINAL)}) "  # noqa: S608
            "AND updated_at < ? AND lapor_id NOT IN (SELECT lapor_id FROM links WHERE lapor_id IS NOT NULL)",
            [*_TERMINAL, _iso(cutoff)],
        )
        report.titles += cursor.rowcount
    return report


def prune_configured(
    settings: Settings, clock: Clock, *, dry_run: bool = False, actor: str = "state prune"
) -> PruneReport:
    """Prune the configured state with the configured retention (a dry run rolls it all back).

    The caller holds the writer lock (the daemon does for its lifetime)."""
    mappings = load_mappings(settings.mappings.path)
    with StateStore(settings.state.path, clock) as store:
        audit = AuditLog.configured(store, settings.audit)
        if dry_run:
            with store.rehearsal():
                return prune(store, mappings, audit, retention_days=settings.privacy.retention_days,
                             actor=actor)  # fmt: skip
        report = prune(store, mappings, audit, retention_days=settings.privacy.retention_days,
                       actor=actor)  # fmt: skip
        if report.complaints:
            audit.checkpoint()
        store.checkpoint_wal()  # the old pages leave the WAL too
        return report
