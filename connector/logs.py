"""Logging as events (structlog): JSON lines when not on a terminal, with personal data redacted;
the standard library's logging (APScheduler, urllib3) goes the same way.

Two guards keep secrets and personal data out of every line: values of personal or secret keys
(``reporter``, ``email``, ``token`` ...) are replaced, and every string is scrubbed of the
registered secrets (API key, token) and of anything shaped like an e-mail, phone number or NIK.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "<redacted>"

#: Keys whose values never reach a log line.
PERSONAL_KEYS = frozenset(
    {
        "reporter", "name", "reporter_name", "email", "phone", "nik", "address",
        "api_key", "token", "authorization", "auth", "password", "secret", "content",
    }
)  # fmt: skip

_PATTERNS = (
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail
    re.compile(r"(?:\+62|\b62|\b0)[\s-]?8\d{1,3}(?:[\s-]?\d{3,4}){2}\b"),  # Indonesian mobile
    re.compile(r"\b\d{16}\b"),  # NIK (national identity number)
)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Scrub ``value`` from every log line and error text from now on."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """Replace registered secrets and personal-data shapes in ``text``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in PERSONAL_KEYS else _scrub_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub_value(v) for v in value]
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact personal and secret keys, scrub every string."""
    for key in list(event_dict):
        if key.lower() in PERSONAL_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub_value(event_dict[key])
    return event_dict


#: Marks the handler ``configure`` installs, so configuring again replaces it.
_HANDLER_NAME = "lapor-connector"


def configure(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog and the standard library's logging for the whole process.

    Both go through one handler and the same processors, redaction included: the connector's
    own events and every other library's records (APScheduler, urllib3) come out as one JSON
    object per line off a terminal (a traceback is the ``exception`` field), or as readable
    console lines on one.
    """
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    numeric = logging.getLevelName(level)
    stamped: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Every string is scrubbed again after the traceback became one (format_exc_info).
    rendering: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    rendering += [structlog.processors.format_exc_info, redact, renderer]
    handler = logging.StreamHandler(out) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=rendering,
            # Another library's record: its logger's name as the component, redacted at once
            # (before any other handler, e.g. a test's capture, can see it).
            foreign_pre_chain=[*stamped, _component_from_logger, redact],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    structlog.configure(
        processors=[
            *stamped,
            redact,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    # urllib3 logs full URLs with query strings at DEBUG; keep it quiet whatever our level.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    # APScheduler says "Running job ..." twice a run at INFO; its warnings and errors still come.
    logging.getLogger("apscheduler").setLevel(max(numeric, logging.WARNING))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it per command)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _component_from_logger(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    if record is not None:
        event_dict.setdefault("component", record.name)
    return event_dict


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name)
