"""The simulator's HTTP server: LAPOR! v3 under /lapor/3.0.0, legacy gettopics, control plane /_sim/."""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import functools
import json
import math
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from connector.simulators.lapor import dialects, seed
from connector.simulators.lapor.control_plane import handle_control
from connector.simulators.lapor.faults import FaultBook, FaultRule
from connector.simulators.lapor.traffic import DROPPED, Arrival, SlidingWindow, Traffic
from connector.simulators.lapor.world import ApiError, World, iso
from connector.simulators.network import REQUEST_QUEUE_SIZE, wait_half

BASE_PATH = "/lapor/3.0.0"
TOKEN_RE = re.compile(
    r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$"
)
LIST_ROUTES = frozenset({"categories", "institutions", "templates", "inbox", "followups"})
INJECT_ROUTES = frozenset({"inbox", "complaint", "followups"})
WRITE_ROUTES = frozenset({"followup_add", "reject", "process", "create", "upload"})
UNKNOWN_ROUTE = "unknown"  # an API path no route matches (404), on the timeline and in statuses
TOPICS_PATH = "/api/services/f01/gettopics"

ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/masters/categories"), "categories"),
    ("GET", re.compile(r"/masters/institutions/external"), "institutions"),
    ("GET", re.compile(r"/masters/templates"), "templates"),
    ("GET", re.compile(r"/masters/statuses"), "statuses"),
    ("GET", re.compile(r"/masters/classifications"), "classifications"),
    ("GET", re.compile(r"/complaints/inbox"), "inbox"),
    ("GET", re.compile(r"/complaints/(\d+)/complaint"), "complaint"),
    ("GET", re.compile(r"/complaints/(\d+)/followups"), "followups"),
    ("GET", re.compile(r"/complaints/(\d+)/attachments/(\d+)"), "attachment"),
    ("POST", re.compile(r"/complaints/followup/add"), "followup_add"),
    ("POST", re.compile(r"/complaints/process/(\d+)/reject"), "reject"),
    ("POST", re.compile(r"/complaints/process/(\d+)/(verify|postpone|archive)"), "process"),
    ("POST", re.compile(r"/complaints/complaint/file"), "upload"),
    ("POST", re.compile(r"/complaints/complaint"), "create"),
]

ERROR_MODES: dict[str, tuple[int, str, str]] = {
    "bad_request": (400, "BAD_REQUEST", "Permintaan tidak valid."),
    "unauthenticated": (401, "UNAUTHENTICATED", "Kredensial tidak valid."),
    "forbidden": (403, "FORBIDDEN", "Laporan tidak didisposisikan kepada instansi Anda."),
    "not_found": (404, "NOT_FOUND", "Data tidak ditemukan."),
    "conflict": (409, "COMPLAINT_CLOSED", "Laporan sudah ditutup."),
    "too_large": (413, "PAYLOAD_TOO_LARGE", "Ukuran data terlalu besar."),
    "validation": (422, "VALIDATION_ERROR", "Data yang dikirim tidak valid."),
    "rate_limit": (429, "TOO_MANY_REQUESTS", "Terlalu banyak permintaan."),
    "server_error": (500, "SERVER_ERROR", "Terjadi kesalahan pada server."),
}
HTML_MODES = {"bad_gateway": 502, "gateway_timeout": 504}


class Dropped(Exception):
    """The connection was dropped on purpose (commit-then-drop)."""


@dataclass
class Injection:
    """Raw records (JSON values, or JSON texts sent as they are) for the next ``count`` answers."""

    route: str
    records: list[Any]
    raw_json: list[str]
    count: int


class SimServer(ThreadingHTTPServer):
    """The HTTP server, holding the world and the simulator's settings."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = REQUEST_QUEUE_SIZE

    def __init__(self, address: tuple[str, int], *, world: World, faults: FaultBook, api_key: str, token: str,
                 requests_per_minute: int, control: bool, dialect: str = dialects.DEFAULT_DIALECT,
                 latency_ms: float = 0) -> None:  # fmt: skip
        super().__init__(address, Handler)
        self.dialect: dialects.Dialect = dialects.get(dialect)
        self.world = world
        self.faults = faults
        self.api_key = api_key
        self.token = token
        self.requests_per_minute = requests_per_minute
        self.control = control
        #: Network latency of every API request, in milliseconds (``POST /_sim/latency``).
        self.latency_ms = float(latency_ms)
        self.stopping = threading.Event()
        self.window = SlidingWindow()
        self.traffic = Traffic()
        self.last_list: dict[str, list[Any]] = {}
        #: Raw records the next answers of a route carry (``POST /_sim/inject``), under world.lock.
        self.injections: list[Injection] = []

    def inject(self, body: dict[str, Any]) -> Injection:
        """Add an injection from a control-plane body; ValueError names what is wrong."""
        route = body.get("route")
        if route not in INJECT_ROUTES:
            raise ValueError(f"route: one of {', '.join(sorted(INJECT_ROUTES))}")
        count = body.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count: a positive integer")
        records = list(body.get("records", []))
        if "record" in body:
            records.append(body["record"])
        raw = body.get("raw_json", [])
        texts = [raw] if isinstance(raw, str) else list(raw)
        if not all(isinstance(t, str) for t in texts) or not records + texts:
            raise ValueError("give record, records (JSON values) or raw_json (JSON texts)")
        injection = Injection(route=route, records=records, raw_json=texts, count=count)
        self.injections.append(injection)
        return injection

    def take_injections(self, route: str) -> list[Injection]:
        """The injections the answer of ``route`` being made carries (each counts one use)."""
        taken = [i for i in self.injections if i.route == route and i.count > 0]
        for injection in taken:
            injection.count -= 1
        self.injections = [i for i in self.injections if i.count > 0]
        return taken

    def rate_limited(self, token: str, now: float | None = None) -> float | None:
        """Seconds until the token may send again, or None: admitted at ``now``, it counts.

        A true sliding window of 60 seconds on the monotonic clock; an answer of 429 does not
        count (``Handler`` takes back an admitted request that a fault rule answered 429).
        """
        moment = time.monotonic() if now is None else now
        return self.window.admit(token, moment, self.requests_per_minute)

    def reset_stats(self) -> None:
        """Zero the request, write and answer counters and empty the timeline (not the world)."""
        with self.world.lock:
            self.world.requests.clear()
            self.world.writes.clear()
        self.traffic.reset()


class Handler(BaseHTTPRequestHandler):
    """One request: auth, faults, the operation, the envelope."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: SimServer
    # The API request being answered (None for the control plane): set anew by each _dispatch,
    # since one handler serves every request of a keep-alive connection.
    _arrival: Arrival | None = None
    _latency_ms: float = 0.0
    _admitted: tuple[str, float] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._arrival, self._admitted = None, None
        try:
            if url.path.startswith("/_sim/"):
                if not self.server.control:
                    raise ApiError(404, "NOT_FOUND", "Tidak ditemukan.")
                status, payload = handle_control(self.server, method, url.path, body, url.query)
                self._send_json(status, payload)
                return
            route, args = match_route(method, url.path)
            self._arrival = self.server.traffic.arrived(route)
            self._latency_ms = self.server.latency_ms
            wait_half(self._latency_ms, self.server.stopping)  # the request's way in
            if route == UNKNOWN_ROUTE:
                raise ApiError(404, "NOT_FOUND", "Alamat tidak ditemukan.")
            self._lapor(route, args, url.query, body, method)
        except ApiError as error:
            self._send_error(error)
        except Dropped:
            return

    def _answering(self, status: int) -> None:
        """An API answer is about to go out: the rest of the latency, then count it."""
        arrival, self._arrival = self._arrival, None
        if arrival is None:
            return
        wait_half(self._latency_ms, self.server.stopping)  # the answer's way out
        if status == 429 and self._admitted is not None:
            self.server.window.forget(*self._admitted)  # a 429 does not use up the window
        self.server.traffic.answered(arrival, status)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                   raw_json: dict[str, str] | None = None) -> None:  # fmt: skip
        text = json.dumps(payload)  # ASCII escapes keep even lone surrogates intact
        for placeholder, raw in (raw_json or {}).items():  # injected JSON texts, sent as they are
            text = text.replace(json.dumps(placeholder), raw, 1)
        self._send(status, text.encode("utf-8", "surrogatepass"), "application/json", headers)

    def _send(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self._answering(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: ApiError, headers: dict[str, str] | None = None) -> None:
        payload = {
            "status": False,
            "message": error.message,
            "code": error.code,
            "errors": error.errors,
        }
        self._send_json(error.status, payload, headers)

    def _drop(self) -> None:
        self._answering(DROPPED)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise Dropped

    def _authenticate(self) -> int:
        bearer = self.headers.get("Authorization", "")
        key = bearer[7:] if bearer.startswith("Bearer ") else self.headers.get("auth", "")
        token = self.headers.get("token", "")
        if key != self.server.api_key or not TOKEN_RE.match(token) or token != self.server.token:
            raise ApiError(401, "UNAUTHENTICATED", "Kredensial tidak valid.")
        return self.server.world.institution_id

    # --- the LAPOR! API ------------------------------------------------------------------

    def _lapor(self, route: str, args: list[str], query: str, raw: bytes, method: str) -> None:
        world = self.server.world
        with world.lock:
            world.requests[route] += 1
        viewer = self._authenticate()
        token, stamp = self.headers.get("token", ""), time.monotonic()
        wait = self.server.rate_limited(token, stamp)
        self._admitted = (token, stamp) if wait is None else None
        if wait is not None:
            raise_rate = ApiError(429, "TOO_MANY_REQUESTS", "Terlalu banyak permintaan.")
            self._send_error(raise_rate, {"Retry-After": str(math.ceil(wait))})
            return
        rule = self.server.faults.take(route)
        if rule is not None and self._fault_answered(rule):
            return
        params = {k: v[0] for k, v in parse_qs(query).items()}
        fields, files = parse_body(self.headers.get("Content-Type", ""), raw)
        # [INF] which credential KEYTOKEN carries is open: the key or the token are both accepted
        if route == "topics" and fields.get("KEYTOKEN") not in (
            self.server.api_key,
            self.server.token,
        ):
            raise ApiError(401, "UNAUTHENTICATED", "KEYTOKEN tidak valid.")
        with world.lock:
            status, payload = self._operate(route, args, params, fields, files, viewer, rule)
            if route in WRITE_ROUTES:
                world.writes[route] += 1
            if not isinstance(payload, (bytes, bytearray)):
                payload = dialects.apply(self.server.dialect, route, payload)
                if rule is not None and rule.mode == "malformed":
                    corrupt_answer(route, payload, rule.variant)  # after the dialect: stays corrupt
                raw_json = inject_records(payload, self.server.take_injections(route))
        if rule is not None and rule.mode == "drop_after_commit":
            self._drop()
        if isinstance(payload, (bytes, bytearray)):
            self._send(status, bytes(payload), params.get("_ctype", "application/octet-stream"))
        else:
            self._send_json(status, payload, raw_json=raw_json)

    def _fault_answered(self, rule: FaultRule) -> bool:
        """Answer an error-mode fault; wait out a slow one. True if the request is answered."""
        if rule.mode in ERROR_MODES:
            status, code, message = ERROR_MODES[rule.mode]
            errors = {"content": ["Isi tidak valid."]} if status == 422 else {}
            headers = {"Retry-After": rule.retry_after or "1"} if status == 429 else None
            self._send_error(ApiError(status, code, message, errors), headers)
            return True
        if rule.mode in HTML_MODES:
            page = (
                f"<html><body><h1>{HTML_MODES[rule.mode]} Gateway Error</h1></body></html>".encode()
            )
            self._send(HTML_MODES[rule.mode], page, "text/html")
            return True
        if rule.mode == "unavailable":
            self._send(503, b"", "text/plain")
            return True
        if rule.mode == "soft_error":
            self._send_json(
                200,
                {"status": False, "message": "Gagal memproses permintaan.", "code": "SOFT_ERROR"},
            )
            return True
        if rule.mode == "slow":
            self.server.stopping.wait(rule.delay or 1.0)
        return False

    def _operate(self, route: str, args: list[str], params: dict[str, str], fields: dict[str, Any],
                 files: list[tuple[str, str, bytes, str]], viewer: int, rule: FaultRule | None) -> tuple[int, Any]:  # fmt: skip
        world = self.server.world
        if route in LIST_ROUTES:
            return 200, self._list(route, args, params, viewer, rule)
        if route in ("statuses", "classifications"):
            rows = (
                [{"code": c, "name": n} for c, n in seed.STATUS_NAMES.items()]
                if route == "statuses"
                else seed.CLASSIFICATIONS
            )
            return 200, ok({"data": rows})
        if route == "topics":
            return 200, [
                {"id": str(c["id"]), "parent": str(c["parent_id"]), "topic_name": c["name"]}
                for c in world.categories.values()
            ]
        if route == "complaint":
            c = world.get_visible(int(args[0]), viewer)
            counts = self.server.dialect.followup_counts
            return 200, ok(world.detail(c, viewer, followup_counts=counts))
        if route == "attachment":
            f = world.attachment(viewer, int(args[0]), int(args[1]))
            params["_ctype"] = f["content_type"] or "application/octet-stream"
            return 200, f["data"]
        if route == "followup_add":
            return 201, ok({"data": world.add_followup(viewer, fields, files)})
        if route == "reject":
            world.reject(viewer, int(args[0]), fields)
            return 200, ok({"data": {"complaint_id": int(args[0])}})
        if route == "process":
            world.process(viewer, int(args[0]), args[1], fields.get("note"))
            return 200, ok({"data": {"complaint_id": int(args[0])}})
        if route == "create":
            created = world.create(viewer, fields)
            return 201, {"status": True, "message": "Success", "complaint_id": created["id"],
                         "data": {"complaint_id": created["id"]}, "results": {"complaint": created}}  # fmt: skip
        if route == "upload":
            return 201, ok(world.upload(files))
        raise ApiError(404, "NOT_FOUND", "Alamat tidak ditemukan.")

    def _list(
        self,
        route: str,
        args: list[str],
        params: dict[str, str],
        viewer: int,
        rule: FaultRule | None,
    ) -> dict[str, Any]:
        world = self.server.world
        page, size = page_params(params, default_size=10 if route == "followups" else 50)
        offset = (page - 1) * size
        extra: dict[str, Any] = {}
        render: Callable[[Any], dict[str, Any]] = dict
        rows: list[Any]
        total: int | None = None  # the inbox counts without listing
        if route == "inbox":
            if rule is not None and rule.mode == "item_moved" and self.server.last_list.get(route):
                world.touch(self.server.last_list[route][0]["id"])
            since = parse_since(params)
            if since is None and not params.get("external_ref"):
                raise ApiError(
                    422,
                    "VALIDATION_ERROR",
                    "Data tidak valid.",
                    {"updated_since": ["Kolom updated_since wajib diisi."]},
                )
            total, rows = world.inbox_page(viewer, since, params.get("external_ref"), offset, size)
            counts = self.server.dialect.followup_counts
            render = functools.partial(world.summary, followup_counts=counts)
            extra["server_time"] = iso(world.now)
        elif route == "followups":
            c = world.get_visible(int(args[0]), viewer)
            rows = sorted(world.followups.get(c["id"], []), key=lambda f: f["id"])
            render = functools.partial(world.followup_item, c)
        elif route == "categories":
            rows = list(world.categories.values())
        elif route == "institutions":
            rows = list(world.institutions.values())
        else:
            rows = seed.TEMPLATES
        if total is None:
            total, rows = len(rows), rows[offset : offset + size]
        data = [render(r) for r in rows]  # render this page only
        more = page * size < total
        next_url = None
        if more:
            query = {
                **{k: v for k, v in params.items() if not k.startswith("_")},
                "page": str(page + 1),
                "page_size": str(size),
            }
            next_url = f"http://{self.headers.get('Host', 'localhost')}{urlsplit(self.path).path}?{urlencode(query)}"
        if rule is not None and rule.mode == "page_repeat" and route in self.server.last_list:
            data = [dict(r) for r in self.server.last_list[route]]
        elif rule is not None and rule.mode == "empty_page":
            data = []
        else:
            self.server.last_list[route] = [dict(r) for r in data]
        return ok(
            {
                "data": data,
                "current_page": page,
                "per_page": size,
                "total": total,
                "next_page_url": next_url,
                **extra,
            }
        )


def match_route(method: str, path: str) -> tuple[str, list[str]]:
    """The route name of an API request and its path arguments (``UNKNOWN_ROUTE`` for none)."""
    if method == "POST" and path == TOPICS_PATH:
        return "topics", []
    if path.startswith(BASE_PATH + "/"):
        sub = path[len(BASE_PATH) :]
        for route_method, pattern, name in ROUTES:
            match = pattern.fullmatch(sub)
            if match and route_method == method:
                return name, list(match.groups())
    return UNKNOWN_ROUTE, []


def ok(results: Any) -> dict[str, Any]:
    """The success envelope."""
    return {"status": True, "message": "Success", "results": results}


def page_params(params: dict[str, str], *, default_size: int) -> tuple[int, int]:
    """page and page_size, validated as the service does."""
    errors: dict[str, list[str]] = {}
    page = params.get("page", "1")
    size = params.get("page_size", str(default_size))
    if not page.isdigit() or int(page) < 1:
        errors["page"] = ["Kolom page harus berupa angka mulai dari 1."]
    if not size.isdigit() or not 1 <= int(size) <= 1000:
        errors["page_size"] = ["Kolom page_size harus antara 1 dan 1000."]
    if errors:
        raise ApiError(422, "VALIDATION_ERROR", "Data tidak valid.", errors)
    return int(page), int(size)


def parse_since(params: dict[str, str]) -> datetime | None:
    """updated_since, which must be ISO 8601 with an offset."""
    value = params.get("updated_since")
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            "Data tidak valid.",
            {"updated_since": ["Format waktu harus ISO 8601 dengan zona waktu."]},
        )
    return since


def parse_body(
    content_type: str, raw: bytes
) -> tuple[dict[str, Any], list[tuple[str, str, bytes, str]]]:
    """Fields and files from a JSON, form-urlencoded or multipart body."""
    if not raw:
        return {}, []
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            value = json.loads(raw)
        except ValueError:
            raise ApiError(400, "BAD_REQUEST", "Badan permintaan bukan JSON yang valid.") from None
        if not isinstance(value, dict):
            raise ApiError(400, "BAD_REQUEST", "Badan permintaan harus berupa objek JSON.")
        return value, []
    if kind == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}, []
    if kind == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        fields: dict[str, Any] = {}
        files: list[tuple[str, str, bytes, str]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files.append((name, filename, data, part.get_content_type()))
            else:
                fields[name] = data.decode("utf-8", "replace")
        return fields, files
    raise ApiError(400, "BAD_REQUEST", "Jenis konten tidak didukung.")


def inject_records(payload: Any, injections: list[Injection]) -> dict[str, str]:
    """Add injected records to an answer: to a list's data, or as a detail's data.

    Returns the placeholders standing for injected JSON texts, which ``_send_json`` replaces.
    """
    results = payload.get("results") if isinstance(payload, dict) else None
    raw_json: dict[str, str] = {}
    if not isinstance(results, dict):
        return raw_json
    for injection in injections:
        records = list(injection.records)
        for text in injection.raw_json:
            placeholder = f"\x00sim-raw-json:{len(raw_json)}"
            raw_json[placeholder] = text
            records.append(placeholder)
        if injection.route == "complaint":
            if records:
                results["data"] = records[-1]
        elif isinstance(results.get("data"), list):
            results["data"].extend(records)
    return raw_json


def corrupt_answer(route: str, payload: Any, variant: str | None) -> None:
    """Damage the first record of a list answer, or a complaint detail (``malformed`` faults)."""
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, dict):
        return
    data = results.get("data")
    if route in LIST_ROUTES and isinstance(data, list) and data and isinstance(data[0], dict):
        corrupt(data[0], variant)
    elif route == "complaint" and isinstance(data, dict):
        corrupt(data, variant)


def corrupt(record: dict[str, Any], variant: str | None) -> None:
    """Damage one record the way a broken upstream would."""
    variant = variant or "wrong_type"
    if variant == "wrong_type":
        record["id"] = "abc"
    elif variant == "missing_field":
        record.pop("updated_at", None)
        record.pop("tracking_id", None)
    elif variant == "unknown_status":
        if "status_code" in record or "status_name" not in record:
            record["status_code"] = "escalated"
        else:  # a dialect without status_code: the name is the only status there is
            record["status_name"] = "Dieskalasi"
    elif variant == "naive_timestamp":
        value = str(record.get("updated_at", "2026-11-01T09:00:00"))
        dmy = re.fullmatch(r"(\d{2})-(\d{2})-(\d{4}) (\d{2}:\d{2}:\d{2})", value)
        # ISO 8601 without an offset, whatever the dialect wrote
        record["updated_at"] = f"{dmy[3]}-{dmy[2]}-{dmy[1]}T{dmy[4]}" if dmy else value[:19]
    elif variant == "odd_unicode":
        record["title"] = "Judul \ud800 rusak"


def log_ready(line: str) -> None:
    """Print a line for whoever started the simulator, at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
