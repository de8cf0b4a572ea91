"""The sync flows, one module each, and the registry the daemon and the command line use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.errors import Stopping
from connector.flows.followups_out import run_followups_out
from connector.flows.inbound import run_inbound
from connector.flows.intake_out import run_intake_out
from connector.sync import Sync

#: Flow name -> one run of it. Inbound first: it links complaints the other flows push to.
FLOWS: dict[str, Callable[[Sync], Any]] = {
    "inbound": run_inbound,
    "intake_out": run_intake_out,
    "followups_out": run_followups_out,
}


def run_flow(sync: Sync, name: str) -> Any:
    """One run of a flow, recorded as the flow's last run (``ok``, or ``failed`` when it raised)."""
    started = sync.clock.now()
    outcome = "failed"
    try:
        report = FLOWS[name](sync)
        outcome = "ok"
        return report
    except Stopping:
        outcome = "stopped"  # SIGTERM: what was not sent is left for the next run
        raise
    finally:
        if not sync.dry_run:
            sync.store.record_flow_run(name, started, outcome)
