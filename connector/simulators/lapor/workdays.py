"""Indonesian working days (hari kerja): Monday to Friday, minus national holidays and cuti bersama."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import holidays

WIB = timezone(timedelta(hours=7), "WIB")


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    calendar = holidays.country_holidays("ID", years=year, categories=("public", "government"))
    return frozenset(calendar.keys())


def is_workday(day: date) -> bool:
    """True for a weekday that is neither a national holiday nor cuti bersama."""
    return day.weekday() < 5 and day not in _holidays(day.year)


def add_workdays(start: datetime, days: int) -> datetime:
    """The moment ``days`` working days after ``start`` (same time of day, counted in WIB)."""
    local = start.astimezone(WIB)
    return datetime.combine(_workdays_after(local.date(), days), local.timetz()).astimezone(
        start.tzinfo
    )


@lru_cache(maxsize=8192)
def _workdays_after(day: date, days: int) -> date:
    """The date ``days`` working days after ``day`` (cached: every inbox item asks for three)."""
    current, remaining = day, days
    while remaining > 0:
        current += timedelta(days=1)
        if is_workday(current):
            remaining -= 1
    return current
