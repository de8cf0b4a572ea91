"""Properties of LAPOR! timestamp parsing: both formats, always aware UTC, never naive."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.lapor import wire

moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(timezone.utc)
).map(lambda d: d.replace(microsecond=0))
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(moments)
def test_wib_format_round_trips(moment: datetime) -> None:
    """d-m-Y H:i:s in WIB parses back to the same instant, in UTC."""
    parsed = wire.parse_wib(wire.format_wib(moment))
    assert parsed == moment
    assert parsed.tzinfo == timezone.utc


@given(moments, offsets)
def test_iso_with_any_offset_round_trips(moment: datetime, offset: timezone) -> None:
    """ISO 8601 with any offset parses to the same instant, in UTC."""
    parsed = wire.parse_iso(moment.astimezone(offset).isoformat())
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)


@given(moments)
def test_naive_iso_is_always_refused(moment: datetime) -> None:
    """An ISO timestamp without an offset never becomes a datetime."""
    with pytest.raises(ValueError, match="no UTC offset"):
        wire.parse_iso(moment.replace(tzinfo=None).isoformat())


@given(st.text(max_size=30))
def test_garbage_raises_value_error_only(text: str) -> None:
    """Any text either parses to an aware UTC datetime or raises ValueError."""
    try:
        parsed = wire.parse_any_timestamp(text)
    except ValueError:
        return
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)


def test_z_suffix_is_utc() -> None:
    """A trailing Z means UTC."""
    assert wire.parse_iso("2026-11-02T02:00:00Z") == datetime(2026, 11, 2, 2, tzinfo=timezone.utc)


def test_format_refuses_naive() -> None:
    """A naive datetime is never sent."""
    with pytest.raises(ValueError, match="naive"):
        wire.format_iso(datetime(2026, 11, 2))
