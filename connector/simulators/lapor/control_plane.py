"""The simulator's control plane (test-only, never part of LAPOR!): JSON under /_sim/."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from connector.simulators.lapor import dialects, seed
from connector.simulators.lapor.workdays import add_workdays
from connector.simulators.lapor.world import ApiError, World, iso
from connector.simulators.network import checked_latency

if TYPE_CHECKING:
    from connector.simulators.lapor.server import SimServer


def _body(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ApiError(400, "BAD_REQUEST", "control plane bodies are JSON objects") from None
    if not isinstance(value, dict):
        raise ApiError(400, "BAD_REQUEST", "control plane bodies are JSON objects")
    return value


def _complaint_id(body: dict[str, Any]) -> int:
    value = body.get("complaint_id")
    if not isinstance(value, int):
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            "complaint_id: a complaint id is required",
            {"complaint_id": ["required"]},
        )
    return value


def _files(body: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """Files in a control-plane body: ``files: [{file_name, content_b64, content_type}]``."""
    files = body.get("files") or []
    try:
        return [(str(f["file_name"]), base64.b64decode(f["content_b64"], validate=True),
                 str(f.get("content_type") or "application/octet-stream")) for f in files]  # fmt: skip
    except (KeyError, TypeError, ValueError):
        raise _validation("files", "a list of {file_name, content_b64, content_type}") from None


def _validation(field: str, message: str) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", f"{field}: {message}", {field: [message]})


def _touch_ids(world: World, body: dict[str, Any]) -> list[int]:
    """The complaints ``POST /_sim/admin/touch`` names: ``ids``, or ``count`` (and ``status``)."""
    if ("ids" in body) == ("count" in body):
        raise _validation("ids", "give either ids (a list of complaint ids) or count")
    if "ids" in body:
        ids = body["ids"]
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise _validation("ids", "a list of complaint ids (integers)")
        return ids
    count, status = body["count"], body.get("status")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise _validation("count", "a whole number, 0 or more")
    if status is not None and status not in seed.STATUS_NAMES:
        raise _validation("status", f"one of {', '.join(seed.STATUS_NAMES)}")
    return world.own_ids(count, status)


def handle_control(
    server: SimServer, method: str, path: str, raw: bytes, query: str = ""
) -> tuple[int, Any]:
    """Serve one control-plane request; return (status, JSON payload)."""
    world = server.world
    body = _body(raw)
    with world.lock:
        if (method, path) == ("POST", "/_sim/reset"):
            world.reset(int(body.get("seed", 1)), int(body.get("complaints", 40)))
            server.faults.clear()
            server.last_list.clear()
            server.injections.clear()
            server.traffic.reset()
            return 200, {"ok": True}
        if (method, path) == ("GET", "/_sim/stats"):
            timeline = parse_qs(query).get("timeline", ["1"])[0] not in ("0", "false", "no")
            return 200, {
                "requests": dict(world.requests),
                "writes": dict(world.writes),
                "now": iso(world.now),
                "dialect": server.dialect.name,
                "latency_ms": server.latency_ms,
                **server.traffic.snapshot(timeline=timeline),
            }
        if (method, path) == ("POST", "/_sim/stats/reset"):
            server.reset_stats()
            return 200, {"ok": True}
        if (method, path) == ("POST", "/_sim/latency"):
            try:
                server.latency_ms = checked_latency(body.get("ms"))
            except ValueError as error:
                raise ApiError(422, "VALIDATION_ERROR", str(error), {"ms": [str(error)]}) from None
            return 200, {"latency_ms": server.latency_ms}
        if (method, path) == ("POST", "/_sim/admin/touch"):
            close = body.get("close", False)
            if not isinstance(close, bool):
                raise _validation("close", "true or false")
            touched = world.touch_many(_touch_ids(world, body), close=close)
            return 200, {"touched": touched, "at": iso(world.now)}
        if (method, path) == ("POST", "/_sim/dialect"):
            name = body.get("name")
            if not isinstance(name, str) or name not in dialects.DIALECTS:
                known = sorted(dialects.DIALECTS)
                raise ApiError(
                    422,
                    "VALIDATION_ERROR",
                    f"name: unknown dialect {name!r}; one of {', '.join(known)}",
                    {"name": [f"one of {', '.join(known)}"]},
                )
            server.dialect = dialects.DIALECTS[name]
            return 200, {"dialect": name}
        if (method, path) == ("POST", "/_sim/clock"):
            if "set" in body:
                world.set_clock(datetime.fromisoformat(str(body["set"])))
            elif "advance_workdays" in body:
                world.set_clock(add_workdays(world.now, int(body["advance_workdays"])))
            elif "advance_seconds" in body:
                world.set_clock(world.now + timedelta(seconds=float(body["advance_seconds"])))
            return 200, {"now": iso(world.now)}
        if (method, path) == ("POST", "/_sim/citizen/submit"):
            complaint_id = world.submit(body)
            for f in _files(body):  # the citizen's photos and documents
                world.attach(complaint_id, *f)
            return 201, {"complaint_id": complaint_id}
        if (method, path) == ("POST", "/_sim/citizen/reply"):
            return 201, {
                "id": world.reply(
                    _complaint_id(body), str(body.get("content", "")), "reporter", _files(body)
                )
            }
        if (method, path) == ("POST", "/_sim/citizen/attach"):
            complaint_id = _complaint_id(body)
            return 201, {"ids": [world.attach(complaint_id, *f) for f in _files(body)]}
        match = re.fullmatch(r"/_sim/files/(\d+)", path)
        if method == "GET" and match:
            stored = world.file(int(match.group(1)))
            return 200, {"file_name": stored["file_name"], "content_type": stored["content_type"],
                         "content_b64": base64.b64encode(stored["data"]).decode()}  # fmt: skip
        if (method, path) == ("POST", "/_sim/admin/note"):
            return 201, {
                "id": world.reply(_complaint_id(body), str(body.get("content", "")), "admin")
            }
        if (method, path) == ("POST", "/_sim/admin/dispose"):
            world.dispose(
                _complaint_id(body), int(body.get("institution_id", world.institution_id))
            )
            return 200, {"complaint_id": body["complaint_id"]}
        if (method, path) == ("POST", "/_sim/admin/edit"):
            changes = {k: v for k, v in body.items() if k != "complaint_id"}
            return 200, {"changed": world.edit(_complaint_id(body), changes)}
        if (method, path) == ("POST", "/_sim/admin/remove"):
            world.remove(_complaint_id(body))
            return 200, {"complaint_id": body["complaint_id"]}
        if method == "POST" and path in ("/_sim/admin/archive", "/_sim/admin/close"):
            world.admin_status(
                _complaint_id(body), "archived" if path.endswith("archive") else "done"
            )
            return 200, {"complaint_id": body["complaint_id"]}
        if (method, path) == ("POST", "/_sim/faults"):
            try:
                rule = server.faults.add(body)
            except ValueError as error:
                raise ApiError(422, "VALIDATION_ERROR", str(error)) from None
            return 201, {"id": rule.id}
        if (method, path) == ("DELETE", "/_sim/faults"):
            server.faults.clear()
            return 200, {"ok": True}
        if (method, path) == ("POST", "/_sim/inject"):
            try:
                injection = server.inject(body)
            except (TypeError, ValueError) as error:
                raise ApiError(422, "VALIDATION_ERROR", str(error)) from None
            return 201, {"route": injection.route, "count": injection.count}
        if (method, path) == ("DELETE", "/_sim/inject"):
            server.injections.clear()
            return 200, {"ok": True}
        if (method, path) == ("GET", "/_sim/complaints"):
            return 200, [_plain(c) for c in world.complaints.values()]
        match = re.fullmatch(r"/_sim/complaints/(\d+)/followups", path)
        if method == "GET" and match:
            return 200, [_plain(f) for f in world.followups.get(int(match.group(1)), [])]
    raise ApiError(404, "NOT_FOUND", f"no control-plane route {method} {path}")


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: iso(v) if isinstance(v, datetime) else v
        for k, v in record.items()
        if k not in ("logs", "status_logs")
    }
