"""The tolerant reader against every simulator dialect: the same canonical records, and proof
that each tolerance is needed (a reader strict on one variant fails on the dialect that has it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from connector import errors
from connector import models as m
from connector.lapor import wire
from connector.lapor.client import LaporClient
from connector.simulators.lapor import LaporSimulator
from connector.simulators.lapor.dialects import DIALECTS
from tests.conftest import INSTITUTION_ID

BEGINNING = datetime(2000, 1, 1, tzinfo=timezone.utc)


def read_everything(client: LaporClient) -> tuple[list[Any], int]:
    """Every inbox item, the detail and follow-ups of the complaints disposed to us; and how
    many records the reader refused."""
    refused = 0
    records: list[Any] = []
    for item in client.inbox(BEGINNING):
        if isinstance(item, m.InvalidRecord):
            refused += 1
            continue
        records.append(item)
        if item.disposition_id != INSTITUTION_ID:
            continue
        try:
            records.append(client.complaint(item.lapor_id))
        except errors.RecordError:
            refused += 1
        for followup in client.followups(item.lapor_id):
            if isinstance(followup, m.InvalidRecord):
                refused += 1
            else:
                records.append(followup)
    return records, refused


def without_deadlines(records: list[Any]) -> list[Any]:
    """Records without deadlines (their precision differs by dialect) and without the
    follow-up hints (a dialect may add them: they are read, not required)."""
    extra = {"deadlines", "followups_count", "last_followup_at"}
    return [
        r.model_dump(exclude=extra) if isinstance(r, m.ComplaintSummary) else r for r in records
    ]


@pytest.mark.parametrize("name", list(DIALECTS))
def test_every_dialect_reads_as_the_contract_reading(
    name: str, sim: LaporSimulator, client: LaporClient
) -> None:
    """Each dialect's answers give exactly the canonical records of the contract's own reading."""
    expected, refused = read_everything(client)
    assert refused == 0
    assert len(expected) > 40
    sim.set_dialect(name)
    got, refused = read_everything(client)
    assert refused == 0
    assert without_deadlines(got) == without_deadlines(expected)
    hints = [r.followups_count for r in got if isinstance(r, m.ComplaintSummary)]
    assert any(h is not None for h in hints) == (name == "counts")
    if DIALECTS[name].deadlines == "iso" and name != "counts":
        assert got == expected


def test_bare_date_deadlines_keep_the_day(sim: LaporSimulator, client: LaporClient) -> None:
    """Deadlines sent as bare dates name the same WIB day as the full timestamps."""
    full = {c.lapor_id: c.deadlines for c in client.inbox(BEGINNING)}  # type: ignore[union-attr]
    sim.set_dialect("wib")
    for summary in client.inbox(BEGINNING):
        assert isinstance(summary, m.ComplaintSummary)
        before = full[summary.lapor_id].verify_by
        after = summary.deadlines.verify_by
        assert before is not None
        assert after is not None
        assert after.astimezone(wire.WIB).date() == before.astimezone(wire.WIB).date()


# --- each tolerance is needed ------------------------------------------------------------------


def _strict_integer(value: object) -> object:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("strict: an integer only")
    return value


def _strict_boolean(value: object) -> object:
    if not isinstance(value, bool):
        raise ValueError("strict: true or false only")
    return value


def _strict_tracking_id(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("strict: a string only")
    return value


def _strict_reporter(value: object) -> object:
    if value is None:
        raise ValueError("strict: reporter must be an object")
    return value


def _strict_status(code: str | None, name: str | None, aliases: Any = None) -> m.ComplaintStatus:
    if code is None:
        raise ValueError("strict: status_code is required")
    return m.ComplaintStatus(code)


STRICT: list[tuple[str, Callable[..., object], str]] = [
    ("parse_any_timestamp", wire.parse_iso, "contract"),  # created_at as d-m-Y H:i:s
    ("parse_any_timestamp", wire.parse_iso, "wib"),  # updated_at as d-m-Y H:i:s
    ("parse_deadline", wire.parse_any_timestamp, "wib"),  # deadlines as bare dates
    ("_integer", _strict_integer, "php"),  # ids as numeric strings
    ("_boolean", _strict_boolean, "mysql"),  # flags as 0/1
    ("_optional_boolean", _strict_boolean, "php"),  # flags as "0"/"1"
    ("_boolean", _strict_boolean, "legacy"),  # flags as "true"/"false"
    ("_blank", lambda value: value, "php"),  # optional values as ""
    ("_tracking_id", _strict_tracking_id, "mysql"),  # tracking id as a number
    ("_reporter", _strict_reporter, "sparse"),  # reporter: null
    ("resolve_status", _strict_status, "sparse"),  # no status_code
]


@pytest.mark.parametrize(
    ("validator", "strict", "name"), STRICT, ids=[f"{v}-{d}" for v, _, d in STRICT]
)
def test_a_reader_strict_on_one_variant_fails_that_dialect(
    validator: str,
    strict: Callable[..., object],
    name: str,
    sim: LaporSimulator,
    client: LaporClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Swap one tolerant validator for a strict one: the dialect that needs it is refused."""
    sim.set_dialect(name)
    assert read_everything(client)[1] == 0
    monkeypatch.setattr(wire, validator, strict)
    try:
        refused = read_everything(client)[1]
    except errors.ProtocolError:  # e.g. the page's server_time itself is refused
        refused = 1
    assert refused > 0
