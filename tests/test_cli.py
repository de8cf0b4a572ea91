"""The command line, as an operator uses it: help, configuration errors, pull, daemon."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from connector.cli import cli
from connector.config import settings_from_mapping
from connector.daemon import Daemon
from connector.errors import AuthenticationFailed
from connector.simulators.lapor import LaporSimulator
from connector.writer import WriterBusy, writer_lock
from tests.conftest import API_KEY, INSTITUTION_ID, TOKEN

ENV = {"LAPOR_API_KEY": API_KEY, "LAPOR_TOKEN": TOKEN}


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found += all_commands(command, path)
        else:
            found.append((path, command))
    return found


COMMANDS = all_commands(cli)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example_and_is_documented(
    path: str, command: click.Command
) -> None:
    """Each command explains itself with an example, and the README lists it."""
    result = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "lapor-connector" in result.output
    assert f"lapor-connector {path}" in Path("README.md").read_text()


def write_config(tmp_path: Path, base_url: str, **lapor: object) -> Path:
    config = {
        "lapor": {
            "base_url": base_url,
            "institution_id": INSTITUTION_ID,
            "api_key": "${LAPOR_API_KEY}",
            "token": "${LAPOR_TOKEN}",
            "requests_per_minute": 0,
            **lapor,
        },
        "state": {"path": str(tmp_path / "state.sqlite")},
        "logging": {"level": "WARNING", "format": "json"},
        "schedule": {"inbox_seconds": 3600},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_invalid_config_exits_3_listing_every_problem(tmp_path: Path) -> None:
    """A broken configuration is one clear message, exit code 3, no traceback."""
    path = tmp_path / "config.yaml"
    path.write_text("lapor:\n  base_url: ftp://x\n  api_key: literal\n  colour: red\n")
    result = CliRunner().invoke(cli, ["config", "check", "--config", str(path)], env=ENV)
    assert result.exit_code == 3
    assert "lapor.api_key: a secret is written in the file" in result.output
    assert "lapor.colour: unknown key" in result.output
    assert "lapor.institution_id: required" in result.output
    assert "Traceback" not in result.output
    assert "literal" not in result.output


def test_config_check_never_prints_secrets(tmp_path: Path) -> None:
    """config check says what it connects to, without the key or token."""
    result = CliRunner().invoke(
        cli,
        [
            "config",
            "check",
            "--config",
            str(write_config(tmp_path, "https://lapor.example.go.id/lapor/3.0.0")),
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    assert "institution 145" in result.output
    assert API_KEY not in result.output
    assert TOKEN not in result.output


def test_pull_prints_the_complaints(tmp_path: Path, sim: LaporSimulator) -> None:
    """pull stores and shows complaints; secret titles are hidden in the table."""
    result = CliRunner().invoke(
        cli,
        ["pull", "--config", str(write_config(tmp_path, sim.base_url)), "--limit", "100"],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    match = re.search(r"pulled: (\d+) new", result.output)
    assert match
    assert int(match.group(1)) > 0
    assert "rahasia" in result.output


def test_wrong_credentials_exit_4(tmp_path: Path, sim: LaporSimulator) -> None:
    """Refused credentials stop the command with exit code 4."""
    env = {**ENV, "LAPOR_API_KEY": "wrong-key"}
    result = CliRunner().invoke(
        cli, ["pull", "--config", str(write_config(tmp_path, sim.base_url))], env=env
    )
    assert result.exit_code == 4
    assert "refused" in result.output
    assert "wrong-key" not in result.output


def settings_for(tmp_path: Path, base_url: str, api_key: str = API_KEY) -> object:
    raw = yaml.safe_load(write_config(tmp_path, base_url).read_text())
    return settings_from_mapping(raw, env={**ENV, "LAPOR_API_KEY": api_key})


def test_daemon_runs_the_inbox_job_and_stops(tmp_path: Path, sim: LaporSimulator) -> None:
    """The daemon runs its job at once, and stops cleanly when asked."""
    daemon = Daemon(settings_for(tmp_path, sim.base_url))  # type: ignore[arg-type]
    daemon.serve(max_runs=1)
    assert daemon.runs == 1
    assert (tmp_path / "state.sqlite").exists()


def test_daemon_stops_on_refused_credentials(tmp_path: Path, sim: LaporSimulator) -> None:
    """A 401 stops the daemon with the fatal error instead of retrying forever."""
    daemon = Daemon(settings_for(tmp_path, sim.base_url, api_key="wrong-key"))  # type: ignore[arg-type]
    with pytest.raises(AuthenticationFailed):
        daemon.serve()
    assert daemon.runs == 1


def test_one_writer_per_state_file(tmp_path: Path) -> None:
    """A second writer on the same state file is refused, naming who holds the lock."""
    state = tmp_path / "state.sqlite"
    with (
        writer_lock(state, "run (the daemon)"),
        pytest.raises(WriterBusy, match=r"run \(the daemon\) \(pid \d+\) is writing"),
        writer_lock(state, "sync"),
    ):
        pass
    with writer_lock(state, "sync"):  # released: the next writer gets it
        pass


def test_every_command_the_readme_lists_exists() -> None:
    """No README row names a command the CLI does not have."""
    listed = set(
        re.findall(
            r"^\| `lapor-connector ([a-z]+(?: [a-z]+)?)",
            Path("README.md").read_text(),
            flags=re.MULTILINE,
        )
    )
    known = {path for path, _ in COMMANDS} | {name for name, command in cli.commands.items()}
    missing = {
        entry
        for entry in listed
        if entry not in known
        and entry.split()[0] not in known - {"simulate", "config", "quarantine", "mappings"}
    }
    assert missing == set()
