"""The daemon's metrics (Prometheus), on a registry of their own; docs/monitoring.md lists them.

Labels stay bounded: flow and job names, outcome names from the flow reports, endpoint classes,
HTTP statuses, outbox states, SLA states and agency units; never a complaint id or a path.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from connector.clock import Clock
from connector.sla import open_rows
from connector.state import StateStore
from connector.workdays import WorkCalendar

PREFIX = "lapor_connector"
OUTBOX_STATES = ("pending", "in_flight", "failed", "dead", "done", "acknowledged")
SLA_STATES = ("at_risk", "overdue")
#: Flow runs take seconds to minutes (a backlog at 50 requests a minute).
RUN_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: LAPOR! answers in milliseconds to its read timeout.
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Every metric the daemon exposes, and the ways they move."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r, p = self.registry, PREFIX
        self.last_success = Gauge(f"{p}_flow_last_success_timestamp_seconds",
                                  "When each job last finished without failing (Unix time).",
                                  ["flow"], registry=r)  # fmt: skip
        self.run_duration = Histogram(f"{p}_flow_run_duration_seconds",
                                      "How long each job's runs take.", ["flow"],
                                      buckets=RUN_BUCKETS, registry=r)  # fmt: skip
        self.runs = Counter(f"{p}_flow_runs", "Job runs by outcome (ok, failed, stopped).",
                            ["flow", "outcome"], registry=r)  # fmt: skip
        self.records = Counter(f"{p}_flow_records", "Records each job handled, by outcome "
                               "(created, updated, replies, posted, quarantined, ...).",
                               ["flow", "outcome"], registry=r)  # fmt: skip
        self.outbox = Gauge(f"{p}_outbox_items", "Outbox items by state.", ["state"], registry=r)
        self.quarantine = Gauge(f"{p}_quarantine_open", "Open quarantined records.", registry=r)
        self.oldest_unsynced = Gauge(f"{p}_oldest_unsynced_age_seconds",
                                     "Age of the oldest write not yet done (0: none waiting).",
                                     registry=r)  # fmt: skip
        self.requests = Counter(f"{p}_lapor_requests", "LAPOR! requests by endpoint class and "
                                "status (error: no answer).", ["endpoint", "status"], registry=r)  # fmt: skip
        self.rate_limited = Counter(f"{p}_lapor_rate_limited", "LAPOR! answers 429, by endpoint "
                                    "class.", ["endpoint"], registry=r)  # fmt: skip
        self.latency = Histogram(f"{p}_lapor_request_duration_seconds",
                                 "LAPOR! request latency by endpoint class.", ["endpoint"],
                                 buckets=REQUEST_BUCKETS, registry=r)  # fmt: skip
        self.budget_rate = Gauge(f"{p}_lapor_request_budget_per_minute",
                                 "The pace requests are held to (0: not paced).", registry=r)  # fmt: skip
        self.budget_sent = Gauge(f"{p}_lapor_requests_last_minute",
                                 "LAPOR! requests started within the last minute.", registry=r)  # fmt: skip
        self.budget_used = Gauge(f"{p}_lapor_request_budget_used_ratio",
                                 "Share of the minute's request budget used (0 when not paced).",
                                 registry=r)  # fmt: skip
        self.sla = Gauge(f"{p}_sla_complaints", "Open complaints at risk or overdue, per unit.",
                         ["unit", "state"], registry=r)  # fmt: skip
        self.ready = Gauge(f"{p}_ready", "1 when /readyz answers 200.", registry=r)
        for state in OUTBOX_STATES:
            self.outbox.labels(state)
        self._sla_seen: set[tuple[str, str]] = set()

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def request_observed(self, endpoint: str, status: str, seconds: float) -> None:
        """One LAPOR! request (the transport's observer)."""
        self.requests.labels(endpoint, status).inc()
        self.latency.labels(endpoint).observe(seconds)
        if status == "429":
            self.rate_limited.labels(endpoint).inc()

    def run_finished(self, flow: str, report: object, seconds: float, outcome: str) -> None:
        """One job run ended: its duration, outcome and the records its report counts."""
        self.run_duration.labels(flow).observe(seconds)
        self.runs.labels(flow, outcome).inc()
        if outcome == "ok":
            self.last_success.labels(flow).set(self.clock.now().timestamp())
        for name, value in vars(report).items() if report is not None else ():
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                self.records.labels(flow, name).inc(value)

    def budget(self, rate: float, sent_last_minute: int) -> None:
        """The request budget: the pace, and what the last minute used of it."""
        self.budget_rate.set(rate)
        self.budget_sent.set(sent_last_minute)
        self.budget_used.set(sent_last_minute / rate if rate > 0 else 0.0)

    def refresh_state(self, store: StateStore) -> None:
        """Outbox by state, open quarantine and oldest unsynced age: three small queries."""
        counts = dict(
            store.db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        )
        for state in {*OUTBOX_STATES, *counts}:
            self.outbox.labels(state).set(counts.get(state, 0))
        (open_count,) = store.db.execute(
            "SELECT count(*) FROM quarantine WHERE status = 'open'"
        ).fetchone()
        self.quarantine.set(open_count)
        (oldest,) = store.db.execute(
            "SELECT min(created_at) FROM outbox WHERE state IN ('pending', 'failed', 'in_flight')"
        ).fetchone()
        age = 0.0
        if oldest:
            age = max(0.0, (self.clock.now() - datetime.fromisoformat(oldest)).total_seconds())
        self.oldest_unsynced.set(age)

    def refresh_sla(self, store: StateStore, calendar: WorkCalendar, at_risk_days: int) -> None:
        """At-risk and overdue complaints per unit (docs/sla.md), zero for units now clear."""
        counts: dict[tuple[str, str], int] = {}
        for row in open_rows(store, calendar, self.clock.now(), at_risk_days):
            if row.state in SLA_STATES:
                key: tuple[str, str] = (row.unit or "none", str(row.state))
                counts[key] = counts.get(key, 0) + 1
        for key in self._sla_seen | set(counts):
            self.sla.labels(*key).set(counts.get(key, 0))
        self._sla_seen |= set(counts)
