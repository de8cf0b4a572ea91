"""A consistent copy of the state file while the daemon runs: SQLite's online backup API.

The state is in WAL mode, so a reader never blocks the writer: the backup reads one snapshot
of the whole file (the daemon keeps writing beside it, no writer lock is taken) and writes it
to a new file created 0600, beside the destination, renamed into place only once it is whole
and passes SQLite's quick check. An existing destination is never overwritten unless asked.
The source is opened as it is (no migration), so a backup taken before an upgrade is the old
schema, restorable by the old version.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from connector.errors import ConfigError


@dataclass(frozen=True)
class BackupReport:
    """What was copied: where to, how many bytes, and the schema version it is at."""

    destination: Path
    size: int
    schema_version: int


class BackupRefused(ConfigError):
    """The backup cannot be made at these paths (exit code 3), said in one line naming it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__([problem], str(path))
        self.args = (f"{path}: {problem}",)


def backup_state(source: Path, destination: Path, *, force: bool = False) -> BackupReport:
    """Copy the state at ``source`` to ``destination`` (0600), consistent while it is in use."""
    if not source.is_file():
        raise BackupRefused(source, "no state file there; check --state or state.path")
    if destination.resolve() == source.resolve():
        raise BackupRefused(destination, "that is the state file itself; back up to another path")
    if destination.exists() and not force:
        raise BackupRefused(
            destination, "exists; choose a new file name, or pass --force to replace it"
        )
    if not destination.parent.is_dir():
        raise BackupRefused(destination.parent, "no such directory; create it first")
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        version = _copy(source, partial)
        if force:
            os.replace(partial, destination)
        else:
            os.link(partial, destination)  # fails, rather than overwrite, if one appeared
    except FileExistsError:
        raise BackupRefused(
            destination, "exists; choose a new file name, or pass --force to replace it"
        ) from None
    except OSError as error:
        raise BackupRefused(
            destination, f"cannot write the backup there ({error.strerror}); check permissions"
        ) from None
    finally:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return BackupReport(destination, destination.stat().st_size, version)


def _copy(source: Path, target: Path) -> int:
    """One snapshot of ``source`` into ``target`` through the backup API; its schema version."""
    try:
        # mode=rw: never create a missing state; no StateStore, so no migration of the source.
        with (
            contextlib.closing(
                sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
            ) as reader,
            contextlib.closing(sqlite3.connect(target)) as writer,
        ):
            reader.execute("PRAGMA busy_timeout = 30000")
            reader.backup(writer)
            writer.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            check = writer.execute("PRAGMA quick_check").fetchone()[0]
            version = int(writer.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as error:
        raise BackupRefused(
            source, f"is not a readable state file ({error}); nothing was written"
        ) from None
    if check != "ok":
        raise BackupRefused(source, f"the copy fails SQLite's quick check ({check})")
    return version
