# ruff: noqa: F811 (pytest fixtures imported from tests.test_sync are redefined as arguments)
"""Personal data protected (UU PDP 27/2022): private files, redacted state, retention."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import responses
import structlog
import yaml
from click.testing import CliRunner
from structlog.testing import capture_logs

from connector import errors
from connector.cli import cli
from connector.clock import FakeClock
from connector.config import settings_from_mapping
from connector.flows.inbound import run_inbound
from connector.flows.intake_out import run_intake_out
from connector.lapor.transport import LaporTransport
from connector.outbox import Outbox
from connector.privacy import redacted_payload, redacted_problems, rule_text
from connector.retention import prune
from connector.simulators.agency import AgencyControl
from connector.simulators.lapor import LaporSimulator, SimControl
from connector.state import StateStore
from connector.sync import Sync
from connector.writer import lock_path, writer_lock
from tests.conftest import INSTITUTION_ID, make_settings
from tests.test_cli import ENV
from tests.test_sync import (  # noqa: F401 (fixtures)
    adapter,
    agency_control,
    agency_system,
    make_sync,
    mappings_dir,
)

# A citizen who files on LAPOR!, one who comes to the agency's counter, one in a bad record.
NAME, EMAIL, PHONE, NIK = (
    "Sulastri Wulandari",
    "sulastri.w@contoh.id",
    "081298765432",
    "3273015506880004",
)
COUNTER = ("Bambang Suryanegara", "bambang.s@contoh.id", "081377712345")
QUARANTINED = ("Yohana Siregar", "yohana.s@contoh.id", "085211122233")
#: Words of the complaints' own contents (kept until the retention ends, then pruned).
CONTENTS = ("Jembatan Cikapundung", "Sertifikat Ciumbuleuit")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def state_bytes(store: StateStore) -> bytes:
    """Everything the state holds on disk: the file and its WAL (after a checkpoint)."""
    store.checkpoint_wal()
    wal = Path(f"{store.path}-wal")
    return store.path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


# --- files only the service account can read ------------------------------------------------


def test_state_file_wal_and_folder_are_created_private(tmp_path: Path, clock: FakeClock) -> None:
    """A new state is 0600 in a 0700 folder; its -wal and -shm files are 0600 too."""
    path = tmp_path / "var" / "lib" / "state.sqlite"
    with StateStore(path, clock) as store:
        with store.transaction():
            store.set_watermark("inbound", clock.now())
        assert mode(path.parent) == 0o700
        for made in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert mode(made) == 0o600, made


def test_a_looser_existing_state_file_is_tightened_with_a_warning(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A state file others could read (0644) is made 0600 on open, and the event says so."""
    path = tmp_path / "state.sqlite"
    StateStore(path, clock).close()
    os.chmod(path, 0o644)
    structlog.reset_defaults()  # an earlier test may have configured ERROR level for the process
    with capture_logs() as events, StateStore(path, clock):
        assert mode(path) == 0o600
    assert [e["event"] for e in events] == ["file_mode_tightened"]
    assert events[0]["was"] == "0o644"


def test_writer_lock_file_is_private(tmp_path: Path) -> None:
    """The writer lock beside the state is created 0600."""
    state = tmp_path / "state.sqlite"
    with writer_lock(state, "test"):
        assert mode(lock_path(state)) == 0o600


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "table"])
def test_log_exports_are_private(tmp_path: Path, clock: FakeClock, fmt: str) -> None:
    """`log --format ... --output FILE` writes a file only its owner can read, even over an old one."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "lapor": {"base_url": "https://lapor.example.go.id/lapor/3.0.0", "institution_id": 145,
                  "api_key": "${LAPOR_API_KEY}", "token": "${LAPOR_TOKEN}"},
        "state": {"path": str(tmp_path / "state.sqlite")},
    }))  # fmt: skip
    StateStore(tmp_path / "state.sqlite", clock).close()
    out = tmp_path / f"audit.{fmt}"
    out.write_text("old")
    os.chmod(out, 0o644)
    args = ["log", "--format", fmt, "--output", str(out), "--config", str(config)]
    result = CliRunner().invoke(cli, args, env=ENV)
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    assert "old" not in out.read_text()


# --- what a settled write, a quarantined record and an error text keep -----------------------


def test_redacted_payload_keeps_ids_and_field_names_not_the_reporter() -> None:
    """The reporter becomes a placeholder naming its fields; texts lose its values; ids stay."""
    payload = {
        "complaint": {"title": "Pungli", "content": f"Saya {NAME}, NIK {NIK}, telp {PHONE}.",
                      "reporter": {"name": NAME, "email": EMAIL, "phone": None}, "is_secret": True},
        "lapor_id": 5010653, "tracking_id": "1916449", "_fields": ["reporter", "content"],
        "lapor_fields": {"content": "sha256:0812"},
    }  # fmt: skip
    kept = redacted_payload(payload)
    assert kept["complaint"]["reporter"] == {"redacted": True, "fields": ["email", "name"]}
    assert kept["complaint"]["is_secret"] is True
    assert kept["lapor_id"] == 5010653
    assert kept["tracking_id"] == "1916449"
    assert kept["lapor_fields"] == payload["lapor_fields"]
    text = json.dumps(kept)
    for value in (NAME, "Sulastri", "Wulandari", EMAIL, PHONE, NIK):
        assert value not in text, value


def test_refused_fields_are_quarantined_without_the_reporter() -> None:
    """The problems of a 422 that names the reporter (unquoted) keep the field and the rule."""
    refusal = errors.RecordRejected("LAPOR! POST /complaints/complaint: 422",
                                    [errors.FieldProblem("nameUser", f"{NAME} sudah punya akun")])  # fmt: skip
    (problem,) = redacted_problems(refusal, {"complaint": {"reporter": {"name": NAME}}})
    assert problem.path == "nameUser"
    assert "sudah punya akun" in problem.problem
    assert "Sulastri" not in problem.problem


def test_error_body_keeps_the_rule_not_the_values_it_echoes() -> None:
    """A remote message loses its quoted values and personal-data shapes; the rule stays."""
    text = rule_text([f"Nama '{NAME}' sudah terdaftar", f"Email {EMAIL} sudah dipakai"])
    assert NAME not in text
    assert EMAIL not in text
    assert "sudah terdaftar" in text


@responses.activate
def test_a_422_echoing_the_reporter_is_stored_without_it(tmp_path: Path, clock: FakeClock) -> None:
    """A C7 refused with a 422 naming the reporter: neither the outbox nor the error keep the name."""
    base = "https://lapor.example.go.id/lapor/3.0.0"
    body = {"status": False, "code": "VALIDATION_ERROR",
            "errors": {"nameUser": [f"Pelapor {NAME} sudah punya akun ({EMAIL})"]}}  # fmt: skip
    responses.post(f"{base}/complaints/complaint", status=422, json=body)
    transport = LaporTransport(make_settings(base), clock)
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        outbox = Outbox(store)
        with store.transaction():
            item = outbox.enqueue(
                key="lapor.create:AG-1", flow="intake_out", target="lapor",
                operation="lapor_create_complaint", subject="AG-1", lookup={"external_ref": "AG-1"},
                payload={"complaint": {"title": "Calo", "reporter": {"name": NAME, "email": EMAIL}}},
            )  # fmt: skip

        def send() -> dict[str, object]:
            transport.post(
                "/complaints/complaint", operation="create_complaint", lookup={}, json={}
            )
            return {}

        outcome = outbox.attempt(item, send, lambda: None)
        assert isinstance(outcome.error, errors.RecordRejected)
        stored = outbox.get(item.key)
        assert stored is not None
        assert stored.last_error is not None
        assert "nameUser" in stored.last_error
        for value in (NAME, "Sulastri", EMAIL):
            assert value not in stored.last_error, value


def test_a_dead_write_keeps_the_reporter_until_acknowledged(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A dead write can still be retried, so it keeps what it sends; given up on, it does not."""
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        outbox = Outbox(store, max_attempts=1)
        with store.transaction():
            item = outbox.enqueue(
                key="agency.create:1", flow="inbound", target="agency", operation="agency_create_complaint",
                subject="1", lookup={"lapor_id": 1}, payload={"complaint": {"reporter": {"name": NAME}}},
            )  # fmt: skip

        def refused() -> dict[str, object]:
            raise errors.RecordRejected("agency POST /complaints: 422", [])

        assert outbox.attempt(item, refused, lambda: None).state == "dead"
        dead = outbox.get(item.key)
        assert dead is not None
        assert dead.payload["complaint"]["reporter"] == {"name": NAME}
        assert outbox.acknowledge(item.id)
        given_up = outbox.get(item.key)
        assert given_up is not None
        assert given_up.payload["complaint"]["reporter"] == {"redacted": True, "fields": ["name"]}


def test_a_write_resolved_without_sending_keeps_no_reporter(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A write the connector closes itself (refused, set aside) keeps the redacted form."""
    with StateStore(tmp_path / "state.sqlite", clock) as store:
        outbox = Outbox(store)
        with store.transaction():
            item = outbox.enqueue(
                key="lapor.create:AG-2", flow="intake_out", target="lapor", operation="lapor_create_complaint",
                subject="AG-2", lookup={"external_ref": "AG-2"},
                payload={"complaint": {"reporter": {"name": NAME, "phone": PHONE}}},
            )  # fmt: skip
            outbox.resolve(item, "rejected: RecordRejected", set_aside=True)
        (resolved,) = outbox.items("acknowledged")
        assert resolved.payload["complaint"]["reporter"] == {
            "redacted": True,
            "fields": ["name", "phone"],
        }


def test_a_quarantined_record_is_kept_redacted(tmp_path: Path, clock: FakeClock) -> None:
    """A record set aside keeps its ids and problems; its reporter and personal shapes go."""
    from connector import models as m

    with StateStore(tmp_path / "state.sqlite", clock) as store:
        raw = {"id": 77, "title": f"Hubungi {PHONE}", "reporter": {"name": NAME, "email": EMAIL}}
        problem = errors.FieldProblem("title", f"{NAME} is not a title")
        store.quarantine(
            m.InvalidRecord(source="inbound", record_id="77", problems=(problem,), raw=raw)
        )
        (entry,) = store.quarantined()
        assert entry.raw["id"] == 77
        assert entry.raw["reporter"] == {"redacted": True, "fields": ["email", "name"]}
        text = json.dumps(entry.raw) + " ".join(entry.problems)
        for value in (NAME, EMAIL, PHONE):
            assert value not in text, value


# --- the whole way: planted reporter details, done, then pruned --------------------------------


def _plant(control: SimControl, agency_control: AgencyControl) -> tuple[int, str]:
    """A citizen files on LAPOR! (name, e-mail, phone; a NIK in the text); another at the
    agency's counter, filed to LAPOR!. Returns the LAPOR! id and the agency id."""
    lapor_id = control.submit(
        title=f"Pungli di {CONTENTS[0]}", category_id=436,
        content=f"Saya {NAME}, NIK {NIK}, dimintai uang. Hubungi saya di {PHONE}.",
        reporter={"name": NAME, "email": EMAIL, "phone": PHONE},
    )  # fmt: skip
    control.dispose(lapor_id, INSTITUTION_ID)
    name, email, phone = COUNTER
    agency_id = agency_control.add_internal_complaint(
        channel="web", title=f"{CONTENTS[1]} belum terbit", content="Sudah dua tahun menunggu.",
        category_code="PTN-SRT", unit_code="KANTAH-BDG", report_to_lapor=True,
        reporter={"name": name, "email": email, "phone": phone},
    )  # fmt: skip
    return lapor_id, agency_id


def _planted_values() -> list[str]:
    return [NAME, EMAIL, PHONE, NIK, *COUNTER, *QUARANTINED]


def test_no_planted_reporter_detail_remains_after_done_nor_contents_after_prune(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, clock: FakeClock,
) -> None:  # fmt: skip
    """After the writes are done no reporter detail is in the state (file and WAL); after a
    prune past the retention no content of the closed complaints is either; the log verifies."""
    sync = make_sync(intake_user_id=1)
    run_inbound(sync)
    lapor_id, agency_id = _plant(control, agency_control)
    name, email, phone = QUARANTINED
    listed = next(c for c in sim.state.complaints.values() if c["disposition_id"] == INSTITUTION_ID)
    control.inject("inbox", {**sim.state.summary(listed), "id": 9_999_002, "tracking_id": "9999002",
                             "created_at": "bukan tanggal",
                             "reporter": {"name": name, "email": email, "phone": phone}})  # fmt: skip
    control.advance_seconds(60)
    assert run_inbound(sync).quarantined == 1
    run_intake_out(sync)
    assert sync.agency.complaint(sync.links.by_lapor_id(lapor_id).agency_id).reporter.name == NAME  # type: ignore[union-attr]
    filed = next(c for c in sim.state.complaints.values() if c["external_ref"] == agency_id)
    assert filed["reporter"]["name"] == COUNTER[0]  # both really carried their reporters
    assert {i.state for i in sync.outbox.items()} == {"done"}

    on_disk = state_bytes(sync.store)
    for value in _planted_values():
        assert value.encode() not in on_disk, value
    for word in CONTENTS:
        assert word.encode() in on_disk, word  # the contents are still kept (the grep can see)

    # Both close, on both sides; a year and a day later the retention has run out.
    control.close(lapor_id)
    control.close(filed["id"])
    agency_control.set_status(agency_id, "selesai")
    control.advance_seconds(60)
    run_inbound(sync)
    run_intake_out(sync)
    clock.advance(timedelta(days=366).total_seconds())
    with sync.store.transaction():
        sync.store.acknowledge_quarantine(sync.store.quarantined()[0].id)
    with sync.store.rehearsal():
        planned = prune(sync.store, sync.mappings, sync.audit, retention_days=365)
    assert CONTENTS[0].encode() in state_bytes(sync.store)  # a dry run changes nothing
    report = prune(sync.store, sync.mappings, sync.audit, retention_days=365)
    assert report == planned
    assert report.quarantined == 1

    on_disk = state_bytes(sync.store)
    for value in [*_planted_values(), *CONTENTS]:
        assert value.encode() not in on_disk, value
    assert sync.links.by_lapor_id(lapor_id) is not None  # ids and links stay
    assert sync.audit.verify().ok
    pruned = [e for e in sync.audit.entries() if e.action == "prune_contents"]
    assert {lapor_id, filed["id"]} <= {e.lapor_id for e in pruned}
    assert len(pruned) == report.complaints  # one entry for each complaint pruned


def _dead_write(sync: Sync, lapor_id: int) -> int:
    """A write for the complaint that the agency refused for good (dead, waiting for a person)."""
    outbox = Outbox(sync.store, max_attempts=1)
    with sync.store.transaction():
        item = outbox.enqueue(
            key=f"agency.update:{lapor_id}:test", flow="inbound", target="agency",
            operation="agency_update_complaint", subject=str(lapor_id),
            payload={"lapor_id": lapor_id, "patch": {"title": "x"}}, lookup={"lapor_id": lapor_id},
        )  # fmt: skip

    def refused() -> dict[str, object]:
        raise errors.RecordRejected("agency PATCH /complaints: 422", [])

    assert outbox.attempt(item, refused, lambda: None).state == "dead"
    return item.id


def test_prune_leaves_complaints_inside_the_retention_and_open_ones(
    make_sync: Callable[..., Sync], sim: LaporSimulator, control: SimControl,
    agency_control: AgencyControl, clock: FakeClock,
) -> None:  # fmt: skip
    """A complaint closed yesterday, one with a write still open, and one still open on LAPOR!
    a year on keep their contents."""
    sync = make_sync(intake_user_id=1)
    lapor_id, _ = _plant(control, agency_control)
    run_inbound(sync)
    control.advance_seconds(60)
    control.close(lapor_id)
    control.advance_seconds(60)
    run_inbound(sync)
    clock.advance(timedelta(days=1).total_seconds())
    assert prune(sync.store, sync.mappings, sync.audit, retention_days=365).total == 0
    stuck = _dead_write(sync, lapor_id)  # an agency PATCH that needs a person
    clock.advance(timedelta(days=400).total_seconds())
    prune(sync.store, sync.mappings, sync.audit, retention_days=365)
    assert CONTENTS[0].encode() in state_bytes(sync.store)  # a write still open: not yet
    assert sync.outbox.acknowledge(stuck)
    prune(sync.store, sync.mappings, sync.audit, retention_days=365)
    assert CONTENTS[0].encode() not in state_bytes(sync.store)
    pruned = {e.lapor_id for e in sync.audit.entries() if e.action == "prune_contents"}
    assert lapor_id in pruned
    still_open = [i for i in sync.outbox.items("done") if i.payload.get("lapor_id") not in pruned]
    assert still_open
    assert all("pruned" not in i.payload for i in still_open)


# --- the command and its setting ---------------------------------------------------------------


def test_state_prune_command_says_what_it_removed(tmp_path: Path, sim: LaporSimulator) -> None:
    """`state prune --dry-run` and `state prune` report counts and exit 0 with nothing to do."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "lapor": {"base_url": sim.base_url, "institution_id": 145, "api_key": "${LAPOR_API_KEY}",
                  "token": "${LAPOR_TOKEN}"},
        "state": {"path": str(tmp_path / "state.sqlite")},
        "privacy": {"retention_days": 30},
    }))  # fmt: skip
    for args in (["state", "prune", "--dry-run"], ["state", "prune"]):
        result = CliRunner().invoke(cli, [*args, "--config", str(config)], env=ENV)
        assert result.exit_code == 0, result.output
        assert "nothing to prune: no complaint closed more than 30 days ago" in result.output


def test_state_prune_beside_another_writer_exits_8(tmp_path: Path) -> None:
    """`state prune` refuses to run beside the daemon (exit 8); --dry-run takes no lock."""
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "lapor": {"base_url": "https://lapor.example.go.id/lapor/3.0.0", "institution_id": 145,
                  "api_key": "${LAPOR_API_KEY}", "token": "${LAPOR_TOKEN}"},
        "state": {"path": str(tmp_path / "state.sqlite")},
    }))  # fmt: skip
    with writer_lock(tmp_path / "state.sqlite", "run (the daemon)"):
        busy = CliRunner().invoke(cli, ["state", "prune", "--config", str(config)], env=ENV)
        dry = CliRunner().invoke(
            cli, ["state", "prune", "--dry-run", "--config", str(config)], env=ENV
        )
    assert busy.exit_code == 8, busy.output
    assert "run (the daemon)" in busy.output
    assert dry.exit_code == 0, dry.output


def test_retention_days_is_validated() -> None:
    """A retention of 0 days is refused, naming the field."""
    lapor = {"base_url": "https://lapor.example.go.id/lapor/3.0.0", "institution_id": 145,
             "api_key": "${LAPOR_API_KEY}", "token": "${LAPOR_TOKEN}"}  # fmt: skip
    with pytest.raises(errors.ConfigError, match=r"privacy\.retention_days"):
        settings_from_mapping({"lapor": lapor, "privacy": {"retention_days": 0}}, env=ENV)
    settings = settings_from_mapping({"lapor": lapor}, env=ENV)
    assert settings.privacy.retention_days == 365
