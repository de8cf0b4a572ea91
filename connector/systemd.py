"""Tell systemd how the daemon is doing: the ``sd_notify`` protocol, written directly.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). Each message
is one datagram of ``KEY=value`` lines: ``READY=1`` once start-up checks passed, ``WATCHDOG=1``
to say the scheduler is alive, ``STOPPING=1`` on shutdown, ``STATUS=...`` for ``systemctl
status``. Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from connector.logs import get_logger

log = get_logger("systemd")

#: Seconds a notification may wait for room in systemd's queue before it is dropped.
SEND_TIMEOUT = 2.0


class Notifier:
    """Sends state changes to systemd's notification socket; a no-op when there is none."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)

    @property
    def active(self) -> bool:
        """True when running under systemd with a notification socket."""
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between two ``WATCHDOG=1`` pings (half the watchdog timeout), or None."""
        if self.address is None or self.watchdog_seconds is None:
            return None
        return self.watchdog_seconds / 2

    def ready(self, status: str = "") -> None:
        """Start-up is done: systemd may start what depends on us."""
        self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> None:
        """The scheduler is alive: reset systemd's watchdog timer."""
        self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> None:
        """Shutdown has begun (the job in flight still ends)."""
        self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> None:
        """A one-line status shown by ``systemctl status``."""
        self.send(f"STATUS={text}")

    def send(self, *lines: str) -> None:
        """Send one notification datagram; a failure is logged, never raised."""
        if self.address is None:
            return
        message = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # A receiver that stopped reading fills its queue; waiting for it for ever would
                # hang the scheduler's thread and the daemon's shutdown with it.
                sock.settimeout(SEND_TIMEOUT)
                sock.connect(self.address)
                sock.sendall(message)
        except OSError as error:
            # systemd may be restarting; the daemon's work matters more than the notification.
            log.warning("systemd_notify_failed", error=type(error).__name__)


def _socket_address(value: str) -> str | None:
    """The socket's address: a path, or an abstract name (``@`` becomes a leading NUL byte)."""
    if not value or not (value.startswith("/") or value.startswith("@")):
        return None
    return "\0" + value[1:] if value.startswith("@") else value


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog timeout in seconds when it is meant for this process, else None."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1_000_000
