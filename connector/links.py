"""Links between a complaint (and its follow-ups) on LAPOR! and in the agency's system."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from connector.state import StateStore

Origin = Literal["lapor", "agency"]


def _iso(moment: datetime | None) -> str | None:
    return (
        None
        if moment is None
        else moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
    )


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class Link:
    """One complaint known on both sides."""

    lapor_id: int | None
    tracking_id: str | None
    agency_id: str | None
    origin: str
    disposed_away: bool
    lapor_status: str | None
    #: What the agency was last told of the LAPOR! side (status, disposition, flags).
    lapor_state: str | None
    agency_status: str | None
    lapor_updated_at: datetime | None
    agency_updated_at: datetime | None
    #: What the last follow-ups read (C3) saw: how many, and the newest one's time.
    followups_seen: int | None = None
    last_followup_at: datetime | None = None
    #: What the agency was last told of LAPOR!'s own fields (``connector.flows.lapor_changes``);
    #: None for a link made before it was recorded.
    lapor_fields: dict[str, Any] | None = None
    #: ``lapor`` or ``agency`` once reconcile found the record gone on that side (404): the
    #: link is kept, on the record, and nothing more is synced through it.
    gone: str | None = None


def _link(row: dict[str, Any]) -> Link:
    return Link(
        lapor_id=row["lapor_id"],
        tracking_id=row["tracking_id"],
        agency_id=row["agency_id"],
        origin=row["origin"],
        disposed_away=bool(row["disposed_away"]),
        lapor_status=row["lapor_status"],
        lapor_state=row["lapor_state"],
        agency_status=row["agency_status"],
        lapor_updated_at=_time(row["lapor_updated_at"]),
        agency_updated_at=_time(row["agency_updated_at"]),
        followups_seen=row.get("followups_seen"),
        last_followup_at=_time(row.get("last_followup_at")),
        lapor_fields=json.loads(row["lapor_fields"]) if row.get("lapor_fields") else None,
        gone=row.get("gone"),
    )


class Links:
    """Reads and writes links in the state file (inside the caller's transaction)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def _one(self, column: str, value: object) -> Link | None:
        rows = list(self.store.db.query(f"SELECT * FROM links WHERE {column} = ?", [value]))  # noqa: S608 (column is ours)
        return _link(rows[0]) if rows else None

    def by_lapor_id(self, lapor_id: int) -> Link | None:
        """The link of a LAPOR! complaint."""
        return self._one("lapor_id", lapor_id)

    def by_agency_id(self, agency_id: str) -> Link | None:
        """The link of an agency complaint."""
        return self._one("agency_id", agency_id)

    def by_tracking_id(self, tracking_id: str) -> Link | None:
        """The link of a LAPOR! tracking id."""
        return self._one("tracking_id", tracking_id)

    def add(
        self,
        *,
        origin: Origin,
        lapor_id: int,
        tracking_id: str,
        agency_id: str,
        lapor_status: str | None = None,
        agency_status: str | None = None,
        lapor_updated_at: datetime | None = None,
        agency_updated_at: datetime | None = None,
    ) -> Link:
        """Link a LAPOR! complaint and an agency complaint (idempotent for the same pair)."""
        now = _iso(self.store.clock.now())
        self.store.db.execute(
            """
            INSERT INTO links (lapor_id, tracking_id, agency_id, origin, lapor_status, agency_status,
                               lapor_updated_at, agency_updated_at, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (lapor_id) DO NOTHING
            """,
            [lapor_id, tracking_id, agency_id, origin, lapor_status, agency_status,
             _iso(lapor_updated_at), _iso(agency_updated_at), now, now],
        )  # fmt: skip
        link = self.by_lapor_id(lapor_id)
        assert link is not None
        return link

    def update(self, lapor_id: int, **columns: Any) -> None:
        """Record what was last seen or written on either side."""
        values = {
            k: _iso(v)
            if isinstance(v, datetime)
            else json.dumps(v, sort_keys=True)
            if isinstance(v, dict)
            else v
            for k, v in columns.items()
        }
        values["updated_at"] = _iso(self.store.clock.now())
        assignments = ", ".join(f"{name} = ?" for name in values)
        sql = f"UPDATE links SET {assignments} WHERE lapor_id = ?"  # noqa: S608 (column names are ours)
        self.store.db.execute(sql, [*values.values(), lapor_id])

    def mark_disposed_away(self, lapor_id: int) -> None:
        """The complaint left this institution (bukan wewenang, or the admin moved it): stop pushing."""
        self.update(lapor_id, disposed_away=1)

    def clear_disposed_away(self, lapor_id: int) -> None:
        """LAPOR! disposed the complaint back to this institution: push to it again."""
        self.update(lapor_id, disposed_away=0)

    def mark_gone(self, lapor_id: int, side: Origin) -> None:
        """The record on ``side`` no longer exists (404): keep the link, marked, and stop syncing it."""
        self.update(lapor_id, gone=side, gone_at=self.store.clock.now())

    def all(self) -> list[Link]:
        """Every link, in the order they were made."""
        return [_link(row) for row in self.store.db.query("SELECT * FROM links ORDER BY id")]

    def mark_reconciled(self, lapor_ids: list[int], at: datetime) -> None:
        """The reconciliation sweep compared these complaints at ``at``."""
        self.store.db.conn.executemany(
            "UPDATE links SET reconciled_at = ? WHERE lapor_id = ?",
            [(_iso(at), lapor_id) for lapor_id in lapor_ids],
        )

    def not_reconciled_since(self, moment: datetime) -> list[Link]:
        """Links not compared by the sweep since ``moment`` (nor marked gone)."""
        rows = self.store.db.query(
            "SELECT * FROM links WHERE gone IS NULL AND (reconciled_at IS NULL OR reconciled_at < ?) ORDER BY id",
            [_iso(moment)],
        )
        return [_link(row) for row in rows]

    def count(self) -> int:
        """How many complaints are linked."""
        return int(self.store.db.execute("SELECT count(*) FROM links").fetchone()[0])

    # --- follow-ups ----------------------------------------------------------------------

    def link_followup(
        self,
        *,
        lapor_followup_id: int,
        agency_followup_id: str,
        lapor_id: int,
        agency_id: str,
        direction: str,
    ) -> None:
        """Link a follow-up on both sides (idempotent)."""
        self.store.db.execute(
            """
            INSERT INTO followup_links (lapor_followup_id, agency_followup_id, lapor_id, agency_id, direction, created_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT DO NOTHING
            """,
            [
                lapor_followup_id,
                agency_followup_id,
                lapor_id,
                agency_id,
                direction,
                _iso(self.store.clock.now()),
            ],
        )

    def followup_linked(
        self, *, lapor_followup_id: int | None = None, agency_followup_id: str | None = None
    ) -> bool:
        """True if this follow-up already exists on the other side."""
        if lapor_followup_id is not None:
            row = self.store.db.execute(
                "SELECT 1 FROM followup_links WHERE lapor_followup_id = ?", [lapor_followup_id]
            ).fetchone()
        else:
            row = self.store.db.execute(
                "SELECT 1 FROM followup_links WHERE agency_followup_id = ?", [agency_followup_id]
            ).fetchone()
        return row is not None

    def linked_lapor_followups(self, lapor_id: int) -> set[int]:
        """LAPOR! follow-up ids of a complaint already linked to the agency side."""
        rows = self.store.db.execute(
            "SELECT lapor_followup_id FROM followup_links WHERE lapor_id = ?", [lapor_id]
        )
        return {row[0] for row in rows.fetchall()}

    def agency_followup_id(self, lapor_followup_id: int) -> str | None:
        """The agency follow-up a LAPOR! follow-up is linked to, if any."""
        row = self.store.db.execute(
            "SELECT agency_followup_id FROM followup_links WHERE lapor_followup_id = ?",
            [lapor_followup_id],
        ).fetchone()
        return None if row is None else str(row[0])

    # --- attachments ---------------------------------------------------------------------

    def link_attachment(
        self,
        *,
        lapor_file_id: int,
        agency_attachment_id: str,
        lapor_id: int,
        agency_id: str,
        lapor_followup_id: int | None,
    ) -> None:
        """Record a LAPOR! file as stored in the agency system (idempotent)."""
        self.store.db.execute(
            """
            INSERT INTO attachment_links (lapor_file_id, agency_attachment_id, lapor_id, agency_id,
                                          lapor_followup_id, created_at)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT DO NOTHING
            """,
            [lapor_file_id, agency_attachment_id, lapor_id, agency_id, lapor_followup_id,
             _iso(self.store.clock.now())],
        )  # fmt: skip

    def attachment_linked(self, lapor_file_id: int) -> bool:
        """True if this LAPOR! file is already stored in the agency system."""
        row = self.store.db.execute(
            "SELECT 1 FROM attachment_links WHERE lapor_file_id = ?", [lapor_file_id]
        ).fetchone()
        return row is not None

    def followup_pairs(self, agency_id: str) -> dict[str, int]:
        """The agency follow-up ids of a complaint linked to LAPOR!, with their LAPOR! ids."""
        rows = self.store.db.execute(
            "SELECT agency_followup_id, lapor_followup_id FROM followup_links WHERE agency_id = ?",
            [agency_id],
        )
        return {str(agency): int(lapor) for agency, lapor in rows.fetchall()}
