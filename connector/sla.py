"""Service-level deadlines of every linked complaint, in Indonesian working days (docs/sla.md).

LAPOR!'s service rules: verification and disposition within 3 working days of submission, the
institution's first follow-up within 5 of disposition, automatic closure 10 after the
institution's last follow-up unless the reporter or an admin replied since, and a legal ceiling
of 60 days from submission (Perpres 76/2013: calendar days). A complaint's current stage follows
from what LAPOR! told the connector of it (its status, history and follow-ups: ``SlaFacts``, kept
by the inbound flow at no extra request); its due date is LAPOR!'s own ``deadlines`` value when
the service sends one, the connector's count (``connector.workdays``) otherwise. When both exist
and differ by more than a day, the difference is logged once and shown.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Any, Literal

from connector import models as m
from connector.logs import get_logger
from connector.state import StateStore
from connector.workdays import WorkCalendar

log = get_logger("sla")

Stage = Literal["verify", "first_followup", "auto_close", "ceiling"]
State = Literal["on_time", "at_risk", "overdue"]
STAGES: tuple[Stage, ...] = ("verify", "first_followup", "auto_close", "ceiling")
VERIFY_DAYS = 3
FIRST_FOLLOWUP_DAYS = 5
AUTO_CLOSE_DAYS = 10
CEILING_CALENDAR_DAYS = 60
TERMINAL = {m.ComplaintStatus.DONE, m.ComplaintStatus.ARCHIVED, m.ComplaintStatus.REJECTED}
#: How often every open complaint is looked at again (states move with the calendar, not only
#: with changes); complaints a run changed are looked at in that run.
FULL_REVIEW_EVERY = timedelta(hours=1)
_REVIEW_CACHE = "sla.review"
_BACKFILL_CACHE = "sla.backfill"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# --- what LAPOR! said of each complaint's clock ----------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the SLA of one linked complaint is computed from."""

    lapor_id: int
    tracking_id: str | None
    unit: str | None
    status: m.ComplaintStatus
    disposition_id: int | None
    created_at: datetime
    disposed_at: datetime | None
    first_followup_at: datetime | None
    last_institution_followup_at: datetime | None
    last_reply_at: datetime | None
    closed_at: datetime | None
    verify_by: datetime | None
    first_followup_by: datetime | None
    auto_close_at: datetime | None
    recorded_state: str | None
    disagreement: str | None

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL


_TIMES = (
    "created_at",
    "disposed_at",
    "first_followup_at",
    "last_institution_followup_at",
    "last_reply_at",
    "closed_at",
    "verify_by",
    "first_followup_by",
    "auto_close_at",
)


def _facts(row: dict[str, Any]) -> Facts:
    values = {name: _time(row[name]) for name in _TIMES}
    return Facts(
        lapor_id=row["lapor_id"],
        tracking_id=row["tracking_id"],
        unit=row["unit"],
        status=m.ComplaintStatus(row["status"]),
        disposition_id=row["disposition_id"],
        recorded_state=row["recorded_state"],
        disagreement=row["disagreement"],
        **values,  # type: ignore[arg-type]
    )


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [t for t in moments if t is not None]
    return min(known) if known else None


def _latest(*moments: datetime | None) -> datetime | None:
    known = [t for t in moments if t is not None]
    return max(known) if known else None


def facts_from(complaint: m.ComplaintSummary, unit: str | None) -> Facts:
    """What a listing summary alone says of a complaint's clock (one not synced yet)."""
    d = complaint.deadlines
    return Facts(
        lapor_id=complaint.lapor_id, tracking_id=complaint.tracking_id, unit=unit,
        status=complaint.status, disposition_id=complaint.disposition_id,
        created_at=complaint.created_at, disposed_at=None, first_followup_at=None,
        last_institution_followup_at=None, last_reply_at=None, closed_at=None,
        verify_by=d.verify_by, first_followup_by=d.first_followup_by, auto_close_at=d.auto_close_at,
        recorded_state=None, disagreement=None,
    )  # fmt: skip


def _rows_for(store: StateStore, select: str, lapor_ids: Iterable[int]) -> Iterator[Any]:
    """The rows of ``select ... AND lapor_id IN (...)`` for these ids, 500 at a time (SQLite's
    limit on variables), as dicts."""
    wanted = list(lapor_ids)
    for first in range(0, len(wanted), 500):
        chunk = wanted[first : first + 500]
        marks = ",".join("?" * len(chunk))
        cursor = store.db.conn.execute(f"{select} AND lapor_id IN ({marks})", chunk)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))


class SlaFacts:
    """Reads and keeps the SLA facts in the state (writes inside the caller's transaction)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def get(self, lapor_id: int) -> Facts | None:
        rows = list(self.store.db.query("SELECT * FROM sla_facts WHERE lapor_id = ?", [lapor_id]))
        return _facts(rows[0]) if rows else None

    def all(self, lapor_ids: Iterable[int] | None = None) -> list[Facts]:
        if lapor_ids is None:
            return [_facts(r) for r in self.store.db.query("SELECT * FROM sla_facts")]
        return [
            _facts(r) for r in _rows_for(self.store, "SELECT * FROM sla_facts WHERE 1", lapor_ids)
        ]

    def known(self, lapor_ids: Iterable[int]) -> set[int]:
        """Which of these complaints have facts already."""
        select = "SELECT lapor_id FROM sla_facts WHERE 1"
        return {r["lapor_id"] for r in _rows_for(self.store, select, lapor_ids)}

    def needs_backfill(self) -> bool:
        """Some linked complaint has no facts, and no listing from the beginning filled them yet."""
        if self.store.cached(_BACKFILL_CACHE) is not None:
            return False
        row = self.store.db.execute(
            "SELECT 1 FROM links LEFT JOIN sla_facts USING (lapor_id) WHERE links.lapor_id IS NOT NULL "
            "AND sla_facts.lapor_id IS NULL LIMIT 1"
        ).fetchone()
        return row is not None

    def backfilled(self) -> None:
        """The listing from the beginning is done: never again (what it did not list is gone)."""
        with self.store.transaction():
            self.store.cache(_BACKFILL_CACHE, {"done": True})

    def observe(
        self,
        complaint: m.ComplaintSummary,
        unit: str | None,
        *,
        institution_id: int,
        followups: Sequence[m.FollowUp] | None = None,
    ) -> None:
        """Fold what a listing, a detail (with its history) or a follow-ups read said of a
        complaint into its facts."""
        before = self.get(complaint.lapor_id)
        history = complaint.history if isinstance(complaint, m.Complaint) else ()
        dispositions = [h.at for h in history if h.kind == "disposition"]
        disposed_at = before.disposed_at if before else None
        if dispositions:
            disposed_at = max(dispositions)
        elif (
            before is not None
            and before.disposition_id != complaint.disposition_id
            and complaint.disposition_id == institution_id
        ):
            disposed_at = complaint.updated_at  # disposed (back) to us since the last look
        first = before.first_followup_at if before else None
        last_institution = before.last_institution_followup_at if before else None
        last_reply = before.last_reply_at if before else None
        if followups is not None:
            ours = [f.at for f in followups if f.author is m.Author.INSTITUTION]
            replies = [f.at for f in followups if f.author is not m.Author.INSTITUTION]
            first = _earliest(first, *ours)
            last_institution = _latest(last_institution, *ours)
            last_reply = _latest(last_reply, *replies)
        closed_at = None
        if complaint.status in TERMINAL:
            closed_at = (
                before.closed_at
                if before is not None and before.closed_at is not None
                else complaint.updated_at
            )
        deadlines = complaint.deadlines
        row = {
            "lapor_id": complaint.lapor_id,
            "tracking_id": complaint.tracking_id,
            "unit": unit if unit is not None else (before.unit if before else None),
            "status": complaint.status.value,
            "disposition_id": complaint.disposition_id,
            "created_at": _iso(complaint.created_at),
            "disposed_at": _iso(disposed_at),
            "first_followup_at": _iso(first),
            "last_institution_followup_at": _iso(last_institution),
            "last_reply_at": _iso(last_reply),
            "closed_at": _iso(closed_at),
            "verify_by": _iso(deadlines.verify_by),
            "first_followup_by": _iso(deadlines.first_followup_by),
            "auto_close_at": _iso(deadlines.auto_close_at),
            "updated_at": _iso(self.store.clock.now()),
        }
        columns = ", ".join(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "lapor_id")
        self.store.db.execute(
            f"INSERT INTO sla_facts ({columns}) VALUES ({', '.join('?' * len(row))}) "  # noqa: S608 (our columns)
            f"ON CONFLICT (lapor_id) DO UPDATE SET {updates}",
            list(row.values()),
        )

    def set_recorded(
        self, lapor_id: int, *, state: str | None = None, disagreement: str | None = None
    ) -> None:
        if state is not None:
            self.store.db.execute(
                "UPDATE sla_facts SET recorded_state = ? WHERE lapor_id = ?", [state, lapor_id]
            )
        if disagreement is not None:
            self.store.db.execute(
                "UPDATE sla_facts SET disagreement = ? WHERE lapor_id = ?", [disagreement, lapor_id]
            )


# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """A complaint's current stage and when it is due."""

    stage: Stage
    due: date
    source: Literal["lapor", "computed"]
    #: The connector's own count where LAPOR! sent the due date (``None`` where it could not count).
    computed: date | None
    lapor: date | None

    @property
    def disagrees(self) -> bool:
        """LAPOR!'s date and the connector's count differ by more than one day."""
        return (
            self.lapor is not None
            and self.computed is not None
            and abs((self.lapor - self.computed).days) > 1
        )


def deadline(facts: Facts, calendar: WorkCalendar) -> Deadline | None:
    """The current stage of an open complaint and its due date (``None`` once it is closed)."""
    if not facts.is_open:
        return None
    unit = facts.unit

    def local(moment: datetime | None) -> date | None:
        return None if moment is None else calendar.local_date(moment, unit)

    ceiling = calendar.local_date(facts.created_at, unit) + timedelta(days=CEILING_CALENDAR_DAYS)
    stage: Stage
    computed: date | None
    lapor: date | None
    has_followup = (
        facts.first_followup_at is not None or facts.status is m.ComplaintStatus.IN_PROCESS
    )
    if facts.status is m.ComplaintStatus.UNVERIFIED:
        stage = "verify"
        computed = calendar.due(facts.created_at, VERIFY_DAYS, unit)
        lapor = local(facts.verify_by)
    elif not has_followup:
        stage = "first_followup"
        computed = calendar.due(facts.disposed_at or facts.created_at, FIRST_FOLLOWUP_DAYS, unit)
        lapor = local(facts.first_followup_by)
    elif (
        facts.last_reply_at is not None
        and facts.last_institution_followup_at is not None
        and facts.last_reply_at >= facts.last_institution_followup_at  # a reply answers a follow-up
    ):
        # The reporter or an admin answered the last follow-up: no automatic closure; the
        # institution owes an answer, and the legal ceiling is what binds.
        return Deadline("ceiling", ceiling, "computed", ceiling, None)
    else:
        stage = "auto_close"
        last = facts.last_institution_followup_at
        computed = None if last is None else calendar.due(last, AUTO_CLOSE_DAYS, unit)
        lapor = local(facts.auto_close_at)
        if computed is None and lapor is None:
            return Deadline("ceiling", ceiling, "computed", ceiling, None)
    due = lapor if lapor is not None else computed
    assert due is not None
    if due > ceiling:
        return Deadline("ceiling", ceiling, "computed", ceiling, None)
    return Deadline(stage, due, "lapor" if lapor is not None else "computed", computed, lapor)


@dataclass(frozen=True)
class SlaRow:
    """One open complaint's SLA, as ``lapor-connector sla`` lists it."""

    tracking_id: str | None
    lapor_id: int
    agency_id: str | None
    unit: str | None
    stage: Stage
    due: date
    due_source: str
    working_days_left: int
    state: State
    computed_due: date | None = None

    def as_json(self) -> dict[str, Any]:
        """Exactly the documented keys (docs/sla.md)."""
        return {
            "tracking_id": self.tracking_id,
            "lapor_id": self.lapor_id,
            "agency_id": self.agency_id,
            "unit": self.unit,
            "stage": self.stage,
            "due": self.due.isoformat(),
            "due_source": self.due_source,
            "working_days_left": self.working_days_left,
            "state": self.state,
        }


def assess(
    facts: Facts, calendar: WorkCalendar, now: datetime, at_risk_days: int, agency_id: str | None
) -> SlaRow | None:
    """The SLA row of one complaint at ``now`` (``None`` once it is closed)."""
    found = deadline(facts, calendar)
    if found is None:
        return None
    today = calendar.local_date(now, facts.unit)
    left = calendar.count(today, found.due, facts.unit)
    state: State
    if today > found.due:
        state = "overdue"
    elif left <= at_risk_days:
        state = "at_risk"
    else:
        state = "on_time"
    return SlaRow(
        tracking_id=facts.tracking_id,
        lapor_id=facts.lapor_id,
        agency_id=agency_id,
        unit=facts.unit,
        stage=found.stage,
        due=found.due,
        due_source=found.source,
        working_days_left=left,
        state=state,
        computed_due=found.computed if found.disagrees else None,
    )


def _agency_ids(
    store: StateStore, lapor_ids: Sequence[int] | None = None
) -> dict[int, tuple[str | None, bool]]:
    """LAPOR! id -> (agency id, disposed away) of these complaints' links (all: None)."""
    query = "SELECT lapor_id, agency_id, disposed_away FROM links WHERE lapor_id IS NOT NULL"
    if lapor_ids is None:
        return {row[0]: (row[1], bool(row[2])) for row in store.db.execute(query)}
    return {
        r["lapor_id"]: (r["agency_id"], bool(r["disposed_away"]))
        for r in _rows_for(store, query, lapor_ids)
    }


def open_rows(
    store: StateStore,
    calendar: WorkCalendar,
    now: datetime,
    at_risk_days: int,
    *,
    unit: str | None = None,
    lapor_ids: Iterable[int] | None = None,
) -> list[SlaRow]:
    """Every open linked complaint still disposed to the agency, sorted by due date."""
    wanted = None if lapor_ids is None else list(lapor_ids)
    links = _agency_ids(store, wanted)
    rows = []
    for facts in SlaFacts(store).all(wanted):
        agency_id, disposed_away = links.get(facts.lapor_id, (None, True))
        if disposed_away or (unit is not None and facts.unit != unit):
            continue
        row = assess(facts, calendar, now, at_risk_days, agency_id)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: (r.due, r.working_days_left, r.tracking_id or "", r.lapor_id))
    return rows


# --- the recap per unit and month -----------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """The monthly recap of one unit, in the shape agencies report it."""

    unit: str | None
    month: str
    received: int
    resolved: int
    closed_other: int
    open: int
    overdue: int
    median_days_to_first_followup: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "month": self.month,
            "received": self.received,
            "resolved": self.resolved,
            "closed_other": self.closed_other,
            "open": self.open,
            "overdue": self.overdue,
            "median_days_to_first_followup": self.median_days_to_first_followup,
        }


def summary(
    store: StateStore, calendar: WorkCalendar, now: datetime, at_risk_days: int
) -> list[SummaryRow]:
    """Complaints received per unit and month (of submission, in the unit's zone): resolved
    (Selesai), closed otherwise (archived, rejected), open, overdue now, and the median working
    days from disposition to the institution's first follow-up."""
    links = _agency_ids(store)
    groups: dict[tuple[str, str], list[Facts]] = {}
    for facts in SlaFacts(store).all():
        month = calendar.local_date(facts.created_at, facts.unit).strftime("%Y-%m")
        groups.setdefault((facts.unit or "", month), []).append(facts)
    result = []
    for (unit, month), members in sorted(groups.items()):
        overdue = 0
        for facts in members:
            agency_id, away = links.get(facts.lapor_id, (None, True))
            row = None if away else assess(facts, calendar, now, at_risk_days, agency_id)
            overdue += row is not None and row.state == "overdue"
        days = [
            calendar.count(
                calendar.local_date(f.disposed_at or f.created_at, f.unit),
                calendar.local_date(f.first_followup_at, f.unit),
                f.unit,
            )
            for f in members
            if f.first_followup_at is not None
        ]
        result.append(
            SummaryRow(
                unit=unit or None,
                month=month,
                received=len(members),
                resolved=sum(f.status is m.ComplaintStatus.DONE for f in members),
                closed_other=sum(
                    f.status in (m.ComplaintStatus.ARCHIVED, m.ComplaintStatus.REJECTED)
                    for f in members
                ),
                open=sum(f.is_open for f in members),
                overdue=overdue,
                median_days_to_first_followup=(float(statistics.median(days)) if days else None),
            )
        )
    return result


# --- transitions, recorded by the daemon -----------------------------------------------------


def _state_key(row: SlaRow) -> str:
    return f"{row.stage}:{row.state}:{row.due.isoformat()}"


#: Complaints looked at together by a review (memory stays flat at any number of complaints).
_CHUNK = 500


def _chunks(store: StateStore, lapor_ids: list[int] | None) -> Iterator[list[Facts]]:
    """The facts of these complaints (all: None), a chunk at a time, by LAPOR! id."""
    if lapor_ids is not None:
        for first in range(0, len(lapor_ids), _CHUNK):
            yield SlaFacts(store).all(lapor_ids[first : first + _CHUNK])
        return
    last = -1
    while True:
        rows = list(store.db.query(
            "SELECT * FROM sla_facts WHERE lapor_id > ? ORDER BY lapor_id LIMIT ?", [last, _CHUNK]
        ))  # fmt: skip
        if not rows:
            return
        yield [_facts(r) for r in rows]
        last = rows[-1]["lapor_id"]


def review(sync: Any, at_risk_days: int, changed: Iterable[int] = ()) -> list[SlaRow]:
    """Record SLA transitions once each: a complaint becoming at risk or overdue is an audit
    entry (``sla_at_risk`` / ``sla_overdue``) and a log event; a due date LAPOR! and the
    connector's count disagree on is logged once. Looks at the complaints in ``changed`` and,
    at most every ``FULL_REVIEW_EVERY``, at every open one, a chunk at a time (a commit only
    for a chunk where something moved). Returns the rows that moved."""
    store: StateStore = sync.store
    now = sync.clock.now()
    pushing = bool(getattr(sync, "sla_push_enabled", False))
    if pushing:
        sync.drain("sla")  # pushes a crash or a failure left unfinished
    last = store.cached(_REVIEW_CACHE)
    full = last is None or now - last[1] >= FULL_REVIEW_EVERY
    ids = None if full else sorted(set(changed))
    if ids == []:
        return []
    calendar: WorkCalendar = sync.mappings.calendar
    moved: list[SlaRow] = []
    pushes: list[tuple[str, m.SlaState | None]] = []
    for chunk in _chunks(store, ids):
        links = _agency_ids(store, [f.lapor_id for f in chunk])
        steps: list[Callable[[SlaFacts], None]] = []
        for facts in chunk:
            agency_id, away = links.get(facts.lapor_id, (None, True))
            row = None if away else assess(facts, calendar, now, at_risk_days, agency_id)
            if row is None:  # closed or disposed away: no stage any more
                if facts.recorded_state not in (None, ""):
                    steps.append(partial(_set, facts.lapor_id, state=""))
                    if agency_id:
                        pushes.append((agency_id, None))
                continue
            steps += _transition(sync, facts, row, moved, pushes)
        if steps:
            with store.transaction():
                keeper = SlaFacts(store)
                for step in steps:
                    step(keeper)
    if full:
        with store.transaction():
            store.cache(_REVIEW_CACHE, {"at": now.isoformat()})
    if pushing:
        for agency_id, value in pushes:  # each its own intent, committed before it is sent
            sync.push_sla_state(agency_id, value)
    return moved


def _set(lapor_id: int, keeper: SlaFacts, **values: str) -> None:
    keeper.set_recorded(lapor_id, **values)


def _transition(
    sync: Any, facts: Facts, row: SlaRow, moved: list[SlaRow],
    pushes: list[tuple[str, m.SlaState | None]],
) -> list[Callable[[SlaFacts], None]]:  # fmt: skip
    """What one open complaint's review writes (nothing when nothing moved)."""
    steps: list[Callable[[SlaFacts], None]] = []
    if row.computed_due is not None:
        note = f"{row.stage}:{row.due.isoformat()}:{row.computed_due.isoformat()}"
        if note != facts.disagreement:
            log.warning("sla_due_disagrees", lapor_id=row.lapor_id, stage=row.stage,
                        lapor_due=row.due.isoformat(), computed_due=row.computed_due.isoformat())  # fmt: skip
            steps.append(partial(_set, row.lapor_id, disagreement=note))
    key = _state_key(row)
    if key == facts.recorded_state:
        return steps
    before = (facts.recorded_state or "::").split(":")[:2]
    if row.state != "on_time" and before != [row.stage, row.state]:

        def audit(_: SlaFacts) -> None:
            sync.record(flow="sla", direction="local", action=f"sla_{row.state}", outcome="ok",
                        lapor_id=row.lapor_id, tracking_id=row.tracking_id, agency_id=row.agency_id,
                        changed_fields=(row.stage,))  # fmt: skip

        steps.append(audit)
        log.info(f"sla_{row.state}", lapor_id=row.lapor_id, stage=row.stage,
                 due=row.due.isoformat(), working_days_left=row.working_days_left)  # fmt: skip
    steps.append(partial(_set, row.lapor_id, state=key))
    moved.append(row)
    if row.agency_id:
        pushes.append((row.agency_id, m.SlaState(
            stage=m.SlaStage(row.stage), due=row.due,
            working_days_left=row.working_days_left, state=m.SlaStanding(row.state),
        )))  # fmt: skip
    return steps
