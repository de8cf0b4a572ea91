"""The background service: runs the sync jobs on APScheduler until told to stop.

One writer per state file (``connector.writer``): the daemon holds the lock while it runs. Each job runs one instance at a time,
missed runs are coalesced, and SIGTERM/SIGINT stop the scheduler after the job in flight ends.
A fatal error (refused credentials) stops the daemon with an alert instead of retrying forever.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import FrameType
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from connector import errors
from connector.clock import SystemClock
from connector.config import Settings
from connector.flows import FLOWS, run_flow
from connector.installation import StateLost
from connector.lapor.client import LaporClient
from connector.logs import get_logger
from connector.mappings import check_mappings
from connector.monitoring import Monitor
from connector.pull import pull_inbox
from connector.reconcile_sweep import run_sweep
from connector.retention import prune_configured
from connector.state import StateStore
from connector.sync import open_sync
from connector.systemd import Notifier
from connector.writer import writer_lock

log = get_logger("daemon")

#: The retention prune runs an hour after start, then once a day (local: no request is made).
PRUNE_SECONDS = 86_400.0
_FIRST_PRUNE_SECONDS = 3_600.0
#: Jobs whose first run waits one interval (the sweep does not compete with the first sync).
_FIRST_RUN_LATER = frozenset({"reconcile"})
#: The scheduler job that pings systemd's watchdog (not counted as a run).
_WATCHDOG_JOB = "systemd.watchdog"


#: Seconds between the first runs of two jobs (their order within a cycle).
_STAGGER = 0.25


class Turns:
    """One job at a time; of the jobs waiting, the flows first in their order, then the others,
    each kind in the order they came (a plain lock wakes waiters in no set order)."""

    def __init__(self, order: list[str]) -> None:
        self._rank = {name: n for n, name in enumerate(order)}
        self._cond = threading.Condition()
        self._busy = False
        self._waiting: list[tuple[int, int]] = []
        self._tickets = itertools.count()

    @contextlib.contextmanager
    def turn(self, name: str) -> Iterator[None]:
        ticket = (self._rank.get(name, len(self._rank)), next(self._tickets))
        with self._cond:
            heapq.heappush(self._waiting, ticket)
            while self._busy or self._waiting[0] != ticket:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


class Daemon:
    """Schedules the sync jobs and owns the resources they share."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: SystemClock | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.notifier = notifier or Notifier()
        self._stopped = threading.Event()
        self._turns = Turns(list(FLOWS))
        self.fatal: errors.FatalError | StateLost | None = None
        self.runs = 0
        #: Health and metrics (docs/monitoring.md), when ``monitoring.listen`` is set.
        self.monitor = Monitor(settings, self.clock) if settings.monitoring.listen else None
        self._scheduler: BackgroundScheduler | None = None

    def jobs(self) -> dict[str, tuple[Callable[[], Any], float]]:
        """Job name → (callable, interval in seconds): every flow and the reconciliation sweep,
        or the inbox pull alone without an agency."""
        schedule = self.settings.schedule
        if self.settings.agency is None:
            return {"lapor.inbox": (self.pull, schedule.inbox_seconds)}
        intervals = {
            "inbound": schedule.inbound_seconds,
            "intake_out": schedule.intake_out_seconds,
            "followups_out": schedule.followups_out_seconds,
        }
        jobs: dict[str, tuple[Callable[[], Any], float]] = {
            name: (functools.partial(self.run_flow, name), intervals[name]) for name in FLOWS
        }
        jobs["reconcile"] = (self.reconcile_slice, self.settings.reconcile.slice_seconds)
        if self.settings.privacy.prune_daily:
            jobs["privacy.prune"] = (self.prune, PRUNE_SECONDS)
        return jobs

    def run_flow(self, name: str) -> None:
        """One run of a flow, with fresh connections (mapping fixes apply without a restart)."""
        # Flows run one at a time: each reads what the others wrote, in a simple order.
        # The daemon holds the writer lock for its lifetime; each run still checks the state is
        # this installation's (the agency may have been down when the daemon started).
        with (
            self._turns.turn(name),
            self._watch(name) as run,
            open_sync(self.settings, self.clock, writer=False, guard=True) as sync,
            self._refreshing(sync.store, sync.mappings.calendar),
        ):
            report = run["report"] = run_flow(sync, name)
            log.info(
                "flow_finished",
                flow=name,
                **{k: v for k, v in vars(report).items() if isinstance(v, int)},
            )

    def reconcile_slice(self) -> None:
        """One slice of the reconciliation sweep (docs/reconcile.md), between the flows' runs."""
        with (
            self._turns.turn("reconcile"),
            self._watch("reconcile") as run,
            open_sync(self.settings, self.clock, writer=False, guard=True) as sync,
            self._refreshing(sync.store),
        ):
            report = run["report"] = run_sweep(sync, self.settings.reconcile,
                               requests_per_minute=self.settings.lapor.requests_per_minute)  # fmt: skip
            log.info(
                "reconcile_slice_finished",
                **{k: v for k, v in vars(report).items() if isinstance(v, (int, bool))},
            )

    def prune(self) -> None:
        """Remove the contents of complaints closed longer than the retention (docs/privacy.md)."""
        with self._turns.turn("privacy.prune"):
            report = prune_configured(self.settings, self.clock, actor="run (the daemon)")
            log.info("state_pruned", **{k: v for k, v in vars(report).items()})

    def pull(self) -> None:
        """One inbox pull with fresh connections and a fresh state handle."""
        with (
            self._watch("lapor.inbox") as run,
            StateStore(self.settings.state.path, self.clock) as store,
            LaporClient(self.settings.lapor, self.clock) as client,
            self._refreshing(store),
        ):
            run["report"] = pull_inbox(client, store)

    def _watch(self, job: str) -> Any:
        """Count one job run in the metrics, failures included (nothing when monitoring is off)."""
        if self.monitor is None:
            return contextlib.nullcontext({})
        return self.monitor.watch(job)

    def _refreshing(self, store: StateStore, calendar: Any = None) -> Any:
        """Read the state's gauges again when the run ends, while the state is still open."""
        if self.monitor is None:
            return contextlib.nullcontext()
        return self.monitor.refreshing(store, calendar)

    def alive(self) -> bool:
        """The scheduler loop is running and not stopping (``/healthz``)."""
        scheduler = self._scheduler
        return scheduler is not None and scheduler.running and not self._stopped.is_set()

    def report_mapping_gaps(self) -> None:
        """At start-up, check the mappings against both sides' master data and log every gap.

        Gaps do not stop the daemon: a record that hits one is quarantined with the reason.
        """
        if self.settings.agency is None:
            return
        try:
            with open_sync(self.settings, self.clock, writer=False, guard=True) as sync:
                problems = check_mappings(
                    sync.mappings,
                    lapor_categories=sync.lapor.categories(),
                    lapor_institutions=sync.lapor.institutions(),
                    lapor_classifications=sync.lapor.classifications(),
                    agency_categories=sync.agency.categories(),
                    agency_statuses=sync.agency.statuses(),
                    agency_units=sync.agency.units(),
                )
        except errors.RetriableError as error:
            log.warning("mapping_check_skipped", reason=str(error))
            return
        for problem in problems:
            log.warning("mapping_gap", problem=problem, fix="see `lapor-connector mappings check`")

    def stop(self, *_: object) -> None:
        """Ask the daemon to stop after the job in flight."""
        self._stopped.set()
        self.clock.wake()

    def serve(self, *, max_runs: int | None = None) -> None:
        """Run until stopped (signal, ``stop()``, a fatal error, or ``max_runs`` job runs)."""
        with (
            writer_lock(self.settings.state.path, "run (the daemon)"),
            self.monitor.serving() if self.monitor else contextlib.nullcontext(),
        ):
            scheduler = self._scheduler = BackgroundScheduler(
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
            )
            if self.monitor is not None:
                self.monitor.alive = self.alive

            def finished(event: JobExecutionEvent) -> None:
                if event.job_id == _WATCHDOG_JOB:
                    return
                self.runs += 1
                error = event.exception
                if isinstance(error, errors.Stopping):
                    log.info("job_stopped", job=event.job_id, reason="the daemon is stopping")
                elif isinstance(error, (errors.FatalError, StateLost)):
                    # Refused credentials, a broken contract, or a lost state: retrying cannot help.
                    self.fatal = error
                    log.critical(
                        "daemon_stopping_on_fatal_error", job=event.job_id, error=str(error)
                    )
                    self.stop()
                elif isinstance(error, errors.ConnectorError):
                    log.error(
                        "job_failed", job=event.job_id, kind=type(error).__name__, error=str(error)
                    )
                elif error is not None:
                    log.error("job_crashed", job=event.job_id, kind=type(error).__name__)
                if max_runs is not None and self.runs >= max_runs:
                    self.stop()

            scheduler.add_listener(finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            for index, (name, (job, seconds)) in enumerate(self.jobs().items()):
                # The flows' first runs a moment apart, in their order (inbound, intake out,
                # follow-ups out), so each cycle reads what the one before it wrote.
                later = timedelta(seconds=seconds if name in _FIRST_RUN_LATER else _STAGGER * index)
                if name == "privacy.prune":
                    later = timedelta(seconds=_FIRST_PRUNE_SECONDS)
                scheduler.add_job(
                    job,
                    "interval",
                    seconds=seconds,
                    id=name,
                    next_run_time=self.clock.now() + later,
                )
            if (every := self.notifier.watchdog_interval) is not None:
                # A job of the scheduler itself: the pings stop when the scheduler does.
                scheduler.add_job(self.notifier.watchdog, "interval", seconds=every,
                                  id=_WATCHDOG_JOB, next_run_time=self.clock.now())  # fmt: skip
            self.report_mapping_gaps()
            previous = _install_signal_handlers(self.stop)
            log.info(
                "daemon_started", jobs=sorted(self.jobs()), state=str(self.settings.state.path)
            )
            scheduler.start()
            # Configuration, mappings and state were checked, the first jobs are scheduled.
            self.notifier.ready(f"running {len(self.jobs())} jobs")
            try:
                self._stopped.wait()
            finally:
                self.notifier.stopping("stopping after the job in flight")
                scheduler.shutdown(wait=True)
                _restore_signal_handlers(previous)
                log.info("daemon_stopped", runs=self.runs)
        if self.fatal is not None:
            raise self.fatal


def _install_signal_handlers(handler: Callable[[int, FrameType | None], Any]) -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
