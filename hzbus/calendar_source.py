"""Adapter: build the :class:`~domain.calendar.WorkingDayCalendar` from its sources.

1. ``chinese_calendar`` (1.11: 2004–2026): the State Council's announcements, **official**.
2. ``holidays.country_holidays("CN")`` for the later years: partly projected, so those years are
   **provisional** (deadlines counted over them carry ``provisional=True``).
3. The operator's override file (TOML, path from ``HZBUS_CALENDAR_OVERRIDES``; format in
   ``domain/data/calendar_overrides.example.toml``): days off, make-up working days and years
   declared official, to load an announcement the day it is published. A year declared official
   there replaces the projection of that year entirely by the file's dates.

The version string names the package versions and the override file's hash, so a stored due
time can be traced to the calendar that computed it.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from domain.calendar import WorkingDayCalendar
from hzbus.errors import UserError

ENV_VAR = "HZBUS_CALENDAR_OVERRIDES"
#: how many years after the last official one the ``holidays`` projection is loaded
PROJECTION_YEARS = 10


@dataclass(frozen=True)
class CalendarOverrides:
    """The operator's override file, parsed."""

    days_off: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    official_years: frozenset[int] = frozenset()
    digest: str = "none"
    label: str = ""


def _dates(value: Any, key: str, path: Path) -> frozenset[date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise UserError(f"{path}: {key} must be a list of dates")
    out = set()
    for item in value:
        if isinstance(item, date):
            out.add(item)
            continue
        try:
            out.add(date.fromisoformat(str(item)))
        except ValueError:
            raise UserError(f"{path}: {key}: {item!r} is not a date (YYYY-MM-DD)") from None
    return frozenset(out)


def parse_overrides(path: Path) -> CalendarOverrides:
    """Read and validate an override file (TOML)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"calendar override file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"calendar override file {path}: {exc}") from None
    known = {"label", "official_years", "days_off", "makeup_workdays"}
    unknown = set(data) - known
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected {sorted(known)}")
    years = data.get("official_years", [])
    if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
        raise UserError(f"{path}: official_years must be a list of years, e.g. [2027]")
    days_off = _dates(data.get("days_off"), "days_off", path)
    makeup = _dates(data.get("makeup_workdays"), "makeup_workdays", path)
    both = days_off & makeup
    if both:
        listed = sorted(d.isoformat() for d in both)
        raise UserError(f"{path}: dates listed as both off and working: {listed}")
    weekday_makeup = sorted(d.isoformat() for d in makeup if d.weekday() < 5)
    if weekday_makeup:
        raise UserError(f"{path}: makeup_workdays must be Saturdays or Sundays: {weekday_makeup}")
    for year in years:
        if not any(d.year == year for d in days_off):
            raise UserError(f"{path}: year {year} declared official but no days_off listed for it")
    return CalendarOverrides(
        days_off=days_off,
        makeup_workdays=makeup,
        official_years=frozenset(years),
        digest=hashlib.sha256(raw).hexdigest()[:16],
        label=str(data.get("label", "")),
    )


def _official_data() -> tuple[set[date], set[date], set[int]]:
    """Days off on weekdays, make-up weekend days and the years of ``chinese_calendar``."""
    from chinese_calendar import constants

    holidays_ = set(constants.holidays)
    workdays = set(constants.workdays)
    years = {d.year for d in holidays_}
    days_off = {d for d in holidays_ if d.weekday() < 5}
    makeup = {d for d in workdays if d.weekday() >= 5}
    return days_off, makeup, set(range(min(years), max(years) + 1))


def _projected_data(years: range) -> tuple[set[date], set[date]]:
    """Days off and make-up days of ``holidays`` for ``years`` (partly projected: provisional)."""
    import holidays

    cn = holidays.country_holidays("CN", years=list(years))
    days_off = {d for d in cn if d.weekday() < 5 and d.year in years}
    makeup = {d for d in getattr(cn, "weekend_workdays", set()) if d.year in years}
    return days_off, makeup


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def build_calendar(overrides: CalendarOverrides | None = None) -> WorkingDayCalendar:
    """The calendar from ``chinese_calendar`` (official), ``holidays`` (provisional) and overrides."""
    overrides = overrides or CalendarOverrides()
    days_off, makeup, official = _official_data()
    projected = range(max(official) + 1, max(official) + 1 + PROJECTION_YEARS)
    p_off, p_makeup = _projected_data(projected)
    replaced = overrides.official_years
    days_off |= {d for d in p_off if d.year not in replaced}
    makeup |= {d for d in p_makeup if d.year not in replaced}
    # The file wins over both sources for the dates it lists (and for the whole of a year it
    # declares official: the projection of that year was left out above).
    days_off = (days_off - overrides.makeup_workdays) | overrides.days_off
    makeup = (makeup - overrides.days_off) | overrides.makeup_workdays
    version = (
        f"chinesecalendar={_version('chinesecalendar')};holidays={_version('holidays')};"
        f"overrides={overrides.digest}"
    )
    return WorkingDayCalendar(
        days_off=frozenset(days_off),
        makeup_workdays=frozenset(makeup),
        official_years=frozenset(official | replaced),
        version=version,
    )


def overrides_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The override file named by ``HZBUS_CALENDAR_OVERRIDES`` (None when unset or empty)."""
    env = os.environ if env is None else env
    value = env.get(ENV_VAR, "").strip()
    return Path(value) if value else None


def load_calendar(env: Mapping[str, str] | None = None) -> WorkingDayCalendar:
    """The calendar with the override file of the environment (if any)."""
    path = overrides_path(env)
    if path is None:
        return _cached(None)
    if not path.is_file():
        raise UserError(f"{ENV_VAR}={path}: no such file")
    return _cached(str(path.resolve()), path.stat().st_mtime_ns)


@cache
def _cached(path: str | None, mtime_ns: int = 0) -> WorkingDayCalendar:
    if path is None:
        return build_calendar()
    return build_calendar(parse_overrides(Path(path)))
