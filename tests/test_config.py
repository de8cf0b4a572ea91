"""Configuration is validated once, and every problem is reported with its path and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.config import load_settings, settings_from_mapping
from connector.errors import ConfigError

ENV = {
    "LAPOR_API_KEY": "k-123456",
    "LAPOR_TOKEN": "{11111111-2222-3333-4444-555555555555}",
    "LAPOR_INSTITUTION_ID": "145",
}


def valid(**lapor: Any) -> dict[str, Any]:
    return {
        "lapor": {
            "institution_id": "${LAPOR_INSTITUTION_ID}",
            "api_key": "${LAPOR_API_KEY}",
            "token": "${LAPOR_TOKEN}",
            **lapor,
        }
    }


def problems(raw: Any, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(raw, env=env)
    return caught.value.problems


def test_the_shipped_config_is_valid() -> None:
    """config.yaml in the project loads once the three environment variables are set."""
    monkey_env = dict(ENV)
    settings = settings_from_mapping(
        __import__("yaml").safe_load(Path("config.yaml").read_text()), env=monkey_env
    )
    assert settings.lapor.institution_id == 145
    assert settings.lapor.base_url == "https://api-splp.layanan.go.id/lapor/3.0.0"


def test_secrets_resolve_from_env_and_files(tmp_path: Path) -> None:
    """${NAME} reads the environment, ${file:...} a file; the values never show in a repr."""
    token_file = tmp_path / "token"
    token_file.write_text("{11111111-2222-3333-4444-555555555555}\n")
    settings = settings_from_mapping(valid(token=f"${{file:{token_file}}}"), env=ENV)
    assert settings.lapor.token.get_secret_value() == "{11111111-2222-3333-4444-555555555555}"
    assert "k-123456" not in repr(settings)
    assert "11111111" not in repr(settings)


def test_literal_secret_is_refused() -> None:
    """A secret written into the file is an error that says how to move it to the environment."""
    found = problems(valid(api_key="plain-key"))
    assert found == [
        "lapor.api_key: a secret is written in the file; put it in the environment and write "
        "${LAPOR_API_KEY} (or ${file:/path/to/secret})"
    ]
    assert "plain-key" not in str(found)


def test_every_problem_is_reported_at_once() -> None:
    """Missing variables, bad values and unknown keys all come back together, each with its path."""
    raw = valid(
        base_url="http://lapor.example.go.id", page_size=5000, colour="blue", token="${NOPE}"
    )
    raw["state"] = {"paht": "x"}
    found = problems(raw)
    assert "lapor.token: environment variable NOPE is not set; export it before starting" in found
    assert any(
        p.startswith("lapor.base_url: plain http is only allowed on loopback") for p in found
    )
    assert any(
        p.startswith("lapor.page_size: Input should be less than or equal to 1000") for p in found
    )
    assert "lapor.colour: unknown key; remove it or check its spelling" in found
    assert "state.paht: unknown key; remove it or check its spelling" in found


def test_token_must_be_a_braced_guid() -> None:
    """A token without braces is refused with the expected shape."""
    found = problems(valid(), env={**ENV, "LAPOR_TOKEN": "11111111-2222-3333-4444-555555555555"})
    assert found == [
        "lapor.token: the token must be a braced GUID like {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}; "
        "copy it whole, braces included"
    ]


def test_missing_required_key() -> None:
    """A missing section or key is named."""
    assert problems({"lapor": {"api_key": "${LAPOR_API_KEY}", "token": "${LAPOR_TOKEN}"}}) == [
        "lapor.institution_id: required; add it"
    ]


def test_default_value_reference() -> None:
    """${NAME:-default} falls back to the default."""
    settings = settings_from_mapping(valid(page_size="${PAGE:-250}"), env=ENV)
    assert settings.lapor.page_size == 250


def test_file_errors_are_config_errors(tmp_path: Path) -> None:
    """A missing file or broken YAML is reported with the file's name."""
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lapor: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML \(line 2\)"):
        load_settings(broken)


# --- systemd credentials (LoadCredential=) -------------------------------------------------


@pytest.fixture
def credentials(tmp_path: Path) -> dict[str, str]:
    """A $CREDENTIALS_DIRECTORY as systemd fills it, and an environment pointing at it."""
    directory = tmp_path / "credentials"
    directory.mkdir()
    (directory / "lapor_api_key").write_text("k-from-credential\n")
    (directory / "lapor_token").write_text("{11111111-2222-3333-4444-555555555555}")
    return {**ENV, "CREDENTIALS_DIRECTORY": str(directory)}


def test_credential_reference_reads_the_credentials_directory(credentials: dict[str, str]) -> None:
    """${credential:NAME} reads $CREDENTIALS_DIRECTORY/NAME; the value never shows in a repr."""
    raw = valid(api_key="${credential:lapor_api_key}", token="${credential:lapor_token}")
    settings = settings_from_mapping(raw, env=credentials)
    assert settings.lapor.api_key.get_secret_value() == "k-from-credential"
    assert settings.lapor.token.get_secret_value() == "{11111111-2222-3333-4444-555555555555}"
    assert "k-from-credential" not in repr(settings)


@pytest.mark.parametrize(
    "reference",
    [
        "${file:${CREDENTIALS_DIRECTORY}/lapor_api_key}",
        "${file:$CREDENTIALS_DIRECTORY/lapor_api_key}",
    ],
    ids=["braced", "bare"],
)
def test_file_reference_expands_the_credentials_directory(
    credentials: dict[str, str], reference: str
) -> None:
    """${file:...} expands ${CREDENTIALS_DIRECTORY} and $CREDENTIALS_DIRECTORY in its path."""
    settings = settings_from_mapping(valid(api_key=reference), env=credentials)
    assert settings.lapor.api_key.get_secret_value() == "k-from-credential"


def test_credential_without_a_credentials_directory_says_how_to_start() -> None:
    """Outside systemd a credential reference names the field, the credential and the fix."""
    found = problems(valid(api_key="${credential:lapor_api_key}"))
    assert len(found) == 1
    assert found[0].startswith("lapor.api_key: credential lapor_api_key: $CREDENTIALS_DIRECTORY")
    assert "LoadCredential=" in found[0]
    assert "${file:/path/to/secret}" in found[0]
    outside = problems(valid(api_key="${file:${CREDENTIALS_DIRECTORY}/lapor_api_key}"))
    assert outside[0].startswith("lapor.api_key: $CREDENTIALS_DIRECTORY is not set")


def test_missing_empty_and_unreadable_credentials_are_reported_each_with_its_fix(
    credentials: dict[str, str], tmp_path: Path
) -> None:
    """A missing, empty or unreadable credential is one problem each, naming it; no value shows."""
    directory = Path(credentials["CREDENTIALS_DIRECTORY"])
    (directory / "lapor_token").write_text("  \n")
    (directory / "agency_token").mkdir()  # a directory where a file should be: unreadable
    raw = {
        **valid(api_key="${credential:lapor_key}", token="${credential:lapor_token}"),
        "agency": {"base_url": "https://agency.example", "token": "${credential:agency_token}"},
    }
    found = problems(raw, credentials)
    assert found[:3] == [
        f"lapor.api_key: credential lapor_key is not in {directory}; add "
        "LoadCredential=lapor_key:/etc/lapor-connector/credentials/lapor_key to the unit "
        "(or check the name's spelling)",
        "lapor.token: credential lapor_token is empty; put the secret in the file given to "
        "LoadCredential=lapor_token:...",
        f"agency.token: cannot read credential agency_token in {directory}; check the source "
        "file given to LoadCredential= and its permissions (text, UTF-8)",
    ]
    assert not any("k-from-credential" in problem for problem in found)


def test_a_credential_name_is_not_a_path(credentials: dict[str, str]) -> None:
    """${credential:../x} is refused: a credential is a name, not a way out of the directory."""
    found = problems(valid(api_key="${credential:../lapor_api_key}"), credentials)
    assert found[0].startswith("lapor.api_key: '../lapor_api_key' is not a credential name")
