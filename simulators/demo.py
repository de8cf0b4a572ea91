"""The demo: the connector against the bundled LAPOR! simulator, with real SQLite state.

It starts the simulator on a free loopback port, configures the connector exactly as an agency
would (through the same validated settings, secrets through references), and pulls every
complaint disposed to the agency. One listed record is corrupted on purpose, to show that a
bad record is quarantined with its field path while the rest of the page still syncs. A second
pull then shows that an up-to-date state costs one request and changes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from connector.clock import SystemClock
from connector.config import settings_from_mapping
from connector.lapor.client import LaporClient
from connector.logs import configure
from connector.pull import pull_inbox
from connector.state import StateStore
from connector.tables import complaints_table
from simulators.lapor import LaporSimulator, SimControl


def run_demo(*, complaints: int, seed: int, state_dir: Path, console: Console) -> None:
    """Start the simulator, pull twice, and print what the state holds."""
    configure("ERROR", "console")
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    with LaporSimulator(seed=seed, complaints=complaints, requests_per_minute=0).start() as sim:
        console.print(f"LAPOR! simulator at {sim.base_url} (institution {sim.institution_id})")
        settings = settings_from_mapping(
            {
                "lapor": {
                    "base_url": sim.base_url,
                    "institution_id": sim.institution_id,
                    "api_key": "${LAPOR_API_KEY}",
                    "token": "${LAPOR_TOKEN}",
                    "requests_per_minute": 0,
                    "page_size": 20,
                },
                "state": {"path": str(state_dir / "state.sqlite")},
            },
            env={"LAPOR_API_KEY": sim.api_key, "LAPOR_TOKEN": sim.token},
        )
        control = SimControl(sim.root_url)
        control.add_fault("inbox", "malformed", count=1, variant="naive_timestamp")
        clock = SystemClock()
        with (
            StateStore(settings.state.path, clock) as store,
            LaporClient(settings.lapor, clock) as client,
        ):
            first = pull_inbox(client, store)
            rows = store.complaints()
            console.print(
                complaints_table(
                    rows, title=f"Complaints disposed to the agency, in {settings.state.path}"
                )
            )
            console.print(
                f"[bold]first pull[/bold]: {first.new} new complaints in {first.pages} pages, "
                f"{first.requests} requests; {len(first.quarantined)} quarantined"
            )
            for bad in first.quarantined:
                console.print(f"  quarantined: {bad.describe()}", style="yellow", markup=False)
            second = pull_inbox(client, store)
            console.print(
                f"[bold]second pull[/bold]: {second.new} new, {second.changed} changed, "
                f"{second.requests} request(s): nothing to do when nothing changed"
            )
            console.print(
                f"state file: {settings.state.path} (sqlite3 it, or run `lapor-connector pull`)"
            )
