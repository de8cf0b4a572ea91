"""The connector's errors, grouped by what the caller does next.

The sync loop's ``except`` clauses read as policy:

- ``ConfigError``: fix the configuration; nothing runs until then.
- ``MappingError``: fix a mapping file; the record waits in quarantine.
- ``FatalError``: stop syncing and alert (wrong credentials, a service that breaks its contract).
- ``RetriableError``: try again later (5xx, 429, connection trouble).
- ``RecordError``: quarantine this record with the reason; the rest of the batch goes on.
- ``ReconcileError``: re-read the remote state, then resolve (403 re-disposed, 404, 409).
- ``AmbiguousOutcome``: a write may or may not have happened; look it up before writing again.

Messages carry status, reason, path and codes, never bodies, query strings, tokens or personal data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class ConnectorError(Exception):
    """Base of every error the connector raises on purpose."""


class ConfigError(ConnectorError):
    """The configuration is invalid; every problem is listed with its path and the fix."""

    def __init__(self, problems: Sequence[str], source: str = "config.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  {source}: {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the configuration:\n{lines}")


class ListenFailed(ConfigError):
    """A configured address cannot be listened on (in use, or not this host's); one line."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])
        self.args = (problem,)

    def __str__(self) -> str:
        return self.problems[0]


class MappingError(ConnectorError):
    """A value has no mapping; the record is quarantined until the mapping is fixed."""


class FatalError(ConnectorError):
    """Syncing must stop and someone must be alerted; retrying cannot help."""


class AuthenticationFailed(FatalError):
    """LAPOR! rejected the API key or token (401); there is no refresh, so they are wrong."""


class ProtocolError(FatalError):
    """The service answered in a way the contract does not allow (the contract may be wrong)."""


class RetriableError(ConnectorError):
    """A transient failure: the same request may succeed later."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, sent: bool = True
    ) -> None:
        super().__init__(message)
        #: Seconds the service asked us to wait (Retry-After), if it said.
        self.retry_after = retry_after
        #: False when the request certainly never reached the service (safe to send again).
        self.sent = sent


class ServiceUnavailable(RetriableError):
    """5xx, a gateway error page, a soft error, or a connection that failed."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        sent: bool = True,
        answered: bool = False,
    ) -> None:
        super().__init__(message, retry_after=retry_after, sent=sent)
        #: True when the service answered (a 5xx status): it has finished with the request.
        self.answered = answered


class Stopping(RetriableError):
    """The connector is stopping (SIGTERM): this request was not sent; the next run does it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class RateLimited(RetriableError):
    """429 Too Many Requests; ``retry_after`` says how long to wait. Nothing was processed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after, sent=False)


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: its path (``data[3].updated_at``) and what is wrong, without its value."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class RecordError(ConnectorError):
    """This record cannot be synced as it is; quarantine it with the field problems."""

    def __init__(
        self, message: str, problems: Sequence[FieldProblem] = (), *, record_id: str | None = None
    ) -> None:
        self.problems = tuple(problems)
        self.record_id = record_id
        detail = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{message}: {detail}" if detail else message)


class RecordRejected(RecordError):
    """LAPOR! refused the record (400, 413, 422) and said which fields were wrong."""


class RecordNotSendable(RecordError):
    """A record LAPOR! would refuse (checked before sending): fix it at its source, then replay."""


class MalformedRecord(RecordError):
    """A record received from a service does not fit the canonical model."""


class UnmappedValue(MappingError, RecordError):
    """A record names a value the connector has never seen (a status, an author type, ...).

    The record is quarantined with the value's path and the mapping to add, and replayed after
    the mapping is fixed; it is a mapping gap, not a malformed record.
    """


class ReconcileError(ConnectorError):
    """The remote state is not what we assumed; re-read it, then resolve."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class NotDisposed(ReconcileError):
    """403: the complaint is no longer disposed to this institution; stop pushing to it."""


class NotFound(ReconcileError):
    """404: unknown id, or a secret complaint this institution may not see."""


class Conflict(ReconcileError):
    """409: the action does not fit the complaint's state (closed, invalid transition)."""


class AmbiguousOutcome(ConnectorError):
    """A write was sent but no answer came back: it may or may not have been applied.

    ``lookup`` holds what identifies the write remotely (for a create, the ``external_ref``;
    for a follow-up, the complaint id and a fingerprint of the content) so the caller can
    find out before anything is sent again.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        lookup: Mapping[str, object],
        answered: bool = False,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.lookup = dict(lookup)
        #: True when the service answered (5xx, a soft error, a body that is not JSON): it has
        #: finished with the request, so a lookup that finds nothing means it was not applied
        #: and the write may be sent again at once. False after a timeout or a dropped
        #: connection: the service may still be applying it, so a re-send waits its back-off.
        self.answered = answered
