"""``lapor-connector probe``: where the real LAPOR! service differs from our reading of it.

The probe reads one page of every endpoint the connector uses (GETs, and legacy gettopics,
a POST that only reads), walks each JSON answer and compares every field with
``connector.lapor.wire.EXPECTED``. Each field path gets one verdict:

- ``as expected``: the kind the contract names;
- ``understood, but differs``: another kind that the tolerant reader still reads;
- ``not understood``: the wire module's own validation refuses it (or the endpoint failed);
- ``ignored (unknown field)``: a field the connector does not read.

Only paths, kinds and counts are reported, never a value. ``--write`` also uploads a file,
creates one test complaint and adds one follow-up to it (sandbox or simulator only).
"""

from __future__ import annotations

import ipaddress
import re
import struct
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rich.table import Table
from rich.text import Text

from connector import errors
from connector import models as m
from connector.config import LaporSettings
from connector.lapor import wire
from connector.lapor.client import LaporClient

AS_EXPECTED = "as expected"
DIFFERS = "understood, but differs"
NOT_UNDERSTOOD = "not understood"
IGNORED = "ignored (unknown field)"
MISSING = "missing"
T = TypeVar("T")


@dataclass
class FieldLine:
    """One field path of one endpoint: the kinds seen (with counts) and the verdict."""

    path: str
    observed: dict[str, int]
    expected: str | None
    verdict: str
    personal: bool = False


@dataclass
class EndpointReport:
    """What one endpoint answered, field by field (or the error that stopped it)."""

    endpoint: str
    path: str
    fields: list[FieldLine] = field(default_factory=list)
    error: str | None = None
    note: str | None = None


@dataclass
class ProbeReport:
    endpoints: list[EndpointReport] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        counts = Counter(
            v for e in self.endpoints for v in ([NOT_UNDERSTOOD] if e.error else [])
            + [f.verdict for f in e.fields]
        )  # fmt: skip
        return {"as_expected": counts[AS_EXPECTED], "differs": counts[DIFFERS],
                "not_understood": counts[NOT_UNDERSTOOD], "ignored": counts[IGNORED]}  # fmt: skip

    @property
    def needs_attention(self) -> bool:
        return self.summary()["not_understood"] > 0

    def to_json(self) -> dict[str, Any]:
        return {"endpoints": [asdict(e) for e in self.endpoints], "summary": self.summary()}


# --- walking an answer ---------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Walk:
    """Kinds seen at every path of an answer, missing expected fields, unknown fields."""

    def __init__(self, expected: Mapping[str, str]) -> None:
        self.expected = expected
        self.kinds: dict[str, Counter[str]] = {}
        self.unknown: set[str] = set()
        self.keys: dict[str, set[str]] = {}  # object path -> the keys expected in it
        for path in expected:
            if path and not path.endswith("[]"):
                parent, _, key = path.rpartition(".")
                self.keys.setdefault(parent, set()).add(key)

    def _count(self, path: str, kind: str) -> None:
        self.kinds.setdefault(path, Counter())[kind] += 1

    def visit(self, value: object, path: str = "") -> None:
        self._count(path, wire.observed_kind(value))
        if isinstance(value, dict):
            for key in sorted(self.keys.get(path, set()) - set(value) - wire.OPTIONAL_FIELDS):
                self._count(_join(path, key), MISSING)
            for key, item in value.items():
                child = _join(path, str(key))
                if child in self.expected:
                    self.visit(item, child)
                else:  # one line for the unknown field, whatever it holds
                    self.unknown.add(child)
                    self._count(child, wire.observed_kind(item))
        elif isinstance(value, list) and f"{path}[]" in self.expected:
            for item in value:
                self.visit(item, f"{path}[]")


def _json_path(prefix: str, problem_path: str) -> str:
    """The JSON path of a FieldProblem (``data_logs[3].date`` -> ``results.data_logs[].date``)."""
    relative = re.sub(r"\[\d+\]", "[]", problem_path)
    return prefix if relative == "(record)" else _join(prefix, relative)


def _known(path: str, known: set[str]) -> str:
    while path not in known and "." in path:  # pydantic may add union member names
        path = path.rsplit(".", 1)[0]
    return path


Check = Callable[[Any], list[str]]  # a body -> JSON paths the wire module refuses


def _judge(name: str, http_path: str, body: object, check: Check) -> EndpointReport:
    expected = wire.EXPECTED[name]
    walk = _Walk(expected)
    walk.visit(body)
    refused = {_known(p, set(expected) | set(walk.kinds)) for p in check(body)}
    lines = []
    for path in sorted(set(expected) & set(walk.kinds) | walk.unknown | refused):
        kinds = walk.kinds.get(path, Counter({MISSING: 1}))
        want = expected.get(path)
        if path in refused:
            verdict = NOT_UNDERSTOOD
        elif path in walk.unknown:
            verdict = IGNORED
        elif want is not None and all(wire.kind_matches(want, k) for k in kinds):
            verdict = AS_EXPECTED
        else:
            verdict = DIFFERS  # the wire module read it anyway
        lines.append(
            FieldLine(path, dict(kinds.most_common()), want, verdict, wire.is_personal(path))
        )
    return EndpointReport(name, http_path, lines)


def _items_check(prefix: str, parse: Callable[[object], object], envelope: Check) -> Check:
    """Run ``parse`` on every record at ``prefix`` (``results.data[]`` or ``[]``)."""

    def check(body: Any) -> list[str]:
        refused = envelope(body)
        for raw in _records(body, prefix):
            try:
                parse(raw)
            except errors.RecordError as error:
                refused += [_json_path(prefix, p.path) for p in error.problems] or [prefix]
        return refused

    return check


def _records(body: Any, prefix: str = "results.data[]") -> list[Any]:
    """The records of a list answer at ``prefix`` (``results.data[]``, or ``[]``: a bare array)."""
    container = body
    for part in prefix.removesuffix("[]").split(".") if prefix != "[]" else []:
        container = container.get(part) if isinstance(container, dict) else None
    return container if isinstance(container, list) else []


def _envelope(reader: Callable[[Any], object], *paths: str) -> Check:
    """The wire module's envelope reader; when it refuses the answer, these paths are blamed."""

    def check(body: Any) -> list[str]:
        try:
            reader(body)
        except (errors.ProtocolError, errors.RecordError, ValueError):
            return [p for p in paths if not _holds(body, p)] or list(paths[:1])
        return []

    return check


def _holds(body: Any, path: str) -> bool:
    """Whether the answer has an object or list (as expected) at a dotted envelope path."""
    value = body
    for part in path.split(".") if path else []:
        value = value.get(part) if isinstance(value, dict) else None
    return isinstance(value, (dict, list))


def _paged(name: str) -> Check:
    return _envelope(lambda b: wire.page(b, name, 1), "results", "results.data")


def _unpaged(name: str) -> Check:
    return _envelope(lambda b: wire.list_items(b, name), "results", "results.data")


def _detail_check(body: Any) -> list[str]:
    try:
        wire.complaint_detail(wire.results(body, "complaint"))
    except errors.ProtocolError:
        return ["results"]
    except errors.RecordError as error:
        if not error.problems:
            return ["results.data"]
        return [
            _json_path("results" if p.path.startswith("data_logs") else "results.data", p.path)
            for p in error.problems
        ]
    return []


# --- the probe -----------------------------------------------------------------------------

MASTERS: tuple[tuple[str, str, Callable[[object], object], bool], ...] = (
    ("categories", wire.CATEGORIES, wire.category, True),
    ("institutions", wire.INSTITUTIONS, wire.institution, True),
    ("templates", wire.TEMPLATES, wire.template, True),
    ("statuses", wire.STATUSES, wire.status, False),
    ("classifications", wire.CLASSIFICATIONS, wire.classification, False),
)


def _failed(name: str, http_path: str, error: errors.ConnectorError) -> EndpointReport:
    if isinstance(error, errors.RecordError):  # field texts may echo what was sent: paths only
        text = f"{type(error).__name__} ({', '.join(p.path for p in error.problems) or 'record'})"
    else:
        text = f"{type(error).__name__}: {error}"
    return EndpointReport(name, http_path, error=text)


@contextmanager
def _recording(client: LaporClient) -> Iterator[list[Any]]:
    """Keep the raw answers the client's transport decodes, to walk them after the client read
    them (legacy gettopics and the writes go through the client's own methods)."""
    transport, bodies = client.transport, []
    get, post = transport.get, transport.post

    def keep(send: Callable[..., Any]) -> Callable[..., Any]:
        def sent(*args: Any, **kwargs: Any) -> Any:
            bodies.append(send(*args, **kwargs))
            return bodies[-1]

        return sent

    transport.get, transport.post = keep(get), keep(post)  # type: ignore[method-assign]
    try:
        yield bodies
    finally:
        del transport.get, transport.post


def _run(
    report: ProbeReport, client: LaporClient, name: str, http_path: str,
    send: Callable[[], Any], check: Check,
) -> Any:  # fmt: skip
    """Send one request once (a write is never retried here) and judge its raw answer."""
    with _recording(client) as bodies:
        try:
            result = send()
        except errors.AuthenticationFailed:
            raise
        except errors.ConnectorError as error:
            result = None
            if not bodies:  # no answer to judge: HTTP error, not JSON, timeout, ...
                report.endpoints.append(_failed(name, http_path, error))
                return None
    report.endpoints.append(_judge(name, http_path, bodies[0], check))
    return result


def probe(
    client: LaporClient, settings: LaporSettings, *, now: datetime, write: bool = False,
    location_id: int | None = None,
) -> ProbeReport:  # fmt: skip
    """Read every endpoint once (and with ``write``, try the writes) and judge each answer.

    ``AuthenticationFailed`` propagates: with refused credentials nothing else can be learnt.
    """
    report, first = ProbeReport(), dict[str, Any]()

    def get(path: str, params: Mapping[str, str] | None = None) -> Any:
        return client.transport.get(path, params)  # looked up late: _recording wraps it

    for name, path, parse, paged in MASTERS:
        envelope = _paged(path) if paged else _unpaged(path)
        body = _run(
            report, client, name, f"GET {path}",
            lambda: get(path, wire.page_params(1, 50) if paged else None),  # noqa: B023
            _items_check("results.data[]", parse, envelope),
        )  # fmt: skip
        first[name] = next(iter(_parsed(body, parse)), None)
    _run(
        report, client, "topics", f"POST {wire.LEGACY_TOPICS}", client.topics,
        lambda b: _items_check(  # a bare array [OBS], or an envelope
            "[]" if isinstance(b, list) else "results.data[]", wire.topic, _unpaged("topics")
        )(b),
    )  # fmt: skip
    inbox = None
    for since in (now - timedelta(days=30), datetime(2000, 1, 1, tzinfo=timezone.utc)):
        params = {**wire.inbox_params(since), **wire.page_params(1, 10)}
        inbox = _run(
            report, client, "inbox", f"GET {wire.INBOX}", lambda: get(wire.INBOX, params),  # noqa: B023
            _items_check("results.data[]", wire.complaint_summary, _paged(wire.INBOX)),
        )  # fmt: skip
        raw = wire.results(inbox, wire.INBOX) if isinstance(inbox, dict) else None
        if not (isinstance(raw, dict) and raw.get("data") == []):
            break
        report.endpoints.pop()  # nothing in the last 30 days: read the oldest page instead
    mine = [
        c
        for c in _parsed(inbox, wire.complaint_summary)
        if c.disposition_id == settings.institution_id
    ]
    if inbox is not None and not mine:
        report.endpoints[
            -1
        ].note = "no complaint disposed to this institution on the first page: C2 and C3 skipped"
    if mine:
        c2, c3 = wire.complaint_path(mine[0].lapor_id), wire.followups_path(mine[0].lapor_id)
        _run(report, client, "complaint", f"GET {c2}", lambda: get(c2), _detail_check)
        _run(
            report, client, "followups", f"GET {c3}", lambda: get(c3, wire.page_params(1, 10)),
            _items_check("results.data[]", wire.followup, _paged(c3)),
        )  # fmt: skip
    if write:
        location = mine[0].location_id if mine and mine[0].location_id else location_id
        _write_checks(client, settings, now, first, location, report)
    return report


def _parsed(body: Any, parse: Callable[[object], T]) -> list[T]:
    """The records of a list answer that the wire module reads (the others are reported)."""
    found = []
    for raw in _records(body):
        with suppress(errors.RecordError):
            found.append(parse(raw))
    return found


def probe_tables(report: ProbeReport) -> list[Table]:
    """One table per endpoint: path, observed kinds (with counts), expected kind, verdict."""
    tables = []
    for e in report.endpoints:
        table = Table(title=f"{e.endpoint}: {e.path}", title_justify="left", caption=e.note)
        for column in ("path", "observed", "expected", "verdict"):
            table.add_column(column, overflow="fold")
        if e.error:
            table.add_row(
                *map(Text, ("(endpoint)", e.error, "an answer", NOT_UNDERSTOOD)), style="red"
            )
        for f in e.fields:
            seen = ", ".join(f"{kind} x{n}" for kind, n in f.observed.items())
            cells = map(Text, (f.path, seen, f.expected or "", f.verdict))  # no markup
            table.add_row(*cells, style=_STYLE.get(f.verdict))
        tables.append(table)
    return tables


_STYLE = {NOT_UNDERSTOOD: "red", DIFFERS: "yellow", IGNORED: "dim"}


# --- writes --------------------------------------------------------------------------------


def write_allowed(base_url: str, *, production_ok: bool) -> bool:
    """Writes go only to the sandbox or a loopback simulator, unless the operator insists."""
    if production_ok or base_url.rstrip("/") == wire.SANDBOX_BASE_URL:
        return True
    host = urlsplit(base_url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def probe_png() -> bytes:
    """A 1x1 white PNG, made here so the probe ships no binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        payload = kind + data
        return struct.pack(">I", len(data)) + payload + struct.pack(">I", zlib.crc32(payload))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\xff\xff")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _write_checks(
    client: LaporClient, settings: LaporSettings, now: datetime, first: Mapping[str, Any],
    location_id: int | None, report: ProbeReport,
) -> None:  # fmt: skip
    uploaded = _run(
        report, client, "upload", f"POST {wire.UPLOAD}",
        lambda: client.upload([("probe.png", probe_png(), "image/png")]),
        _envelope(wire.uploaded_files, "results"),
    )  # fmt: skip
    category, classification = first.get("categories"), first.get("classifications")
    if category is None or classification is None or location_id is None:
        # --write was asked for and not done: that needs attention (exit 6), not a quiet note.
        report.endpoints.append(EndpointReport(
            "create", f"POST {wire.CREATE_COMPLAINT}",
            error="not sent: no category, classification or location known (C4 not sent "
            "either); set default_location in mappings/units.yaml",
        ))  # fmt: skip
        return
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")
    reporter = None if settings.intake_user_id else m.Reporter(
        name="Uji Konektor", email="probe@example.invalid"
    )  # fmt: skip
    new = m.NewComplaint(
        external_ref=f"PROBE-{stamp}",
        title="Uji konektor (connector probe test)",
        content="Laporan uji dari lapor-connector probe; abaikan. A connector probe test.",
        channel_id=wire.CHANNEL_INSTITUTION_API, classification_id=classification.id,
        category_id=category.id, location_id=location_id, disposition_id=settings.institution_id,
        user_id=settings.intake_user_id, reporter=reporter,
        attachment_ids=tuple(f.id for f in uploaded or ()),
    )  # fmt: skip
    created = _run(
        report, client, "create", f"POST {wire.CREATE_COMPLAINT}",
        lambda: client.create_complaint(new),
        _envelope(wire.created_complaint, "complaint_id"),
    )  # fmt: skip
    if created is None:
        return
    shapes = [p for p in ("complaint_id", "data.complaint_id", "results.complaint.id")
              if any(f.path == p and MISSING not in f.observed for f in report.endpoints[-1].fields)]  # fmt: skip
    report.endpoints[-1].note = f"{new.external_ref}: the id came back as {', '.join(shapes)}"
    followup = m.NewFollowUp(
        complaint_id=created.lapor_id, content="Tindak lanjut uji dari lapor-connector probe."
    )
    _run(
        report, client, "followup_add", f"POST {wire.FOLLOWUP_ADD}",
        lambda: client.add_followup(followup),
        _envelope(wire.created_followup, "results", "results.data"),
    )  # fmt: skip
