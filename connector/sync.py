"""The sync context: both sides, the mappings, the state, and how each kind of remote write runs.

Every remote write goes through the outbox: a flow records the intent (with an idempotency key
derived from the ids involved, so the same change always gets the same key), then ``execute``
sends it. Each operation has an executor that rebuilds the write from the stored payload: how
to send it, how to look it up if it may already have happened, and what to record when it is
done (link, audit entry), so a write interrupted by a crash is finished by the next run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from connector import errors
from connector import models as m
from connector.adapters import AgencyAdapter, make_adapter
from connector.audit import AuditLog
from connector.clock import Clock
from connector.config import (
    AttachmentSettings,
    AuditSettings,
    OutboxSettings,
    Settings,
    slots_for,
)
from connector.installation import check_installation
from connector.lapor.client import MAX_FILE_BYTES, LaporClient, content_fingerprint
from connector.lapor.transport import pacer_key
from connector.links import Links
from connector.logs import get_logger
from connector.mappings import Mappings, load_mappings
from connector.master_data import AGENCY_CATEGORIES, LAPOR_CATEGORIES, MasterData
from connector.outbox import Outbox, OutboxItem, Outcome, Target
from connector.privacy import redacted_problems
from connector.progress import Progress
from connector.state import StateStore
from connector.writer import writer_lock

log = get_logger("sync")


@dataclass
class Plan:
    """What a dry run would have done."""

    writes: list[tuple[str, str, str]] = field(default_factory=list)  #: (flow, operation, subject)
    #: Records that would be quarantined: (flow, record id, first problem).
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class Sync:
    """Everything a flow needs, for one run."""

    lapor: LaporClient
    agency: AgencyAdapter
    mappings: Mappings
    store: StateStore
    clock: Clock
    institution_id: int
    intake_user_id: int | None = None
    actor: str = "daemon"
    dry_run: bool = False
    retry: OutboxSettings = field(default_factory=OutboxSettings)
    plan: Plan = field(default_factory=Plan)
    audit_settings: AuditSettings = field(default_factory=AuditSettings)
    master_data_refresh: timedelta = timedelta(hours=24)
    slots: int = 1
    #: Working days before a due date from which a complaint counts as at risk (``sla``).
    sla_at_risk_days: int = 2
    #: LAPOR! requests one inbound run may make (``sync.requests_per_run``; None: no limit):
    #: the rest waits for the next run, the most urgent first.
    requests_per_run: int | None = None
    #: Where long work reports how far it is (``connector.progress``; None: nobody asks).
    progress: Progress | None = None
    #: Whether ``push_sla_state`` sends anything (``agency.push_sla_state``); once the agency
    #: refused the field in this run, ``sla_state_refused`` stops the rest of the run's pushes.
    sla_push_enabled: bool = False
    sla_state_refused: bool = False
    attachments: AttachmentSettings = field(default_factory=AttachmentSettings)

    def __post_init__(self) -> None:
        self.audit = AuditLog.configured(self.store, self.audit_settings)
        self.outbox = Outbox(
            self.store,
            max_attempts=self.retry.max_attempts,
            first_delay=timedelta(seconds=self.retry.first_delay_seconds),
            max_delay=timedelta(seconds=self.retry.max_delay_seconds),
        )
        self.links = Links(self.store)
        self._pool: ThreadPoolExecutor | None = None
        self.master_data = MasterData(
            self.store,
            self.clock,
            lapor_categories=self.lapor.categories,
            agency_categories=self.agency.categories,
            refresh=self.master_data_refresh,
        )

    def load_trees(self) -> None:
        """Both category trees (cached in the state), so mapping rules on parents cover their
        children; a category the cached tree does not know has its tree fetched again."""
        self.mappings.with_trees(
            self.master_data.lapor_categories(), self.master_data.agency_categories()
        )

        def refresh(side: str) -> bool:
            name = LAPOR_CATEGORIES if side == "lapor" else AGENCY_CATEGORIES
            if not self.master_data.refresh_for_unknown(name):
                return False
            self.mappings.with_trees(
                self.master_data.lapor_categories(), self.master_data.agency_categories()
            )
            return True

        self.mappings.on_unknown_category = refresh

    def push_sla_state(self, agency_id: str, sla_state: m.SlaState | None) -> Outcome | None:
        """Send an agency complaint's ``sla_state`` once per distinct state, through the outbox
        (``connector.flows.sla_out.push_sla_state``); None when nothing was sent."""
        from connector.flows.sla_out import push_sla_state

        return push_sla_state(self, agency_id, sla_state)

    # --- running remote work side by side ---------------------------------------------------

    @property
    def batch_size(self) -> int:
        """Complaints handled together (their reads side by side, their writes in one commit)."""
        return max(16, 4 * self.slots)

    def parallel(self, work: Callable[[W], R], items: Sequence[W]) -> list[R | Exception]:
        """``work`` on every item, up to ``slots`` at once; each result or the error it raised,
        in the items' order. Only remote calls run here: the state is the caller's thread's."""
        if self.slots <= 1 or len(items) <= 1:
            return [_outcome_of(work, item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="sync")
        return list(self._pool.map(lambda item: _outcome_of(work, item), items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # --- recording -------------------------------------------------------------------------

    def record(
        self, *, flow: str, direction: str, action: str, outcome: str, **ids_and_fields: Any
    ) -> None:
        """Append an audit entry (inside the caller's transaction)."""
        self.audit.append(
            actor=self.actor,
            flow=flow,
            direction=direction,  # type: ignore[arg-type]
            action=action,
            outcome=outcome,
            mapping_version=self.mappings.version,
            **ids_and_fields,
        )

    def quarantine(
        self, flow: str, record_id: str, error: errors.ConnectorError, raw: object, **ids: Any
    ) -> None:
        """Set a record aside with the reason, and say so in the audit log."""
        problems = getattr(error, "problems", ()) or (errors.FieldProblem("(record)", str(error)),)
        if self.dry_run:
            self.plan.quarantined.append((flow, record_id, str(problems[0])))
            return
        with self.store.transaction():
            self.store.quarantine(
                m.InvalidRecord(source=flow, record_id=record_id, problems=tuple(problems), raw=raw)
            )
            self.record(flow=flow, direction="local", action="quarantine", outcome="quarantined",
                        error_code=type(error).__name__, **ids)  # fmt: skip
        log.warning(
            "record_quarantined", flow=flow, record_id=record_id, reason=type(error).__name__
        )

    def quarantine_page(self, flow: str, invalid: Iterable[m.InvalidRecord], what: str) -> int:
        """Quarantine a page's invalid records (the rest of the page goes on); return how many."""
        count = 0
        for bad in invalid:
            self.quarantine(
                flow,
                bad.record_id or "",  # no id: the store keys the entry by the record's hash
                errors.MalformedRecord(f"invalid {what}", bad.problems),
                bad.raw,
            )
            count += 1
        return count

    def advance(self, flow: str, to: datetime | None) -> None:
        """Move a flow's cursor once the page it covers is committed (never in a dry run)."""
        if to is not None and not self.dry_run:
            with self.store.transaction():
                self.store.set_watermark(flow, to)

    # --- writes ----------------------------------------------------------------------------

    def write(self, *, key: str, flow: str, target: Target, operation: str, subject: str,
              payload: dict[str, Any], lookup: dict[str, Any]) -> Outcome | None:  # fmt: skip
        """Record the intent, then execute it (in a dry run: only plan it)."""
        if self.dry_run:
            if self.outbox.get(key) is None:
                self.plan.writes.append((flow, operation, subject))
            return None
        with self.store.transaction():
            item = self.outbox.enqueue(key=key, flow=flow, target=target, operation=operation,
                                       subject=subject, payload=payload, lookup=lookup)  # fmt: skip
        if item.state in ("done", "dead", "acknowledged"):
            return None
        return self.execute(item)

    def write_many(self, intents: Sequence[dict[str, Any]]) -> list[Outcome | None]:
        """Record many intents in one transaction, send them side by side, record the results
        in one more: two commits for a page's writes, and still every intent is durable before
        its request is sent. A write found in flight (a crash) takes the one-by-one path (its
        lookup comes first). Returns what ``write`` would, per intent, in order."""
        if self.dry_run or len(intents) <= 1:
            return [self.write(**intent) for intent in intents]
        outcomes: list[Outcome | None] = [None] * len(intents)
        batch: list[tuple[int, OutboxItem, Executor]] = []
        later: list[tuple[int, OutboxItem]] = []  # in flight after a crash: lookup first
        with self.store.transaction():
            for index, intent in enumerate(intents):
                item = self.outbox.enqueue(**intent)
                if item.state in ("pending", "failed"):
                    batch.append((index, item, EXECUTORS[item.operation](self, item)))
                    self.outbox.begin(item)
                elif item.state == "in_flight":
                    later.append((index, item))
        results = self.parallel(lambda job: job[2][0](), batch)
        stop: BaseException | None = None
        with self.store.transaction():
            for (index, item, (_, _, on_done)), result in zip(batch, results, strict=True):
                outcomes[index] = self.outbox.settle(item, result, on_done=self._audited(on_done))
                if isinstance(result, (errors.FatalError, errors.Stopping)) and stop is None:
                    stop = result
                elif isinstance(result, Exception) and not isinstance(
                    result, errors.ConnectorError
                ):
                    stop = stop or result
        if stop is not None:
            raise stop
        for index, _, _ in batch:
            outcome = outcomes[index]
            if outcome is not None and outcome.state != "done":
                self._after_failure(outcome)
        for index, item in later:
            outcomes[index] = self.execute(item)
        return outcomes

    def _audited(
        self, on_done: Callable[[dict[str, Any]], None]
    ) -> Callable[[OutboxItem, dict[str, Any]], None]:
        """An executor's ``on_done`` and the write's audit entry, in the result's transaction."""

        def done(finished: OutboxItem, result: dict[str, Any]) -> None:
            on_done(result)
            self.record(flow=finished.flow, direction=_direction(finished), action=finished.operation,
                        outcome="ok", **_ids(finished, result))  # fmt: skip

        return done

    def execute(self, item: OutboxItem) -> Outcome:
        """Run one outbox item through its operation's executor, and audit the outcome."""
        send, lookup, on_done = EXECUTORS[item.operation](self, item)
        outcome = self.outbox.attempt(item, send, lookup, on_done=self._audited(on_done))
        if outcome.state != "done":
            self._after_failure(outcome)
        return outcome

    def _after_failure(self, outcome: Outcome) -> None:
        """React to a write that did not get done, as contract section 6 says for each failure."""
        item, error = outcome.item, outcome.error
        audit_outcome = {"in_flight": "ambiguous", "failed": "failed", "dead": "dead"}.get(
            outcome.state, "failed"
        )
        if error is None:  # still in doubt, waiting for its back-off: nothing new to record
            return
        if item.target == "lapor" and isinstance(error, errors.Conflict):
            self._resolve_conflict(item, error)
            return
        if item.target == "lapor" and isinstance(error, errors.NotDisposed):
            self._resolve_not_disposed(item, error)
            return
        if item.target == "lapor" and (
            isinstance(error, errors.RecordRejected)
            # a follow-up's file the agency could not give: the C4 was never sent
            or (item.operation == "lapor_add_followup" and isinstance(error, errors.RecordError))
        ):
            self._set_aside_rejected(item, error)
            return
        if item.operation == "agency_add_attachment" and isinstance(
            error, (errors.RecordError, errors.NotFound)
        ):
            self._set_aside_file(item, error)
            return
        with self.store.transaction():
            self.record(flow=item.flow, direction=_direction(item), action=item.operation, outcome=audit_outcome,
                        error_code=_code(error), **_ids(item, {}))  # fmt: skip
        log.warning("write_not_done", flow=item.flow, operation=item.operation, subject=item.subject,
                    state=outcome.state, error=type(error).__name__)  # fmt: skip

    def _lapor_id(self, item: OutboxItem) -> int | None:
        value = item.payload.get("complaint_id", item.lookup.get("lapor_id"))
        return value if isinstance(value, int) else None

    def _reread(self, lapor_id: int | None) -> m.Complaint | None:
        """The complaint's detail after a refusal, or None when it cannot be read now (the
        next inbound pass brings the agency to LAPOR!'s state then)."""
        if lapor_id is None:
            return None
        try:
            return self.lapor.complaint(lapor_id)
        except (errors.ReconcileError, errors.RetriableError, errors.RecordError):
            return None

    def _resolve_conflict(self, item: OutboxItem, error: errors.Conflict) -> None:
        """409: re-read the complaint, bring the agency to LAPOR!'s state, resolve the write."""
        lapor_id = self._lapor_id(item)
        detail = self._reread(lapor_id)
        expected = item.payload.get("expect_status")
        done = detail is not None and expected is not None and detail.status.value == expected
        resolution = (
            f"done: LAPOR! already shows {expected}"
            if done
            else f"not_applicable: LAPOR! refused it ({_code(error)}); the complaint is "
            f"{detail.status.value if detail else 'unknown'} there"
        )
        with self.store.transaction():
            self.outbox.resolve(item, resolution)
            self.record(flow=item.flow, direction=_direction(item), action=item.operation,
                        outcome="ok" if done else "not_applicable", error_code=_code(error),
                        **_ids(item, {}))  # fmt: skip
        log.info("write_resolved", flow=item.flow, operation=item.operation, subject=item.subject,
                 resolution=resolution.split(":")[0], error=_code(error))  # fmt: skip
        if detail is not None:
            from connector.flows.inbound import InboundReport, sync_complaint

            sync_complaint(self, detail, InboundReport(), force=True)

    def _resolve_not_disposed(self, item: OutboxItem, error: errors.NotDisposed) -> None:
        """403: confirm by the complaint's detail, then mark it re-disposed and tell the agency."""
        lapor_id = self._lapor_id(item)
        try:
            detail = self.lapor.complaint(lapor_id) if lapor_id is not None else None
        except (errors.NotDisposed, errors.NotFound):
            detail = None  # not even visible any more: it left us
        except errors.RetriableError:
            # Not confirmed either way: send it again later rather than guess.
            self.outbox.requeue(item, self.outbox.first_delay)
            return
        if detail is not None and detail.disposition_id == self.institution_id:
            # LAPOR!'s own detail says it is still ours: the 403 is not a re-disposition.
            self.outbox.requeue(item, self.outbox.first_delay)
            with self.store.transaction():
                self.record(flow=item.flow, direction=_direction(item), action=item.operation,
                            outcome="failed", error_code=_code(error), **_ids(item, {}))  # fmt: skip
            log.warning("forbidden_but_still_disposed", subject=item.subject, lapor_id=lapor_id)
            return
        with self.store.transaction():
            # Refused, so never applied: the key is freed, and the write is made afresh if
            # LAPOR! disposes the complaint back (its held follow-ups are posted then).
            self.outbox.resolve(
                item, "not_applicable: the complaint is no longer disposed to us", set_aside=True
            )
            self.record(flow=item.flow, direction=_direction(item), action=item.operation,
                        outcome="not_applicable", error_code=_code(error), **_ids(item, {}))  # fmt: skip
        if lapor_id is None:
            return
        from connector.flows.inbound import InboundReport, mark_redisposed, sync_complaint

        if detail is not None:
            sync_complaint(self, detail, InboundReport(), force=True)
        else:
            mark_redisposed(self, lapor_id)

    def _set_aside_file(self, item: OutboxItem, error: errors.ConnectorError) -> None:
        """A LAPOR! file too big, gone (404) or refused by the agency: quarantine it with the
        reason and the fix, and free the write's key so a replay sends it afresh."""
        from connector.flows.attachments import FLOW, record_id, refusal_of_download

        p = item.payload
        lapor_id, file_id = int(p["lapor_id"]), int(p["file_id"])
        reason = refusal_of_download(error, lapor_id, file_id, self.attachments.max_bytes)
        with self.store.transaction():
            self.outbox.resolve(item, f"set aside: {_code(error)}", set_aside=True)
            self.store.quarantine(
                m.InvalidRecord(source=FLOW, record_id=record_id(lapor_id, file_id),
                                problems=reason.problems, raw={"lapor_id": lapor_id, "file_id": file_id})
            )  # fmt: skip
            self.record(flow=item.flow, direction=_direction(item), action=item.operation,
                        outcome="quarantined", error_code=_code(error), **_ids(item, {}))  # fmt: skip
        log.warning("attachment_set_aside", lapor_id=lapor_id, file_id=file_id, reason=_code(error))

    def _set_aside_rejected(self, item: OutboxItem, error: errors.RecordError) -> None:
        """400/413/422: LAPOR! refused the record; quarantine it (with the field errors) so it is
        replayed from the agency's current data after the fix, and free the write's key."""
        source, record_id = _quarantine_source(item)
        with self.store.transaction():
            self.outbox.resolve(item, f"rejected: {_code(error)}", set_aside=True)
            self.store.quarantine(
                m.InvalidRecord(source=source, record_id=record_id,
                                problems=redacted_problems(error, item.payload),
                                raw={"operation": item.operation, "write": item.id,
                                     "complaint_id": item.payload.get("agency_id", item.subject)})
            )  # fmt: skip
            self.record(flow=item.flow, direction=_direction(item), action=item.operation,
                        outcome="quarantined", error_code=_code(error), **_ids(item, {}))  # fmt: skip
        log.warning("write_rejected", flow=item.flow, operation=item.operation,
                    subject=item.subject, fields=[p.path for p in error.problems])  # fmt: skip

    def drain(self, flow: str) -> list[Outcome]:
        """Finish this flow's due writes (retries, and writes interrupted by a crash) first.

        In a dry run they are only planned (a lookup or a re-send is a remote action)."""
        due = self.outbox.due(flow=flow)
        if self.dry_run:
            self.plan.writes.extend((i.flow, f"finish {i.operation}", i.subject) for i in due)
            return []
        return [self.execute(item) for item in due]


W = TypeVar("W")
R = TypeVar("R")


def _outcome_of(work: Callable[[W], R], item: W) -> R | Exception:
    try:
        return work(item)
    except Exception as error:  # handed to the caller, who decides
        return error


def lapor_state(
    status: m.ComplaintStatus, disposition_id: int | None, is_secret: bool, is_anonymous: bool
) -> str:
    """What the agency needs to know of a LAPOR! complaint's state, as one comparable string."""
    return f"{status.value}|{disposition_id}|{int(is_secret)}|{int(is_anonymous)}"


def write_back(agency_id: str, lapor_id: int, tracking_id: str, *, flow: str) -> dict[str, Any]:
    """The outbox write that gives an agency complaint its LAPOR! ids (after it was filed)."""
    ref = m.LaporRef(
        lapor_id=lapor_id, tracking_id=tracking_id, status=m.ComplaintStatus.UNVERIFIED
    )
    return {
        "key": f"agency.link:{agency_id}",
        "flow": flow,
        "target": "agency",
        "operation": "agency_update_complaint",
        "subject": agency_id,
        "payload": {
            "agency_id": agency_id,
            "patch": {"lapor": ref.model_dump(mode="json")},
            "_fields": ["lapor"],
        },
        "lookup": {"agency_id": agency_id, "lapor_id": lapor_id, "tracking_id": tracking_id},
    }


def _code(error: BaseException) -> str:
    return getattr(error, "code", None) or type(error).__name__


def _quarantine_source(item: OutboxItem) -> tuple[str, str]:
    """Which flow's record a refused write came from, so a replay re-reads it."""
    if item.operation == "lapor_add_followup":
        return "followups_out", str(item.payload.get("agency_followup_id"))
    agency_id = item.lookup.get("agency_id", item.payload.get("agency_id", item.subject))
    return "intake_out" if item.target == "lapor" else item.flow, str(agency_id)


def _direction(item: OutboxItem) -> str:
    return "outbound" if item.target == "lapor" else "inbound"


def _ids(item: OutboxItem, result: dict[str, Any]) -> dict[str, Any]:
    ids = {
        k: v
        for k, v in {**item.lookup, **result}.items()
        if k in ("lapor_id", "tracking_id", "agency_id")
    }
    if "complaint_id" in item.payload and isinstance(item.payload["complaint_id"], int):
        ids.setdefault("lapor_id", item.payload["complaint_id"])
    ids["changed_fields"] = item.payload.get("_fields", [])
    return ids


# --- executors: how each operation is sent, looked up and recorded -----------------------------

Executor = tuple[
    Callable[[], dict[str, Any]],
    Callable[[], dict[str, Any] | None],
    Callable[[dict[str, Any]], None],
]


def _agency_create(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload
    new = m.NewAgencyComplaint.model_validate(p["complaint"])
    lapor_id, tracking_id = int(p["lapor_id"]), str(p["tracking_id"])

    def send() -> dict[str, Any]:
        created = sync.agency.create_complaint(new, idempotency_key=item.key)
        return {"agency_id": created.id, "agency_updated_at": created.updated_at.isoformat()}

    def lookup() -> dict[str, Any] | None:
        found = sync.agency.find_by_lapor_id(lapor_id)
        return (
            None
            if found is None
            else {"agency_id": found.id, "agency_updated_at": found.updated_at.isoformat()}
        )

    def on_done(result: dict[str, Any]) -> None:
        sync.links.add(origin="lapor", lapor_id=lapor_id, tracking_id=tracking_id, agency_id=result["agency_id"],
                       lapor_status=p["lapor_status"], agency_status=new.status)  # fmt: skip
        # Not yet "in step": the inbound flow marks that once the replies are in too.
        sync.links.update(
            lapor_id, lapor_state=p["lapor_state"], lapor_fields=p.get("lapor_fields")
        )
        _enqueue_files(sync, p, lapor_id, tracking_id, result["agency_id"], None, None)

    return send, lookup, on_done


def _agency_update(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload
    patch = m.AgencyComplaintPatch.model_validate(p["patch"])

    def send() -> dict[str, Any]:
        updated = sync.agency.update_complaint(p["agency_id"], patch)
        return {"agency_id": updated.id}

    def on_done(result: dict[str, Any]) -> None:
        if p.get("lapor_id") is not None:
            changes: dict[str, Any] = {  # lapor_updated_at: set by the flow once all is in
                "lapor_status": p.get("lapor_status"),
                "lapor_state": p.get("lapor_state"),
                "lapor_fields": p.get("lapor_fields"),
            }
            if patch.status is not None:
                changes["agency_status"] = patch.status
            sync.links.update(
                int(p["lapor_id"]), **{k: v for k, v in changes.items() if v is not None}
            )

    return send, lambda: None, on_done  # a PATCH sets fields: sending it again is harmless


def _agency_followup(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload
    new = m.NewAgencyFollowUp.model_validate(p["followup"])

    def send() -> dict[str, Any]:
        return {
            "agency_followup_id": sync.agency.add_followup(
                p["agency_id"], new, idempotency_key=item.key
            ).id
        }

    def on_done(result: dict[str, Any]) -> None:
        sync.links.link_followup(lapor_followup_id=int(p["lapor_followup_id"]), agency_followup_id=result["agency_followup_id"],
                                 lapor_id=int(p["lapor_id"]), agency_id=p["agency_id"], direction="inbound")  # fmt: skip
        _enqueue_files(sync, p, int(p["lapor_id"]), str(item.lookup.get("tracking_id") or p["lapor_id"]),
                       p["agency_id"], int(p["lapor_followup_id"]), result["agency_followup_id"])  # fmt: skip

    return (
        send,
        lambda: None,
        on_done,
    )  # the Idempotency-Key makes a re-send return the first result


def _enqueue_files(sync: Sync, p: dict[str, Any], lapor_id: int, tracking_id: str, agency_id: str,
                   lapor_followup_id: int | None, agency_followup_id: str | None) -> None:  # fmt: skip
    """The writes of a complaint's or a reply's LAPOR! files, committed with its own result."""
    from connector.flows.attachments import FileJob, enqueue_allowed, files_of

    jobs = [FileJob(lapor_id, tracking_id, agency_id, f, lapor_followup_id, agency_followup_id)
            for f in files_of(p.get("attachments", []))]  # fmt: skip
    enqueue_allowed(sync, jobs)


def _agency_attachment(sync: Sync, item: OutboxItem) -> Executor:
    """A LAPOR! file (C9) stored in the agency system, keyed by its file id."""
    from connector.flows.attachments import content_type

    p = item.payload
    lapor_id, file_id, name = int(p["lapor_id"]), int(p["file_id"]), str(p["file_name"])

    def send() -> dict[str, Any]:
        data = sync.lapor.download(lapor_id, file_id, max_bytes=sync.attachments.max_bytes)
        stored = sync.agency.upload_attachment(
            p["agency_id"], (name, data, content_type(name)), idempotency_key=item.key,
            followup_id=p.get("agency_followup_id"),
        )  # fmt: skip
        return {"agency_attachment_id": stored.id}

    def on_done(result: dict[str, Any]) -> None:
        sync.links.link_attachment(lapor_file_id=file_id, agency_attachment_id=result["agency_attachment_id"],
                                   lapor_id=lapor_id, agency_id=p["agency_id"],
                                   lapor_followup_id=p.get("lapor_followup_id"))  # fmt: skip
        sync.store.release("inbound", f"{lapor_id}/{file_id}")

    # The Idempotency-Key makes a re-send (download again, upload again) return the first file.
    return send, lambda: None, on_done


def _agency_file(sync: Sync, attachment: m.AgencyAttachment, owner: str) -> tuple[str, bytes, str]:
    """An agency follow-up's file, to go with its C4; a refusal names the file and the fix."""
    from connector.flows.attachments import content_type

    try:
        data = sync.agency.download_attachment(attachment, max_bytes=sync.attachments.max_bytes)
    except (errors.NotFound, errors.RecordError) as error:
        why = (
            "the agency system answered 404 for it"
            if isinstance(error, errors.NotFound)
            else f"it is over attachments.max_bytes ({sync.attachments.max_bytes} bytes) or "
            "not in the agency API"
        )
        raise errors.RecordNotSendable(
            f"agency follow-up {owner}: attachment {attachment.id} could not be fetched",
            [errors.FieldProblem(f"attachments[{attachment.id}]", f"{why}; fix or remove the file in "
                                 "the agency system, then run `lapor-connector quarantine retry`")],
            record_id=owner,
        ) from None  # fmt: skip
    ctype = attachment.content_type or content_type(attachment.file_name)
    return attachment.file_name, data, ctype


def _lapor_followup(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload
    lapor_id = int(p["complaint_id"])
    followup = m.NewFollowUp(
        complaint_id=lapor_id, content=p["content"], is_secret=bool(p["is_secret"])
    )
    attachments = [m.AgencyAttachment.model_validate(a) for a in p.get("attachments", [])]

    def send() -> dict[str, Any]:
        # The files ride with the C4 as attachment[i]: fetched from the agency at each attempt
        # (before the post, so a refused file means the follow-up was never sent).
        files = tuple(_agency_file(sync, a, str(p["agency_followup_id"])) for a in attachments)
        return {
            "lapor_followup_id": sync.lapor.add_followup(
                followup.model_copy(update={"files": files})
            ).id
        }

    def lookup() -> dict[str, Any] | None:
        # Only follow-ups not yet linked to another agency follow-up can be this one.
        taken = sync.links.linked_lapor_followups(lapor_id)
        for candidate in sync.lapor.followups(lapor_id):
            if (isinstance(candidate, m.FollowUp) and candidate.author is m.Author.INSTITUTION
                    and candidate.id not in taken and content_fingerprint(candidate.content) == item.lookup["fingerprint"]):  # fmt: skip
                return {"lapor_followup_id": candidate.id}
        return None

    def on_done(result: dict[str, Any]) -> None:
        sync.links.link_followup(lapor_followup_id=int(result["lapor_followup_id"]), agency_followup_id=p["agency_followup_id"],
                                 lapor_id=lapor_id, agency_id=p["agency_id"], direction="outbound")  # fmt: skip

    return send, lookup, on_done


def _lapor_process(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload

    def send() -> dict[str, Any]:
        sync.lapor.process(int(p["complaint_id"]), p["action"], p.get("note"))
        return {}

    def lookup() -> dict[str, Any] | None:
        # A status action that already happened shows in the complaint's status.
        status = sync.lapor.complaint(int(p["complaint_id"])).status
        return {} if status.value == p["expect_status"] else None

    return send, lookup, lambda result: None


def _lapor_create(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload
    new = m.NewComplaint.model_validate(p["complaint"])

    attachments = [m.AgencyAttachment.model_validate(a) for a in p.get("attachments", [])]

    def send() -> dict[str, Any]:
        # Files go up first (C8), then the complaint that names them (C7). An upload repeated after
        # a crash leaves an unattached file on LAPOR!, never a second complaint.
        files = [
            (
                a.file_name,
                sync.agency.download_attachment(a, max_bytes=MAX_FILE_BYTES),
                a.content_type or "application/octet-stream",
            )
            for a in attachments
        ]
        uploaded = sync.lapor.upload(files) if files else []
        complaint = new.model_copy(update={"attachment_ids": tuple(f.id for f in uploaded)})
        created = sync.lapor.create_complaint(complaint)
        return {"lapor_id": created.lapor_id, "tracking_id": created.tracking_id}

    def lookup() -> dict[str, Any] | None:
        found = sync.lapor.find_created(new.external_ref)
        return (
            None
            if found is None
            else {"lapor_id": found.lapor_id, "tracking_id": found.tracking_id}
        )

    def on_done(result: dict[str, Any]) -> None:
        from connector.flows.lapor_changes import filed_fields

        lapor_id = int(result["lapor_id"])
        sync.links.add(origin="agency", lapor_id=lapor_id, tracking_id=str(result["tracking_id"]),
                       agency_id=new.external_ref, lapor_status=m.ComplaintStatus.UNVERIFIED.value,
                       agency_status=p.get("agency_status"))  # fmt: skip
        # The agency itself holds these facts, so the first inbound read must not echo them back.
        state = lapor_state(
            m.ComplaintStatus.UNVERIFIED, new.disposition_id, new.is_secret, new.is_anonymous
        )
        sync.links.update(lapor_id, lapor_state=state, lapor_fields=filed_fields(new))
        # The write-back of the ids is an intent committed with the create's result: a kill
        # right after this cannot lose it (the next run's drain sends it).
        sync.outbox.enqueue(
            **write_back(new.external_ref, lapor_id, str(result["tracking_id"]), flow=item.flow)
        )

    return send, lookup, on_done


def _lapor_reject(sync: Sync, item: OutboxItem) -> Executor:
    p = item.payload
    lapor_id, target = int(p["complaint_id"]), int(p["target"])

    def send() -> dict[str, Any]:
        sync.lapor.reject(lapor_id, target, p["description"])
        return {}

    def lookup() -> dict[str, Any] | None:
        # Forwarded already if LAPOR! shows the target holding it (a 403 also means it left us).
        try:
            return {} if sync.lapor.complaint(lapor_id).disposition_id == target else None
        except errors.NotDisposed:
            return {}

    return send, lookup, lambda result: sync.links.mark_disposed_away(lapor_id)


EXECUTORS: dict[str, Callable[[Sync, OutboxItem], Executor]] = {
    "agency_create_complaint": _agency_create,
    "agency_update_complaint": _agency_update,
    "agency_add_followup": _agency_followup,
    "lapor_add_followup": _lapor_followup,
    "lapor_process": _lapor_process,
    "lapor_create_complaint": _lapor_create,
    "lapor_reject": _lapor_reject,
    "agency_add_attachment": _agency_attachment,
}


def keep_pacer(store: StateStore, lapor: LaporClient) -> None:
    """The token's pacer takes the last minute an earlier process left in the state (once per
    process), and keeps its own there with every commit, so a restart does not burst."""
    pacer, name = lapor.transport.limiter, pacer_key(lapor.settings)
    if not pacer.restored:
        pacer.restore(store.pacer_state(name))

    def save() -> None:
        if pacer.dirty:
            store.save_pacer_state(name, pacer.snapshot())

    store.before_commit.append(save)


@contextmanager
def open_sync(
    settings: Settings,
    clock: Clock,
    *,
    actor: str = "daemon",
    dry_run: bool = False,
    writer: bool = True,
    guard: bool | None = None,
) -> Iterator[Sync]:
    """A ready ``Sync`` for the configured systems (closed afterwards).

    With ``writer`` (the default, unless a dry run) it holds the state's writer lock: a second
    writer is refused with ``WriterBusy``. The daemon takes the lock once for its lifetime and
    opens its runs with ``writer=False``; read-only callers do too.

    With ``guard`` (the default for writers) the state is checked first: readable, this
    installation's, and not a lost one (``connector.installation``).
    """
    if settings.agency is None:
        raise errors.ConfigError(
            [
                "agency: required for the two-way sync; add an agency section (see docs/configuration.md)"
            ]
        )
    mappings = load_mappings(settings.mappings.path)
    with (
        writer_lock(settings.state.path, actor) if writer and not dry_run else nullcontext(),
        StateStore(settings.state.path, clock) as store,
        store.rehearsal() if dry_run else nullcontext(),
        LaporClient(settings.lapor, clock) as lapor,
    ):
        agency = make_adapter(settings.agency, clock)
        sync: Sync | None = None
        try:
            if guard if guard is not None else (writer and not dry_run):
                check_installation(store, settings, agency)
            sync = Sync(lapor=lapor, agency=agency, mappings=mappings, store=store, clock=clock,
                        institution_id=settings.lapor.institution_id, intake_user_id=settings.lapor.intake_user_id,
                        actor=actor, dry_run=dry_run, retry=settings.outbox, audit_settings=settings.audit,
                        master_data_refresh=timedelta(hours=settings.lapor.master_data_refresh_hours),
                        slots=slots_for(settings), sla_at_risk_days=settings.sla.at_risk_days,
                        requests_per_run=settings.sync.requests_per_run,
                        sla_push_enabled=settings.agency.push_sla_state, attachments=settings.attachments)  # fmt: skip
            lapor.status_aliases = mappings.status_aliases
            keep_pacer(store, lapor)
            sync.load_trees()
            yield sync
            if not dry_run:
                # Every run ends with a signed checkpoint in the state and the anchor file, so a
                # cut tail or a recomputed chain shows at the next `log verify`.
                sync.audit.checkpoint()
                store.checkpoint_wal()  # a settled write's old payload leaves the WAL too
        finally:
            if sync is not None:
                sync.close()
            agency.close()
