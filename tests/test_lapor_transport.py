"""The HTTP policy of the LAPOR! client, with ``responses`` standing in for the service."""

from __future__ import annotations

import email.utils
from datetime import timedelta

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError

from connector import errors
from connector.clock import FakeClock
from connector.http import parse_retry_after
from connector.lapor.transport import LaporTransport
from tests.conftest import API_KEY, TOKEN, make_settings

BASE = "https://lapor.example.go.id/lapor/3.0.0"
OK = {"status": True, "message": "Success", "results": {"data": []}}


@pytest.fixture
def transport(clock: FakeClock) -> LaporTransport:
    return LaporTransport(make_settings(BASE, retry={"max_attempts": 4}), clock)


@responses.activate
def test_every_request_carries_both_credentials_in_headers_only(transport: LaporTransport) -> None:
    """The API key goes in Authorization, the token in its own header, neither in the URL."""
    responses.get(f"{BASE}/masters/statuses", json=OK)
    transport.get("/masters/statuses")
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["token"] == TOKEN
    assert API_KEY not in sent.url
    assert "token" not in sent.url


@responses.activate
def test_get_is_retried_on_503_with_empty_body(transport: LaporTransport, clock: FakeClock) -> None:
    """A 503 with no body is retried with backoff, slept through the injected clock."""
    responses.get(f"{BASE}/masters/statuses", status=503, body=b"")
    responses.get(f"{BASE}/masters/statuses", json=OK)
    assert transport.get("/masters/statuses") == OK
    assert len(responses.calls) == 2
    assert len(clock.sleeps) == 1
    assert 0 <= clock.sleeps[0] <= 0.5


@responses.activate
def test_backoff_is_jittered_and_bounded(transport: LaporTransport, clock: FakeClock) -> None:
    """Waits stay within the exponential ceiling, and attempts stop at max_attempts."""
    responses.get(
        f"{BASE}/masters/statuses",
        status=502,
        body="<html>Bad Gateway</html>",
        content_type="text/html",
    )
    with pytest.raises(errors.ServiceUnavailable) as caught:
        transport.get("/masters/statuses")
    assert len(responses.calls) == 4
    assert [s <= 0.5 * 2**i for i, s in enumerate(clock.sleeps)] == [True] * 3
    assert "html" not in str(caught.value).lower()
    assert "502" in str(caught.value)
    assert "/masters/statuses" in str(caught.value)


@responses.activate
@pytest.mark.parametrize("header", ["7", "HTTP-DATE"], ids=["seconds", "http-date"])
def test_retry_after_is_obeyed(transport: LaporTransport, clock: FakeClock, header: str) -> None:
    """A 429's Retry-After, in seconds or as an HTTP-date, is the wait before the next attempt."""
    if header == "HTTP-DATE":
        header = email.utils.format_datetime(clock.now() + timedelta(seconds=7), usegmt=True)
    responses.get(f"{BASE}/masters/statuses", status=429, headers={"Retry-After": header}, json={})
    responses.get(f"{BASE}/masters/statuses", json=OK)
    transport.get("/masters/statuses")
    assert clock.sleeps == [7.0]


@responses.activate
def test_retry_after_is_capped(clock: FakeClock) -> None:
    """An absurd Retry-After is capped by retry.retry_after_cap."""
    transport = LaporTransport(make_settings(BASE, retry={"retry_after_cap": 30}), clock)
    responses.get(f"{BASE}/masters/statuses", status=429, headers={"Retry-After": "86400"}, json={})
    responses.get(f"{BASE}/masters/statuses", json=OK)
    transport.get("/masters/statuses")
    assert clock.sleeps == [30.0]


@responses.activate
def test_401_stops_at_once(transport: LaporTransport, clock: FakeClock) -> None:
    """Refused credentials raise a fatal error after one request, with no retry loop."""
    responses.get(
        f"{BASE}/masters/statuses", status=401, json={"status": False, "code": "UNAUTHENTICATED"}
    )
    with pytest.raises(errors.AuthenticationFailed, match=r"lapor\.api_key and lapor\.token"):
        transport.get("/masters/statuses")
    assert len(responses.calls) == 1
    assert clock.sleeps == []


@responses.activate
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, errors.RecordRejected),
        (403, errors.NotDisposed),
        (404, errors.NotFound),
        (409, errors.Conflict),
        (413, errors.RecordRejected),
        (422, errors.RecordRejected),
        (405, errors.ProtocolError),
    ],
    ids=["400", "403", "404", "409", "413", "422", "405"],
)
def test_client_errors_are_not_retried(
    transport: LaporTransport, status: int, error: type[Exception]
) -> None:
    """Other 4xx map to their group and are sent once."""
    responses.get(
        f"{BASE}/complaints/1/complaint", status=status, json={"status": False, "code": "X"}
    )
    with pytest.raises(error):
        transport.get("/complaints/1/complaint")
    assert len(responses.calls) == 1


@responses.activate
def test_422_carries_field_errors_without_personal_data(transport: LaporTransport) -> None:
    """Field errors are kept for the quarantine; an e-mail echoed by the service is scrubbed."""
    body = {
        "status": False,
        "message": "Data tidak valid",
        "code": "VALIDATION_ERROR",
        "errors": {
            "content": ["Isi wajib diisi."],
            "emailUser": ["Email budi@contoh.id sudah terdaftar."],
        },
    }
    responses.post(f"{BASE}/complaints/complaint", status=422, json=body)
    with pytest.raises(errors.RecordRejected) as caught:
        transport.post("/complaints/complaint", operation="create_complaint", lookup={}, json={})
    problems = {p.path: p.problem for p in caught.value.problems}
    assert problems["content"] == "Isi wajib diisi."
    assert "budi@contoh.id" not in str(caught.value)
    assert "VALIDATION_ERROR" in str(caught.value)


@responses.activate
def test_soft_error_is_a_failure(transport: LaporTransport) -> None:
    """A 200 whose envelope says status false is treated as a failure (and retried for a GET)."""
    responses.get(
        f"{BASE}/masters/statuses", json={"status": False, "message": "Gagal", "code": "SOFT"}
    )
    with pytest.raises(errors.ServiceUnavailable, match="SOFT"):
        transport.get("/masters/statuses")
    assert len(responses.calls) == 4


@responses.activate
def test_post_timeout_is_ambiguous_and_not_resent(transport: LaporTransport) -> None:
    """A POST that timed out after sending is not re-sent; the error carries the lookup keys."""
    responses.post(f"{BASE}/complaints/complaint", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(errors.AmbiguousOutcome) as caught:
        transport.post(
            "/complaints/complaint",
            operation="create_complaint",
            lookup={"external_ref": "WA-1"},
            json={},
        )
    assert len(responses.calls) == 1
    assert caught.value.operation == "create_complaint"
    assert caught.value.lookup == {"external_ref": "WA-1"}


@responses.activate
def test_post_5xx_is_ambiguous(transport: LaporTransport) -> None:
    """A 5xx after a POST reached the service may hide an applied write: ambiguous, sent once."""
    responses.post(
        f"{BASE}/complaints/followup/add", status=504, body="<html>Gateway Timeout</html>"
    )
    with pytest.raises(errors.AmbiguousOutcome):
        transport.post(
            "/complaints/followup/add", operation="add_followup", lookup={"complaint_id": 1}
        )
    assert len(responses.calls) == 1


@responses.activate
def test_post_never_sent_is_retried(transport: LaporTransport) -> None:
    """A POST whose connection was refused never reached the service, so it is sent again."""
    refused = requests.ConnectionError(
        MaxRetryError(None, "/", NewConnectionError(None, "refused"))
    )  # type: ignore[arg-type]
    responses.post(f"{BASE}/complaints/followup/add", body=refused)
    responses.post(
        f"{BASE}/complaints/followup/add", status=201, json={"status": True, "results": {}}
    )
    transport.post("/complaints/followup/add", operation="add_followup", lookup={})
    assert len(responses.calls) == 2


@responses.activate
def test_post_429_is_retried_after_waiting(transport: LaporTransport, clock: FakeClock) -> None:
    """A 429 means nothing was processed, so even a POST is sent again after Retry-After."""
    responses.post(
        f"{BASE}/complaints/followup/add", status=429, headers={"Retry-After": "3"}, json={}
    )
    responses.post(
        f"{BASE}/complaints/followup/add", status=201, json={"status": True, "results": {}}
    )
    transport.post("/complaints/followup/add", operation="add_followup", lookup={})
    assert len(responses.calls) == 2
    assert clock.sleeps == [3.0]


@responses.activate
def test_non_json_success_on_post_is_ambiguous(transport: LaporTransport) -> None:
    """A 200 with an HTML body after a POST cannot tell us what happened."""
    responses.post(
        f"{BASE}/complaints/complaint", body="<html>ok?</html>", content_type="text/html"
    )
    with pytest.raises(errors.AmbiguousOutcome):
        transport.post(
            "/complaints/complaint",
            operation="create_complaint",
            lookup={"external_ref": "X"},
            json={},
        )


@responses.activate
def test_rate_limiter_paces_requests(clock: FakeClock) -> None:
    """At 60 requests a minute every request after the first waits its second: no burst."""
    transport = LaporTransport(make_settings(BASE, requests_per_minute=60), clock)
    responses.get(f"{BASE}/masters/statuses", json=OK)
    for _ in range(4):
        transport.get("/masters/statuses")
    assert clock.sleeps == pytest.approx([1.0, 1.0, 1.0], rel=1e-3)


def test_retry_after_parsing(clock: FakeClock) -> None:
    """Retry-After is read as seconds or an HTTP-date; garbage or the past gives no or zero wait."""
    past = email.utils.format_datetime(clock.now() - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after("12", clock) == 12.0
    assert parse_retry_after(past, clock) == 0.0
    assert parse_retry_after("soon", clock) is None
    assert parse_retry_after(None, clock) is None
