# ruff: noqa: F811 (pytest fixtures imported from tests.test_sync_cli are redefined as arguments)
"""A lost state is never a fresh install: deleted, emptied or corrupt, the connector refuses to
write until `state rebuild` recovers the links; after it, nothing is filed or posted twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator, SimControl
from tests.test_sync_cli import agency_system, config, run  # noqa: F401 (fixtures)


def remote_writes(sim: LaporSimulator, agency_system: AgencySystem) -> dict[str, int]:
    return {
        **{f"lapor.{k}": v for k, v in sim.state.writes.items()},
        **{
            f"agency.{k}": v
            for k, v in AgencyControl(agency_system.root_url).stats()["writes"].items()
        },
    }


def twice(sim: LaporSimulator, agency_system: AgencySystem) -> dict[str, int]:
    """Anything that exists twice, on either side."""
    agency = AgencyControl(agency_system.root_url)
    on_lapor = Counter(
        c["external_ref"] for c in sim.state.complaints.values() if c["external_ref"]
    )
    in_agency = Counter(c["lapor"]["id"] for c in agency.complaints() if c["lapor"])
    posted = Counter((cid, f["content"]) for cid, items in sim.state.followups.items()
                     for f in items if f["author_type"] == "institution")  # fmt: skip
    rows = agency_system.store.db.execute(
        "SELECT complaint_id, content FROM followups WHERE author != 'agency'"
    ).fetchall()
    replies = Counter(("agency", cid, content) for cid, content in rows)
    return {str(k): n for k, n in (on_lapor + in_agency + posted + replies).items() if n > 1}


def lose(state: Path, how: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(state) + suffix).unlink(missing_ok=True)
    if how == "emptied":
        state.write_bytes(b"")
    elif how == "corrupt":
        state.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4096)


@pytest.mark.parametrize("how", ["deleted", "emptied", "corrupt"])
def test_a_lost_state_is_refused_then_rebuilt_with_no_duplicate(
    how: str, config: Path, tmp_path: Path, sim: LaporSimulator, control: SimControl,
    agency_system: AgencySystem,
) -> None:  # fmt: skip
    """Sync fully, lose the state, sync: refused (exit 3), nothing sent. Rebuild, sync: every
    complaint and follow-up still exists exactly once on both sides, and a second sync writes
    nothing anywhere."""
    agency = AgencyControl(agency_system.root_url)
    assert run(config, "sync").exit_code in (0, 6)
    linked = next(c for c in agency.complaints() if c["lapor"] and c["source"] == "lapor"
                  and sim.state.complaints[c["lapor"]["id"]]["status"] == "in_process")  # fmt: skip
    agency.add_staff_followup(linked["id"], "Ditindaklanjuti sebelum state hilang.")
    assert run(config, "sync").exit_code in (0, 6)
    control.advance_seconds(60)
    control.reply(linked["lapor"]["id"], "Balasan selagi state hilang.")
    state = tmp_path / "state.sqlite"
    lose(state, how)
    before = remote_writes(sim, agency_system)

    refused = run(config, "sync")
    assert refused.exit_code == 3, refused.output
    assert "state rebuild" in refused.output
    assert remote_writes(sim, agency_system) == before

    if how == "corrupt":
        state.rename(tmp_path / "state.sqlite.broken")
    rebuilt = run(config, "state", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert run(config, "sync").exit_code in (0, 6)
    assert twice(sim, agency_system) == {}
    writes = remote_writes(sim, agency_system)
    assert {k: v - before.get(k, 0) for k, v in writes.items() if v != before.get(k, 0)}.keys() <= {
        "agency.patch",
        "agency.add_followup",  # the agency brought to LAPOR!'s state; the new reply
    }
    replies = [f for f in agency_followups(agency_system, linked["id"])
               if f["content"] == "Balasan selagi state hilang."]  # fmt: skip
    assert len(replies) == 1
    settled = remote_writes(sim, agency_system)
    run(config, "sync")
    assert remote_writes(sim, agency_system) == settled


def agency_followups(agency_system: AgencySystem, complaint_id: str) -> list[dict[str, object]]:
    db = agency_system.store.db  # the agency's own records: a truth dump
    rows = db.execute("SELECT content FROM followups WHERE complaint_id = ?", [complaint_id])
    return [{"content": row[0]} for row in rows.fetchall()]


def test_a_state_of_another_installation_is_refused(config: Path, tmp_path: Path) -> None:
    """A state file recorded for institution 145 is not used for another institution."""
    assert run(config, "sync").exit_code in (0, 6)
    raw = yaml.safe_load(config.read_text())
    raw["lapor"]["institution_id"] = 147
    config.write_text(yaml.safe_dump(raw))
    refused = run(config, "sync")
    assert refused.exit_code == 3, refused.output
    assert "belongs to lapor_institution_id 145, not 147" in refused.output


def test_rebuild_refuses_a_state_in_use(config: Path) -> None:
    """rebuild is for a lost state: on one that holds links it changes nothing and says so."""
    assert run(config, "sync").exit_code in (0, 6)
    refused = run(config, "state", "rebuild")
    assert refused.exit_code == 3
    assert "is in use" in refused.output


def test_the_daemon_stops_on_a_lost_state(config: Path, tmp_path: Path) -> None:
    """`run` on a lost state stops at once with exit 3 instead of syncing or looping."""
    assert run(config, "sync").exit_code in (0, 6)
    lose(tmp_path / "state.sqlite", "deleted")
    result = run(config, "run")
    assert result.exit_code == 3, result.output
    assert "state rebuild" in result.output
