"""Clear errors at the edges: one line naming the path or the port and the fix, the documented
exit code, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from connector.cli import cli
from tests.test_cli import ENV, write_config


def config_with(tmp_path: Path, **sections: object) -> Path:
    path = write_config(tmp_path, "https://lapor.example.go.id/lapor/3.0.0")
    data = yaml.safe_load(path.read_text())
    data.update(sections)
    path.write_text(yaml.safe_dump(data))
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=ENV)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-folder"
    path.write_text("x")
    return path


@pytest.mark.parametrize("command", [["pull"], ["status"], ["config", "check"], ["sla"]])
def test_a_state_path_that_cannot_be_created_is_one_line_and_exit_3(
    tmp_path: Path, a_file: Path, command: list[str]
) -> None:
    config = config_with(tmp_path, state={"path": str(a_file / "state" / "connector.sqlite")})
    code, output = run(*command, "--config", str(config))
    assert code == 3
    assert "state.path:" in output
    assert str(a_file) in output


def test_config_check_checks_the_state_path_and_the_mappings(tmp_path: Path) -> None:
    config = config_with(tmp_path, mappings={"path": str(tmp_path / "no-mappings")})
    code, output = run("config", "check", "--config", str(config))
    assert code == 3
    assert "mappings.path:" in output
    assert "no such folder" in output
    assert "valid" not in output
    assert not (tmp_path / "no-mappings").exists()


def test_config_check_reports_a_broken_mapping_file_by_its_key(tmp_path: Path) -> None:
    import shutil

    shutil.copytree("mappings", tmp_path / "mappings")
    (tmp_path / "mappings" / "calendar.yaml").write_text(
        "closures:\n  - {date: 2026-02-30, name: x}\n"
    )
    config = config_with(tmp_path, mappings={"path": str(tmp_path / "mappings")})
    code, output = run("config", "check", "--config", str(config))
    assert code == 3
    assert "calendar.yaml: closures.0.date" in output


def test_config_check_creates_nothing(tmp_path: Path) -> None:
    config = config_with(tmp_path, state={"path": str(tmp_path / "new" / "state.sqlite")})
    code, output = run("config", "check", "--config", str(config))
    assert code == 0, output
    assert not (tmp_path / "new").exists()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield listening.getsockname()[1]


@pytest.mark.parametrize("system", ["lapor", "agency"])
def test_a_port_in_use_is_one_line_and_exit_3(busy_port: int, system: str, tmp_path: Path) -> None:
    extra = ["--db", str(tmp_path / "agency.sqlite")] if system == "agency" else []
    code, output = run("simulate", system, "--port", str(busy_port), *extra)
    assert code == 3
    assert f"127.0.0.1:{busy_port} is already in use" in output
    assert "--port 0" in output


def test_the_state_store_itself_names_a_path_it_cannot_create(a_file: Path) -> None:
    from connector.clock import FakeClock
    from connector.errors import ConfigError
    from connector.state import StateStore

    with pytest.raises(
        ConfigError, match=r"state.path: .*not-a-folder/state.sqlite cannot be created"
    ):
        StateStore(a_file / "state.sqlite", FakeClock())
