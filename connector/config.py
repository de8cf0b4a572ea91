"""Configuration: read ``config.yaml`` once at start-up, validate it, report every problem.

Secrets never live in the file. A secret field holds a reference that is resolved here:
``${LAPOR_API_KEY}`` (an environment variable), ``${file:/run/secrets/lapor_token}`` (a file's
content) or ``${credential:lapor_token}`` (a systemd credential: the file of that name in
``$CREDENTIALS_DIRECTORY``, which ``LoadCredential=`` fills; ``${CREDENTIALS_DIRECTORY}`` may also
be written inside ``${file:...}``). Any other string may use the same references;
``${NAME:-default}`` gives a default.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.errors import ConfigError
from connector.lapor import wire


class Section(BaseModel):
    """Base of configuration sections: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Timeouts(Section):
    """Seconds to wait for a connection, and for each read of an answer."""

    connect: float = Field(default=5.0, gt=0, le=120)
    read: float = Field(default=30.0, gt=0, le=600)


class RetryPolicy(Section):
    """How often and how patiently idempotent requests are retried."""

    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base: float = Field(default=0.5, gt=0, le=60)
    backoff_max: float = Field(default=60.0, gt=0, le=3600)
    retry_after_cap: float = Field(default=300.0, ge=0, le=3600)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL; write e.g. {wire.PRODUCTION_BASE_URL}")
    if parts.query or parts.fragment:
        raise ValueError(
            "the base URL must not carry a query or fragment (credentials never go in URLs)"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("plain http is only allowed on loopback (127.0.0.1); use https")
    return value.rstrip("/")


def _pem_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"no CA bundle file at {value}; give the path of a PEM file")
    return value


#: An http(s) base URL: https unless on loopback, no query string.
ServiceUrl = Annotated[str, AfterValidator(_service_url)]
#: An existing PEM file of extra trusted certificate authorities.
PemFile = Annotated[Path, AfterValidator(_pem_file)]


class LaporSettings(Section):
    """How to reach LAPOR! and who we are there."""

    base_url: ServiceUrl = wire.PRODUCTION_BASE_URL
    institution_id: int = Field(gt=0)
    api_key: SecretStr
    token: SecretStr
    requests_per_minute: float = Field(default=50.0, ge=0, le=6000)
    page_size: int = Field(default=wire.MAX_PAGE_SIZE, ge=1, le=wire.MAX_PAGE_SIZE)
    max_pages: int = Field(default=100_000, ge=1)
    #: How long cached master data (the category tree) is used before it is fetched again; a
    #: category the cache does not know is fetched at once. 0: every run.
    master_data_refresh_hours: float = Field(default=24.0, ge=0, le=24 * 30)
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    proxy: str | None = None
    ca_bundle: PemFile | None = None
    #: LAPOR! account that files anonymous complaints from the agency's own channels (their
    #: reporter's identity is never sent).
    intake_user_id: int | None = Field(default=None, gt=0)

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        if not wire.TOKEN_PATTERN.match(value.get_secret_value()):
            raise ValueError(
                "the token must be a braced GUID like {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}; "
                "copy it whole, braces included"
            )
        return value


class AgencySettings(Section):
    """How to reach the agency's own complaint system (through the adapter of its kind)."""

    kind: Literal["rest"] = "rest"
    base_url: ServiceUrl
    token: SecretStr
    page_size: int = Field(default=200, ge=1, le=500)
    max_pages: int = Field(default=100_000, ge=1)
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    proxy: str | None = None
    ca_bundle: PemFile | None = None
    #: Send each linked complaint's ``sla_state`` (an optional field of the agency contract); off
    #: by default, since an agency system that does not know the field refuses it (422).
    push_sla_state: bool = False


class StateSettings(Section):
    """Where the connector keeps its own state (a SQLite file)."""

    path: Path = Path("state/connector.sqlite")


class LoggingSettings(Section):
    """Log level and format (``auto``: JSON unless writing to a terminal)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


def _listen_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(
            f"{value!r} is not host:port; write e.g. 127.0.0.1:9464 (a loopback address unless "
            "a Prometheus elsewhere must scrape it)"
        )
    return value


class MonitoringSettings(Section):
    """Health and metrics over HTTP (docs/monitoring.md); off unless ``listen`` is set."""

    #: ``host:port`` to serve /healthz, /readyz and /metrics on, e.g. ``127.0.0.1:9464``.
    listen: Annotated[str, AfterValidator(_listen_address)] | None = None

    def address(self) -> tuple[str, int] | None:
        """The (host, port) to bind, or None when monitoring is off."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class ScheduleSettings(Section):
    """How often each sync job runs, in seconds."""

    inbox_seconds: float = Field(default=60.0, ge=1, le=86_400)
    inbound_seconds: float = Field(default=60.0, ge=1, le=86_400)
    followups_out_seconds: float = Field(default=60.0, ge=1, le=86_400)
    intake_out_seconds: float = Field(default=300.0, ge=1, le=86_400)


class SyncSettings(Section):
    """How much of the work runs at once."""

    #: Requests in flight at once (detail and follow-up reads, agency writes); each complaint's
    #: own work stays in order. Default: sized to the LAPOR! pace (rate x a 2-second allowance
    #: for latency, plus 2, at most 16), or 32 when requests are not paced.
    slots: int | None = Field(default=None, ge=1, le=64)
    #: LAPOR! requests one inbound run may make (None: no limit). With a backlog (a backfill,
    #: an outage) a run then does the most urgent work within it and leaves the rest for the
    #: next run, so the other flows get their turn in between (docs/sla.md).
    requests_per_run: int | None = Field(default=None, ge=5, le=1_000_000)


def slots_for(settings: Settings) -> int:
    """The configured slots, or the default sized to the LAPOR! pace."""
    if settings.sync.slots is not None:
        return settings.sync.slots
    rate = settings.lapor.requests_per_minute
    return 32 if rate == 0 else min(16, math.ceil(rate / 60 * 2) + 2)


class SlaSettings(Section):
    """Service-level deadlines (docs/sla.md)."""

    #: A complaint this many working days or fewer before its due date is "at risk".
    at_risk_days: int = Field(default=2, ge=0, le=30)


class OutboxSettings(Section):
    """How unfinished remote writes are retried: backoff doubling from the first delay, then dead."""

    max_attempts: int = Field(default=8, ge=1, le=50)
    first_delay_seconds: float = Field(default=60.0, ge=0, le=86_400)
    max_delay_seconds: float = Field(default=21_600.0, ge=0, le=604_800)


#: File types both systems take (LAPOR!'s C8 list [OBS]).
ATTACHMENT_TYPES = ("jpg", "jpeg", "png", "pdf", "doc", "docx", "xls", "xlsx")


class AttachmentSettings(Section):
    """Limits on the files carried between the two systems (a citizen's photo, an agency PDF).

    A file over ``max_bytes`` or of a type not in ``allowed_types`` is quarantined, naming the
    file and the limit; the complaint or follow-up it belongs to goes on without it.
    """

    #: Largest file, in bytes (LAPOR! takes at most 10 MB a file).
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=100 * 1024 * 1024)
    #: File name extensions carried, lower case without the dot.
    allowed_types: tuple[str, ...] = ATTACHMENT_TYPES

    @field_validator("allowed_types")
    @classmethod
    def _check_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        types = tuple(t.strip().lower().lstrip(".") for t in value)
        bad = [t for t in types if not re.fullmatch(r"[a-z0-9]{1,10}", t)]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not a file extension; write them like jpg, pdf (no dot, no path)"
            )
        return types

    def refusal(self, extension: str | None, size: int | None) -> str | None:
        """Why a file of this type and size is not carried (naming the limit and the fix), or None."""
        kind = (extension or "").lower().lstrip(".")
        if kind not in self.allowed_types:
            return (
                f"type .{kind or '?'} is not carried (attachments.allowed_types: "
                f"{', '.join(self.allowed_types)}); convert the file, or add the type if both "
                "systems take it"
            )
        if size is not None and size > self.max_bytes:
            return (
                f"{size} bytes, over attachments.max_bytes ({self.max_bytes}); shrink the file, "
                "or raise the limit (LAPOR! itself takes at most 10 MB)"
            )
        return None


class ReconcileSettings(Section):
    """The daemon's reconciliation sweep: how often the whole set is compared, in how many
    slices, and the share of the LAPOR! request budget a slice may spend."""

    #: The whole inbox, the agency system and the links are compared once per this many hours.
    every_hours: float = Field(default=24.0, ge=1, le=24 * 30)
    #: Slices per interval: the sweep runs every ``every_hours / slices`` and checks one slice.
    slices: int = Field(default=24, ge=1, le=1440)
    #: At most this share of ``lapor.requests_per_minute`` over a slice's time goes to the sweep.
    budget_share: float = Field(default=0.05, gt=0, le=0.5)

    @property
    def slice_seconds(self) -> float:
        """Seconds between two slices of the sweep."""
        return self.every_hours * 3600 / self.slices


class PrivacySettings(Section):
    """How long the contents of closed complaints are kept (UU PDP 27/2022; docs/privacy.md)."""

    #: A complaint closed on both sides this many days ago loses the contents the connector still
    #: holds of it (titles, texts, file names, quarantined records); ids, links and the audit
    #: log stay. Both systems keep their own copies: this is only the connector's.
    retention_days: int = Field(default=365, ge=1, le=3650)
    #: The daemon prunes once a day (``lapor-connector state prune`` does it on demand).
    prune_daily: bool = True


class MappingsSettings(Section):
    """Where the mapping files are."""

    path: Path = Path("mappings")


_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2}){32,}")


class AuditSettings(Section):
    """The audit log's key (a secret reference), where checkpoints are anchored, and how often.

    Without a key the log is chained with plain SHA-256 (docs/audit-log.md says what that cannot
    detect); ``lapor-connector log keygen`` makes a key.
    """

    key: SecretStr | None = None
    anchor_path: Path | None = None
    checkpoint_every: int = Field(default=100, ge=1, le=1_000_000)

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _HEX_KEY.fullmatch(value.get_secret_value().strip()):
            raise ValueError(
                "the key must be at least 32 bytes written in hex (64 characters); "
                "make one with `lapor-connector log keygen --out FILE`"
            )
        return value

    @model_validator(mode="after")
    def _anchor_needs_key(self) -> AuditSettings:
        if self.key is None and self.anchor_path is not None:
            raise ValueError("anchor_path needs a key (checkpoints are MACed with it); add key")
        if self.key is not None and self.anchor_path is None:
            raise ValueError(
                "key needs anchor_path, a file outside the state, e.g. "
                "/var/log/lapor-connector/audit.anchor (without it a cut tail goes unseen)"
            )
        return self


class Settings(Section):
    """The whole configuration."""

    lapor: LaporSettings
    agency: AgencySettings | None = None
    state: StateSettings = StateSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    mappings: MappingsSettings = MappingsSettings()
    outbox: OutboxSettings = OutboxSettings()
    sync: SyncSettings = SyncSettings()
    sla: SlaSettings = SlaSettings()
    attachments: AttachmentSettings = AttachmentSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    logging: LoggingSettings = LoggingSettings()
    audit: AuditSettings = AuditSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    privacy: PrivacySettings = PrivacySettings()


#: Fields that must be references, never literal values in the file.
SECRET_FIELDS = (
    ("lapor", "api_key"),
    ("lapor", "token"),
    ("agency", "token"),
    ("audit", "key"),
)

#: ``${...}``, holding at most one nested ``${...}`` (``${file:${CREDENTIALS_DIRECTORY}/key}``).
_REFERENCE = re.compile(r"\$\{((?:\$\{[^{}]*\}|[^{}])*)\}")
_CREDENTIALS_DIRECTORY = re.compile(r"\$\{CREDENTIALS_DIRECTORY\}|\$CREDENTIALS_DIRECTORY\b")
#: A systemd credential's name: a file name, no path.
_CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*")
_FIX_BY_TYPE = {
    "missing": "required; add it",
    "extra_forbidden": "unknown key; remove it or check its spelling",
}


def load_settings(path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration file; raise ``ConfigError`` listing every problem."""
    source = Path(path)
    raw = _read_yaml(source)
    return settings_from_mapping(raw, env=os.environ if env is None else env, source=str(source))


class AuditView(BaseModel):
    """The two sections ``log verify`` needs: where the state is, and the audit key and anchor."""

    model_config = ConfigDict(frozen=True)

    state: StateSettings = StateSettings()
    audit: AuditSettings = AuditSettings()


def load_audit_settings(path: str | Path, env: Mapping[str, str] | None = None) -> AuditView:
    """Read only the ``state`` and ``audit`` sections: the LAPOR! and agency secrets are never
    resolved, so ``log verify`` runs where they are not available."""
    source = Path(path)
    raw = _read_yaml(source)
    if not isinstance(raw, dict):
        raise ConfigError(
            ["the file must hold a mapping of sections (state:, audit:, ...)"], str(source)
        )
    wanted = {name: raw[name] for name in ("state", "audit") if name in raw}
    problems: list[str] = []
    key = wanted.get("audit", {}).get("key") if isinstance(wanted.get("audit"), dict) else None
    if key is not None and not (isinstance(key, str) and _REFERENCE.fullmatch(key.strip())):
        problems.append(
            "audit.key: a secret is written in the file; write ${AUDIT_KEY} "
            "(or ${file:/path/to/audit.key})"
        )
    resolved = _resolve(wanted, (), os.environ if env is None else env, problems)
    try:
        view = AuditView.model_validate(resolved)
    except ValidationError as error:
        problems += _described(error)
    if problems:
        raise ConfigError(problems, str(source))
    return view


def load_state_settings(path: str | Path, env: Mapping[str, str] | None = None) -> StateSettings:
    """Read only the ``state`` section: no secret is resolved, so ``state backup`` runs from a
    shell where the service's credentials are not available."""
    source = Path(path)
    raw = _read_yaml(source)
    section = raw.get("state", {}) if isinstance(raw, dict) else None
    problems: list[str] = []
    resolved = _resolve(section, ("state",), os.environ if env is None else env, problems)
    try:
        state = StateSettings.model_validate(resolved)
    except ValidationError as error:
        problems += [f"state.{problem}" for problem in _described(error)]
    if problems:
        raise ConfigError(problems, str(source))
    return state


def _read_yaml(source: Path) -> Any:
    try:
        return yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            ["file not found; pass --config PATH or copy config.yaml from the project"], str(source)
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise ConfigError(
            [f"not valid YAML ({where}); fix the syntax there"], str(source)
        ) from None


def settings_from_mapping(
    raw: object, *, env: Mapping[str, str], source: str = "config.yaml"
) -> Settings:
    """Validate an already-parsed configuration mapping (resolving references)."""
    if not isinstance(raw, dict):
        raise ConfigError(
            ["the file must hold a mapping of sections (lapor:, state:, ...)"], source
        )
    problems: list[str] = []
    for section, key in SECRET_FIELDS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if value is not None and not (
            isinstance(value, str) and _REFERENCE.fullmatch(value.strip())
        ):
            env_name = f"{section.upper()}_{key.upper()}"
            problems.append(
                f"{section}.{key}: a secret is written in the file; put it in the environment and "
                f"write ${{{env_name}}} (or ${{file:/path/to/secret}})"
            )
    resolved = _resolve(raw, (), env, problems)
    try:
        settings = Settings.model_validate(resolved)
    except ValidationError as error:
        raise ConfigError(problems + _described(error), source) from None
    if problems:
        raise ConfigError(problems, source)
    return settings


def _described(error: ValidationError) -> list[str]:
    """Each validation problem as ``path: fix``."""
    problems = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(p) for p in item["loc"])
        message = _FIX_BY_TYPE.get(item["type"], item["msg"].removeprefix("Value error, "))
        problems.append(f"{where}: {message}")
    return problems


def _resolve(
    value: Any, where: tuple[str, ...], env: Mapping[str, str], problems: list[str]
) -> Any:
    if isinstance(value, dict):
        return {k: _resolve(v, (*where, str(k)), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, (*where, str(i)), env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    field = ".".join(where)

    def substitute(match: re.Match[str]) -> str:
        reference = match.group(1)
        if reference.startswith("credential:"):
            return _credential(reference.removeprefix("credential:"), field, env, problems)
        if reference.startswith("file:"):
            written = reference.removeprefix("file:")
            if _CREDENTIALS_DIRECTORY.search(written):
                if not env.get("CREDENTIALS_DIRECTORY"):
                    problems.append(f"{field}: {_NO_CREDENTIALS_DIRECTORY}")
                    return ""
                written = _CREDENTIALS_DIRECTORY.sub(
                    lambda _: env["CREDENTIALS_DIRECTORY"], written
                )
            file_path = Path(written).expanduser()
            try:
                return file_path.read_text(encoding="utf-8").strip()
            except OSError:
                problems.append(
                    f"{'.'.join(where)}: cannot read the file {file_path}; "
                    "check the path and its permissions"
                )
                return ""
        name, _, default = reference.partition(":-")
        if name in env:
            return env[name]
        if ":-" in reference:
            return default
        problems.append(
            f"{'.'.join(where)}: environment variable {name} is not set; export it before starting"
        )
        return ""

    return _REFERENCE.sub(substitute, value)


_NO_CREDENTIALS_DIRECTORY = (
    "$CREDENTIALS_DIRECTORY is not set (systemd sets it when the unit has LoadCredential=); "
    "start the connector with its unit (deploy/lapor-connector.service), or outside systemd "
    "write ${file:/path/to/secret} instead"
)


def _credential(name: str, field: str, env: Mapping[str, str], problems: list[str]) -> str:
    """The content of systemd credential ``name`` (never logged); a problem names the fix."""
    if not _CREDENTIAL_NAME.fullmatch(name):
        problems.append(
            f"{field}: {name!r} is not a credential name; write the name given to "
            "LoadCredential= (letters, digits, _ . - @; no path), e.g. ${credential:lapor_api_key}"
        )
        return ""
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        problems.append(f"{field}: credential {name}: {_NO_CREDENTIALS_DIRECTORY}")
        return ""
    path = Path(directory) / name
    try:
        content = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        problems.append(
            f"{field}: credential {name} is not in {directory}; add "
            f"LoadCredential={name}:/etc/lapor-connector/credentials/{name} to the unit "
            "(or check the name's spelling)"
        )
        return ""
    except (OSError, UnicodeDecodeError):
        problems.append(
            f"{field}: cannot read credential {name} in {directory}; check the source file "
            "given to LoadCredential= and its permissions (text, UTF-8)"
        )
        return ""
    if not content:
        problems.append(
            f"{field}: credential {name} is empty; put the secret in the file given to "
            f"LoadCredential={name}:..."
        )
    return content
