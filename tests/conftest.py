"""Shared fixtures: an injected clock, settings as an agency would write them, the LAPOR! simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from connector.clock import FakeClock
from connector.config import LaporSettings, settings_from_mapping
from connector.lapor.client import LaporClient

if TYPE_CHECKING:
    from connector.simulators.lapor import LaporSimulator, SimControl

API_KEY = "test-api-key-0001"
TOKEN = "{11111111-2222-3333-4444-555555555555}"
INSTITUTION_ID = 145
#: The credentials the simulator fixture accepts, as request headers (for raw HTTP tests).
AUTH = {"Authorization": f"Bearer {API_KEY}", "token": TOKEN}


def plain_session() -> requests.Session:
    """A session that reads no proxy settings from the environment (loopback tests)."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture
def http() -> requests.Session:
    """A plain HTTP session for tests that speak to a simulator directly."""
    return plain_session()


def make_settings(base_url: str, **lapor: Any) -> LaporSettings:
    """LAPOR! settings through the real loader, secrets through environment references."""
    env = {"LAPOR_API_KEY": lapor.pop("api_key_value", API_KEY), "LAPOR_TOKEN": TOKEN}
    raw = {
        "lapor": {
            "base_url": base_url,
            "institution_id": INSTITUTION_ID,
            "api_key": "${LAPOR_API_KEY}",
            "token": "${LAPOR_TOKEN}",
            "requests_per_minute": 0,
            "timeouts": {"connect": 2, "read": 2},
            **lapor,
        }
    }
    return settings_from_mapping(raw, env=env).lapor


@pytest.fixture
def clock() -> FakeClock:
    """A clock that only moves when slept on or advanced."""
    return FakeClock()


def all_dialects() -> list[str]:
    """Every encoding the simulator can serve of what the contract leaves open."""
    from connector.simulators.lapor.dialects import DIALECTS

    return list(DIALECTS)


@pytest.fixture
def dialect() -> str:
    """The simulator's dialect; a module runs against every one by overriding this fixture
    with ``params=all_dialects()`` (the end-to-end suites do)."""
    return "contract"


@pytest.fixture
def sim(dialect: str) -> Iterator[LaporSimulator]:
    """A real LAPOR! simulator on a free loopback port, seeded, with its control plane on."""
    from connector.simulators.lapor import LaporSimulator

    simulator = LaporSimulator(
        seed=7, complaints=30, api_key=API_KEY, token=TOKEN, institution_id=INSTITUTION_ID,
        dialect=dialect,
    ).start()  # fmt: skip
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def control(sim: LaporSimulator) -> SimControl:
    """The simulator's control plane (faults, clock, citizen and admin actions, counters)."""
    from connector.simulators.lapor import SimControl

    return SimControl(sim.root_url)


@pytest.fixture
def make_client(sim: LaporSimulator, clock: FakeClock) -> Iterator[Callable[..., LaporClient]]:
    """Build clients of the simulator with setting overrides; all are closed afterwards."""
    clients: list[LaporClient] = []

    def factory(**lapor: Any) -> LaporClient:
        client = LaporClient(make_settings(sim.base_url, **lapor), clock)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., LaporClient]) -> LaporClient:
    """A client of the simulator with default settings."""
    return make_client()
