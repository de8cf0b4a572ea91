"""Under systemd the daemon says when it is ready, that it is alive, and when it stops.

A real ``AF_UNIX`` datagram socket stands in for systemd's ``$NOTIFY_SOCKET``; the daemon is
``lapor-connector run`` in a subprocess against both simulators.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connector.simulators.lapor import SimControl
from connector.systemd import Notifier
from tests.test_sync_cli import CLI_ENV, agency_system, config

FIXTURES = (agency_system, config)

#: systemd's watchdog timeout for the test daemon: it pings every 0.25 s.
WATCHDOG_USEC = 500_000


class NotifySocket:
    """What systemd listens on: a datagram socket collecting every notification."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float = 30) -> list[str]:
        """Collect datagrams until one holds ``line``; every message so far, in order."""
        deadline = time.monotonic() + timeout
        while not any(line in m.splitlines() for m in self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line} within {timeout} s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        return self.messages

    def receive(self, timeout: float = 10) -> str:
        """The next datagram."""
        self.sock.settimeout(timeout)
        message = self.sock.recv(4096).decode()
        self.messages.append(message)
        return message

    def count(self, line: str) -> int:
        return sum(line in m.splitlines() for m in self.messages)

    def drain(self) -> list[str]:
        """Every datagram still queued (the daemon has exited)."""
        self.sock.setblocking(False)
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return self.messages

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Daemons a test started; any still running at the end is killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_daemon(
    config: Path, notify: NotifySocket, daemons: list[subprocess.Popen[bytes]], **env: str
) -> subprocess.Popen[bytes]:
    """``lapor-connector run`` as systemd starts it (notification socket, watchdog)."""
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and package)
        [sys.executable, "-m", "connector", "run", "--config", str(config)],
        env={
            **os.environ,
            **CLI_ENV,
            "NOTIFY_SOCKET": str(notify.path),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    daemons.append(process)
    return process


def line_in(messages: list[str], line: str) -> int:
    """The index of the first message holding ``line``."""
    return next(i for i, m in enumerate(messages) if line in m.splitlines())


def test_the_daemon_notifies_ready_then_watchdog_then_stopping(
    config: Path, notify: NotifySocket, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """READY=1 after start-up, WATCHDOG=1 again and again, STOPPING=1 on SIGTERM, exit 0."""
    daemon = start_daemon(config, notify, daemons)
    notify.wait_for("READY=1")
    ready_at = line_in(notify.messages, "READY=1")
    while notify.count("WATCHDOG=1") < 3:
        notify.receive()
    assert line_in(notify.messages[ready_at:], "WATCHDOG=1") >= 0  # pings go on after READY
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
    messages = notify.drain()
    assert notify.count("READY=1") == 1
    assert notify.count("STOPPING=1") == 1
    assert line_in(messages, "STOPPING=1") > ready_at
    from connector.config import load_settings
    from connector.daemon import Daemon

    jobs = len(Daemon(load_settings(config, env=CLI_ENV)).jobs())
    assert f"STATUS=running {jobs} jobs" in messages[ready_at].splitlines()


def test_a_bad_configuration_exits_3_and_is_never_ready(
    config: Path, notify: NotifySocket, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """A configuration error exits 3 (RestartPreventExitStatus) before READY=1 is sent."""
    data = yaml.safe_load(config.read_text())
    data["lapor"]["page_size"] = "many"
    config.write_text(yaml.safe_dump(data))
    daemon = start_daemon(config, notify, daemons)
    assert daemon.wait(60) == 3
    assert notify.drain() == []


def test_broken_mappings_exit_3_and_are_never_ready(
    config: Path, notify: NotifySocket, tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """Mappings that do not load exit 3 before READY=1 (they are checked at start-up)."""
    broken = tmp_path / "mappings"
    broken.mkdir()
    data = yaml.safe_load(config.read_text())
    data["mappings"]["path"] = str(broken)
    config.write_text(yaml.safe_dump(data))
    daemon = start_daemon(config, notify, daemons)
    assert daemon.wait(60) == 3
    assert "READY=1" not in "\n".join(notify.drain())


def test_refused_credentials_at_start_exit_4_and_are_never_ready(
    config: Path, notify: NotifySocket, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """LAPOR! refusing the API key at start-up exits 4 (no restart loop), never READY=1."""
    daemon = start_daemon(config, notify, daemons, LAPOR_API_KEY="a-revoked-key")
    assert daemon.wait(60) == 4
    assert "READY=1" not in "\n".join(notify.drain())


def test_credentials_refused_while_running_exit_4(
    config: Path, notify: NotifySocket, control: SimControl, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """A persistent 401 after start-up stops the daemon with exit 4 (and STOPPING=1)."""
    daemon = start_daemon(config, notify, daemons)
    notify.wait_for("READY=1")
    control.add_fault("*", "unauthenticated")
    assert daemon.wait(60) == 4
    notify.drain()
    assert notify.count("STOPPING=1") == 1


# --- the protocol ---------------------------------------------------------------------------


def test_abstract_socket_names_are_reached(tmp_path: Path) -> None:
    """NOTIFY_SOCKET=@name is the abstract namespace: a leading NUL byte, no file."""
    name = f"lapor-connector-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        listener.settimeout(5)
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready("checked")
        assert listener.recv(4096) == b"READY=1\nSTATUS=checked"


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
    ids=["ours", "our-pid", "another-pid", "zero", "no-watchdog"],
)
def test_watchdog_pings_at_half_the_timeout_and_only_for_us(
    tmp_path: Path, env: dict[str, str], interval: float | None
) -> None:
    """WATCHDOG=1 every WATCHDOG_USEC/2, only when WATCHDOG_PID is unset or this process."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), **env})
    assert notifier.watchdog_interval == interval


def test_outside_systemd_nothing_is_sent(tmp_path: Path) -> None:
    """Without NOTIFY_SOCKET every notification is a no-op (no error, no socket)."""
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.active
    assert notifier.watchdog_interval is None
    notifier.ready()
    notifier.stopping()


def test_a_vanished_socket_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """If systemd's socket is gone the notification is dropped, not raised."""
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).watchdog()


def test_watchdog_pings_are_not_counted_and_a_deaf_systemd_never_hangs_the_daemon(
    config: Path, notify: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watchdog job pings while the flows run (not counted as runs); when nobody reads the
    socket and its queue is full, a notification is dropped and the daemon still stops."""
    import threading

    import connector.systemd
    from connector.config import load_settings
    from connector.daemon import Daemon

    for key, value in CLI_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(connector.systemd, "SEND_TIMEOUT", 0.05)
    notifier = Notifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "20000"})
    daemon = Daemon(load_settings(config), notifier=notifier)
    serving = threading.Thread(target=daemon.serve, kwargs={"max_runs": 3})
    serving.start()
    serving.join(timeout=60)
    assert not serving.is_alive(), "the daemon hung on a full notification socket"
    assert daemon.runs == 3
    notify.drain()
    assert notify.count("WATCHDOG=1") >= 1
    assert notify.count("READY=1") == 1
