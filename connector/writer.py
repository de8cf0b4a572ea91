"""One writer per state file, whatever starts it: the daemon, ``sync``, ``resync``, ``quarantine``.

Every command that can write anywhere (the state, the agency system, LAPOR!) holds an exclusive
``flock`` on ``<state>.lock`` for as long as it works; a second writer is refused at once with
its own exit code (8), naming who holds the lock. Two writers side by side is how a complaint
gets filed twice: both read "not filed yet", both file it. Read-only commands (``status``,
``log``, ``quarantine list``, ``probe``, ``sync --dry-run``) never take the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connector import errors
from connector.privacy import open_private
from connector.state import unusable_state_path


class WriterBusy(errors.ConnectorError):
    """Another connector process is writing with this state file; exit code 8."""


def lock_path(state_path: Path) -> Path:
    """The lock file beside the state file."""
    return state_path.with_name(state_path.name + ".lock")


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another connector process"
    if not isinstance(info, dict):
        return "another connector process"
    return f"{info.get('command', 'a connector command')} (pid {info.get('pid', '?')})"


@contextmanager
def writer_lock(state_path: Path, command: str) -> Iterator[None]:
    """Hold the state's writer lock for the block; raise ``WriterBusy`` if someone else has it."""
    path = lock_path(state_path)
    try:
        handle = open_private(path, "a+", encoding="utf-8")
    except OSError as error:
        raise unusable_state_path(state_path, error) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WriterBusy(
                f"{_holder(path)} is writing with {state_path} (lock {path}); run this "
                "again when it has finished, or stop the daemon first (read-only commands such "
                "as status, log and sync --dry-run work beside it)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "argv0": sys.argv[0]}))
        handle.flush()
        yield
    finally:
        handle.close()
