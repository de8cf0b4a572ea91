"""HTTP pieces every external system's client shares: sessions, retry loop, Retry-After.

Each wire-format module (``connector/lapor``, ``connector/adapters``) keeps its own mapping of
answers to errors; what is generic lives here: a session that never reads proxies from the
environment and always verifies TLS, a bounded full-jitter retry loop that sleeps through the
injected clock, and the rules that tell whether a failed request can have reached the service.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from datetime import timezone
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from connector import errors
from connector.clock import Clock
from connector.config import RetryPolicy
from connector.logs import get_logger

log = get_logger("http")

T = TypeVar("T")

#: Told of every request's end, per peer ("lapor", "agency"): the status, or None without answer.
PeerObserver = Callable[[str, "int | None"], None]
_peer_observers: list[PeerObserver] = []


def observe_peers(observer: PeerObserver) -> Callable[[], None]:
    """Tell ``observer`` whether each request to a named peer got an answer; returns the way to stop."""
    _peer_observers.append(observer)
    return lambda: _peer_observers.remove(observer) if observer in _peer_observers else None


def _tell_peers(peer: str | None, status: int | None) -> None:
    if peer is None:
        return
    for observer in list(_peer_observers):
        try:
            observer(peer, status)
        except Exception:  # monitoring never breaks a request
            log.exception("peer_observer_failed")


def new_session(
    *, proxy: str | None = None, ca_bundle: Path | None = None, pool: int = 32
) -> requests.Session:
    """A keep-alive session: proxies from configuration only, TLS always verified."""
    session = requests.Session()
    # Scanning the environment for proxies costs ~200 µs a request and makes behaviour depend on
    # the shell the daemon was started from; proxies come from configuration instead.
    session.trust_env = False
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}
    session.verify = str(ca_bundle) if ca_bundle else True
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def parse_retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - clock.now()).total_seconds())


def never_sent(error: requests.RequestException) -> bool:
    """True when the request cannot have reached the service (no connection was made)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[object] = [error]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (NewConnectionError, ConnectTimeoutError)):
            return True
        if isinstance(item, BaseException):
            stack.extend(item.args)
            stack.extend(x for x in (item.__cause__, item.__context__) if x is not None)
        reason = getattr(item, "reason", None)
        if reason is not None:
            stack.append(reason)
    return False


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    label: str,
    timeout: tuple[float, float],
    peer: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request; a transport failure becomes ``ServiceUnavailable`` saying whether it was sent.

    No redirect is ever followed, so the credentials a session carries stay with their host: a
    3xx answer is a ``ProtocolError`` naming the status and the host it points to (never its URL).
    ``peer`` names the service for ``observe_peers`` (readiness).
    """
    stream = bool(kwargs.pop("stream", False))
    headers = kwargs.pop("headers", None)
    try:
        # Prepared here rather than by Session.request: its merging of environment, cookies and
        # hooks costs ~20% of a request's client CPU and does nothing for us (no cookies, no
        # environment: proxies and the CA bundle are the session's own, applied by send).
        prepared = requests.Request(
            method, url, headers={**session.headers, **(headers or {})}, **kwargs
        ).prepare()
        response = session.send(prepared, timeout=timeout, allow_redirects=False, stream=stream)
    except requests.RequestException as error:
        sent = not never_sent(error)
        kind = "timed out" if isinstance(error, requests.Timeout) else "connection failed"
        log.warning("request_failed", target=label, problem=kind, sent=sent)
        _tell_peers(peer, None)
        raise errors.ServiceUnavailable(
            f"{label}: {kind} ({type(error).__name__})", sent=sent
        ) from None
    _tell_peers(peer, response.status_code)
    if 300 <= response.status_code < 400:
        response.close()
        raise errors.ProtocolError(
            f"{label}: {response.status_code} {response.reason or ''}".rstrip()
            + f", a redirect to {redirect_host(response.headers.get('Location'), url)}; no "
            "redirect is followed (credentials stay with their host): check the base_url"
        )
    return response


def redirect_host(location: str | None, url: str) -> str:
    """The host (and port) a redirect points to, never its path or query."""
    target = urlsplit(location or "")
    if not target.hostname:
        target = urlsplit(url)  # a relative Location stays on the same host
    try:
        port = target.port
    except ValueError:
        port = None
    host = target.hostname or "an unknown host"
    return f"{host}:{port}" if port else host


def with_retries(
    attempt: Callable[[], T],
    *,
    idempotent: bool,
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    label: str,
) -> T:
    """Run ``attempt``, retrying retriable errors: any for idempotent requests, unsent ones otherwise.

    Waits obey ``Retry-After`` (capped by the policy), else full jitter:
    ``uniform(0, min(backoff_max, backoff_base * 2**(attempt - 1)))``, slept on the injected clock.
    """

    def retriable(error: BaseException) -> bool:
        if isinstance(error, errors.Stopping):
            return False  # stopping: no new attempt
        return isinstance(error, errors.RetriableError) and (idempotent or not error.sent)

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, errors.RetriableError) and error.retry_after is not None:
            return min(error.retry_after, policy.retry_after_cap)
        ceiling = min(policy.backoff_max, policy.backoff_base * 2 ** (state.attempt_number - 1))
        return rng.uniform(0, ceiling)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=tenacity.retry_if_exception(retriable),
        sleep=clock.sleep,
        reraise=True,
        before_sleep=lambda state: log.warning(
            "request_retrying",
            target=label,
            attempt=state.attempt_number,
            wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
            error=type(state.outcome.exception()).__name__ if state.outcome else None,
        ),
    )
    return retrying(attempt)
