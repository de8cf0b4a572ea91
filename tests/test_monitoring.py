"""Health and metrics: the daemon serves /healthz, /readyz and /metrics on monitoring.listen."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from connector import errors
from connector.cli import cli
from connector.clock import SystemClock
from connector.config import load_settings
from connector.daemon import Daemon
from connector.lapor.client import LaporClient
from connector.monitoring import Monitor
from connector.simulators.lapor import SimControl
from tests import test_sync_cli
from tests.conftest import API_KEY, TOKEN, plain_session
from tests.test_sync_cli import CLI_ENV

#: The agency simulator and a config of both simulators, as the command-line tests use them.
agency_system = test_sync_cli.agency_system
config = test_sync_cli.config

FAMILIES = {
    "lapor_connector_flow_last_success_timestamp_seconds",
    "lapor_connector_flow_run_duration_seconds",
    "lapor_connector_flow_runs",
    "lapor_connector_flow_records",
    "lapor_connector_outbox_items",
    "lapor_connector_quarantine_open",
    "lapor_connector_oldest_unsynced_age_seconds",
    "lapor_connector_lapor_requests",
    "lapor_connector_lapor_request_duration_seconds",
    "lapor_connector_lapor_request_budget_per_minute",
    "lapor_connector_lapor_requests_last_minute",
    "lapor_connector_lapor_request_budget_used_ratio",
    "lapor_connector_sla_complaints",
    "lapor_connector_ready",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], Any], *, within: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy, failing after ``within`` seconds
    (a server not listening yet counts as not yet)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            result = check()
        except requests.ConnectionError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"not within {within} s: {what}")


def scrape(
    session: requests.Session, base: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by the client library's own parser: (sample name, labels) -> value."""
    text = session.get(base + "/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def records(metrics: dict[Any, float], flow: str, outcome: str) -> float:
    return metrics.get(
        ("lapor_connector_flow_records_total", (("flow", flow), ("outcome", outcome))), 0.0
    )


@pytest.fixture
def monitored(config: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, str]]:
    """The daemon in a thread against both simulators, every flow each second, monitored."""
    port = free_port()
    raw = yaml.safe_load(config.read_text())
    raw["monitoring"] = {"listen": f"127.0.0.1:{port}"}
    raw["schedule"] = {"inbound_seconds": 1, "intake_out_seconds": 1, "followups_out_seconds": 1}
    raw["lapor"]["retry"] = {"max_attempts": 1}  # an outage fails a run at once (no back-off)
    config.write_text(yaml.safe_dump(raw))
    for key, value in CLI_ENV.items():
        monkeypatch.setenv(key, value)
    daemon = Daemon(load_settings(config))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            daemon.serve()
        except BaseException as error:  # the test looks at it
            failure.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield daemon, f"http://127.0.0.1:{port}"
    finally:
        daemon.stop()
        thread.join(timeout=20)
        assert not thread.is_alive()


def test_metrics_parse_and_move_with_the_sync(
    monitored: tuple[Daemon, str], control: SimControl
) -> None:
    """/metrics parses with prometheus_client's parser; a new LAPOR! complaint moves the counts."""
    _daemon, base = monitored
    session = plain_session()
    first = eventually(
        lambda: (m := scrape(session, base)) and records(m, "inbound", "created") > 0 and m,
        within=15, what="the first inbound run created agency complaints",
    )  # fmt: skip
    names = {family.name for family in text_string_to_metric_families(
        session.get(base + "/metrics", timeout=5).text)}  # fmt: skip
    assert names >= FAMILIES, FAMILIES - names
    assert (
        first[("lapor_connector_lapor_requests_total", (("endpoint", "list"), ("status", "200")))]
        > 0
    )
    assert ("lapor_connector_outbox_items", (("state", "done"),)) in first
    assert first[("lapor_connector_outbox_items", (("state", "done"),))] > 0
    assert (
        first[("lapor_connector_flow_last_success_timestamp_seconds", (("flow", "inbound"),))] > 0
    )
    fresh = control.submit(title="Lampu jalan mati", content="Sudah seminggu.", category_id=436)
    control.dispose(fresh, 145)
    eventually(
        lambda: records(scrape(session, base), "inbound", "created")
        > records(first, "inbound", "created"),
        within=15, what="the new complaint counted as created",
    )  # fmt: skip


def test_health_and_readiness_then_401_makes_it_unready(
    monitored: tuple[Daemon, str], control: SimControl
) -> None:
    """/healthz and /readyz answer 200 while syncing; LAPOR! answering 401 makes /readyz non-200 within a cycle."""
    daemon, base = monitored
    session = plain_session()
    assert eventually(
        lambda: session.get(base + "/healthz", timeout=5).status_code == 200,
        within=10, what="/healthz 200",
    )  # fmt: skip
    ready = eventually(
        lambda: (r := session.get(base + "/readyz", timeout=5)).status_code == 200 and r,
        within=15, what="/readyz 200 after the first cycle",
    )  # fmt: skip
    assert ready.text == "ready\n"
    control.add_fault("*", "unauthenticated", count=1000)
    refused_at = time.monotonic()
    seen: list[str] = []

    def unready() -> bool:
        try:
            answer = session.get(base + "/readyz", timeout=5)
        except requests.ConnectionError:
            seen.append("closed")  # the daemon stopped on the refused credentials (exit code 4)
            return True
        seen.append(answer.text)
        return answer.status_code != 200

    eventually(unready, within=3, what="/readyz non-200 within one cycle (1 s) of the 401")
    assert time.monotonic() - refused_at < 3
    assert isinstance(eventually(lambda: daemon.fatal, within=10, what="the daemon stops"),
                      errors.AuthenticationFailed)  # fmt: skip
    assert all(API_KEY not in text and TOKEN not in text for text in seen)


def test_sla_gauges_match_the_sla_command(
    monitored: tuple[Daemon, str],
    config: Path,
) -> None:
    """At-risk and overdue complaints per unit are what `lapor-connector sla` lists."""
    import json

    _daemon, base = monitored
    session = plain_session()

    def gauges_match() -> bool:
        result = CliRunner().invoke(
            cli, ["sla", "--format", "json", "--config", str(config)], env=CLI_ENV
        )
        if result.exit_code != 0:
            return False  # no state yet: the first run has not finished
        listed = json.loads(result.output)
        expected: dict[tuple[str, str], int] = {}
        for row in listed:
            if row["state"] in ("at_risk", "overdue"):
                key = (row["unit"] or "none", row["state"])
                expected[key] = expected.get(key, 0) + 1
        shown = {
            (dict(labels)["unit"], dict(labels)["state"]): int(value)
            for (name, labels), value in scrape(session, base).items()
            if name == "lapor_connector_sla_complaints" and value
        }
        return bool(expected) and shown == expected

    eventually(gauges_match, within=15, what="SLA gauges equal to the sla command's rows")


def test_an_outage_counts_failed_runs_and_makes_it_unready(
    monitored: tuple[Daemon, str], control: SimControl
) -> None:
    """LAPOR! answering 503: runs are counted as failed, 503s by endpoint, and /readyz says why."""
    _daemon, base = monitored
    session = plain_session()
    eventually(lambda: session.get(base + "/readyz", timeout=5).status_code == 200,
               within=15, what="ready after the first cycle")  # fmt: skip
    control.add_fault("*", "unavailable", count=100_000)

    def failed_and_unready() -> bool:
        metrics = scrape(session, base)
        failed = sum(v for (name, labels), v in metrics.items()
                     if name == "lapor_connector_flow_runs_total" and ("outcome", "failed") in labels)  # fmt: skip
        answered_503 = sum(v for (name, labels), v in metrics.items()
                           if name == "lapor_connector_lapor_requests_total" and ("status", "503") in labels)  # fmt: skip
        return failed > 0 and answered_503 > 0 and metrics[("lapor_connector_ready", ())] == 0

    eventually(failed_and_unready, within=10, what="failed runs counted, ready 0")
    answer = session.get(base + "/readyz", timeout=5)
    assert answer.status_code == 503
    assert "LAPOR! failed the last request (no answer, or a 5xx)" in answer.text


def test_readyz_names_refused_credentials_without_the_secret(
    sim: Any,
    control: SimControl,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a 401 from LAPOR!, /readyz answers 503 and says which credentials to fix, not their value."""
    port = free_port()
    raw = yaml.safe_load(config.read_text())
    raw["monitoring"] = {"listen": f"127.0.0.1:{port}"}
    config.write_text(yaml.safe_dump(raw))
    for key, value in CLI_ENV.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(config)
    monitor = Monitor(settings, SystemClock())
    session = plain_session()
    with monitor.serving(), LaporClient(settings.lapor, SystemClock()) as client:
        client.statuses()
        control.add_fault("*", "unauthenticated", count=5)
        with pytest.raises(errors.AuthenticationFailed):
            client.statuses()
        answer = session.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        metrics = session.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert answer.status_code == 503
    assert (
        "LAPOR! refused the API key or token (401); fix lapor.api_key / lapor.token" in answer.text
    )
    assert API_KEY not in answer.text
    assert TOKEN not in answer.text
    assert 'lapor_connector_lapor_requests_total{endpoint="master",status="401"} 1.0' in metrics
    assert "lapor_connector_ready 0.0" in metrics


def test_429s_are_counted_by_endpoint_class(control: SimControl, config: Path) -> None:
    """A 429 from LAPOR! is counted as rate-limited for its endpoint class, and in the requests by status."""
    port = free_port()
    raw = yaml.safe_load(config.read_text())
    raw["monitoring"] = {"listen": f"127.0.0.1:{port}"}
    raw["lapor"]["retry"] = {"max_attempts": 1}
    config.write_text(yaml.safe_dump(raw))
    settings = load_settings(config, env=CLI_ENV)
    monitor = Monitor(settings, SystemClock())
    with monitor.serving(), LaporClient(settings.lapor, SystemClock()) as client:
        control.add_fault("*", "rate_limit", count=1, retry_after="0")
        with pytest.raises(errors.RateLimited):
            client.complaint(5010603)
        metrics = scrape(plain_session(), f"http://127.0.0.1:{port}")
    assert metrics[("lapor_connector_lapor_rate_limited_total", (("endpoint", "detail"),))] == 1
    assert (
        metrics[
            ("lapor_connector_lapor_requests_total", (("endpoint", "detail"), ("status", "429")))
        ]
        == 1
    )
    assert (
        metrics[("lapor_connector_lapor_request_duration_seconds_count", (("endpoint", "detail"),))]
        == 1
    )


def test_healthz_is_503_unless_the_scheduler_loop_runs(config: Path) -> None:
    """/healthz answers 503 while the scheduler is not running, 200 once it is; other paths 404."""
    port = free_port()
    raw = yaml.safe_load(config.read_text())
    raw["monitoring"] = {"listen": f"127.0.0.1:{port}"}
    config.write_text(yaml.safe_dump(raw))
    monitor = Monitor(load_settings(config, env=CLI_ENV), SystemClock())
    session, base = plain_session(), f"http://127.0.0.1:{port}"
    with monitor.serving():
        starting = session.get(base + "/healthz", timeout=5)
        monitor.alive = lambda: True
        running = session.get(base + "/healthz", timeout=5)
        elsewhere = session.get(base + "/", timeout=5)
    assert (starting.status_code, starting.text) == (503, "not running\n")
    assert (running.status_code, running.text) == (200, "ok\n")
    assert elsewhere.status_code == 404


def test_a_port_in_use_is_one_clear_line_and_exit_3(config: Path) -> None:
    """`run` with monitoring.listen on a port already taken: one line naming it and the fix, exit 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        raw = yaml.safe_load(config.read_text())
        raw["monitoring"] = {"listen": address}
        config.write_text(yaml.safe_dump(raw))
        result = CliRunner().invoke(cli, ["run", "--config", str(config)], env=CLI_ENV)
    assert result.exit_code == 3, result.output
    assert result.output.strip().splitlines() == [
        f"error: monitoring.listen: {address} is already in use; stop what listens there or "
        "choose another port"
    ]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "listen", ["9464", "localhost", "127.0.0.1:http", "127.0.0.1:70000", ":9464"],
    ids=["port-only", "host-only", "named-port", "port-too-big", "no-host"],
)  # fmt: skip
def test_monitoring_listen_must_be_host_and_port(config: Path, listen: str) -> None:
    """A malformed monitoring.listen is a configuration error naming the key and an example."""
    raw = yaml.safe_load(config.read_text())
    raw["monitoring"] = {"listen": listen}
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(errors.ConfigError) as caught:
        load_settings(config, env=CLI_ENV)
    assert "monitoring.listen" in str(caught.value)
    assert "127.0.0.1:9464" in str(caught.value)


def test_without_monitoring_listen_nothing_listens(config: Path) -> None:
    """monitoring is off unless monitoring.listen is set."""
    assert Daemon(load_settings(config, env=CLI_ENV)).monitor is None


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"lapor": 200, "agency": 200}, []),
        ({"lapor": 200}, ["the agency has not been reached yet"]),
        ({"lapor": None, "agency": 200}, ["LAPOR! failed the last request (no answer, or a 5xx)"]),
        ({"lapor": 503, "agency": 200}, ["LAPOR! failed the last request (no answer, or a 5xx)"]),
        ({"lapor": 200, "agency": 401},
         ["the agency refused its token (401); fix agency.token"]),
        ({"lapor": 429, "agency": 404}, []),
    ],
    ids=["both-answered", "agency-not-yet", "lapor-no-answer", "lapor-5xx", "agency-401",
         "4xx-is-an-answer"],
)  # fmt: skip
def test_readiness_needs_both_sides_answering_and_no_refused_credentials(
    answers: dict[str, int | None], expected: list[str]
) -> None:
    """Ready only when each side answered its last request below 500 and none refused a credential."""
    from connector.monitoring import Readiness

    readiness = Readiness(("lapor", "agency"))
    for peer, status in answers.items():
        readiness.answered(peer, status)
    assert readiness.problems() == expected


def test_a_later_success_clears_a_refused_credential() -> None:
    """A 2xx after a 401 (the credential was fixed) makes the side ready again."""
    from connector.monitoring import Readiness

    readiness = Readiness(("lapor",))
    readiness.answered("lapor", 401)
    assert readiness.problems()
    readiness.answered("lapor", 200)
    assert readiness.problems() == []


def test_every_metric_is_documented() -> None:
    """docs/monitoring.md names every metric family the daemon exposes."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.md").read_text()
    for family in FAMILIES:
        name = family.removeprefix("lapor_connector_")
        assert f"`{name}`" in text or f"`{name}_total`" in text, family


def test_the_daemon_is_alive_only_while_its_scheduler_runs(
    monitored: tuple[Daemon, str],
) -> None:
    """Daemon.alive (behind /healthz) is true while serving and false once asked to stop."""
    daemon, _base = monitored
    eventually(daemon.alive, within=10, what="the scheduler running")
    daemon.stop()
    assert daemon.alive() is False
