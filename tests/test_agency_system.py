"""The demo agency system over raw HTTP: strict where the agency contract is strict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from connector.simulators.agency import AgencySystem

TOKEN = "raw-agency-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY = {"title": "Judul", "content": "Isi", "status": "baru"}


@pytest.fixture
def system(tmp_path: Path) -> Iterator[AgencySystem]:
    with AgencySystem(tmp_path / "agency.sqlite", token=TOKEN).start() as running:
        yield running


def test_bearer_token_is_required(system: AgencySystem) -> None:
    """Without the token every route is 401 with the contract's error shape."""
    response = requests.get(system.base_url + "/units", timeout=5)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


def test_idempotency_key_replays_and_refuses_reuse(system: AgencySystem) -> None:
    """Same key and body: the first answer again; same key, other body: 422; no key: 400."""
    url = system.base_url + "/complaints"
    first = requests.post(url, json=BODY, headers={**AUTH, "Idempotency-Key": "k"}, timeout=5)
    again = requests.post(url, json=BODY, headers={**AUTH, "Idempotency-Key": "k"}, timeout=5)
    assert (
        first.status_code,
        again.status_code,
        first.json(),
    ) == (201, 201, again.json())
    other = requests.post(
        url, json={**BODY, "title": "Lain"}, headers={**AUTH, "Idempotency-Key": "k"}, timeout=5
    )
    assert other.status_code == 422
    assert requests.post(url, json=BODY, headers=AUTH, timeout=5).status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": "501"}, "limit"), ({"updated_since": "2026-11-01T00:00:00"}, "updated_since")],
    ids=["limit-over-500", "naive-since"],
)
def test_strict_list_parameters(system: AgencySystem, params: dict[str, str], field: str) -> None:
    """A limit over 500 or a naive updated_since is a 422 naming the field."""
    response = requests.get(system.base_url + "/complaints", params=params, headers=AUTH, timeout=5)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]


def test_every_write_moves_updated_at(system: AgencySystem) -> None:
    """Two quick writes still give strictly increasing updated_at values."""
    created = requests.post(
        system.base_url + "/complaints",
        json=BODY,
        headers={**AUTH, "Idempotency-Key": "u"},
        timeout=5,
    ).json()
    url = f"{system.base_url}/complaints/{created['id']}"
    one = requests.patch(url, json={"status": "diverifikasi"}, headers=AUTH, timeout=5).json()
    two = requests.patch(url, json={"status": "diproses"}, headers=AUTH, timeout=5).json()
    assert created["updated_at"] < one["updated_at"] < two["updated_at"]


def test_patch_refuses_fields_it_does_not_own(system: AgencySystem) -> None:
    """Only the listed fields can be patched."""
    created = requests.post(
        system.base_url + "/complaints",
        json=BODY,
        headers={**AUTH, "Idempotency-Key": "p"},
        timeout=5,
    ).json()
    response = requests.patch(
        f"{system.base_url}/complaints/{created['id']}",
        json={"source": "lapor"},
        headers=AUTH,
        timeout=5,
    )
    assert response.status_code == 422
    assert "source" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("path", "schema"),
    [
        ("/complaints", "ComplaintPage"),
        ("/followups", "FollowUpPage"),
        ("/categories", "Category"),
        ("/statuses", "Status"),
    ],
)
def test_answers_match_the_published_openapi(system: AgencySystem, path: str, schema: str) -> None:
    """docs/agency-openapi.yaml describes what the demo system really answers."""
    import jsonschema
    import yaml

    document = yaml.safe_load(Path("docs/agency-openapi.yaml").read_text())
    body = requests.get(system.base_url + path, headers=AUTH, timeout=5).json()
    validator = jsonschema.Draft202012Validator(
        {**document, "$ref": f"#/components/schemas/{schema}"}
    )
    for item in body if isinstance(body, list) else [body]:
        assert list(validator.iter_errors(item)) == []
