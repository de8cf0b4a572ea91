"""``lapor-connector probe``: where a service differs from our reading, without showing values."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from connector import probe as p
from connector.cli import cli
from connector.lapor import wire
from connector.lapor.client import LaporClient
from connector.simulators.lapor import LaporSimulator, SimControl
from tests.conftest import API_KEY, INSTITUTION_ID, TOKEN, all_dialects, make_settings
from tests.test_cli import write_config

ENV = {"LAPOR_API_KEY": API_KEY, "LAPOR_TOKEN": TOKEN, "COLUMNS": "200"}
CANARY_NAME = "Kanari Probewati"
CANARY_EMAIL = "kanari.probe@contoh.id"
CANARY_PHONE = "081277776666"
CANARY_TEXT = "Isi-rahasia-kanari-9c1f"


def run_probe(sim: LaporSimulator, tmp_path: Path, *args: str) -> Result:
    """The CLI against the simulator, its clock set to now (the probe reads 30 days back)."""
    SimControl(sim.root_url).set_clock(datetime.now(timezone.utc))
    config = write_config(tmp_path, sim.base_url)
    return CliRunner().invoke(cli, ["probe", "--config", str(config), *args], env=ENV)


def lines(report: p.ProbeReport, endpoint: str) -> dict[str, p.FieldLine]:
    found = [e for e in report.endpoints if e.endpoint == endpoint]
    assert found, f"no {endpoint} in the report"
    return {f.path: f for f in found[0].fields}


@pytest.mark.parametrize("dialect", all_dialects())
def test_every_dialect_is_understood(
    dialect: str, sim: LaporSimulator, client: LaporClient
) -> None:
    """Each encoding the simulator speaks is read; all but the contract's differ somewhere."""
    now = SimControl(sim.root_url).now()
    report = p.probe(client, make_settings(sim.base_url), now=now)
    assert not report.needs_attention, report.to_json()
    assert {e.endpoint for e in report.endpoints} >= {
        "categories", "institutions", "templates", "statuses", "classifications", "topics",
        "inbox", "complaint", "followups",
    }  # fmt: skip
    assert all(e.error is None for e in report.endpoints)
    differing = [f for e in report.endpoints for f in e.fields if f.verdict == p.DIFFERS]
    if dialect in ("contract", "counts"):  # counts: the contract plus follow-up hints
        assert differing == []
        assert report.summary()["ignored"] == 0
        hint = lines(report, "inbox").get("results.data[].followups_count")
        assert (hint is not None) == (dialect == "counts")
        assert hint is None or hint.verdict == p.AS_EXPECTED
    else:
        assert differing, f"dialect {dialect}: no difference named"
    if dialect == "php":
        line = lines(report, "inbox")["results.data[].id"]
        assert line.verdict == p.DIFFERS
        assert line.observed.get("numeric string")
        assert line.expected == "integer"
    if dialect == "iso":
        line = lines(report, "inbox")["results.data[].created_at"]
        assert (line.verdict, line.expected) == (p.DIFFERS, "timestamp:dmy")
        assert set(line.observed) == {"timestamp:iso"}
    if dialect == "mysql":
        assert lines(report, "inbox")["results.data[]._links"].verdict == p.IGNORED


def test_cli_exits_0_and_prints_a_table_per_endpoint(sim: LaporSimulator, tmp_path: Path) -> None:
    sim.set_dialect("php")
    result = run_probe(sim, tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("categories", "topics", "inbox", "/masters/classifications"):
        assert name in result.output
    assert "results.data[].id" in result.output
    assert p.DIFFERS in result.output
    assert "0 not understood" in result.output


@pytest.mark.parametrize(
    ("variant", "paths"),
    [
        ("wrong_type", {"results.data[].id"}),
        ("missing_field", {"results.data[].tracking_id", "results.data[].updated_at"}),
    ],
)
def test_malformed_inbox_exits_6_naming_the_path(
    sim: LaporSimulator, tmp_path: Path, variant: str, paths: set[str]
) -> None:
    SimControl(sim.root_url).add_fault("inbox", "malformed", count=1, variant=variant)
    result = run_probe(sim, tmp_path, "--json")
    assert result.exit_code == 6, result.output
    document = json.loads(result.stdout)
    inbox = next(e for e in document["endpoints"] if e["endpoint"] == "inbox")
    refused = {f["path"] for f in inbox["fields"] if f["verdict"] == p.NOT_UNDERSTOOD}
    assert refused == paths
    assert document["summary"]["not_understood"] == len(paths)
    if variant == "missing_field":
        line = next(f for f in inbox["fields"] if f["path"] == "results.data[].tracking_id")
        assert line["observed"]["missing"] == 1
    text = run_probe(sim, tmp_path)  # the fault is spent: the same service is fine again
    assert text.exit_code == 0, text.output


def test_an_endpoint_that_fails_is_one_line(sim: LaporSimulator, client: LaporClient) -> None:
    control = SimControl(sim.root_url)
    control.add_fault("templates", "not_found", count=1)
    report = p.probe(client, make_settings(sim.base_url), now=control.now())
    templates = next(e for e in report.endpoints if e.endpoint == "templates")
    assert templates.fields == []
    assert templates.error
    assert "NotFound" in templates.error
    assert report.needs_attention
    assert report.summary()["not_understood"] == 1


def test_refused_credentials_exit_4(sim: LaporSimulator, tmp_path: Path) -> None:
    SimControl(sim.root_url).add_fault("*", "unauthenticated", count=1)
    result = run_probe(sim, tmp_path)
    assert result.exit_code == 4, result.output


def test_no_value_is_ever_shown(sim: LaporSimulator, tmp_path: Path) -> None:
    """Canary reporter data and texts go through the probe; only paths and kinds come out."""
    control = SimControl(sim.root_url)
    control.reset(seed=7, complaints=0)
    complaint_id = control.submit(
        title=CANARY_TEXT,
        content=CANARY_TEXT,
        reporter={"name": CANARY_NAME, "email": CANARY_EMAIL, "phone": CANARY_PHONE},
    )
    control.dispose(complaint_id, INSTITUTION_ID)
    control.reply(complaint_id, CANARY_TEXT)
    outputs = [run_probe(sim, tmp_path), run_probe(sim, tmp_path, "--json")]
    for result in outputs:
        assert result.exit_code == 0, result.output
        for canary in (CANARY_NAME, CANARY_EMAIL, CANARY_PHONE, CANARY_TEXT, API_KEY, TOKEN):
            assert canary not in result.output
    document = json.loads(outputs[1].stdout)
    detail = next(e for e in document["endpoints"] if e["endpoint"] == "complaint")
    reporter = {f["path"]: f for f in detail["fields"] if "reporter" in f["path"]}
    assert reporter["results.data.reporter.name"]["observed"] == {"string": 1}
    assert reporter["results.data.reporter.phone"]["personal"] is True
    followups = next(e for e in document["endpoints"] if e["endpoint"] == "followups")
    assert any(f["path"] == "results.data[].content" for f in followups["fields"])


def test_write_creates_one_complaint_and_one_followup(sim: LaporSimulator, tmp_path: Path) -> None:
    before = set(sim.state.complaints)
    result = run_probe(sim, tmp_path, "--write", "--json")
    assert result.exit_code == 0, result.output
    created = [c for i, c in sim.state.complaints.items() if i not in before]
    assert len(created) == 1
    assert str(created[0]["external_ref"]).startswith("PROBE-")
    assert len(sim.state.followups[created[0]["id"]]) == 1
    document = json.loads(result.stdout)
    by_name = {e["endpoint"]: e for e in document["endpoints"]}
    assert {"upload", "create", "followup_add"} <= set(by_name)
    assert "results.complaint.id" in (by_name["create"]["note"] or "")
    images = {f["path"]: f for f in by_name["upload"]["fields"]}
    assert images["results.images[].id"]["verdict"] == p.AS_EXPECTED


def test_write_refused_off_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_request(*_: Any, **__: Any) -> Any:
        raise AssertionError("the probe sent a request")

    monkeypatch.setattr(requests.Session, "send", no_request)
    config = write_config(tmp_path, "https://lapor.example.go.id/lapor/3.0.0")
    result = CliRunner().invoke(cli, ["probe", "--config", str(config), "--write"], env=ENV)
    assert result.exit_code == 2, result.output
    assert "--i-know-this-is-production" in result.output


def test_write_allowed() -> None:
    assert p.write_allowed(wire.SANDBOX_BASE_URL, production_ok=False)
    assert p.write_allowed("http://127.0.0.1:8080/lapor/3.0.0", production_ok=False)
    assert p.write_allowed("http://localhost:8080/lapor/3.0.0", production_ok=False)
    assert not p.write_allowed(wire.PRODUCTION_BASE_URL, production_ok=False)
    assert p.write_allowed(wire.PRODUCTION_BASE_URL, production_ok=True)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "null"), ("", "empty string"), (True, "boolean"), (1, "0/1 integer"),
        (42, "integer"), ("42", "numeric string"), ("0", '"0"/"1" string'),
        ("false", '"true"/"false" string'), ("2026-11-02T09:00:00+07:00", "timestamp:iso"),
        ("02-11-2026 09:00:00", "timestamp:dmy"), ("2026-11-02", "date"),
        ("2026-11-02T09:00:00", "timestamp:naive"), ("Pungli", "string"), ({}, "object"),
        ([], "list"),
    ],
)  # fmt: skip
def test_observed_kind(value: object, kind: str) -> None:
    assert wire.observed_kind(value) == kind


def test_every_probe_endpoint_has_expectations() -> None:
    names = {name for name, *_ in p.MASTERS} | {"topics", "inbox", "complaint", "followups"}
    assert names | {"upload", "create", "followup_add"} == set(wire.EXPECTED)
    assert all(wire.is_personal(path) for path in wire.PERSONAL)
    assert wire.is_personal("results.data.reporter.nik")


def test_write_that_cannot_be_sent_needs_attention(
    sim: LaporSimulator, client: LaporClient
) -> None:
    """--write with no location known sends no complaint, and says so with exit 6, not 0."""
    before = set(sim.state.complaints)
    settings = make_settings(sim.base_url)
    report = p.ProbeReport()
    p._write_checks(client, settings, datetime.now(timezone.utc), {}, None, report)
    assert report.needs_attention
    assert set(sim.state.complaints) == before
