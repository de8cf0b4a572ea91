"""SLA out: where a linked complaint stands against LAPOR!'s service rules reaches the agency.

``sla_state`` is an optional field of the agency contract (docs/agency-api.md). The code that
computes it calls ``push_sla_state`` (or ``Sync.push_sla_state``) for each complaint; this module
only decides whether to send it and sends it once: a PATCH through the outbox, keyed by what the
agency would show, ``(agency id, stage, state, due)``, so the same state is never pushed twice,
also across runs and after a crash. ``working_days_left`` rides along as of the push; a new day
alone pushes nothing (the agency system can count down from ``due``).

Off unless ``agency.push_sla_state`` is true: an agency system that does not know the field
refuses it (422 naming ``sla_state``). When one does, the write is dead with that reason
(``quarantine list`` shows it), a warning names the fix, and nothing more is pushed in the run;
the rest of the sync goes on.
"""

from __future__ import annotations

from connector import errors
from connector import models as m
from connector.logs import get_logger
from connector.outbox import Outcome
from connector.sync import Sync

log = get_logger("sla_out")

FLOW = "sla"
FIELD = "sla_state"


def sla_key(agency_id: str, sla_state: m.SlaState | None) -> str:
    """The write's idempotency key: the same agency complaint and shown state, the same key."""
    if sla_state is None:
        return f"agency.sla:{agency_id}:cleared"
    return (
        f"agency.sla:{agency_id}:{sla_state.stage.value}:{sla_state.state.value}:"
        f"{sla_state.due.isoformat()}"
    )


def push_sla_state(sync: Sync, agency_id: str, sla_state: m.SlaState | None) -> Outcome | None:
    """PATCH an agency complaint's ``sla_state`` (None clears it), once per distinct state.

    Returns the write's outcome, or None when nothing was sent: pushing is off (the default),
    the agency refused the field earlier in this run, the same state was pushed before, or a
    dry run (which plans it). Interrupted or retried pushes are finished by ``sync.drain("sla")``,
    which the SLA pass runs first.
    """
    if not sync.sla_push_enabled or sync.sla_state_refused:
        return None
    link = sync.links.by_agency_id(agency_id)
    lookup: dict[str, object] = {"agency_id": agency_id}
    if link is not None and link.lapor_id is not None:
        lookup.update(lapor_id=link.lapor_id, tracking_id=link.tracking_id)
    value = None if sla_state is None else sla_state.model_dump(mode="json")
    outcome = sync.write(
        key=sla_key(agency_id, sla_state),
        flow=FLOW,
        target="agency",
        operation="agency_update_complaint",
        subject=(link.tracking_id if link is not None and link.tracking_id else agency_id),
        payload={"agency_id": agency_id, "patch": {FIELD: value}, "_fields": [FIELD]},
        lookup=lookup,
    )
    if outcome is not None and _refused(outcome.error):
        sync.sla_state_refused = True
        log.warning(
            "sla_state_refused",
            agency_id=agency_id,
            fix="the agency system does not take sla_state; set agency.push_sla_state: false "
            "(or extend the agency system), then `quarantine ack` the write",
        )
    return outcome


def _refused(error: errors.ConnectorError | None) -> bool:
    """True when the agency refused the write naming the ``sla_state`` field (400/422)."""
    return isinstance(error, errors.RecordRejected) and any(
        p.path == FIELD or p.path.startswith(FIELD + ".") for p in error.problems
    )
