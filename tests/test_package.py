"""A complete package: the defaults it carries, `init DIR`, and a sync that never needs the
simulators (they ship in the package only for `demo` and `simulate`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from connector.cli import cli
from connector.defaults import bundled
from tests.test_cli import ENV


def test_the_bundle_holds_the_defaults() -> None:
    for name in ("categories", "statuses", "classifications", "units", "calendar"):
        assert (bundled("mappings") / f"{name}.yaml").is_file()
    assert (bundled("mappings") / "schema.json").is_file()
    assert bundled("config.yaml").is_file()
    assert bundled("config.schema.json").is_file()
    assert (bundled("deploy") / "lapor-connector.service").is_file()


def test_init_writes_a_deployment_that_config_check_accepts(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "lapor-connector"
    runner = CliRunner()
    result = runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((target / "config.yaml").read_text())
    assert config["mappings"]["path"] == str((target / "mappings").resolve())
    assert config["state"]["path"] == str((target / "state" / "connector.sqlite").resolve())
    assert (target / "mappings" / "calendar.yaml").read_text() == (
        bundled("mappings") / "calendar.yaml"
    ).read_text()
    assert (target / "config.schema.json").is_file()
    assert "Type=notify" in (target / "deploy" / "lapor-connector.service").read_text()
    assert (target / "deploy" / "lapor-connector@.service").is_file()
    env = {**ENV, "LAPOR_INSTITUTION_ID": "145"}
    checked = runner.invoke(
        cli, ["config", "check", "--config", str(target / "config.yaml")], env=env
    )
    assert checked.exit_code == 0, checked.output
    assert not (target / "state").exists()  # config check creates nothing


def test_init_never_overwrites_unless_forced(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    (tmp_path / "config.yaml").write_text("# mine\n")
    again = runner.invoke(cli, ["init", str(tmp_path)])
    assert again.exit_code == 2
    assert "is already there; nothing was written (--force overwrites)" in again.output
    assert (tmp_path / "config.yaml").read_text() == "# mine\n"
    forced = runner.invoke(cli, ["init", str(tmp_path), "--force"])
    assert forced.exit_code == 0
    assert "lapor:" in (tmp_path / "config.yaml").read_text()


def test_the_sync_never_imports_the_simulators() -> None:
    code = (
        "import sys, connector.cli, connector.daemon, connector.flows, connector.sync; "
        "print(sorted(m for m in sys.modules if m.startswith('connector.simulators')))"
    )
    out = subprocess.run(  # noqa: S603 (our own interpreter and package)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
