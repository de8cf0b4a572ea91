"""Logs stay logs: every line the daemon writes is one JSON object, redacted, also in an outage."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
import yaml

from connector import logs
from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from tests.conftest import API_KEY, TOKEN
from tests.test_agency_adapter import AGENCY_TOKEN
from tests.test_sync_cli import CLI_ENV

REPORTER = "Sulastri Kanariawati"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_daemon_with_lapor_down_writes_only_json_lines(
    tmp_path: Path, sim: LaporSimulator, control: SimControl
) -> None:
    """`run` with LAPOR! answering 503 for a few cycles: every output line is a JSON object,
    APScheduler's tracebacks included (as a field), and no secret or reporter name is in any."""
    with AgencySystem(
        tmp_path / "agency.sqlite", token=AGENCY_TOKEN, complaints=2
    ).start() as agency:
        AgencyControl(agency.root_url).add_internal_complaint(
            channel="web", title="Jalan berlubang", content="Di depan sekolah.",
            category_code="PTN-SRT", unit_code="KANTAH-BDG", report_to_lapor=True,
            reporter={"name": REPORTER, "email": "sulastri@contoh.id", "phone": "081234567890"},
        )  # fmt: skip
        control.add_fault("*", "unavailable", count=100_000)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "lapor": {"base_url": sim.base_url, "institution_id": 145, "api_key": "${LAPOR_API_KEY}",
                      "token": "${LAPOR_TOKEN}", "requests_per_minute": 0, "intake_user_id": 1,
                      "retry": {"max_attempts": 1}},
            "agency": {"base_url": agency.base_url, "token": "${AGENCY_TOKEN}"},
            "state": {"path": str(tmp_path / "state.sqlite")},
            "mappings": {"path": str(ROOT / "mappings")},
            "schedule": {"inbound_seconds": 1, "intake_out_seconds": 1, "followups_out_seconds": 1},
            "logging": {"level": "INFO", "format": "auto"},
        }))  # fmt: skip

        def answered_503() -> int:
            return sum(control.stats()["requests"].values())

        env = {**os.environ, **CLI_ENV, "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "connector", "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while answered_503() < 7 and time.monotonic() < deadline:
                time.sleep(0.1)  # the start-up check, then a few cycles of every flow
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert answered_503() >= 7, err
    lines = [line for line in (out + err).splitlines() if line.strip()]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line[:200]!r}")
    assert all(isinstance(entry, dict) for entry in entries)
    tracebacks = [e for e in entries if str(e.get("component", "")).startswith("apscheduler")]
    assert tracebacks, "APScheduler's job errors are in the log"
    assert all("Traceback" in e["exception"] for e in tracebacks if "exception" in e)
    assert any("exception" in e for e in tracebacks)
    assert any(e["event"] == "job_failed" for e in entries)
    text = out + err
    for secret in (API_KEY, TOKEN, AGENCY_TOKEN, REPORTER, "sulastri@contoh.id", "081234567890"):
        assert secret not in text, f"{secret!r} leaked"


def test_standard_library_records_are_redacted_json_with_the_traceback_as_a_field(
    restored_logging: None,
) -> None:
    """Another library's log record goes through the same processors: JSON, scrubbed, one line."""
    buffer = io.StringIO()
    logs.register_secret("sekret-key-for-the-test")
    logs.configure("INFO", "json", stream=buffer)
    try:
        raise RuntimeError("refused sekret-key-for-the-test for budi@contoh.id")
    except RuntimeError:
        logging.getLogger("apscheduler.executors.default").exception("Job %r raised", "inbound")
    (line,) = buffer.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["component"] == "apscheduler.executors.default"
    assert entry["event"] == "Job 'inbound' raised"
    assert entry["level"] == "error"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "sekret-key-for-the-test" not in line
    assert "budi@contoh.id" not in line


def test_a_terminal_gets_readable_console_lines(restored_logging: None) -> None:
    """On a terminal the same events are console lines, not JSON."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    logs.configure("INFO", "auto", stream=terminal)
    logs.get_logger("daemon").info("daemon_started", jobs=["inbound"])
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())  # colours off
    first, second = plain.splitlines()
    assert "daemon_started" in first
    assert "component=daemon" in first
    assert "Run time of job was missed" in second
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
