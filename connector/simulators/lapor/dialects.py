"""Dialects: every plausible encoding of what the contract leaves open ([INF] items of sections 2 and 4).

The world renders one canonical answer; a ``Dialect`` rewrites it the way a particular build of
the real service might encode it: timestamp formats, numeric strings, 0/1 booleans, ``""`` for
blanks, a null reporter, a missing ``status_code`` or ``deadlines``, unknown extra fields.

``apply`` builds a new answer (never changing the one it is given) and works only inside the envelope's ``results`` (or on the bare array of
the legacy ``gettopics``): ``status``, ``message``, ``code`` and ``errors`` are never touched, and
neither are control-plane answers, error answers or binary downloads (the server never passes
them here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from connector.simulators.lapor.workdays import WIB

Timestamps = Literal["contract", "iso", "wib"]
Deadlines = Literal["iso", "date", "absent"]
Numbers = Literal["int", "string"]
Booleans = Literal["bool", "int01", "string01", "string_tf"]
Blanks = Literal["null", "empty"]
Reporter = Literal["object", "null"]


@dataclass(frozen=True)
class Dialect:
    """How one variant of the service encodes the open points of the contract."""

    name: str
    timestamps: Timestamps = "contract"
    deadlines: Deadlines = "iso"
    numbers: Numbers = "int"
    booleans: Booleans = "bool"
    blanks: Blanks = "null"
    reporter: Reporter = "object"
    status_code: bool = True
    extras: bool = False
    tracking_id_int: bool = False
    #: C1 items and the C2 detail also carry ``followups_count`` and ``last_followup_at`` (the
    #: server asks the world for them: they are facts, not an encoding).
    followup_counts: bool = False

    def describe(self) -> str:
        """The traits that differ from the contract dialect, for logs and docs."""
        base = Dialect(name="contract")
        changed = [
            f"{name}={getattr(self, name)}"
            for name in TRAITS
            if getattr(self, name) != getattr(base, name)
        ]
        return ", ".join(changed) or "the contract's default reading"


TRAITS = ("timestamps", "deadlines", "numbers", "booleans", "blanks", "reporter",
          "status_code", "extras", "tracking_id_int", "followup_counts")  # fmt: skip

DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(name="contract"),
        Dialect(name="iso", timestamps="iso"),
        Dialect(name="wib", timestamps="wib", deadlines="date"),
        Dialect(name="php", numbers="string", booleans="string01", blanks="empty"),
        Dialect(name="mysql", booleans="int01", tracking_id_int=True, extras=True),
        Dialect(name="sparse", reporter="null", deadlines="absent", status_code=False,
                blanks="empty", extras=True),
        Dialect(name="legacy", timestamps="wib", deadlines="date", numbers="string",
                booleans="string_tf", reporter="null", status_code=False, extras=True),
        Dialect(name="counts", followup_counts=True),
    )
}  # fmt: skip
DEFAULT_DIALECT = "contract"

# Which timestamp fields the contract writes as d-m-Y H:i:s (the rest are ISO 8601).
DMY_FIELDS = frozenset({"created_at", "timestamp", "date"})
ISO_FIELDS = frozenset({"updated_at", "server_time", "last_followup_at"})
DEADLINE_FIELDS = frozenset({"verify_by", "first_followup_by", "auto_close_at"})
KEEP_NULL = frozenset({"next_page_url", "reporter"})

# Per route: where the complaint objects and the follow-up objects sit inside ``results``.
COMPLAINT_ROUTES = {"inbox": "list", "complaint": "data", "create": "complaint"}
FOLLOWUP_ROUTES = {"followups": "list", "followup_add": "data"}

DMY_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})$")
CHANNEL_NAMES = {13: "Institusi", 26: "WhatsApp"}


def get(name: str) -> Dialect:
    """The named dialect; KeyError naming the known ones otherwise."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise KeyError(f"unknown dialect {name!r}; one of {sorted(DIALECTS)}") from None


def parse_timestamp(value: str) -> datetime | None:
    """An aware datetime from ISO 8601 with offset or d-m-Y H:i:s (WIB); None otherwise."""
    match = DMY_RE.match(value)
    if match:
        day, month, year, hour, minute, second = (int(g) for g in match.groups())
        try:
            return datetime(year, month, day, hour, minute, second, tzinfo=WIB)
        except ValueError:
            return None
    if "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None  # a naive value is left alone


def _iso(moment: datetime) -> str:
    return moment.astimezone(WIB).isoformat(timespec="seconds")


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wib(moment: datetime) -> str:
    return moment.astimezone(WIB).strftime("%d-%m-%Y %H:%M:%S")


def apply(dialect: Dialect, route: str, payload: Any) -> Any:
    """The answer ``payload`` of ``route`` as ``dialect`` encodes it (a new object)."""
    # _encode builds every dict and list anew, so only what the reshaping changes is copied
    # first (a shallow copy of each complaint and follow-up object): no deep copy of a page.
    if isinstance(payload, list):  # the legacy gettopics bare array
        return _encode(dialect, payload, None)
    if not isinstance(payload, dict) or "results" not in payload:
        return payload
    out = dict(payload)  # the envelope's own keys stay as they are
    results = payload["results"]
    if isinstance(results, dict):
        results = dict(results)
        for complaint in _own_objects(results, COMPLAINT_ROUTES.get(route)):
            _reshape_complaint(dialect, complaint)
        for followup in _own_objects(results, FOLLOWUP_ROUTES.get(route)):
            _reshape_followup(dialect, followup)
    out["results"] = _encode(dialect, results, None)
    return out


def _own_objects(results: dict[str, Any], where: str | None) -> list[dict[str, Any]]:
    """The objects at ``where`` in ``results``, each replaced there by a shallow copy first."""
    if where == "list":
        found = results.get("data")
        if not isinstance(found, list):
            return []
        results["data"] = [dict(r) if isinstance(r, dict) else r for r in found]
        return [r for r in results["data"] if isinstance(r, dict)]
    if where is not None and isinstance(results.get(where), dict):
        results[where] = dict(results[where])
        return [results[where]]
    return []


def _reshape_complaint(dialect: Dialect, c: dict[str, Any]) -> None:
    if not dialect.status_code:
        c.pop("status_code", None)
    if dialect.deadlines == "absent":
        c.pop("deadlines", None)
    reporter = c.get("reporter")
    if (
        dialect.reporter == "null"
        and isinstance(reporter, dict)
        and all(v is None for v in reporter.values())
    ):
        c["reporter"] = None
    tracking = c.get("tracking_id")
    if dialect.tracking_id_int and isinstance(tracking, str) and tracking.isdigit():
        c["tracking_id"] = int(tracking)
    if dialect.extras:
        channel = c.get("channel")
        c["kanal_name"] = (
            CHANNEL_NAMES.get(channel, "Lainnya") if isinstance(channel, int) else "Lainnya"
        )
        c["_links"] = {"self": f"/lapor/3.0.0/complaints/{c.get('id')}/complaint"}
        c["rating_avg"] = None
        c["is_pinned"] = False


def _reshape_followup(dialect: Dialect, f: dict[str, Any]) -> None:
    if dialect.extras:
        f["_links"] = {"self": f"/lapor/3.0.0/followups/{f.get('id')}"}
        f["rating"] = None
        f["user_avatar"] = None
        f["is_read"] = True


def _encode(dialect: Dialect, value: Any, key: str | None, in_deadlines: bool = False) -> Any:
    """Encode one value found under ``key`` (recursively)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "deadlines" and isinstance(v, dict):
                out[k] = {dk: _encode(dialect, _deadline(dialect, dv), dk, in_deadlines=True)
                          for dk, dv in v.items()}  # fmt: skip
            else:
                out[k] = _encode(dialect, v, k)
        return out
    if isinstance(value, list):
        return [_encode(dialect, v, key) for v in value]
    if value is None:
        return "" if dialect.blanks == "empty" and key not in KEEP_NULL else None
    if isinstance(value, bool):
        return _boolean(dialect, value)
    if isinstance(value, int):
        return str(value) if dialect.numbers == "string" else value
    if isinstance(value, str) and not in_deadlines and key in DMY_FIELDS | ISO_FIELDS:
        return _timestamp(dialect, key, value)
    return value


def _boolean(dialect: Dialect, value: bool) -> Any:
    if dialect.booleans == "int01":
        return int(value)
    if dialect.booleans == "string01":
        return "1" if value else "0"
    if dialect.booleans == "string_tf":
        return "true" if value else "false"
    return value


def _timestamp(dialect: Dialect, key: str | None, value: str) -> str:
    moment = parse_timestamp(value)
    if moment is None:
        return value
    if dialect.timestamps == "wib":
        return _wib(moment)
    if dialect.timestamps == "iso":
        # Both offsets occur: the fields the contract writes as d-m-Y come out in UTC ("Z").
        return _iso_utc(moment) if key in DMY_FIELDS else _iso(moment)
    return _wib(moment) if key in DMY_FIELDS else _iso(moment)


def _deadline(dialect: Dialect, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    moment = parse_timestamp(value)
    if moment is None:
        return value
    if dialect.deadlines == "date":
        return moment.astimezone(WIB).date().isoformat()
    return _iso(moment)
