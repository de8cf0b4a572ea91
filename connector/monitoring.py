"""Health and metrics over HTTP: /healthz, /readyz and /metrics on ``monitoring.listen``.

A ``ThreadingHTTPServer`` on a daemon thread, bound only to the configured address. The daemon
tells the ``Monitor`` of each job run; the LAPOR! transport and the HTTP layer tell it of each
request (``observe_requests``, ``observe_peers``), so no metric call is scattered in the code.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from connector import errors
from connector.clock import Clock
from connector.config import Settings
from connector.http import observe_peers
from connector.lapor.transport import observe_requests, pacer_key
from connector.logs import get_logger
from connector.metrics import Metrics
from connector.ratelimit import pacer_for
from connector.state import StateStore
from connector.workdays import WorkCalendar

log = get_logger("monitoring")

_CREDENTIALS = {
    "lapor": "LAPOR! refused the API key or token (401); fix lapor.api_key / lapor.token",
    "agency": "the agency refused its token (401); fix agency.token",
}
_NAMES = {"lapor": "LAPOR!", "agency": "the agency"}


class Readiness:
    """Whether each side answered its last request, and whether one refused our credentials."""

    def __init__(self, peers: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self._reached: dict[str, bool | None] = dict.fromkeys(peers)
        self._refused: set[str] = set()

    def answered(self, peer: str, status: int | None) -> None:
        """A request to ``peer`` ended with ``status`` (None: no answer came)."""
        with self._lock:
            if peer not in self._reached:
                return
            self._reached[peer] = status is not None and status < 500
            if status == 401:
                self._refused.add(peer)
            elif status is not None and status < 400:
                self._refused.discard(peer)

    def problems(self) -> list[str]:
        """Why the connector is not ready (empty when it is)."""
        with self._lock:
            found = [_CREDENTIALS[p] for p in sorted(self._refused)]
            for peer, reached in self._reached.items():
                if reached is None:
                    found.append(f"{_NAMES[peer]} has not been reached yet")
                elif not reached:
                    found.append(f"{_NAMES[peer]} failed the last request (no answer, or a 5xx)")
            return found


class Monitor:
    """The daemon's metrics and readiness, and the server that shows them."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = Metrics(clock)
        peers = ("lapor", "agency") if settings.agency is not None else ("lapor",)
        self.readiness = Readiness(peers)
        #: Whether the scheduler loop is alive (the daemon sets it).
        self.alive: Callable[[], bool] = lambda: False

    def ready_problems(self) -> list[str]:
        """Readiness problems, the ready gauge kept in step."""
        problems = self.readiness.problems()
        self.metrics.ready.set(0 if problems else 1)
        return problems

    @contextmanager
    def watch(self, flow: str) -> Iterator[dict[str, Any]]:
        """Time one job run and count what it did: put its report in the yielded ``["report"]``."""
        started, outcome, run = self.clock.monotonic(), "failed", {"report": None}
        try:
            yield run
            outcome = "ok"
        except errors.Stopping:
            outcome = "stopped"
            raise
        finally:
            self.metrics.run_finished(
                flow, run["report"], self.clock.monotonic() - started, outcome
            )
            lapor = self.settings.lapor
            pacer = pacer_for(pacer_key(lapor), lapor.requests_per_minute, self.clock)
            self.metrics.budget(pacer.rate, pacer.sent_last_minute())

    @contextmanager
    def refreshing(self, store: StateStore, calendar: WorkCalendar | None = None) -> Iterator[None]:
        """When the run ends, read the state's gauges again (outbox, quarantine, oldest
        unsynced, SLA): a few small queries once a run, so a scrape never touches the state."""
        try:
            yield
        finally:
            try:
                self.metrics.refresh_state(store)
                if calendar is not None:
                    self.metrics.refresh_sla(store, calendar, self.settings.sla.at_risk_days)
            except Exception as error:  # a gauge left as it was is better than a failed run
                log.warning("metrics_refresh_failed", kind=type(error).__name__)

    @contextmanager
    def serving(self) -> Iterator[MonitorServer | None]:
        """Serve on ``monitoring.listen`` (nothing when it is not set) and observe requests."""
        address = self.settings.monitoring.address()
        if address is None:
            yield None
            return
        server = MonitorServer(address, self)
        stops = [observe_requests(self.metrics.request_observed),
                 observe_peers(self.readiness.answered)]  # fmt: skip
        thread = threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True,
                                  name="monitoring")  # fmt: skip
        thread.start()
        log.info("monitoring_started", listen=self.settings.monitoring.listen)
        try:
            yield server
        finally:
            for stop in stops:
                stop()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


class MonitorServer(ThreadingHTTPServer):
    """Answers /healthz, /readyz and /metrics; nothing else."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], monitor: Monitor) -> None:
        self.monitor = monitor
        listen = monitor.settings.monitoring.listen
        try:
            super().__init__(address, _Handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise errors.ListenFailed(
                    f"monitoring.listen: {listen} is already in use; stop what listens there "
                    "or choose another port"
                ) from None
            raise errors.ListenFailed(
                f"monitoring.listen: cannot listen on {listen} ({error.strerror}); "
                "use an address of this host, e.g. 127.0.0.1:9464"
            ) from None


class _Handler(BaseHTTPRequestHandler):
    server: MonitorServer

    def do_GET(self) -> None:
        monitor = self.server.monitor
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            alive = monitor.alive()
            self._answer(200 if alive else 503, b"ok\n" if alive else b"not running\n")
        elif path == "/readyz":
            problems = monitor.ready_problems()
            body = "".join(f"{p}\n" for p in problems) if problems else "ready\n"
            self._answer(503 if problems else 200, body.encode())
        elif path == "/metrics":
            monitor.ready_problems()
            self._answer(200, monitor.metrics.exposition(), CONTENT_TYPE_LATEST)
        else:
            self._answer(404, b"not found: try /healthz, /readyz or /metrics\n")

    def _answer(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (one every few seconds would drown the log)."""
