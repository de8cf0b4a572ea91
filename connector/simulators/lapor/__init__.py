"""A LAPOR! v3 simulator that implements ``shared/spec/lapor-v3-contract.md``, failures included.

It is an independent implementation of the contract (it imports nothing from ``connector``), so
tests of the connector against it say something about the real service.
"""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from types import TracebackType

from connector.simulators.lapor.control import SimControl
from connector.simulators.lapor.dialects import DEFAULT_DIALECT, DIALECTS
from connector.simulators.lapor.faults import FaultBook
from connector.simulators.lapor.server import BASE_PATH, SimServer, log_ready
from connector.simulators.lapor.world import World

__all__ = ["DIALECTS", "LaporSimulator", "SimControl", "serve_forever"]

DEFAULT_TOKEN = "{8F2C6A51-3D4B-4E0A-9C1F-7A2B5D6E8F90}"  # noqa: S105 (the simulator's demo token)


class LaporSimulator:
    """A LAPOR! simulator on a loopback port, served from a background thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 1,
        complaints: int = 40,
        api_key: str = "sim-api-key",
        token: str = DEFAULT_TOKEN,
        institution_id: int = 145,
        control: bool = True,
        requests_per_minute: int = 0,
        start_time: datetime | None = None,
        dialect: str = DEFAULT_DIALECT,
        latency_ms: float = 0,
    ) -> None:
        self.api_key = api_key
        self.token = token
        self.institution_id = institution_id
        self.state = World(
            seed_value=seed, complaints=complaints, institution_id=institution_id, start=start_time
        )
        self._server = SimServer(
            (host, port),
            world=self.state,
            faults=FaultBook(seed),
            api_key=api_key,
            token=token,
            requests_per_minute=requests_per_minute,
            control=control,
            dialect=dialect,
            latency_ms=latency_ms,
        )
        self.root_url = f"http://{host}:{self._server.server_port}"
        self.base_url = self.root_url + BASE_PATH
        self._thread: threading.Thread | None = None

    @property
    def dialect(self) -> str:
        """The name of the dialect the simulator currently speaks."""
        return self._server.dialect.name

    def set_dialect(self, name: str) -> None:
        """Speak another dialect from the next request on (KeyError for an unknown name)."""
        self._server.dialect = DIALECTS[name]

    def start(self) -> LaporSimulator:
        """Serve in a daemon thread; return self."""
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="lapor-sim",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: slow answers are released at once."""
        self._server.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LaporSimulator:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    *,
    host: str,
    port: int,
    seed: int,
    complaints: int,
    api_key: str,
    token: str,
    institution_id: int,
    requests_per_minute: int,
    control: bool,
    dialect: str = DEFAULT_DIALECT,
    latency_ms: float = 0,
) -> None:
    """Run a simulator in the foreground until SIGINT or SIGTERM."""
    simulator = LaporSimulator(
        host=host, port=port, seed=seed, complaints=complaints, api_key=api_key, token=token,
        institution_id=institution_id, requests_per_minute=requests_per_minute, control=control,
        dialect=dialect, latency_ms=latency_ms,
    ).start()  # fmt: skip
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    log_ready(f"LAPOR! simulator ready: {simulator.base_url} (dialect: {dialect})")
    log_ready(f"  dialect {dialect}: {DIALECTS[dialect].describe()}")
    log_ready(f"  institution_id: {institution_id}")
    log_ready(f"  api key: {api_key}")
    log_ready(f"  token: {token}")
    if control:
        log_ready(f"  control plane: {simulator.root_url}/_sim/")
    log_ready(
        f"  {complaints} complaints (seed {seed}); rate limit: {requests_per_minute or 'none'}/minute; "
        f"latency: {latency_ms:g} ms; Ctrl-C stops"
    )
    stopped.wait()
    simulator.stop()
