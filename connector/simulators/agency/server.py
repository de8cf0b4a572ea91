"""HTTP for the demo agency system: the agency REST contract v1 under /api/v1, control plane /_sim/."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re
import socket
import threading
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connector.simulators.agency.store import (
    CATEGORIES,
    STATUSES,
    UNITS,
    WIB,
    AgencyError,
    AgencyStore,
)
from connector.simulators.network import REQUEST_QUEUE_SIZE, checked_latency, wait_half

BASE = "/api/v1"
FAULT_MODES = frozenset(
    {"server_error", "unavailable", "rate_limit", "drop_after_commit", "malformed"}
)
#: Control-plane injection routes, and the list routes whose answers carry them.
INJECT_ROUTES = {"complaints": "complaints", "followups": "all_followups"}


class Dropped(Exception):
    """The connection was closed on purpose after the write (commit-then-drop)."""


class AgencyServer(ThreadingHTTPServer):
    """The server, holding the store, the token, counters and fault rules."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = REQUEST_QUEUE_SIZE

    def __init__(
        self,
        address: tuple[str, int],
        *,
        store: AgencyStore,
        token: str,
        control: bool,
        latency_ms: float = 0,
    ) -> None:
        super().__init__(address, Handler)
        self.store = store
        self.token = token
        self.control = control
        #: Network latency of every API request, in milliseconds (``POST /_sim/latency``).
        self.latency_ms = float(latency_ms)
        self.stopping = threading.Event()
        self.requests: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()
        self.faults: list[dict[str, Any]] = []
        self.fault_lock = threading.Lock()
        #: Raw records the next list answers carry (``POST /_sim/inject``), under fault_lock.
        self.injections: list[dict[str, Any]] = []

    def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add an injection from a control-plane body; ValueError names what is wrong."""
        route = body.get("route")
        if route not in INJECT_ROUTES:
            raise ValueError(f"route: one of {', '.join(sorted(INJECT_ROUTES))}")
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count: a positive integer")
        records = body.get("records", [])
        raw = body.get("raw_json", [])
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(records, list) or not isinstance(texts, list):
            raise ValueError("records and raw_json: lists")
        if "record" in body:
            records = [*records, body["record"]]
        if not all(isinstance(t, str) for t in texts) or not records + texts:
            raise ValueError("give record, records (JSON values) or raw_json (JSON texts)")
        injection = {"route": INJECT_ROUTES[route], "records": records, "raw_json": texts,
                     "count": count}  # fmt: skip
        with self.fault_lock:
            self.injections.append(injection)
        return injection

    def take_injections(self, route: str) -> list[dict[str, Any]]:
        """The injections the list answer of ``route`` being made carries (each counts one use)."""
        with self.fault_lock:
            taken = [i for i in self.injections if i["route"] == route and i["count"] > 0]
            for injection in taken:
                injection["count"] -= 1
            self.injections = [i for i in self.injections if i["count"] > 0]
        return taken

    def count_request(self, route: str) -> None:
        """Count an API request on ``route`` (from many threads at once)."""
        with self.fault_lock:
            self.requests[route] += 1

    def take_fault(self, route: str) -> str | None:
        with self.fault_lock:
            for rule in self.faults:
                if rule["route"] in (route, "*") and rule["count"] > 0:
                    rule["count"] -= 1
                    return str(rule["mode"])
        return None


class Handler(BaseHTTPRequestHandler):
    """One request."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: AgencyServer
    # Milliseconds of latency still owed to the API request being answered (set by _dispatch,
    # since one handler serves every request of a keep-alive connection); None when none is.
    _latency_owed: float | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the access log."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        if not (self.server.control and self.path.startswith("/_sim/")):
            self.send_error(501, "Unsupported method ('DELETE')")  # as before: the API has none
            return
        self._dispatch("DELETE")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              raw_json: dict[str, str] | None = None) -> None:  # fmt: skip
        text = "" if payload is None else json.dumps(payload)  # ASCII escapes keep lone surrogates
        for placeholder, raw in (raw_json or {}).items():  # injected JSON texts, sent as they are
            text = text.replace(json.dumps(placeholder), raw, 1)
        data = text.encode("utf-8", "surrogatepass")
        self._answering()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _answering(self) -> None:
        """An answer is about to go out: an API request waits the rest of its latency."""
        owed, self._latency_owed = self._latency_owed, None
        if owed is not None:
            wait_half(owed, self.server.stopping)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._latency_owed = None
        try:
            if url.path.startswith("/_sim/") and self.server.control:
                self._send(200, self._control(method, url.path, raw))
                return
            self._latency_owed = self.server.latency_ms
            wait_half(self._latency_owed, self.server.stopping)  # the request's way in
            if not url.path.startswith(BASE + "/"):
                raise AgencyError(404, "NOT_FOUND", "no such path")
            route, args = _route(method, url.path[len(BASE) :])
            self.server.count_request(route)
            if self.headers.get("Authorization") != f"Bearer {self.server.token}":
                raise AgencyError(401, "UNAUTHENTICATED", "a valid bearer token is required")
            fault = self.server.take_fault(route)
            if fault == "server_error":
                raise AgencyError(500, "SERVER_ERROR", "internal error")
            if fault == "unavailable":
                self._send(503, None)
                return
            if fault == "rate_limit":
                raise AgencyError(429, "TOO_MANY_REQUESTS", "slow down")
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            status, payload = self._api(method, route, args, params, raw, fault)
            raw_json = (
                inject_records(payload, self.server.take_injections(route))
                if route in INJECT_ROUTES.values()
                else None
            )
            if route == "attachment":
                self._answering()
                self.send_response(200)
                self.send_header("Content-Type", payload["content_type"])
                self.send_header("Content-Length", str(len(payload["data"])))
                self.end_headers()
                self.wfile.write(payload["data"])
                return
            if fault == "drop_after_commit":
                self._answering()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                finally:
                    raise Dropped
            self._send(status, payload, raw_json=raw_json)
        except AgencyError as error:
            headers = {"Retry-After": "2"} if error.status == 429 else None
            self._send(
                error.status,
                {"error": {"code": error.code, "message": error.message, "fields": error.fields}},
                headers,
            )
        except Dropped:
            return

    def _body(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise AgencyError(400, "BAD_REQUEST", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise AgencyError(400, "BAD_REQUEST", "the body must be a JSON object")
        return body

    def _api(
        self,
        method: str,
        route: str,
        args: list[str],
        params: dict[str, str],
        raw: bytes,
        fault: str | None,
    ) -> tuple[int, Any]:
        store = self.server.store
        with store.lock:
            if route == "categories":
                return 200, [{"code": c, "name": n, "parent_code": p} for c, n, p in CATEGORIES]
            if route == "units":
                return 200, [{"code": c, "name": n} for c, n in UNITS]
            if route == "statuses":
                return 200, [{"code": c, "name": n, "is_terminal": t} for c, n, t in STATUSES]
            if route in ("complaints", "all_followups"):
                return 200, self._list(route, params, fault)
            if route == "complaint":
                return 200, store.complaint_json(store.complaint(args[0]))
            if route == "followups":
                return 200, [store.followup_json(r) for r in store.followups(args[0])]
            if route == "attachment":
                return 200, store.file(args[0], args[1])
            return self._write(route, args, raw)

    def _list(self, route: str, params: dict[str, str], fault: str | None) -> dict[str, Any]:
        store = self.server.store
        limit_text = params.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 500:
            raise AgencyError(
                422,
                "VALIDATION_ERROR",
                "invalid limit",
                {"limit": ["a whole number from 1 to 500"]},
            )
        since = params.get("updated_since")
        if since is not None:
            try:
                parsed = datetime.fromisoformat(since)
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise AgencyError(
                    422,
                    "VALIDATION_ERROR",
                    "invalid updated_since",
                    {"updated_since": ["ISO 8601 with an offset"]},
                )
            since = parsed.astimezone(WIB).isoformat(timespec="microseconds")
        table = "complaints" if route == "complaints" else "followups"
        where = (
            {"json_extract(lapor, '$.id')": int(params["lapor_id"])}
            if route == "complaints" and params.get("lapor_id", "").isdigit()
            else {}
        )
        rows, cursor = store.page(
            table,
            updated_since=since,
            cursor=params.get("cursor"),
            limit=int(limit_text),
            where=where,
        )
        render = store.complaint_json if table == "complaints" else store.followup_json
        items = [render(r) for r in rows]
        if fault == "malformed" and items:
            items[0]["updated_at"] = str(items[0]["updated_at"])[:19]
        return {"items": items, "next_cursor": cursor}

    def _write(self, route: str, args: list[str], raw: bytes) -> tuple[int, Any]:
        store = self.server.store
        key = self.headers.get("Idempotency-Key")
        if route == "upload":
            file, raw = self._file(raw)  # the same file is the same request, whatever the boundary
            body: dict[str, Any] = {"file": file}
        else:
            body = self._body(raw)
        if route in ("create", "add_followup", "upload"):
            if not key:
                raise AgencyError(
                    400,
                    "IDEMPOTENCY_KEY_REQUIRED",
                    "writes that create need an Idempotency-Key header",
                )
            replayed = store.replay(key, route + ":" + "/".join(args), raw)
            if replayed is not None:
                return replayed
        store.db.execute("BEGIN IMMEDIATE")
        try:
            if route == "create":
                status, payload = 201, store.create_complaint(body)
            elif route == "add_followup":
                status, payload = 201, store.add_followup(args[0], body)
            elif route == "upload":
                name, content_type, data = body["file"]
                base = f"http://{self.headers.get('Host')}{BASE}"
                status, payload = 201, store.attach(args[0], name, content_type, data, base,
                                                    followup_id=args[1] if len(args) > 1 else None)  # fmt: skip
            else:
                status, payload = (
                    200,
                    store.patch_complaint(args[0], body, self.headers.get("If-Unmodified-Since")),
                )
            if key and route in ("create", "add_followup", "upload"):
                store.remember(key, route + ":" + "/".join(args), raw, status, payload)
            store.db.execute("COMMIT")
        except BaseException:
            store.db.execute("ROLLBACK")
            raise
        self.server.writes[route] += 1
        return status, payload

    def _file(self, raw: bytes) -> tuple[tuple[str, str, bytes], bytes]:
        """The ``file`` part of a multipart upload, and what identifies the request for its key."""
        content_type = self.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "multipart/form-data":
            raise AgencyError(
                400, "BAD_REQUEST", "an upload is multipart/form-data with a file part"
            )
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        for part in message.iter_parts():
            if (
                part.get_param("name", header="content-disposition") == "file"
                and part.get_filename()
            ):
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
                file = (str(part.get_filename()), part.get_content_type(), data)
                identity = json.dumps([file[0], file[1], hashlib.sha256(data).hexdigest()])
                return file, identity.encode()
        raise AgencyError(
            422, "VALIDATION_ERROR", "no file", {"file": ["a part named file, with a file name"]}
        )

    def _control(self, method: str, path: str, raw: bytes) -> Any:
        store, body = self.server.store, self._body(raw)
        with store.lock:
            if (method, path) == ("POST", "/_sim/inject"):
                try:
                    injection = self.server.inject(body)
                except (TypeError, ValueError) as error:
                    raise AgencyError(422, "VALIDATION_ERROR", str(error)) from None
                return {"route": body["route"], "count": injection["count"]}
            if (method, path) == ("DELETE", "/_sim/inject"):
                with self.server.fault_lock:
                    self.server.injections.clear()
                return {"ok": True}
            if (method, path) == ("GET", "/_sim/stats"):
                with self.server.fault_lock:
                    requests = dict(self.server.requests)
                return {
                    "requests": requests,
                    "writes": dict(self.server.writes),
                    "latency_ms": self.server.latency_ms,
                }
            if (method, path) == ("POST", "/_sim/latency"):
                try:
                    self.server.latency_ms = checked_latency(body.get("ms"))
                except ValueError as error:
                    raise AgencyError(
                        422, "VALIDATION_ERROR", str(error), {"ms": [str(error)]}
                    ) from None
                return {"latency_ms": self.server.latency_ms}
            if (method, path) == ("POST", "/_sim/faults"):
                if body.get("mode") not in FAULT_MODES:
                    raise AgencyError(
                        422, "VALIDATION_ERROR", "unknown mode", {"mode": sorted(FAULT_MODES)}
                    )
                with self.server.fault_lock:
                    self.server.faults.append(
                        {
                            "route": body.get("route", "*"),
                            "mode": body["mode"],
                            "count": int(body.get("count", 1)),
                        }
                    )
                return {"ok": True}
            if (method, path) == ("POST", "/_sim/refuse"):
                # Behave like an agency system that predates optional fields: refuse them (422).
                names = body.get("fields")
                if not isinstance(names, list) or not set(names) <= set(store.PATCHABLE):
                    raise AgencyError(422, "VALIDATION_ERROR", "fields: a list of PATCH fields",
                                      {"fields": sorted(store.PATCHABLE)})  # fmt: skip
                store.refused = set(names)
                return {"refused": sorted(store.refused)}
            if (method, path) == ("POST", "/_sim/complaints"):
                files = body.pop("files", [])
                created = store.create_complaint(
                    {"source": "internal", "status": "baru", "unit_code": "KANTAH-BDG", **body}
                )
                base = f"http://{self.headers.get('Host')}{BASE}"
                for f in files:
                    store.attach(
                        created["id"],
                        f["file_name"],
                        f["content_type"],
                        base64.b64decode(f["content_b64"]),
                        base,
                    )
                return store.complaint_json(store.complaint(created["id"]))
            if (method, path) == ("GET", "/_sim/complaints"):
                return [
                    store.complaint_json(r)
                    for r in store.db.execute("SELECT * FROM complaints ORDER BY seq").fetchall()
                ]
            match = re.fullmatch(r"/_sim/complaints/([^/]+)/(followups|status|edit|delete)", path)
            if method == "POST" and match and match.group(2) == "delete":
                return store.delete_complaint(match.group(1))
            if method == "POST" and match and match.group(2) == "followups":
                files = body.pop("files", [])
                followup = store.add_followup(match.group(1), {"author": "agency", **body})
                base = f"http://{self.headers.get('Host')}{BASE}"
                for f in files:
                    store.attach(match.group(1), f["file_name"], f["content_type"],
                                 base64.b64decode(f["content_b64"]), base, followup_id=followup["id"])  # fmt: skip
                return store.followup_json(
                    store.db.execute(
                        "SELECT * FROM followups WHERE id = ?", [followup["id"]]
                    ).fetchone()
                )
            if method == "POST" and match and match.group(2) == "edit":
                return store.patch_complaint(match.group(1), body, None)
            if method == "POST" and match:
                return store.patch_complaint(match.group(1), {"status": body.get("status")}, None)
        raise AgencyError(404, "NOT_FOUND", f"no control route {method} {path}")


def inject_records(payload: Any, injections: list[dict[str, Any]]) -> dict[str, str]:
    """Add injected records to a list answer's items (after the real ones).

    Returns the placeholders standing for injected JSON texts, which ``_send`` replaces.
    """
    raw_json: dict[str, str] = {}
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return raw_json
    for injection in injections:
        items.extend(injection["records"])
        for text in injection["raw_json"]:
            placeholder = f"\x00sim-raw-json:{len(raw_json)}"
            raw_json[placeholder] = text
            items.append(placeholder)
    return raw_json


def _route(method: str, path: str) -> tuple[str, list[str]]:
    table = [
        ("GET", r"/categories", "categories"), ("GET", r"/units", "units"), ("GET", r"/statuses", "statuses"),
        ("GET", r"/complaints", "complaints"), ("POST", r"/complaints", "create"),
        ("GET", r"/complaints/([^/]+)", "complaint"), ("PATCH", r"/complaints/([^/]+)", "patch"),
        ("GET", r"/complaints/([^/]+)/followups", "followups"),
        ("GET", r"/complaints/([^/]+)/attachments/([^/]+)", "attachment"), ("POST", r"/complaints/([^/]+)/followups", "add_followup"),
        ("POST", r"/complaints/([^/]+)/attachments", "upload"),
        ("POST", r"/complaints/([^/]+)/followups/([^/]+)/attachments", "upload"),
        ("GET", r"/followups", "all_followups"),
    ]  # fmt: skip
    for route_method, pattern, name in table:
        match = re.fullmatch(pattern, path)
        if match and route_method == method:
            return name, list(match.groups())
    raise AgencyError(404, "NOT_FOUND", "no such path")
