"""One writer per state: concurrent ``sync`` processes, and a ``sync`` beside the daemon,
never file anything twice; the one turned away says so with exit code 8."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

from connector.simulators.agency import AgencyControl, AgencySystem
from connector.simulators.lapor import LaporSimulator
from tests.test_chaos import sync_process, write_config


def duplicates(lapor: LaporSimulator, agency: AgencyControl) -> dict[str, int]:
    """Anything filed more than once, on either side."""
    on_lapor = Counter(
        c["external_ref"] for c in lapor.state.complaints.values() if c["external_ref"]
    )
    in_agency = Counter(
        str(c["lapor"]["id"]) for c in agency.complaints() if c["lapor"] and c["source"] == "lapor"
    )
    posted = Counter(f"{complaint}:{f['content']}" for complaint, items in lapor.state.followups.items()
                     for f in items if f["author_type"] == "institution")  # fmt: skip
    return {k: n for k, n in (on_lapor + in_agency + posted).items() if n > 1}


def test_concurrent_syncs_file_nothing_twice(tmp_path: Path) -> None:
    """Three syncs at once, three rounds: each either does the work or is refused (exit 8)."""
    with (
        LaporSimulator(seed=3, complaints=25).start() as lapor,
        AgencySystem(tmp_path / "agency.sqlite", complaints=6, seed=3).start() as agency,
    ):
        config = write_config(tmp_path, lapor, agency)
        codes = []
        for _ in range(3):
            processes = [sync_process(config, lapor, agency) for _ in range(3)]
            codes += [p.wait(timeout=120) for p in processes]
        assert set(codes) <= {0, 8}
        assert 0 in codes
        assert duplicates(lapor, AgencyControl(agency.root_url)) == {}
        internal = [c for c in AgencyControl(agency.root_url).complaints()
                    if c["source"] == "internal" and c["report_to_lapor"]]  # fmt: skip
        assert all(c["lapor"] for c in internal)


def test_sync_beside_the_daemon_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """While another writer holds the state (the daemon), a manual sync exits 8 at once and
    sends nothing anywhere."""
    from connector.writer import writer_lock

    with (
        LaporSimulator(seed=4, complaints=10).start() as lapor,
        AgencySystem(tmp_path / "agency.sqlite", complaints=4, seed=4).start() as agency,
    ):
        config = write_config(tmp_path, lapor, agency)
        before = dict(lapor.state.writes)
        with writer_lock(tmp_path / "state.sqlite", "run (the daemon)"):
            process = sync_process(config, lapor, agency)
            assert process.wait(timeout=60) == 8
        assert dict(lapor.state.writes) == before
        assert AgencyControl(agency.root_url).writes("create") == 0


def test_refusal_names_the_holder(tmp_path: Path) -> None:
    """The refused command says who holds the lock and what to do."""
    from connector.writer import writer_lock

    with (
        LaporSimulator(seed=4, complaints=2).start() as lapor,
        AgencySystem(tmp_path / "agency.sqlite", complaints=1, seed=4).start() as agency,
    ):
        config = write_config(tmp_path, lapor, agency)
        with writer_lock(tmp_path / "state.sqlite", "run (the daemon)"):
            process = sync_process(config, lapor, agency)
            process.stdout, process.stderr = None, None
            assert process.wait(timeout=60) == 8
        import os
        import sys

        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
               "LAPOR_API_KEY": lapor.api_key, "LAPOR_TOKEN": lapor.token, "AGENCY_API_TOKEN": agency.token}  # fmt: skip
        with writer_lock(tmp_path / "state.sqlite", "run (the daemon)"):
            result = subprocess.run(  # noqa: S603
                [sys.executable, "-m", "connector", "sync", "--config", str(config)],
                env=env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        assert result.returncode == 8
        assert "run (the daemon) (pid" in result.stderr
