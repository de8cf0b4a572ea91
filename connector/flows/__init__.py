"""The sync flows, one module each, and the registry the daemon and the command line use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
