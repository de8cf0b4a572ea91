"""No credential or reporter detail reaches a log line or an error message, even at DEBUG."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from connector import errors, logs
from connector import models as m
from connector.clock import FakeClock
from connector.lapor.client import LaporClient
from connector.simulators.lapor import LaporSimulator, SimControl
from tests.conftest import INSTITUTION_ID, make_settings

CANARY_KEY = "CANARY-KEY-7f3a9c21"
CANARY_TOKEN = "{CA4A4A11-7F3A-4C21-8000-00000000CA4A}"
CANARY_NAME = "Kanari Zulkarnaen"
CANARY_EMAIL = "kanari.zq@contoh.id"
CANARY_PHONE = "081299990000"
CANARIES = (
    CANARY_KEY,
    CANARY_TOKEN,
    CANARY_NAME,
    CANARY_EMAIL,
    CANARY_PHONE,
    "7f3a9c21",
    "CA4A4A11",
)


@pytest.fixture
def debug_output() -> Iterator[io.StringIO]:
    """Route structlog at DEBUG into a buffer for the test, then restore the defaults."""
    buffer = io.StringIO()
    logs.configure("DEBUG", "json", stream=buffer)
    yield buffer
    structlog.reset_defaults()


def test_canaries_never_leak(
    debug_output: io.StringIO, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    """A full tour of successes and failures leaves no canary in logs or error texts."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with LaporSimulator(
        api_key=CANARY_KEY, token=CANARY_TOKEN, institution_id=INSTITUTION_ID
    ).start() as sim:
        control = SimControl(sim.root_url)
        settings = make_settings(sim.base_url, api_key_value=CANARY_KEY)
        settings = settings.model_copy(update={"token": type(settings.token)(CANARY_TOKEN)})
        client = LaporClient(settings, clock)
        complaint_id = control.submit(
            title="Pungli",
            content="Diminta uang",
            reporter={"name": CANARY_NAME, "email": CANARY_EMAIL, "phone": CANARY_PHONE},
        )
        control.dispose(complaint_id, INSTITUTION_ID)
        detail = client.complaint(complaint_id)
        assert detail.reporter.name == CANARY_NAME  # the data really went through the client
        texts += [repr(detail), str(detail), repr(settings), str(settings)]
        category = next(c.id for c in client.categories() if c.parent_id is not None)
        new = m.NewComplaint(
            external_ref="LEAK-1", title="Pungli", content="Diminta uang", channel_id=26, classification_id=2,
            category_id=category, disposition_id=INSTITUTION_ID, location_id=3273,
            reporter=m.Reporter(name=CANARY_NAME, email=CANARY_EMAIL, phone=CANARY_PHONE),
        )  # fmt: skip
        texts.append(repr(new))
        faults = [
            ("create", "validation", lambda: client.create_complaint(new)),
            ("create", "drop_after_commit", lambda: client.create_complaint(new)),
            ("create", "bad_gateway", lambda: client.create_complaint(new)),
            ("complaint", "unauthenticated", lambda: client.complaint(complaint_id)),
            ("complaint", "malformed", lambda: client.complaint(complaint_id)),
            ("followup_add", "soft_error", lambda: client.add_followup(m.NewFollowUp(complaint_id=complaint_id, content=CANARY_NAME))),
        ]  # fmt: skip
        for route, mode, call in faults:
            control.add_fault(route, mode, count=1)
            with pytest.raises(errors.ConnectorError) as caught:
                call()
            texts += [
                str(caught.value),
                repr(caught.value),
                repr(getattr(caught.value, "problems", "")),
            ]
        wrong = LaporClient(make_settings(sim.base_url, api_key_value="WRONG-" + CANARY_KEY), clock)
        with pytest.raises(errors.AuthenticationFailed) as refused:
            wrong.statuses()
        texts.append(str(refused.value))
        client.close()
        wrong.close()
    everything = "\n".join([debug_output.getvalue(), caplog.text, *texts])
    assert "lapor_request_sent" in everything  # DEBUG lines were really produced
    for canary in CANARIES:
        assert canary not in everything, f"{canary!r} leaked"


def test_redaction_of_personal_keys_and_shapes(debug_output: io.StringIO) -> None:
    """Personal keys are replaced, and e-mails, phones and NIKs inside free text are scrubbed."""
    logs.get_logger("test").info(
        "checked",
        reporter={"name": CANARY_NAME},
        email=CANARY_EMAIL,
        note=f"call {CANARY_PHONE} or 3273012345678901",
    )
    line = debug_output.getvalue()
    assert CANARY_NAME not in line
    assert CANARY_EMAIL not in line
    assert CANARY_PHONE not in line
    assert "3273012345678901" not in line
    assert logs.REDACTED in line


def test_the_two_way_sync_leaks_nothing(
    debug_output: io.StringIO, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """A full sync at DEBUG: reporter data reaches the agency system, and nothing else."""
    import yaml
    from click.testing import CliRunner

    from connector.cli import cli
    from connector.clock import SystemClock
    from connector.config import load_settings
    from connector.flows import FLOWS
    from connector.simulators.agency import AgencyControl, AgencySystem
    from connector.sync import open_sync

    caplog.set_level(logging.DEBUG)
    agency_token = "CANARY-AGENCY-9c21"
    with (
        LaporSimulator(
            api_key=CANARY_KEY, token=CANARY_TOKEN, institution_id=INSTITUTION_ID
        ).start() as sim,
        AgencySystem(tmp_path / "agency.sqlite", token=agency_token).start() as agency,
    ):
        control, agency_control = SimControl(sim.root_url), AgencyControl(agency.root_url)
        complaint_id = control.submit(title="Pungli", content="Diminta uang", category_id=740,
                                      reporter={"name": CANARY_NAME, "email": CANARY_EMAIL, "phone": CANARY_PHONE})  # fmt: skip
        control.dispose(complaint_id, INSTITUTION_ID)
        agency_control.add_internal_complaint(title="Calo", content="Calo di halaman", channel="counter", category_code="YAN-PGL",
                                              report_to_lapor=True, reporter={"name": CANARY_NAME, "email": CANARY_EMAIL})  # fmt: skip
        control.add_fault("create", "validation", count=1)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "lapor": {"base_url": sim.base_url, "institution_id": INSTITUTION_ID, "api_key": "${LAPOR_API_KEY}",
                      "token": "${LAPOR_TOKEN}", "requests_per_minute": 0, "intake_user_id": 1},
            "agency": {"base_url": agency.base_url, "token": "${AGENCY_API_TOKEN}"},
            "state": {"path": str(tmp_path / "state.sqlite")},
            "logging": {"level": "DEBUG", "format": "json"},
        }))  # fmt: skip
        env = {
            "LAPOR_API_KEY": CANARY_KEY,
            "LAPOR_TOKEN": CANARY_TOKEN,
            "AGENCY_API_TOKEN": agency_token,
        }
        settings = load_settings(config, env=env)
        for _ in range(2):
            with open_sync(settings, SystemClock()) as sync:
                for run in FLOWS.values():
                    run(sync)
        assert any(
            c["reporter"] and c["reporter"]["name"] == CANARY_NAME
            for c in agency_control.complaints()
        )
        runner = CliRunner()
        outputs = [
            runner.invoke(
                cli, [*args, "--config", str(config)], env={**env, "COLUMNS": "300"}
            ).output
            for args in (
                ["log", "--format", "csv"],
                ["log", "--format", "jsonl"],
                ["status", "--json"],
                ["quarantine", "list"],
            )
        ]
    everything = "\n".join([debug_output.getvalue(), caplog.text, *outputs])
    assert "agency_create_complaint" in everything  # the audit export really holds the sync
    for canary in (*CANARIES, agency_token):
        assert canary not in everything, f"{canary!r} leaked"
