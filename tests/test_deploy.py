"""The systemd units in deploy/ say what docs/deploy.md promises, and systemd accepts them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from connector import errors
from connector.cli.support import exit_code_for
from connector.config import Timeouts, settings_from_mapping

DEPLOY = Path("deploy")
UNIT = DEPLOY / "lapor-connector.service"
TEMPLATE = DEPLOY / "lapor-connector@.service"
UNITS = pytest.mark.parametrize("unit", [UNIT, TEMPLATE], ids=["unit", "template"])


def directives(unit: Path) -> dict[str, list[str]]:
    """``Section.Key`` → every value given (systemd allows a key more than once)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in unit.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def one(unit: Path, key: str) -> str:
    values = directives(unit)[f"Service.{key}"]
    assert len(values) == 1, f"{key} given {len(values)} times"
    return values[0]


@UNITS
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("DynamicUser", "yes"),
        ("UMask", "0077"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("NoNewPrivileges", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("StateDirectoryMode", "0700"),
    ],
)
def test_the_unit_is_sandboxed_and_notifies(unit: Path, key: str, value: str) -> None:
    """Each hardening and notification directive the deployment guide lists is set."""
    assert one(unit, key) == value


@UNITS
def test_the_system_call_filter_is_the_service_set(unit: Path) -> None:
    """SystemCallFilter allows @system-service (and takes privileged calls away)."""
    filters = directives(unit)["Service.SystemCallFilter"]
    assert "@system-service" in filters
    assert "~@privileged @resources" in filters


@UNITS
def test_configuration_and_credential_errors_do_not_restart(unit: Path) -> None:
    """RestartPreventExitStatus holds exactly the exit codes of bad config/mappings and refusals."""
    codes = {int(code) for code in one(unit, "RestartPreventExitStatus").split()}
    assert codes == {
        exit_code_for(errors.ConfigError([], "config.yaml")),
        exit_code_for(errors.MappingError("")),
        exit_code_for(errors.AuthenticationFailed("")),
    }
    assert codes == {3, 4}


@UNITS
def test_watchdog_and_stop_timeouts(unit: Path) -> None:
    """A watchdog is armed; the stop timeout outlasts the one request in flight at SIGTERM."""
    assert int(one(unit, "WatchdogSec")) >= 10
    timeouts = Timeouts()
    assert int(one(unit, "TimeoutStopSec")) > timeouts.connect + timeouts.read


def test_the_unit_runs_the_venv_under_opt_with_its_state_directory() -> None:
    """ExecStart is the venv under /opt; config, state and logs sit where the guide says."""
    assert one(UNIT, "ExecStart") == (
        "/opt/lapor-connector/bin/lapor-connector run --config /etc/lapor-connector/config.yaml"
    )
    assert one(UNIT, "StateDirectory") == "lapor-connector"
    assert one(UNIT, "LogsDirectory") == "lapor-connector"
    assert one(UNIT, "WorkingDirectory") == "/var/lib/lapor-connector"


def test_the_template_gives_each_instance_its_own_config_state_and_credentials() -> None:
    """lapor-connector@NAME: /etc/lapor-connector/NAME/, /var/lib/lapor-connector/NAME."""
    assert one(TEMPLATE, "ExecStart") == (
        "/opt/lapor-connector/bin/lapor-connector run --config /etc/lapor-connector/%i/config.yaml"
    )
    assert one(TEMPLATE, "StateDirectory") == "lapor-connector/%i"
    assert one(TEMPLATE, "LogsDirectory") == "lapor-connector/%i"
    assert one(TEMPLATE, "WorkingDirectory") == "/var/lib/lapor-connector/%i"
    sources = [c.partition(":")[2] for c in directives(TEMPLATE)["Service.LoadCredential"]]
    assert all(s.startswith("/etc/lapor-connector/%i/credentials/") for s in sources)


@UNITS
def test_the_example_config_reads_every_credential_the_unit_loads(
    unit: Path, tmp_path: Path
) -> None:
    """deploy/config.yaml loads with exactly the unit's credentials, and keeps its state and
    audit anchor in the unit's StateDirectory and LogsDirectory."""
    names = [c.partition(":")[0] for c in directives(unit)["Service.LoadCredential"]]
    assert sorted(names) == ["agency_token", "audit_key", "lapor_api_key", "lapor_token"]
    raw = yaml.safe_load((DEPLOY / "config.yaml").read_text(encoding="utf-8"))
    referenced = set(re.findall(r"\$\{credential:([^}]+)\}", yaml.safe_dump(raw)))
    assert referenced == set(names)
    for name in names:
        (tmp_path / name).write_text(
            {"lapor_token": "{11111111-2222-3333-4444-555555555555}", "audit_key": "ab" * 32}.get(
                name, f"{name}-value"
            )
        )
    settings = settings_from_mapping(raw, env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert settings.agency is not None
    assert settings.agency.token.get_secret_value() == "agency_token-value"
    assert settings.state.path.parent == Path("/var/lib") / one(UNIT, "StateDirectory")
    assert settings.audit.anchor_path is not None
    assert settings.audit.anchor_path.parent == Path("/var/log") / one(UNIT, "LogsDirectory")


ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize(
    ("unit", "verified"),
    [(UNIT, "lapor-connector.service"), (TEMPLATE, "lapor-connector@kota-bandung.service")],
    ids=["unit", "template-instance"],
)
def test_systemd_analyze_verify_accepts_the_unit(unit: Path, verified: str, tmp_path: Path) -> None:
    """systemd-analyze verify passes with no warning (ExecStart pointed at this venv's command)."""
    command = Path(sys.executable).parent / "lapor-connector"
    if not command.is_file():
        pytest.skip("no lapor-connector command installed beside this interpreter")
    text = unit.read_text(encoding="utf-8")
    (tmp_path / unit.name).write_text(
        text.replace("/opt/lapor-connector/bin/lapor-connector", str(command)), encoding="utf-8"
    )
    result = subprocess.run(  # noqa: S603 (systemd's own tool on our unit)
        [str(ANALYZE), "verify", "--man=no", "--generators=no", str(tmp_path / verified)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
