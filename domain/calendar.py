"""The working-day calendar (工作日) on which every period of the notice is counted.

A :class:`WorkingDayCalendar` is a value built from explicit data: the weekdays that are days off
(public holidays and their bridge days), the weekend days that are make-up working days
(调休上班), the years whose data is official (published by the State Council) and a version
string naming the sources. It never reads the clock or a file; ``hzbus.calendar_source``
builds it from ``chinese_calendar``, ``holidays`` and the operator's override file.

Counting rule (domain.md "Time rules"): the day of the triggering fact is not counted
(期间开始之日不计算在内); "within N working days of T" ends at 23:59:59 Asia/Shanghai of the N-th
working day after T's Shanghai date. A deadline that counts over a day of a year without
official data is *provisional*: it is never silently computed from weekdays alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from domain.events import SHANGHAI
from domain.values import fast_init

#: the end of a deadline's day, Asia/Shanghai
END_OF_DAY = time(23, 59, 59)
#: how long before the end of official coverage :meth:`WorkingDayCalendar.coverage_warning` warns
COVERAGE_WARNING_DAYS = 60
_ONE_DAY = timedelta(days=1)


@fast_init
@dataclass(frozen=True, slots=True)
class Deadline:
    """The due time of an obligation.

    ``due_at`` is 23:59:59 Asia/Shanghai (tz-aware) of the last working day counted;
    ``provisional`` is True when some day counted over lies in a year without official
    calendar data, so the day may move once the State Council publishes that year.
    """

    due_at: datetime
    provisional: bool = False

    @property
    def due_date(self) -> date:
        """The Shanghai date of the due time."""
        return self.due_at.astimezone(SHANGHAI).date()

    def is_met_by(self, when: datetime) -> bool:
        """A fact at ``when`` fulfils on time: ``when`` is not after the due time."""
        _require_aware(when, "when")
        return when <= self.due_at


def end_of_day(d: date) -> datetime:
    """23:59:59 Asia/Shanghai of ``d`` (tz-aware)."""
    return datetime.combine(d, END_OF_DAY, tzinfo=SHANGHAI)


def shanghai_date(moment: datetime) -> date:
    """The Asia/Shanghai calendar date of a tz-aware instant."""
    if type(moment) is datetime and moment.tzinfo is SHANGHAI:  # the codec's zone (the usual case)
        return moment.date()
    _require_aware(moment, "moment")
    return moment.astimezone(SHANGHAI).date()


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} has no UTC offset")


def _require_positive(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a number of working days must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"a period must be at least 1 working day, got {n}")


@dataclass(frozen=True, slots=True)
class WorkingDayCalendar:
    """The PRC statutory working-day calendar as data.

    - ``days_off``: weekdays (Mon–Fri) that are not working days (法定节假日 and bridge days);
      weekend dates listed here are harmless.
    - ``makeup_workdays``: weekend days that are working days (调休上班, e.g. Sat 2026-10-10).
    - ``official_years``: years whose data comes from the State Council's announcement (or an
      operator override declaring it so). Any other year is provisional.
    - ``version``: names the sources (package versions, override file hash); stored with every
      computed due time so a recomputation can be traced.
    """

    days_off: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()
    official_years: frozenset[int] = frozenset()
    version: str = "weekdays-only"
    # memos of the pure functions below (a calendar is immutable): by (date, n) and (a, b)
    _cache: dict[tuple[date, int], tuple[date, bool]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )
    _deadlines: dict[tuple[date, int], Deadline] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )
    _between: dict[tuple[date, date], int] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def __post_init__(self) -> None:
        both = self.days_off & self.makeup_workdays
        if both:
            listed = ", ".join(d.isoformat() for d in sorted(both))
            raise ValueError(f"dates both off and make-up working days: {listed}")

    # -- days -------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """工作日: Mon–Fri unless a day off, plus the make-up Saturdays/Sundays (调休上班)."""
        if isinstance(d, datetime):
            raise TypeError("is_working_day takes a date; use shanghai_date() on a datetime first")
        if d in self.makeup_workdays:
            return True
        if d in self.days_off:
            return False
        return d.weekday() < 5

    def is_official(self, d: date) -> bool:
        """True when ``d``'s year has official (published) calendar data."""
        return d.year in self.official_years

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        return self.nth_working_day_after(d, 1)[0]

    def working_days(self, first: date, last: date) -> Iterator[date]:
        """The working days of the closed range [first, last], in order."""
        d = first
        while d <= last:
            if self.is_working_day(d):
                yield d
            d += _ONE_DAY

    # -- periods ----------------------------------------------------------------------------

    def nth_working_day_after(self, d: date, n: int) -> tuple[date, bool]:
        """The n-th working day after ``d`` (``d`` itself not counted) and whether it is provisional.

        期间开始之日不计算在内: counting starts on the day after ``d``. ``provisional`` is True
        when any day stepped over (after ``d`` up to the result) is in a non-official year.
        """
        _require_positive(n)
        key = (d, n)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        provisional = False
        counted = 0
        day = d
        while counted < n:
            day += _ONE_DAY
            if day.year not in self.official_years:
                provisional = True
            if self.is_working_day(day):
                counted += 1
        result = (day, provisional)
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = result
        return result

    def add_working_days(self, start: datetime, n: int) -> Deadline:
        """The deadline "within ``n`` working days (工作日) of ``start``".

        The start day is not counted (期间开始之日不计算在内): the due time is 23:59:59
        Asia/Shanghai of the n-th working day after ``start``'s Shanghai date. ``start`` must be
        tz-aware (a UTC time late in the evening is already the next day in Shanghai); ``n``
        must be ≥ 1. Example (domain.md): Wed 2026-09-30 10:00 + 3 → 10-08, 10-09, Sat 10-10
        (调休上班) → 2026-10-10 23:59:59+08:00.
        """
        start_day = shanghai_date(start)
        key = (start_day, n)
        hit = self._deadlines.get(key)
        if hit is not None and type(n) is int:  # (d, True) finds (d, 1): a bool is refused below
            return hit
        day, provisional = self.nth_working_day_after(start_day, n)
        deadline = Deadline(end_of_day(day), provisional)
        if len(self._deadlines) > 200_000:
            self._deadlines.clear()
        self._deadlines[key] = deadline
        return deadline

    def extend_deadline(self, deadline: Deadline, n: int) -> Deadline:
        """``deadline`` moved by ``n`` working days (n ≥ 0).

        For pauses (时间另计 [协作机制 五(二)]): the due time moves by the number of working
        days between the referral and the return, see :meth:`working_days_between`.
        """
        if n == 0:
            return deadline
        day, provisional = self.nth_working_day_after(deadline.due_date, n)
        return Deadline(end_of_day(day), provisional or deadline.provisional)

    def working_days_between(self, a: date, b: date) -> int:
        """The number of working days (工作日) in (a, b]: after ``a``, up to and including ``b``.

        The first day is not counted (期间开始之日不计算在内). For a pause from a referral on
        ``a`` to its return on ``b``; for the delay of a late fulfilment in working days
        (due date ``a``, fulfilment date ``b``). Negative when ``b`` is before ``a``.
        """
        if isinstance(a, datetime) or isinstance(b, datetime):
            raise TypeError("working_days_between takes dates; use shanghai_date() first")
        key = (a, b)
        hit = self._between.get(key)
        if hit is not None:
            return hit
        if b < a:
            count = -self.working_days_between(b, a)
        else:
            count = sum(1 for _ in self.working_days(a + _ONE_DAY, b))
        if len(self._between) > 200_000:
            self._between.clear()
        self._between[key] = count
        return count

    def is_provisional_between(self, a: date, b: date) -> bool:
        """True when some day of (a, b] is in a year without official data."""
        lo, hi = (a, b) if a <= b else (b, a)
        if lo == hi:
            return False
        first = lo + _ONE_DAY
        return any(y not in self.official_years for y in range(first.year, hi.year + 1))

    # -- coverage ---------------------------------------------------------------------------

    def coverage_end(self) -> date:
        """The last day of official data: 12-31 of the last official year.

        Raises ``LookupError`` when the calendar has no official year at all.
        """
        if not self.official_years:
            raise LookupError(f"calendar {self.version} has no official year")
        year = max(self.official_years)
        return date(year, 12, 31)

    def coverage_warning(self, today: date) -> str | None:
        """A warning when official coverage ends within 60 days of ``today`` (or has ended).

        The State Council publishes next year's holidays around November; until the operator
        loads them (override file), deadlines in that year are provisional.
        """
        if not self.official_years:
            return (
                f"working-day calendar {self.version} has no official data: every deadline is "
                "provisional; load the State Council's holiday announcement into the override file"
            )
        end = self.coverage_end()
        left = (end - today).days
        if left > COVERAGE_WARNING_DAYS:
            return None
        next_year = end.year + 1
        when = f"ended on {end.isoformat()}" if left < 0 else f"ends on {end.isoformat()} (in {left} days)"
        return (
            f"official working-day calendar {when}: deadlines in {next_year} are provisional "
            f"until the State Council's {next_year} holiday announcement is loaded into the "
            "override file"
        )


def weekdays_only_calendar(official_years: Iterable[int] = ()) -> WorkingDayCalendar:
    """A calendar with no holidays (Mon–Fri working); for tests and as a base."""
    return WorkingDayCalendar(official_years=frozenset(official_years), version="weekdays-only")
