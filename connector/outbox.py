"""The outbox: every remote write is an intent committed before it is sent, and a result after.

A write goes through these states::

    pending ──send──> in_flight ──answer──> done
       ^                 │  └──unknown outcome (timeout, dropped connection)──> stays in_flight
       └── failed <──────┘ retriable failure, with a backoff; past the budget ──> dead

``in_flight`` is committed *before* the request leaves, so after a crash (or an ambiguous
answer) the next attempt knows the write may have happened and looks it up remotely before
sending anything again. That is what keeps a retry from creating a second complaint or a
second follow-up on a service that deduplicates neither. An operator can ``retry`` a dead write
or ``acknowledge`` it (give up on it, on the record).

A write's payload holds what it needs to be sent (a reporter's identity, for a create) only
until it is settled: the transaction that records it done or acknowledged keeps a redacted
form (``connector.privacy``), and no error text stored here carries the reporter's values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

from connector import errors
from connector.privacy import redacted_payload, redacted_text
from connector.state import StateStore

T = TypeVar("T")
Target = Literal["lapor", "agency"]
State = Literal["pending", "in_flight", "done", "failed", "dead", "acknowledged"]


@dataclass(frozen=True)
class OutboxItem:
    """One intended remote write."""

    id: int
    key: str
    flow: str
    target: str
    operation: str
    subject: str
    payload: dict[str, Any]
    lookup: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_error_code: str | None
    result: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What happened to one write attempt."""

    item: OutboxItem
    state: str
    result: dict[str, Any] | None = None
    error: errors.ConnectorError | None = None
    found_by_lookup: bool = False


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _row_to_item(row: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        key=row["idempotency_key"],
        flow=row["flow"],
        target=row["target"],
        operation=row["operation"],
        subject=row["subject"],
        payload=json.loads(row["payload"]),
        lookup=json.loads(row["lookup"]),
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=datetime.fromisoformat(row["next_attempt_at"])
        if row["next_attempt_at"]
        else None,
        last_error=row["last_error"],
        last_error_code=row["last_error_code"],
        result=json.loads(row["result"]) if row["result"] else None,
        created_at=datetime.fromisoformat(row["created_at"]),
    )


def _kept(payload: dict[str, Any]) -> str:
    """A settled write's payload, as stored: redacted of the reporter."""
    return json.dumps(redacted_payload(payload), sort_keys=True, default=str)


class Outbox:
    """Intended remote writes in the state file, with a bounded retry budget."""

    def __init__(
        self,
        store: StateStore,
        *,
        max_attempts: int = 8,
        first_delay: timedelta = timedelta(minutes=1),
        max_delay: timedelta = timedelta(hours=6),
    ) -> None:
        self.store = store
        self.clock = store.clock
        self.max_attempts = max_attempts
        self.first_delay = first_delay
        self.max_delay = max_delay

    # --- recording intents ---------------------------------------------------------------

    def enqueue(
        self,
        *,
        key: str,
        flow: str,
        target: Target,
        operation: str,
        subject: str,
        payload: dict[str, Any],
        lookup: dict[str, Any],
    ) -> OutboxItem:
        """Record the intent to write (once per key: enqueuing the same key again is a no-op)."""
        now = _iso(self.clock.now())
        self.store.db.execute(
            """
            INSERT INTO outbox (idempotency_key, flow, target, operation, subject, payload, lookup,
                                state, created_at, updated_at, next_attempt_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)
            ON CONFLICT (idempotency_key) DO NOTHING
            """,
            [key, flow, target, operation, subject, json.dumps(payload, sort_keys=True, default=str),
             json.dumps(lookup, sort_keys=True, default=str), now, now, now],
        )  # fmt: skip
        item = self.get(key)
        assert item is not None
        return item

    def get(self, key: str) -> OutboxItem | None:
        """The write with this idempotency key, if recorded."""
        rows = list(self.store.db.query("SELECT * FROM outbox WHERE idempotency_key = ?", [key]))
        return _row_to_item(rows[0]) if rows else None

    def due(self, *, flow: str | None = None, limit: int | None = None) -> list[OutboxItem]:
        """Writes to attempt now: pending or failed ones whose time has come, and in-flight ones.

        In-flight writes come first, whatever their back-off: they were interrupted (a crash,
        an unknown outcome) and are looked up at the start of every run (a lookup is a read).
        Only a re-send waits for the back-off (see ``attempt``).
        """
        sql = """
            SELECT * FROM outbox
            WHERE (state = 'in_flight' OR (state IN ('pending', 'failed') AND next_attempt_at <= ?))
        """
        params: list[Any] = [_iso(self.clock.now())]
        if flow is not None:
            sql += " AND flow = ?"
            params.append(flow)
        sql += " ORDER BY state != 'in_flight', id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row_to_item(r) for r in self.store.db.query(sql, params)]

    def items(self, state: str | None = None, *, flow: str | None = None) -> Iterator[OutboxItem]:
        """Writes in a state (all when None), oldest first."""
        clauses, params = [], []
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        if flow is not None:
            clauses.append("flow = ?")
            params.append(flow)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM outbox {where} ORDER BY id"  # noqa: S608 (fixed clauses, values bound)
        for row in self.store.db.query(sql, params):
            yield _row_to_item(row)

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of writes per (flow, state)."""
        rows = self.store.db.execute(
            "SELECT flow, state, count(*) FROM outbox GROUP BY flow, state"
        )
        return {(flow, state): count for flow, state, count in rows.fetchall()}

    # --- attempting ----------------------------------------------------------------------

    def attempt(
        self,
        item: OutboxItem,
        send: Callable[[], dict[str, Any]],
        lookup: Callable[[], dict[str, Any] | None],
        *,
        on_done: Callable[[OutboxItem, dict[str, Any]], None] | None = None,
    ) -> Outcome:
        """Try one write: look it up first if it may have happened, else send it.

        ``send`` performs the remote write and returns its result; ``lookup`` finds a write that
        may already have been applied (None when it was not). ``on_done`` runs in the same
        transaction that records the result, so a state change and its audit entry commit
        together with the outbox. Errors are recorded and returned, never raised, except
        ``FatalError`` (syncing must stop) which is recorded and re-raised.
        """
        if item.state == "in_flight":
            try:
                found = lookup()
            except (errors.FatalError, errors.Stopping):
                raise
            except errors.ConnectorError as error:
                return self._failed(item, error, keep_in_flight=True)
            if found is not None:
                return self._done(item, found, on_done, found_by_lookup=True)
            if item.next_attempt_at is not None and item.next_attempt_at > self.clock.now():
                # Not applied (yet): after a timeout the service may still be applying it, so
                # the re-send waits its back-off; the next run looks it up again.
                return Outcome(item, "in_flight")
        with self.store.transaction():
            self._set(item, state="in_flight", attempts=item.attempts + 1)
        try:
            result = send()
        except errors.Stopping:
            # Never sent (the process is stopping): back to the queue as it was, no attempt spent.
            with self.store.transaction():
                self._set(item, state=item.state, attempts=item.attempts)
            raise
        except errors.AmbiguousOutcome as error:
            return self._failed(item, error, keep_in_flight=True)
        except errors.FatalError as error:
            self._failed(item, error, attempts=item.attempts + 1)
            raise
        except errors.ConnectorError as error:
            return self._failed(item, error, attempts=item.attempts + 1)
        return self._done(item, result, on_done)

    # --- attempting many at once (a page's writes) ---------------------------------------------

    def begin(self, item: OutboxItem) -> None:
        """Mark a pending write in flight before it is sent (inside the caller's transaction,
        which must commit before the request goes out)."""
        self._set(item, state="in_flight", attempts=item.attempts + 1)

    def settle(
        self,
        item: OutboxItem,
        result: dict[str, Any] | BaseException,
        *,
        on_done: Callable[[OutboxItem, dict[str, Any]], None] | None = None,
    ) -> Outcome:
        """Record how a write begun with ``begin`` went: its result, or the error it raised
        (inside the caller's transaction). Unlike ``attempt`` nothing is raised here; the caller
        raises a ``FatalError`` or ``Stopping`` once the batch is recorded."""
        if isinstance(result, BaseException):
            if isinstance(result, errors.Stopping):
                self._set(item, state=item.state, attempts=item.attempts)  # never sent
                return Outcome(item, item.state, error=result)
            if isinstance(result, errors.AmbiguousOutcome):
                return self._failed(item, result, keep_in_flight=True)
            if isinstance(result, errors.ConnectorError):
                return self._failed(item, result, attempts=item.attempts + 1)
            # A bug, not a service's answer: left in flight, so the next run looks it up.
            return Outcome(item, "in_flight")
        return self._done(item, result, on_done)

    def _done(
        self,
        item: OutboxItem,
        result: dict[str, Any],
        on_done: Callable[[OutboxItem, dict[str, Any]], None] | None,
        *,
        found_by_lookup: bool = False,
    ) -> Outcome:
        with self.store.transaction():
            self._set(
                item,
                state="done",
                result=json.dumps(result, sort_keys=True, default=str),
                last_error=None,
            )
            if on_done is not None:
                on_done(item, result)
            # Sent: the reporter's identity is no longer needed here (the result commits with it).
            self._set(item, payload=_kept(item.payload))
        return Outcome(item, "done", result=result, found_by_lookup=found_by_lookup)

    def _failed(
        self,
        item: OutboxItem,
        error: errors.ConnectorError,
        *,
        keep_in_flight: bool = False,
        attempts: int | None = None,
    ) -> Outcome:
        attempts = item.attempts + 1 if attempts is None else attempts
        code = getattr(error, "code", None) or type(error).__name__
        if keep_in_flight:
            state = "in_flight" if attempts < self.max_attempts else "dead"
        elif (
            isinstance(error, (errors.RetriableError, errors.FatalError))
            and attempts < self.max_attempts
        ):
            # A fatal error (refused credentials) stops the run; the write waits for the fix.
            state = "failed"
        else:
            # Record-level problems, reconcile errors and exhausted budgets need a person.
            state = "dead"
        delay = min(self.max_delay, self.first_delay * 2 ** max(0, attempts - 1))
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            delay = max(delay, timedelta(seconds=retry_after))
        if keep_in_flight:
            # In doubt, the write is looked up every run anyway; the delay only holds back a
            # re-send. The service answered (5xx, soft error): it is done with the request, so a
            # lookup that finds nothing means not applied, and it is sent again at once. No
            # answer (a timeout): give the service one settle time to finish applying it; not
            # growing with the attempts, so a storm of timeouts is over within a few cycles.
            delay = timedelta(0) if getattr(error, "answered", False) else self.first_delay
        with self.store.transaction():
            self._set(
                item,
                state=state,
                attempts=attempts,
                last_error=redacted_text(str(error), item.payload)[:500],
                last_error_code=code,
                next_attempt_at=_iso(self.clock.now() + delay),
            )
        return Outcome(item, state, error=error)

    def _set(self, item: OutboxItem, **columns: Any) -> None:
        columns["updated_at"] = _iso(self.clock.now())
        assignments = ", ".join(f"{name} = ?" for name in columns)
        sql = f"UPDATE outbox SET {assignments} WHERE id = ?"  # noqa: S608 (column names are ours)
        self.store.db.execute(sql, [*columns.values(), item.id])

    # --- resolutions by the connector -----------------------------------------------------

    def resolve(self, item: OutboxItem, resolution: str, *, set_aside: bool = False) -> None:
        """Close a write that cannot or need not be sent (inside the caller's transaction).

        ``resolution`` says why (``not_applicable: closed on LAPOR!``, ``rejected: ...``); it is
        kept as the write's result. With ``set_aside`` the idempotency key is freed, so that a
        replay of the record after a fix records a fresh intent: only for writes LAPOR! refused
        (400/413/422) or that were never sent, which cannot have been applied.
        """
        columns: dict[str, Any] = {
            "state": "acknowledged",
            "result": json.dumps({"resolution": resolution}),
            "payload": _kept(item.payload),
        }
        if set_aside:
            columns["idempotency_key"] = f"{item.key}@set-aside:{item.id}"
        self._set(item, **columns)

    def requeue(self, item: OutboxItem, delay: timedelta) -> None:
        """Send a write again after ``delay`` (a 403 that LAPOR!'s own detail contradicts)."""
        with self.store.transaction():
            self._set(item, state="failed", next_attempt_at=_iso(self.clock.now() + delay))

    # --- operator actions ----------------------------------------------------------------

    def retry(self, item_id: int) -> bool:
        """Put a dead or failed write back in the queue with a fresh budget; False if none."""
        with self.store.transaction():
            cursor = self.store.db.execute(
                "UPDATE outbox SET state = CASE WHEN result IS NULL AND attempts > 0 AND last_error_code = 'AmbiguousOutcome' "
                "THEN 'in_flight' ELSE 'pending' END, attempts = 0, next_attempt_at = ?, updated_at = ? "
                "WHERE id = ? AND state IN ('dead', 'failed')",
                [_iso(self.clock.now()), _iso(self.clock.now()), item_id],
            )
        return cursor.rowcount > 0

    def acknowledge(self, item_id: int) -> bool:
        """Give up on a dead write, on the record; False if there is no such dead write.

        Never to be sent now, so its payload keeps only the redacted form."""
        with self.store.transaction():
            rows = list(
                self.store.db.query(
                    "SELECT payload FROM outbox WHERE id = ? AND state = 'dead'", [item_id]
                )
            )
            if not rows:
                return False
            self.store.db.execute(
                "UPDATE outbox SET state = 'acknowledged', payload = ?, updated_at = ? WHERE id = ?",
                [_kept(json.loads(rows[0]["payload"])), _iso(self.clock.now()), item_id],
            )
        return True
