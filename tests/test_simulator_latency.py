"""Network latency of both simulators: half on the way in, half on the way out, requests in parallel.

Real time is measured here (the simulators stand in for a network), so every bound is loose:
a lower bound on one request, and concurrency well under the serial sum.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import requests

from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.agency.server import AgencyServer
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.simulators.lapor.server import SimServer
from tests.conftest import API_KEY, AUTH, INSTITUTION_ID, TOKEN, plain_session

AGENCY_TOKEN = "latency-agency-token"
LATENCY_MS = 60.0


@pytest.fixture
def lapor() -> Iterator[LaporSimulator]:
    with LaporSimulator(
        complaints=12, api_key=API_KEY, token=TOKEN, institution_id=INSTITUTION_ID,
        latency_ms=LATENCY_MS,
    ).start() as simulator:  # fmt: skip
        yield simulator


@pytest.fixture
def agency(tmp_path: Path) -> Iterator[AgencySystem]:
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=3, latency_ms=LATENCY_MS
    ).start() as system:
        yield system


def lapor_call(sim: LaporSimulator) -> Callable[[requests.Session], requests.Response]:
    return lambda http: http.get(sim.base_url + "/masters/statuses", headers=AUTH, timeout=10)


def agency_call(system: AgencySystem) -> Callable[[requests.Session], requests.Response]:
    headers = {"Authorization": f"Bearer {AGENCY_TOKEN}"}
    return lambda http: http.get(system.base_url + "/statuses", headers=headers, timeout=10)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def concurrently(call: Callable[[requests.Session], requests.Response], clients: int) -> float:
    """Seconds for ``clients`` threads, each on its own connection, to get one answer each."""
    sessions = [plain_session() for _ in range(clients)]
    statuses: list[int] = []
    barrier = threading.Barrier(clients + 1)

    def client(http: requests.Session) -> None:
        barrier.wait()
        statuses.append(call(http).status_code)

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.monotonic()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - start
    assert statuses == [200] * clients
    return elapsed


@pytest.mark.parametrize("which", ["lapor", "agency"])
def test_one_request_takes_at_least_the_latency(which: str, request: pytest.FixtureRequest) -> None:
    """With 60 ms of latency, an API answer comes no sooner than 60 ms after the request."""
    server = request.getfixturevalue(which)
    call = lapor_call(server) if which == "lapor" else agency_call(server)
    http = plain_session()
    call(http)  # the connection is open: only the latency is timed
    response, elapsed = timed(lambda: call(http))
    assert response.status_code == 200
    assert elapsed >= LATENCY_MS / 1000


@pytest.mark.parametrize("which", ["lapor", "agency"])
def test_concurrent_requests_wait_in_parallel(which: str, request: pytest.FixtureRequest) -> None:
    """8 clients at once finish in well under 8 times the latency: the waits overlap."""
    server = request.getfixturevalue(which)
    call = lapor_call(server) if which == "lapor" else agency_call(server)
    assert concurrently(call, 8) < 8 * LATENCY_MS / 1000 / 2


def test_thirty_two_connections_at_once_are_all_served(lapor: LaporSimulator) -> None:
    """32 new connections at once are all accepted and served in parallel, none refused."""
    assert concurrently(lapor_call(lapor), 32) < 32 * LATENCY_MS / 1000 / 2


@pytest.mark.parametrize("server", [SimServer, AgencyServer])
def test_servers_thread_per_request_with_a_deep_backlog(server: type[Any]) -> None:
    """Both servers answer each request on its own daemon thread and queue 128 connections."""
    assert server.daemon_threads is True
    assert server.request_queue_size >= 128


def test_a_write_is_applied_halfway(lapor: LaporSimulator) -> None:
    """A follow-up is stored half the latency after it was sent, and answered half later."""
    control = SimControl(lapor.root_url)
    control.set_latency(600)
    held = next(
        c["id"]
        for c in lapor.state.complaints.values()
        if c["disposition_id"] == INSTITUTION_ID and c["status"] in ("verified", "in_process")
    )
    answered: list[float] = []

    def post() -> None:
        plain_session().post(lapor.base_url + "/complaints/followup/add", headers=AUTH, timeout=10,
                       json={"complaint_id": held, "content": "Di tengah jalan"})  # fmt: skip
        answered.append(time.monotonic())

    sent = time.monotonic()
    thread = threading.Thread(target=post)
    thread.start()
    while control.writes("followup_add") == 0:
        time.sleep(0.005)
    applied = time.monotonic()
    thread.join(timeout=10)
    assert applied - sent >= 0.29
    assert answered[0] - applied >= 0.15  # the other 300 ms, less the polling's own delay


def test_control_plane_is_not_delayed(lapor: LaporSimulator, agency: AgencySystem) -> None:
    """With two seconds of latency set, control-plane calls still answer at once."""
    for control in (SimControl(lapor.root_url), AgencyControl(agency.root_url)):
        control.set_latency(2000)
        stats, elapsed = timed(control.stats)
        assert stats["latency_ms"] == 2000
        assert elapsed < 1.0
        control.set_latency(0)


@pytest.mark.parametrize(
    ("value", "says"),
    [(-1, "negative"), (-0.5, "negative"), ("60", "a number"), (True, "a number"),
     (None, "a number"), ([60], "a number"), (float("nan"), "a number")],
    ids=["minus-one", "minus-half", "string", "boolean", "missing", "list", "nan"],
)  # fmt: skip
@pytest.mark.parametrize("which", ["lapor", "agency"])
def test_latency_must_be_a_number_not_below_zero(
    which: str, value: Any, says: str, request: pytest.FixtureRequest
) -> None:
    """POST /_sim/latency refuses a negative or non-number value with a 422 naming ms."""
    server = request.getfixturevalue(which)
    body = json.dumps({"ms": value})  # NaN too, which JSON parsers of the simulators accept
    response = plain_session().post(server.root_url + "/_sim/latency", data=body, timeout=5)
    assert response.status_code == 422
    assert "ms: " in response.text
    assert says in response.text


def test_latency_changes_at_run_time(agency: AgencySystem) -> None:
    """set_latency answers with the new value; stats show it."""
    control = AgencyControl(agency.root_url)
    assert control.set_latency(12.5) == 12.5
    assert control.stats()["latency_ms"] == 12.5


@pytest.mark.parametrize("command", ["lapor", "agency"])
def test_cli_offers_latency_ms(command: str) -> None:
    """simulate lapor and simulate agency take --latency-ms, a float of 0 or more, default 0."""
    from connector.cli.root import simulate_agency, simulate_lapor

    chosen = simulate_lapor if command == "lapor" else simulate_agency
    option = next(p for p in chosen.params if p.name == "latency_ms")
    assert isinstance(option.type, click.FloatRange)
    assert option.type.min == 0
    assert option.default == 0
