"""What every benchmark shares: the simulators in their own processes, the connector's settings,
child processes for measured runs, and target lines (measured value, target, PASS/FAIL).

A benchmark that cannot start a server exits non-zero with the reason; a target that is missed
is printed as FAIL (the figures are the output) and the script still exits 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from connector.simulators.agency import AgencyControl
from connector.simulators.lapor import SimControl

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-api-key"
TOKEN = "{0BE0C4A1-0000-4000-8000-00000000BE0C}"  # noqa: S105 (the simulator's test token)
AGENCY_TOKEN = "bench-agency-token"  # noqa: S105 (the demo system's test token)
INSTITUTION = 145
#: The largest page the contract allows: what the documented minimum number of requests assumes.
MAX_PAGE = 1000
#: Seconds a control-plane call may take (the world of 100,000 complaints is large).
CONTROL_TIMEOUT = 300
#: The simulator's routes that serve master data (counted apart from the complaint routes).
MASTER_ROUTES = ("categories", "institutions", "templates", "statuses", "classifications", "topics")
#: Environment of a connector process: the secrets its settings refer to.
SECRETS = {"K": API_KEY, "T": TOKEN, "A": AGENCY_TOKEN}
LAPOR_URL = re.compile(r"(http://127\.0\.0\.1:\d+)/lapor/3\.0\.0")
AGENCY_URL = re.compile(r"(http://127\.0\.0\.1:\d+)/api/v1")


# --- servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    """A simulator running in its own process."""

    process: subprocess.Popen[str]
    root_url: str
    base_url: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


S = TypeVar("S", bound=Server)


class LaporServer(Server):
    @property
    def control(self) -> SimControl:
        return SimControl(self.root_url, timeout=CONTROL_TIMEOUT)


class AgencyServer(Server):
    @property
    def control(self) -> AgencyControl:
        return AgencyControl(self.root_url, timeout=CONTROL_TIMEOUT)


def die_with_parent() -> None:
    """In a child, before it runs: end with SIGTERM when the benchmark ends, however it ends
    (Linux ``prctl(PR_SET_PDEATHSIG)``), so no server outlives an interrupted benchmark."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _start(kind: type[S], name: str, args: list[str], pattern: re.Pattern[str], suffix: str) -> S:
    errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 (read only if it does not start)
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "connector", "simulate", name, "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=errors, text=True, cwd=ROOT, preexec_fn=die_with_parent,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 120  # 100,000 complaints take a few seconds to generate
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # the ready line comes first; the few after fit the pipe
        match = pattern.search(line)
        if match:
            errors.close()
            return kind(process, match.group(1), match.group(1) + suffix)
        if not line and process.poll() is not None:
            break
    process.kill()
    process.wait()
    errors.seek(0)
    lines = errors.read().strip().splitlines()
    reason = lines[-1] if lines else "no ready line within 120 s"
    raise SystemExit(f"the {name} simulator did not start ({' '.join(args)}): {reason}")


def start_lapor(
    complaints: int, *, latency_ms: int = 0, dialect: str = "contract", rate_limit: int = 0
) -> LaporServer:
    """``lapor-connector simulate lapor`` on a free port (exits loudly if it does not start)."""
    args = ["--complaints", str(complaints), "--api-key", API_KEY, "--token", TOKEN,
            "--institution-id", str(INSTITUTION), "--rate-limit", str(rate_limit), "--dialect", dialect]  # fmt: skip
    if latency_ms:
        args += ["--latency-ms", str(latency_ms)]
    return _start(LaporServer, "lapor", args, LAPOR_URL, "/lapor/3.0.0")


def start_agency(db: Path, *, latency_ms: int = 0) -> AgencyServer:
    """``lapor-connector simulate agency`` with no complaints of its own, on a free port."""
    args = ["--db", str(db), "--token", AGENCY_TOKEN, "--complaints", "0"]
    if latency_ms:
        args += ["--latency-ms", str(latency_ms)]
    return _start(AgencyServer, "agency", args, AGENCY_URL, "/api/v1")


@contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Stop the servers however the block ends."""
    try:
        yield
    finally:
        for server in servers:
            server.stop()


def change(control: SimControl, action: str, complaint_id: int, text: str) -> None:
    """One change a benchmark makes on LAPOR!: a citizen's reply, an admin's note or a closure."""
    if action == "reply":
        control.reply(complaint_id, text)
    elif action == "note":
        control.note(complaint_id, text)
    else:
        control.close(complaint_id)


def lapor_requests(stats: dict[str, Any]) -> dict[str, int]:
    """Requests by route from a LAPOR! simulator's stats (control plane not included)."""
    return {route: int(n) for route, n in sorted(stats.get("requests", {}).items()) if n}


# --- the connector ----------------------------------------------------------------------------


def connector_mapping(lapor_url: str, agency_url: str, state: Path, *, requests_per_minute: float = 0,
                      page_size: int | None = None, **sections: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """A configuration mapping for the connector (secrets as references to ``SECRETS``): unpaced
    by default, everything else the connector's defaults unless given; ``sections`` are merged."""
    lapor: dict[str, Any] = {"base_url": lapor_url, "institution_id": INSTITUTION, "api_key": "${K}", "token": "${T}",
                             "requests_per_minute": requests_per_minute, "timeouts": {"read": 120}}  # fmt: skip
    if page_size is not None:
        lapor["page_size"] = page_size
    mapping: dict[str, Any] = {
        "lapor": lapor,
        "agency": {"base_url": agency_url, "token": "${A}", "timeouts": {"read": 120}},
        "state": {"path": str(state)},
        "mappings": {"path": str(ROOT / "mappings")},
        "logging": {"level": "WARNING", "format": "json"},
    }
    for name, values in sections.items():
        mapping[name] = {**mapping.get(name, {}), **values}
    return mapping


def write_config(path: Path, mapping: dict[str, Any]) -> Path:
    """Write a configuration file (JSON is YAML) for ``lapor-connector run|sync --config``."""
    path.write_text(json.dumps(mapping, indent=2), encoding="utf-8")
    return path


def settings(mapping: dict[str, Any]) -> Any:
    """Validated ``Settings`` from a mapping written by ``connector_mapping``."""
    from connector.config import settings_from_mapping

    return settings_from_mapping(mapping, env=SECRETS)


def inbound_cycle(config: Any, *, timeout: float = 900) -> dict[str, Any]:
    """One inbound run as the daemon makes it (fresh connections, flow run recorded).

    A run still going after ``timeout`` seconds (a listing that loops, say) ends the benchmark
    with exit code 3 rather than hanging it."""
    from connector.clock import SystemClock
    from connector.flows import run_flow
    from connector.sync import open_sync

    def overdue() -> None:
        sys.stderr.write(f"bench: an inbound run took more than {timeout:.0f} s; stopping\n")
        sys.stderr.flush()
        os._exit(3)

    watchdog = threading.Timer(timeout, overdue)
    watchdog.daemon = True
    watchdog.start()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        with open_sync(config, SystemClock()) as sync:
            report = run_flow(sync, "inbound")
    finally:
        watchdog.cancel()
    return {
        **{k: v for k, v in vars(report).items() if isinstance(v, int)},
        "cpu": time.process_time() - cpu,
        "wall": time.perf_counter() - wall,
    }


def run_child(module: str, *args: str, timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m module --child ARGS`` (a measured run in a process of its own); return
    the JSON object its last line printed."""
    try:
        out = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", module, "--child", *args],
            capture_output=True, text=True, cwd=ROOT, timeout=timeout, check=False, preexec_fn=die_with_parent,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{module} child {args[0]} still running after {timeout:.0f} s") from None
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"{module} child {args[0]} failed with exit code {out.returncode}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def peak_mb() -> float:
    """This process's peak RSS in MB (Linux reports ``ru_maxrss`` in KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- figures and targets ----------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def pages(items: int, page_size: int = MAX_PAGE) -> int:
    """List requests needed for ``items`` records (an empty listing still takes one)."""
    return max(1, math.ceil(items / page_size))


@dataclass
class Target:
    """One figure against its target."""

    figure: str  #: P1..P5
    what: str
    value: str
    target: str
    passed: bool
    note: str = ""

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def line(self) -> str:
        note = f"  ({self.note})" if self.note else ""
        return f"{self.figure:<4}{self.what:<58} {self.value:>16}  target {self.target:<9} {self.verdict}{note}"


@dataclass
class Results:
    """The target lines of one benchmark: printed as they come, appended to ``--results``."""

    path: Path | None = None

    def add(self, figure: str, what: str, value: str, target: str, passed: bool, note: str = "") -> None:  # fmt: skip
        line = Target(figure, what, value, target, passed, note)
        print(line.line(), flush=True)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(asdict(line)) + "\n")


def add_common_arguments(parser: Any) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one repetition (a smoke test)"
    )
    parser.add_argument(
        "--results", type=Path, help="append the target lines to this JSON-lines file"
    )
