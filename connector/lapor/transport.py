"""HTTP to LAPOR!: credentials, timeouts, pacing, retries, and answers turned into errors.

Policy, in one place:

- every request waits for a token from the rate limiter, so we stay under the service's limit;
- GETs are retried (bounded attempts, full-jitter exponential backoff through the injected
  clock) on connection trouble, 5xx and 429; ``Retry-After`` is obeyed, capped;
- a POST is re-sent only when it certainly never reached the service (connection refused,
  connect timeout, 429); after it was sent, a timeout, a dropped connection or a 5xx raises
  ``AmbiguousOutcome`` with what is needed to look the write up;
- other 4xx are never retried; error texts carry method, path, status, reason and the
  service's error code, never bodies, query strings or credentials.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from connector import errors
from connector.clock import Clock
from connector.config import LaporSettings
from connector.http import new_session, parse_retry_after, send, with_retries
from connector.lapor import wire
from connector.logs import get_logger, register_secret
from connector.privacy import rule_text
from connector.ratelimit import Pacer, pacer_for
from connector.untrusted import decode_json

log = get_logger("lapor.transport")

#: Told of every request sent: (endpoint class, status or "error", seconds). See ``observe_requests``.
RequestObserver = Callable[[str, str, float], None]
_observers: list[RequestObserver] = []


def observe_requests(observer: RequestObserver) -> Callable[[], None]:
    """Tell ``observer`` of every LAPOR! request this process sends; returns the way to stop.

    The observer gets the endpoint class (``wire.endpoint_class``), the status (``"error"`` when
    no answer came) and the seconds taken; never a path, an id or a credential.
    """
    _observers.append(observer)
    return lambda: _observers.remove(observer) if observer in _observers else None


def _notify(endpoint: str, status: str, seconds: float) -> None:
    for observer in list(_observers):
        try:
            observer(endpoint, status, seconds)
        except Exception:  # monitoring never breaks a request
            log.exception("request_observer_failed")


class LaporTransport:
    """Sends requests to LAPOR! and returns decoded JSON, or raises a grouped error."""

    def __init__(
        self,
        settings: LaporSettings,
        clock: Clock,
        *,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.base_url = settings.base_url
        origin = urlsplit(settings.base_url)
        self.root_url = f"{origin.scheme}://{origin.netloc}"
        #: The token's one pacer in this process, shared by every flow, lookup and retry.
        self.limiter: Pacer = pacer_for(pacer_key(settings), settings.requests_per_minute, clock)
        self._rng = rng or random.Random()  # noqa: S311 (backoff jitter, not security)
        api_key = settings.api_key.get_secret_value()
        token = settings.token.get_secret_value()
        register_secret(api_key)
        register_secret(token)
        self._api_key = api_key
        self.session = session or new_session(proxy=settings.proxy, ca_bundle=settings.ca_bundle)
        self.session.headers.update(wire.auth_headers(api_key, token))
        self._timeout = (settings.timeouts.connect, settings.timeouts.read)
        self._counter = itertools.count(1)
        self.requests_sent = 0

    @property
    def api_key(self) -> str:
        """The API key, for the legacy services that want it in a form field."""
        return self._api_key

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    # --- public verbs --------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, str] | None = None, *, root: bool = False) -> Any:
        """GET a JSON document (retried on transient failures)."""

        def attempt() -> Any:
            response = self._send_once("GET", path, params=params, root=root)
            return self._decode(response, "GET", path, write=None)

        return self._with_retries("GET", path, attempt, idempotent=True)

    def get_bytes(self, path: str, *, max_bytes: int) -> bytes:
        """GET a file's bytes, refusing more than ``max_bytes``."""
        response: requests.Response = self._with_retries(
            "GET", path, lambda: self._send_once("GET", path, stream=True), idempotent=True
        )
        try:
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise errors.MalformedRecord(
                        f"LAPOR! GET {path}: the file is larger than {max_bytes} bytes",
                        [errors.FieldProblem("attachments", f"over {max_bytes} bytes")],
                    )
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            response.close()

    def post(
        self,
        path: str,
        *,
        operation: str,
        lookup: Mapping[str, object],
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: wire.Parts | None = None,
        root: bool = False,
    ) -> Any:
        """POST a write; never re-sent once it may have reached the service."""
        write = (operation, dict(lookup))
        try:
            response: requests.Response = self._with_retries(
                "POST",
                path,
                lambda: self._send_once("POST", path, json=json, data=data, files=files, root=root),
                idempotent=False,
            )
        except errors.ServiceUnavailable as error:
            if not error.sent:
                raise
            raise errors.AmbiguousOutcome(
                str(error), operation=operation, lookup=lookup, answered=error.answered
            ) from None
        return self._decode(response, "POST", path, write=write)

    # --- machinery -----------------------------------------------------------------------

    def _with_retries(
        self, method: str, path: str, attempt: Callable[[], Any], *, idempotent: bool
    ) -> Any:
        return with_retries(
            attempt,
            idempotent=idempotent,
            policy=self.settings.retry,
            clock=self.clock,
            rng=self._rng,
            label=f"LAPOR! {method} {path}",
        )

    def _send_once(
        self, method: str, path: str, *, root: bool = False, **kwargs: Any
    ) -> requests.Response:
        url = (self.root_url if root else self.base_url) + path
        self.limiter.acquire()
        self.requests_sent = next(self._counter)  # threads share a transport
        started = self.clock.monotonic()
        endpoint = wire.endpoint_class(method, path)
        try:
            response = send(
                self.session,
                method,
                url,
                label=f"LAPOR! {method} {path}",
                timeout=self._timeout,
                peer="lapor",
                **kwargs,
            )
        except errors.ConnectorError:
            _notify(endpoint, "error", self.clock.monotonic() - started)
            raise
        _notify(endpoint, str(response.status_code), self.clock.monotonic() - started)
        log.debug(
            "lapor_request_sent",
            method=method,
            path=path,
            status=response.status_code,
            ms=round((self.clock.monotonic() - started) * 1000, 1),
        )
        if response.status_code >= 400:
            self._raise_for_status(response, method, path)
        return response

    def _raise_for_status(self, response: requests.Response, method: str, path: str) -> None:
        status = response.status_code
        body = _json_or_none(response)
        info = wire.error_body(body)
        label = f"LAPOR! {method} {path}: {status} {response.reason or ''}".rstrip()
        if info.code:
            label += f" ({info.code})"
        response.close()
        if status == 401:
            raise errors.AuthenticationFailed(
                f"{label}: the API key or token was refused; check lapor.api_key and lapor.token "
                "(there is no token refresh, so syncing stops until they are fixed)"
            )
        if status == 403:
            raise errors.NotDisposed(
                f"{label}: the complaint is not disposed to this institution", code=info.code
            )
        if status == 404:
            raise errors.NotFound(label, code=info.code)
        if status == 409:
            raise errors.Conflict(label, code=info.code)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock)
            self.limiter.rate_limited_by_service(
                min(retry_after, self.settings.retry.retry_after_cap) if retry_after else None
            )
            raise errors.RateLimited(label, retry_after=retry_after)
        if status in (400, 413, 422):
            problems = [
                errors.FieldProblem(field, rule_text(messages))
                for field, messages in info.field_errors.items()
            ]
            raise errors.RecordRejected(label, problems)
        if status >= 500:
            raise errors.ServiceUnavailable(label, answered=True)
        raise errors.ProtocolError(f"{label}: not an answer the contract allows")

    def _decode(
        self,
        response: requests.Response,
        method: str,
        path: str,
        *,
        write: tuple[str, dict[str, object]] | None,
    ) -> Any:
        body = _json_or_none(response)
        label = f"LAPOR! {method} {path}: {response.status_code}"
        if body is None:
            message = f"{label}: the answer is not JSON"
            if write is not None:
                raise errors.AmbiguousOutcome(
                    message, operation=write[0], lookup=write[1], answered=True
                )
            raise errors.ServiceUnavailable(message, answered=True)
        if wire.is_soft_error(body):
            code = wire.error_body(body).code
            message = f"{label} with a failure status ({code or 'no code'})"
            if write is not None:
                # "Failed" in a 200 says nothing certain about a write LAPOR! may have applied
                # before failing: the outcome is unknown, and it is looked up before a re-send.
                raise errors.AmbiguousOutcome(
                    message, operation=write[0], lookup=write[1], answered=True
                )
            raise errors.ServiceUnavailable(message, sent=True, answered=True)
        return body


def pacer_key(settings: LaporSettings) -> str:
    """Which request budget a configuration draws on: its host and token (never the token itself)."""
    origin = urlsplit(settings.base_url)
    material = f"{origin.netloc}\n{settings.token.get_secret_value()}".encode()
    return "lapor:" + hashlib.sha256(material).hexdigest()[:16]


def _json_or_none(response: requests.Response) -> Any:
    return decode_json(response)
