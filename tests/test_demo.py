"""The README's first command: the demo runs end to end and tells the truth about what it did."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from connector.simulators.demo import run_demo


def test_demo_runs_and_reports(tmp_path: Path) -> None:
    """Both systems, three daemon cycles: complaints flow both ways, nothing is duplicated, one drift
    made on purpose is found and fixed by reconcile, the log verifies."""
    out = io.StringIO()
    run_demo(
        complaints=30, seed=3, state_dir=tmp_path / "demo", console=Console(file=out, width=200)
    )
    text = out.getvalue()

    def count(label: str) -> int:
        match = re.search(re.escape(label) + r"\s*│\s*(\d+)", text)
        assert match, label
        return int(match.group(1))

    assert count("complaints created in the agency system (from LAPOR!)") > 0
    assert count("complaints filed on LAPOR! (from the agency's own channels)") > 0
    assert count("follow-ups posted to LAPOR!") == 2
    assert count("duplicate follow-ups on LAPOR!") == 0
    assert count("records quarantined") == 1
    assert "chain intact" in text
    assert "citizen's photo foto.jpg downloadable from the agency system: yes, http" in text
    assert "agency follow-up PDF surat-balasan.pdf on LAPOR!: yes, with the file" in text
    assert "reconcile: 1 drift(s) found, 1 fixed by reconcile --fix, 0 left" in text
    assert "status_drift" in text
    assert (tmp_path / "demo" / "state.sqlite").exists()
