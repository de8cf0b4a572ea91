"""JSON from a service we do not control: decoded without losing a page to one poison record.

Shared by both wire formats (``connector/lapor``, ``connector/adapters``): what is generic about
reading another system's JSON lives here, what each system calls its fields stays in its module.

- ``decode_json``: the fast C decoder first; only when it fails on a poison record (nesting the
  json module cannot follow, an integer of thousands of digits) is the text decoded again with
  that part cut out, so the reader can refuse that one record and keep the rest of the page;
- ``too_deep`` / ``shallow``: records nested deeper than ``MAX_NESTING`` are refused before
  validation (nothing downstream, pydantic, json or SQLite, has to recurse through them), and
  kept in quarantine cut to that depth;
- ``MAX_SQLITE_INT``: the largest id or number a state file can hold.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import requests

#: Deepest nesting a record may have (real records go four or five levels deep).
MAX_NESTING = 32
#: Containers nested deeper than this are cut out (as ``null``) when a body is decoded again: the
#: json module recurses once a level and fails past about 1,000.
MAX_DECODE_DEPTH = 200
#: Integers with more digits stay text (Python refuses to convert past 4,300; no field holds one).
MAX_INT_DIGITS = 1000
#: SQLite INTEGER columns hold 64-bit signed values.
MAX_SQLITE_INT = 2**63 - 1

_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def decode_json(response: requests.Response) -> Any:
    """The decoded body, or None when it is empty or not JSON (a malformed answer)."""
    if not response.content:
        return None
    try:
        return response.json()  # the fast path: C-level decoding of every number
    except RecursionError:
        pass  # a poison record nested too deep: cut it out below
    except ValueError as error:
        if "digits" not in str(error):  # not JSON at all
            return None
    try:  # a poison record: an integer of thousands of digits, or nesting json cannot follow
        return json.loads(cut_deep_json(response.text), parse_int=_int_or_text)
    except (ValueError, RecursionError):
        return None


def _int_or_text(digits: str) -> int | str:
    return int(digits) if len(digits) <= MAX_INT_DIGITS else digits


def cut_deep_json(text: str, limit: int = MAX_DECODE_DEPTH) -> str:
    """``text`` with every array or object nested deeper than ``limit`` replaced by ``null``."""
    parts: list[str] = []
    depth, kept_until, cut_from = 0, 0, -1
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth == limit + 1:
                cut_from = match.start()
        elif token in ("]", "}"):
            if depth == limit + 1 and cut_from >= 0:
                parts += [text[kept_until:cut_from], "null"]
                kept_until, cut_from = match.end(), -1
            depth -= 1
    parts.append(text[kept_until:])
    return "".join(parts)


_SCALARS = (str, int, float, bool, type(None))


def _container(value: object) -> bool:
    return isinstance(value, (dict, list, tuple)) or (
        not isinstance(value, _SCALARS) and isinstance(value, Mapping)
    )


def too_deep(raw: object, limit: int = MAX_NESTING) -> str | None:
    """The top-level field under which ``raw`` nests deeper than ``limit``, or None.

    Only containers are walked (a decoded answer is mostly scalars): this runs on every record."""
    if not _container(raw):
        return None
    if limit <= 0:
        return "(record)"
    stack: list[tuple[object, int, str]] = [(raw, 0, "(record)")]
    while stack:
        value, depth, field_name = stack.pop()
        pairs = value.items() if isinstance(value, Mapping) else enumerate(value)  # type: ignore[arg-type]
        for key, child in pairs:
            if type(child) in _SCALARS or not _container(child):
                continue
            name = field_name if depth else str(key)[:40]
            if depth + 1 >= limit:
                return name
            stack.append((child, depth + 1, name))
    return None


def shallow(raw: object, limit: int = MAX_NESTING) -> object:
    """``raw`` with whatever nests deeper than ``limit`` replaced by a marker, to keep in quarantine."""
    if isinstance(raw, Mapping):
        if limit <= 0:
            return "(nested too deep)"
        return {str(k): shallow(v, limit - 1) for k, v in raw.items()}
    if isinstance(raw, (list, tuple)):
        return "(nested too deep)" if limit <= 0 else [shallow(v, limit - 1) for v in raw]
    return raw
