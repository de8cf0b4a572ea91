"""Credentials stay with their host: no redirect is followed, for LAPOR! or the agency system."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connector import errors
from connector.clock import FakeClock
from connector.lapor.transport import LaporTransport
from tests.conftest import TOKEN, make_settings
from tests.test_agency_adapter import AGENCY_TOKEN, adapter_for, new_from_lapor


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, status: int, location: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.location = location
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the access log."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        body = b'{"status": true, "results": {"data": []}}'
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()


def _serve(status: int, location: str = "") -> Iterator[_Server]:
    server = _Server(status, location)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[_Server]:
    """The host a redirect points to: it must never be asked anything."""
    yield from _serve(200)


@pytest.fixture(params=[301, 302, 303, 307, 308])
def redirecting(request: pytest.FixtureRequest, elsewhere: _Server) -> Iterator[_Server]:
    """A server that answers every request with a redirect to ``elsewhere``."""
    yield from _serve(request.param, f"{elsewhere.url}/steal/here?token=secret-query")


def _assert_named(error: BaseException, server: _Server, elsewhere: _Server) -> None:
    text = str(error)
    assert str(server.status) in text
    assert f"127.0.0.1:{elsewhere.server_port}" in text
    assert "steal" not in text
    assert "secret-query" not in text


def test_lapor_get_redirect_is_fatal_and_not_followed(
    redirecting: _Server, elsewhere: _Server, clock: FakeClock
) -> None:
    """A LAPOR! GET answered by a redirect raises ProtocolError naming status and host; nothing leaves."""
    transport = LaporTransport(make_settings(redirecting.url + "/lapor/3.0.0"), clock)
    with pytest.raises(errors.ProtocolError) as caught:
        transport.get("/masters/statuses")
    transport.close()
    _assert_named(caught.value, redirecting, elsewhere)
    assert elsewhere.seen == []
    assert len(redirecting.seen) == 1  # a fatal error: not retried either
    assert redirecting.seen[0][2]["token"] == TOKEN  # the credentials went to their own host only


def test_lapor_post_redirect_is_fatal_and_not_followed(
    redirecting: _Server, elsewhere: _Server, clock: FakeClock
) -> None:
    """A LAPOR! POST answered by a redirect raises ProtocolError; the write is not re-sent elsewhere."""
    transport = LaporTransport(make_settings(redirecting.url + "/lapor/3.0.0"), clock)
    with pytest.raises(errors.ProtocolError) as caught:
        transport.post(
            "/complaints/followup/add", operation="add_followup", lookup={}, data={"content": "x"}
        )
    transport.close()
    _assert_named(caught.value, redirecting, elsewhere)
    assert elsewhere.seen == []
    assert [seen[0] for seen in redirecting.seen] == ["POST"]


@pytest.mark.parametrize("call", ["read", "write"])
def test_agency_redirect_is_fatal_and_not_followed(
    call: str, redirecting: _Server, elsewhere: _Server, clock: FakeClock
) -> None:
    """An agency call answered by a redirect raises ProtocolError; its token never leaves."""
    adapter = adapter_for("rest", redirecting.url + "/api/v1", clock)
    calls = {
        "read": adapter.categories,
        "write": lambda: adapter.create_complaint(new_from_lapor(), idempotency_key="k-1"),
    }
    with pytest.raises(errors.ProtocolError) as caught:
        calls[call]()
    adapter.close()
    _assert_named(caught.value, redirecting, elsewhere)
    assert elsewhere.seen == []
    assert redirecting.seen[0][2]["Authorization"] == f"Bearer {AGENCY_TOKEN}"


def test_relative_redirect_names_the_same_host(elsewhere: _Server, clock: FakeClock) -> None:
    """A Location without a host names the host that answered, still without its path."""
    for server in _serve(302, "/elsewhere?token=secret-query"):
        transport = LaporTransport(make_settings(server.url + "/lapor/3.0.0"), clock)
        with pytest.raises(
            errors.ProtocolError, match=f"302 Found, a redirect to 127.0.0.1:{server.server_port};"
        ):
            transport.get("/masters/statuses")
        transport.close()
        assert len(server.seen) == 1
