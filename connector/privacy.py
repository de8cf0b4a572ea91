"""Personal data kept only as long as it is needed (UU PDP 27/2022), in files only we can read.

A reporter's name, e-mail, phone, NIK and address reach the state only inside a write that
needs them (an agency create, a LAPOR! C7). Once that write is settled (done, or given up on)
its payload keeps a redacted form: the reporter object becomes ``{"redacted": true, "fields":
[...]}`` (which fields it had, not their values) and free text is scrubbed of the reporter's
values and of personal-data shapes. Quarantined records and error texts are redacted the same
way before they are stored. Files the connector creates (the state, its WAL, the lock, the
anchor, exports) are 0600 in a 0700 folder. See docs/privacy.md.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from connector import models as m
from connector.disclosure import Redactor
from connector.errors import FieldProblem, RecordError
from connector.logs import REDACTED, get_logger, scrub

log = get_logger(__name__)

#: Keys (any case, in any record) whose value is a person's identity, never kept.
PERSONAL_FIELDS = frozenset(
    {
        "reporter", "reporter_name", "name", "nameuser", "email", "emailuser", "phone",
        "phoneuser", "nik", "address", "alamat", "user", "pelapor",
    }
)  # fmt: skip
#: Free-text keys of a payload: kept (the complaint's own text), scrubbed of the reporter.
_TEXT_FIELDS = frozenset({"title", "content", "description", "note", "text", "file_name"})
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’|«[^»]*»")

_umask_lock = threading.Lock()
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


# --- what is kept of a settled write ---------------------------------------------------------


def reporters_in(value: Any) -> list[m.Reporter]:
    """Every reporter object found in a payload (to redact texts that echo one)."""
    found: list[m.Reporter] = []
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if str(key).lower() == "reporter" and isinstance(inner, Mapping):
                known = {k: inner.get(k) for k in ("name", "email", "phone")}
                if any(isinstance(v, str) and v for v in known.values()):
                    found.append(
                        m.Reporter(**{k: v for k, v in known.items() if isinstance(v, str)})
                    )
            else:
                found.extend(reporters_in(inner))
    elif isinstance(value, list):
        for inner in value:
            found.extend(reporters_in(inner))
    return found


def _placeholder(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        if value.get("redacted") is True:
            return dict(value)
        return {"redacted": True, "fields": sorted(str(k) for k, v in value.items() if v)}
    return {"redacted": True}


def _redact(value: Any, redact_text: Redactor, *, every_text: bool) -> Any:
    """Personal fields replaced; texts scrubbed (every string, or only the free-text fields:
    a payload's ids, keys and fingerprints stay exactly as they were)."""
    if isinstance(value, Mapping):
        kept: dict[Any, Any] = {}
        for key, inner in value.items():
            name = str(key).lower()
            if name in PERSONAL_FIELDS:
                kept[key] = _placeholder(inner)
            elif isinstance(inner, str):
                kept[key] = redact_text(inner) if every_text or name in _TEXT_FIELDS else inner
            else:
                kept[key] = _redact(inner, redact_text, every_text=every_text)
        return kept
    if isinstance(value, list):
        return [_redact(inner, redact_text, every_text=every_text) for inner in value]
    if isinstance(value, str) and every_text:
        return redact_text(value)
    return value


def redacted_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A settled write's payload as kept: ids, states and field names stay (to look the write up
    or explain it), the reporter becomes a placeholder, texts lose the reporter's values."""
    result = _redact(payload, Redactor(reporters_in(payload)), every_text=False)
    assert isinstance(result, dict)
    return result


def redacted_record(raw: Any, *, reporters: list[m.Reporter] | None = None) -> Any:
    """A record as quarantined: personal fields replaced, texts scrubbed (the replay reads the
    record again from its source, so nothing needed is lost)."""
    return _redact(raw, Redactor([*reporters_in(raw), *(reporters or [])]), every_text=True)


def redacted_text(text: str, payload: Mapping[str, Any] | None = None) -> str:
    """An error text as stored: no reporter value from the payload, no personal-data shape."""
    return Redactor(reporters_in(payload or {}))(text)


def redacted_problems(error: RecordError, payload: Mapping[str, Any]) -> tuple[FieldProblem, ...]:
    """A refusal's field problems as quarantined: a message echoing the reporter loses it."""
    problems = error.problems or (FieldProblem("(record)", str(error)),)
    return tuple(FieldProblem(p.path, redacted_text(p.problem, payload)) for p in problems)


def rule_text(messages: list[str] | str) -> str:
    """A field message from a remote error body, without the values it echoes: quoted parts go,
    and personal-data shapes. What is left names the rule ("must be at most 150 characters")."""
    joined = "; ".join(messages) if isinstance(messages, list) else messages
    return scrub(_QUOTED.sub(REDACTED, joined))


# --- files readable by the service account only ------------------------------------------------


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created in the block get no group or other permission.

    The umask is the process's: one thread at a time changes it, so it is always restored."""
    with _umask_lock:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)


def private_dir(path: Path) -> None:
    """Create a folder (and its parents) 0700 when the connector is the one creating it."""
    if not path.exists():
        with private_umask():
            path.mkdir(parents=True, exist_ok=True)


def tighten(path: Path) -> None:
    """Make an existing file 0600 if it is readable or writable by others, saying so."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        log.warning("file_mode_tightened", path=str(path), was=oct(mode), now=oct(mode & 0o700))


def open_private(path: Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """Open a file for writing, created 0600 (an existing one is made 0600 too)."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    if "+" in mode:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    fd = os.open(path, flags, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, mode, **kwargs)
