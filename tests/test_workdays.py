"""Working days: the fast count against a day-by-day one, the SKB lists, the overrides, the zones."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.errors import ConfigError
from connector.workdays import WorkCalendar, load_calendar, national_closures, zone

# Cuti bersama as the SKB of the Ministers of Religious Affairs, Manpower and Administrative Reform
# publish them (2025: SKB of 14 Oct 2024 plus the 18 August added in 2025; 2026: SKB of 2025).
# 2027: the list the `holidays` release we pin carries for the 2027 SKB.
CUTI_BERSAMA = {
    2025: ["2025-01-28", "2025-03-28", "2025-04-02", "2025-04-03", "2025-04-04", "2025-04-07",
           "2025-05-13", "2025-05-30", "2025-06-09", "2025-08-18", "2025-12-26"],
    2026: ["2026-02-16", "2026-03-18", "2026-03-20", "2026-03-23", "2026-03-24", "2026-05-15",
           "2026-05-28", "2026-12-24"],
    2027: ["2027-02-05", "2027-03-09", "2027-03-12", "2027-03-15", "2027-03-25", "2027-05-18",
           "2027-05-19", "2027-12-24"],
}  # fmt: skip
# A few national holidays (hari libur nasional) of the same decrees.
LIBUR_NASIONAL = {
    2025: ["2025-01-01", "2025-03-31", "2025-04-01", "2025-04-18", "2025-05-01", "2025-12-25"],
    2026: ["2026-01-01", "2026-03-19", "2026-03-20", "2026-05-01", "2026-05-14", "2026-12-25"],
    2027: ["2027-01-01", "2027-03-10", "2027-03-26", "2027-05-06", "2027-12-25"],
}


def reference_is_workday(calendar: WorkCalendar, day: date, unit: str | None) -> bool:
    """The plain definition, day by day, with no shortcuts."""
    if day.weekday() >= 5:
        return False
    if unit is not None and day in calendar.unit_closures.get(unit, {}):
        return False
    if day in calendar.closures:
        return False
    if day in calendar.worked:
        return True
    return day not in national_closures(day.year)


def reference_add(calendar: WorkCalendar, start: date, days: int, unit: str | None) -> date:
    current, left = start, days
    while left:
        current += timedelta(days=1)
        if reference_is_workday(calendar, current, unit):
            left -= 1
    return current


def reference_count(calendar: WorkCalendar, start: date, end: date, unit: str | None) -> int:
    total, current = 0, start
    while current < end:
        current += timedelta(days=1)
        total += reference_is_workday(calendar, current, unit)
    return total


days_2024_2028 = st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 6, 30))


@st.composite
def calendars(draw: st.DrawFn) -> WorkCalendar:
    closures = draw(st.dictionaries(days_2024_2028, st.just("tutup"), max_size=6))
    worked = draw(st.frozensets(days_2024_2028, max_size=4))
    regional = draw(st.dictionaries(days_2024_2028, st.just("libur daerah"), max_size=4))
    return WorkCalendar(closures=closures, worked=worked, unit_closures={"UPT": regional})


@settings(max_examples=300, deadline=None)
@given(calendars(), days_2024_2028, st.integers(0, 70), st.sampled_from([None, "UPT"]))
def test_add_is_the_day_by_day_count(
    calendar: WorkCalendar, start: date, days: int, unit: str | None
) -> None:
    assert calendar.add(start, days, unit) == reference_add(calendar, start, days, unit)


@settings(max_examples=300, deadline=None)
@given(calendars(), days_2024_2028, days_2024_2028, st.sampled_from([None, "UPT"]))
def test_count_is_the_day_by_day_count(
    calendar: WorkCalendar, start: date, end: date, unit: str | None
) -> None:
    expected = (
        reference_count(calendar, start, end, unit)
        if start <= end
        else -reference_count(calendar, end, start, unit)
    )
    assert calendar.count(start, end, unit) == expected


@settings(max_examples=200, deadline=None)
@given(days_2024_2028, st.integers(1, 70))
def test_add_and_count_agree(start: date, days: int) -> None:
    calendar = WorkCalendar()
    due = calendar.add(start, days)
    assert calendar.count(start, due) == days
    assert calendar.is_workday(due)


@pytest.mark.parametrize("year", sorted(CUTI_BERSAMA))
def test_the_published_skb_lists_are_closed(year: int) -> None:
    calendar = WorkCalendar()
    for text in CUTI_BERSAMA[year] + LIBUR_NASIONAL[year]:
        day = date.fromisoformat(text)
        assert not calendar.is_workday(day), f"{day} must be closed"
    # nothing else closes a weekday: every closed weekday is on one of the decree lists
    closed = {
        d
        for d, _ in national_closures(year).items()
        if d.weekday() < 5 and not calendar.is_workday(d)
    }
    cuti = {date.fromisoformat(t) for t in CUTI_BERSAMA[year]}
    assert cuti <= closed


def test_cuti_bersama_count() -> None:
    """Nyepi and Idulfitri 2026: the 17th of March plus 3 working days is the 27th, because the
    18th, 20th, 23rd and 24th are cuti bersama (counting public holidays only gives the 24th)."""
    calendar = WorkCalendar()
    assert calendar.add(date(2026, 3, 17), 3) == date(2026, 3, 27)
    assert calendar.count(date(2026, 3, 17), date(2026, 3, 31)) == 5
    # Christmas 2026: the 24th is cuti bersama, the 25th a holiday
    assert calendar.add(date(2026, 12, 23), 1) == date(2026, 12, 28)


def test_deadlines_count_in_the_units_zone() -> None:
    calendar = WorkCalendar(zones={"KANTOR-MKS": zone("WITA"), "KANTOR-JPR": zone("WIT")})
    # Friday 23:30 WIB is Saturday 00:30 WITA: day 0 is the Saturday there, so the 1st working
    # day is Monday in both, but a Thursday 23:30 WIB moves day 0 to Friday in Makassar.
    thursday_late = datetime(2026, 12, 3, 16, 30, tzinfo=timezone.utc)  # 23:30 WIB
    assert calendar.due(thursday_late, 1, "KANTAH-BDG") == date(2026, 12, 4)
    assert calendar.due(thursday_late, 1, "KANTOR-MKS") == date(2026, 12, 7)
    assert calendar.due(thursday_late, 1, "KANTOR-JPR") == date(2026, 12, 7)
    assert calendar.zone_for("ANY").key == "Asia/Jakarta"


def write(folder: Path, text: str) -> Path:
    (folder / "calendar.yaml").write_text(text, encoding="utf-8")
    return folder


def test_calendar_yaml_overrides(tmp_path: Path) -> None:
    calendar = load_calendar(
        write(
            tmp_path,
            """
closures:
  - {date: 2026-12-31, name: Penutupan akhir tahun}
  - {from: 2027-01-04, until: 2027-01-05, name: Pindah kantor}
working_days:
  - {date: 2026-12-24, name: Cuti bersama dibatalkan}
moved:
  - {holiday: 2026-05-28, to: 2026-05-29, name: Digeser}
units:
  KANTAH-BDG:
    closures:
      - {date: 2026-09-25, name: Hari Jadi Kota Bandung}
""",
        ),
        units={"KANTAH-BDG", "SEKSI-SP"},
    )
    assert not calendar.is_workday(date(2026, 12, 31))
    assert not calendar.is_workday(date(2027, 1, 4))
    assert not calendar.is_workday(date(2027, 1, 5))
    assert calendar.is_workday(date(2026, 12, 24))
    assert calendar.is_workday(date(2026, 5, 28))
    assert not calendar.is_workday(date(2026, 5, 29))
    assert not calendar.is_workday(date(2026, 9, 25), "KANTAH-BDG")
    assert calendar.is_workday(date(2026, 9, 25), "SEKSI-SP")
    assert calendar.add(date(2026, 9, 24), 1, "KANTAH-BDG") == date(2026, 9, 28)
    assert calendar.add(date(2026, 9, 24), 1, "SEKSI-SP") == date(2026, 9, 25)
    assert calendar.closure(date(2026, 12, 31)) == "Penutupan akhir tahun"


def test_a_missing_calendar_file_is_the_national_calendar(tmp_path: Path) -> None:
    calendar = load_calendar(tmp_path)
    assert calendar.add(date(2026, 3, 17), 3) == date(2026, 3, 27)


def test_calendar_problems_are_all_reported_with_their_path(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
closures:
  - {date: 2026-13-01, name: x}
  - {from: 2026-12-05, name: tanpa akhir}
  - {date: 2026-12-01}
moved:
  - {holiday: 2026-05-28, name: Digeser}
units:
  KANTOR-X: {closures: []}
colour: blue
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_calendar(tmp_path, units={"KANTAH-BDG"}, zones={"KANTAH-BDG": "UTC"})
    problems = "\n".join(caught.value.problems)
    assert "calendar.yaml: closures.0.date: not a date; write it as YYYY-MM-DD" in problems
    assert "calendar.yaml: closures.1: give a date, or both from and until" in problems
    assert "calendar.yaml: closures.2.name: required; add it" in problems
    assert "calendar.yaml: moved.0.to: required; add it" in problems
    assert "calendar.yaml: colour: unknown key" in problems
    assert "units.yaml: time_zones.KANTAH-BDG: 'UTC' is not an Indonesian time zone" in problems


def test_calendar_units_must_be_known(tmp_path: Path) -> None:
    write(tmp_path, "units:\n  KANTOR-X: {closures: []}\n")
    with pytest.raises(ConfigError, match=r"units.KANTOR-X: not a unit of units.yaml"):
        load_calendar(tmp_path, units={"KANTAH-BDG"})


def test_the_shipped_mappings_carry_the_calendar() -> None:
    from connector.mappings import load_mappings

    mappings = load_mappings(Path(__file__).parent.parent / "mappings")
    assert mappings.calendar.zone_for("KANTAH-BDG").key == "Asia/Jakarta"
    assert not mappings.calendar.is_workday(date(2026, 12, 24))
