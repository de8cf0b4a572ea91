"""The background service: runs the sync jobs on APScheduler until told to stop.

One writer per state file (``connector.writer``): the daemon holds the lock while it runs. Each job runs one instance at a time,
missed runs are coalesced, and SIGTERM/SIGINT stop the scheduler after the job in flight ends.
A fatal error (refused credentials) stops the daemon with an alert instead of retrying forever.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
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
from connector.pull import pull_inbox
from connector.reconcile_sweep import run_sweep
from connector.state import StateStore
from connector.sync import open_sync
from connector.systemd import Notifier
from connector.writer import writer_lock

log = get_logger("daemon")

#: Jobs whose first run waits one interval (the sweep does not compete with the first sync).
_FIRST_RUN_LATER = frozenset({"reconcile"})
#: The scheduler job that pings systemd's watchdog (not counted as a run).
_WATCHDOG_JOB = "systemd.watchdog"


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
        self._one_at_a_time = threading.Lock()
        self.fatal: errors.FatalError | StateLost | None = None
        self.runs = 0

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
        return jobs

    def run_flow(self, name: str) -> None:
        """One run of a flow, with fresh connections (mapping fixes apply without a restart)."""
        # Flows run one at a time: each reads what the others wrote, in a simple order.
        # The daemon holds the writer lock for its lifetime; each run still checks the state is
        # this installation's (the agency may have been down when the daemon started).
        with (
            self._one_at_a_time,
            open_sync(self.settings, self.clock, writer=False, guard=True) as sync,
        ):
            report = run_flow(sync, name)
            log.info(
                "flow_finished",
                flow=name,
                **{k: v for k, v in vars(report).items() if isinstance(v, int)},
            )

    def reconcile_slice(self) -> None:
        """One slice of the reconciliation sweep (docs/reconcile.md), between the flows' runs."""
        with (
            self._one_at_a_time,
            open_sync(self.settings, self.clock, writer=False, guard=True) as sync,
        ):
            report = run_sweep(sync, self.settings.reconcile,
                               requests_per_minute=self.settings.lapor.requests_per_minute)  # fmt: skip
            log.info(
                "reconcile_slice_finished",
                **{k: v for k, v in vars(report).items() if isinstance(v, (int, bool))},
            )

    def pull(self) -> None:
        """One inbox pull with fresh connections and a fresh state handle."""
        with (
            StateStore(self.settings.state.path, self.clock) as store,
            LaporClient(self.settings.lapor, self.clock) as client,
        ):
            pull_inbox(client, store)

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
        with writer_lock(self.settings.state.path, "run (the daemon)"):
            scheduler = BackgroundScheduler(
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
            )

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
            for name, (job, seconds) in self.jobs().items():
                later = timedelta(seconds=seconds if name in _FIRST_RUN_LATER else 0)
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
