"""Indonesian working days (hari kerja), counted once and right for everything that counts days.

A working day is Monday to Friday, minus the national holidays and the cuti bersama of the SKB
(the ``holidays`` package, Indonesia, categories ``public`` and ``government``), adjusted by the
agency's own ``calendar.yaml``: extra closures, days the national calendar closes that are
worked after all (a revoked cuti bersama), holidays moved by decree, and closures of one work
unit (a regional holiday). Every unit has a time zone (WIB, WITA or WIT) and its days are counted
in it: a complaint filed at 23:30 WIB on a Friday is a Saturday complaint for a WITA office.

Counting follows the service rules' reading of "N working days after": the day something
happens is day 0, and the deadline is the N-th working day after it (a complaint filed on a
Saturday has the Monday as day 1). ``add`` and ``count`` use weekday arithmetic and a sorted list
of closed weekdays, not a day-by-day walk; the tests check them against one.
"""

from __future__ import annotations

import bisect
import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector.errors import ConfigError

#: The three Indonesian time zones, by their Indonesian abbreviation.
ZONES: dict[str, str] = {
    "WIB": "Asia/Jakarta",
    "WITA": "Asia/Makassar",
    "WIT": "Asia/Jayapura",
}
ZONE_NAMES = {name: short for short, name in ZONES.items()}
WIB = ZoneInfo(ZONES["WIB"])
CALENDAR_FILE = "calendar.yaml"


def zone(name: str) -> ZoneInfo:
    """The zone for ``WIB``/``WITA``/``WIT`` or their IANA names; ``ValueError`` otherwise."""
    iana = ZONES.get(name.upper(), name)
    if iana not in ZONE_NAMES:
        raise ValueError(
            f"{name!r} is not an Indonesian time zone; use WIB, WITA or WIT "
            "(Asia/Jakarta, Asia/Makassar, Asia/Jayapura)"
        )
    return ZoneInfo(iana)


@cache
def national_closures(year: int) -> dict[date, str]:
    """National holidays and cuti bersama of ``year`` (weekends included where they fall)."""
    calendar = holidays.country_holidays("ID", years=year, categories=("public", "government"))
    return {day: str(name) for day, name in calendar.items()}


# --- calendar.yaml ----------------------------------------------------------------------------


class _DatesAsText(yaml.SafeLoader):
    """YAML without implicit timestamps: a date stays text and is checked with its key's path
    (PyYAML's own date reading raises on ``2026-13-01`` with no file position)."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Closure(_Entry):
    """One closed day, or a range of them (``from`` .. ``until``, both included)."""

    date: _dt.date | None = None
    from_: _dt.date | None = Field(None, alias="from")
    until: _dt.date | None = None
    name: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_shape(self) -> _Closure:
        if self.date is not None and (self.from_ is not None or self.until is not None):
            raise ValueError("give either date, or from and until, not both")
        if self.date is None and (self.from_ is None or self.until is None):
            raise ValueError("give a date, or both from and until")
        if self.from_ is not None and self.until is not None and self.until < self.from_:
            raise ValueError("until is before from; swap them")
        if (
            self.from_ is not None
            and self.until is not None
            and (self.until - self.from_).days > 366
        ):
            raise ValueError("a closure longer than a year is not a closure; check the dates")
        return self

    def days(self) -> Iterable[_dt.date]:
        if self.date is not None:
            yield self.date
            return
        assert self.from_ is not None
        assert self.until is not None
        for offset in range((self.until - self.from_).days + 1):
            yield self.from_ + timedelta(days=offset)


class _Worked(_Entry):
    """A day the national calendar closes that is a working day here (a revoked cuti bersama)."""

    date: _dt.date
    name: str


class _Moved(_Entry):
    """A holiday moved by decree: ``holiday`` is worked, ``to`` is closed instead."""

    holiday: _dt.date
    to: _dt.date
    name: str


class _UnitCalendar(_Entry):
    closures: tuple[_Closure, ...] = ()


class _CalendarFile(_Entry):
    closures: tuple[_Closure, ...] = ()
    working_days: tuple[_Worked, ...] = ()
    moved: tuple[_Moved, ...] = ()
    units: dict[str, _UnitCalendar] = {}


def _problems(error: ValidationError, name: str) -> list[str]:
    problems = []
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        key = ".".join(str(p) for p in item["loc"] if p != "[key]").replace("from_", "from")
        fix = {
            "missing": "required; add it",
            "extra_forbidden": "unknown key; remove it or check its spelling",
            "date_from_datetime_parsing": "not a date; write it as YYYY-MM-DD",
            "date_parsing": "not a date; write it as YYYY-MM-DD",
            "date_type": "not a date; write it as YYYY-MM-DD",
        }.get(item["type"], item["msg"].removeprefix("Value error, "))
        problems.append(f"{name}: {key}: {fix}" if key else f"{name}: {fix}")
    return problems


# --- the calendar -----------------------------------------------------------------------------


@dataclass
class WorkCalendar:
    """Working days per work unit: the national calendar, the overrides, each unit's zone."""

    closures: Mapping[date, str] = field(default_factory=dict)
    worked: frozenset[date] = frozenset()
    unit_closures: Mapping[str, Mapping[date, str]] = field(default_factory=dict)
    zones: Mapping[str, ZoneInfo] = field(default_factory=dict)
    default_zone: ZoneInfo = WIB

    def __post_init__(self) -> None:
        self._closed: dict[tuple[str | None, int], list[date]] = {}

    # -- zones --

    def zone_for(self, unit: str | None) -> ZoneInfo:
        """The time zone a unit counts its days in (the default zone for an unknown unit)."""
        return self.zones.get(unit or "", self.default_zone)

    def local_date(self, moment: datetime, unit: str | None = None) -> date:
        """The calendar date of ``moment`` in the unit's zone."""
        return moment.astimezone(self.zone_for(unit)).date()

    # -- days --

    def closure(self, day: date, unit: str | None = None) -> str | None:
        """Why ``day`` is not a working day for ``unit`` (``None`` when it is one)."""
        if day.weekday() >= 5:
            return "weekend"
        if unit is not None and day in self.unit_closures.get(unit, {}):
            return self.unit_closures[unit][day]
        if day in self.closures:
            return self.closures[day]
        if day in self.worked:
            return None
        return national_closures(day.year).get(day)

    def is_workday(self, day: date, unit: str | None = None) -> bool:
        """True for a day the unit's office works."""
        return self.closure(day, unit) is None

    def _closed_weekdays(self, unit: str | None, year: int) -> list[date]:
        """The weekdays of ``year`` that are closed for ``unit``, sorted."""
        key = (unit if unit in self.unit_closures else None, year)
        found = self._closed.get(key)
        if found is None:
            start = date(year, 1, 1)
            days = (start + timedelta(days=n) for n in range((date(year + 1, 1, 1) - start).days))
            found = [d for d in days if d.weekday() < 5 and not self.is_workday(d, key[0])]
            self._closed[key] = found
        return found

    def _closed_between(self, start: date, end: date, unit: str | None) -> int:
        """Closed weekdays in ``(start, end]``."""
        total = 0
        for year in range(start.year, end.year + 1):
            closed = self._closed_weekdays(unit, year)
            total += bisect.bisect_right(closed, end) - bisect.bisect_right(closed, start)
        return total

    def count(self, start: date, end: date, unit: str | None = None) -> int:
        """Working days in ``(start, end]``; negative (the days in ``(end, start]``) when
        ``end`` is before ``start``."""
        if end < start:
            return -self.count(end, start, unit)
        return _weekdays_between(start, end) - self._closed_between(start, end, unit)

    def add(self, start: date, days: int, unit: str | None = None) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself is day 0)."""
        if days < 0:
            raise ValueError("days must not be negative")
        if days == 0:
            return start
        candidate = _add_weekdays(start, days)
        while True:
            missing = days - self.count(start, candidate, unit)
            if missing == 0:
                break
            candidate = _add_weekdays(candidate, missing)
        while not self.is_workday(candidate, unit):  # land on the working day itself
            candidate -= timedelta(days=1)
        return candidate

    def due(self, start: datetime, days: int, unit: str | None = None) -> date:
        """The deadline ``days`` working days after the moment ``start``, in the unit's zone."""
        return self.add(self.local_date(start, unit), days, unit)


def _weekdays_between(start: date, end: date) -> int:
    """Monday-to-Friday days in ``(start, end]``."""
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    weekday = start.weekday()
    for offset in range(1, rest + 1):
        if (weekday + offset) % 7 < 5:
            count += 1
    return count


def _add_weekdays(start: date, days: int) -> date:
    """The ``days``-th Monday-to-Friday day after ``start``."""
    weeks, rest = divmod(days, 5)
    current = start + timedelta(weeks=weeks)
    while rest > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            rest -= 1
    return current  # from a weekend day, whole weeks land on a weekend: ``add`` steps back


def load_calendar(
    directory: str | Path,
    *,
    zones: Mapping[str, str] | None = None,
    default_zone: str = "WIB",
    units: Iterable[str] = (),
) -> WorkCalendar:
    """The working-day calendar: ``calendar.yaml`` in the mappings folder (optional: without it
    the national calendar alone) and the units' zones; ``ConfigError`` lists every problem."""
    folder = Path(directory)
    problems: list[str] = []
    parsed = _CalendarFile()
    path = folder / CALENDAR_FILE
    if path.exists():
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_DatesAsText) or {}  # noqa: S506 (a SafeLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(
                [f"{CALENDAR_FILE}: not valid YAML{line}; fix the syntax there"], str(folder)
            ) from None
        try:
            parsed = _CalendarFile.model_validate(raw)
        except ValidationError as error:
            problems.extend(_problems(error, CALENDAR_FILE))
    known_units = set(units)
    if known_units:
        for unit in parsed.units:
            if unit not in known_units:
                problems.append(
                    f"{CALENDAR_FILE}: units.{unit}: not a unit of units.yaml; "
                    "check its spelling or add the unit there"
                )
    resolved: dict[str, ZoneInfo] = {}
    for unit, name in (zones or {}).items():
        try:
            resolved[unit] = zone(name)
        except ValueError as error:
            problems.append(f"units.yaml: time_zones.{unit}: {error}")
    try:
        fallback = zone(default_zone)
    except ValueError as error:
        problems.append(f"units.yaml: default_time_zone: {error}")
        fallback = WIB
    if problems:
        raise ConfigError(problems, str(folder))
    closures: dict[date, str] = {}
    worked: set[date] = set()
    for entry in parsed.closures:
        for day in entry.days():
            closures[day] = entry.name
    for worked_day in parsed.working_days:
        worked.add(worked_day.date)
    for move in parsed.moved:
        worked.add(move.holiday)
        closures[move.to] = move.name
    unit_closures = {
        unit: {day: entry.name for entry in cal.closures for day in entry.days()}
        for unit, cal in parsed.units.items()
    }
    return WorkCalendar(
        closures=closures,
        worked=frozenset(worked - set(closures)),
        unit_closures=unit_closures,
        zones=resolved,
        default_zone=fallback,
    )
