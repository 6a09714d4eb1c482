"""The working-day calendar (工作日; 期间开始之日不计算在内) and its sources."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.calendar import Deadline, WorkingDayCalendar, weekdays_only_calendar
from domain.events import SHANGHAI
from hzbus.calendar_source import (
    CalendarOverrides,
    build_calendar,
    load_calendar,
    parse_overrides,
)
from hzbus.errors import UserError

# 2026 as published by the State Council (国办发明电〔2025〕7号), via chinese_calendar 1.11.
# Weekdays that are days off:
DAYS_OFF_2026 = [
    date(2026, 1, 1),
    date(2026, 1, 2),  # New Year (Thu, Fri)
    date(2026, 2, 16),
    date(2026, 2, 17),
    date(2026, 2, 18),
    date(2026, 2, 19),
    date(2026, 2, 20),
    date(2026, 2, 23),  # Spring Festival (Mon-Fri, Mon)
    date(2026, 4, 6),  # Qingming (Mon)
    date(2026, 5, 1),
    date(2026, 5, 4),
    date(2026, 5, 5),  # Labour Day (Fri, Mon, Tue)
    date(2026, 6, 19),  # Dragon Boat (Fri)
    date(2026, 9, 25),  # Mid-Autumn (Fri)
    date(2026, 10, 1),
    date(2026, 10, 2),
    date(2026, 10, 5),
    date(2026, 10, 6),
    date(2026, 10, 7),
    # National Day (Thu, Fri, Mon-Wed)
]
# Weekend days that are make-up working days (调休上班):
MAKEUP_2026 = [
    date(2026, 1, 4),  # Sun, New Year
    date(2026, 2, 14),  # Sat, Spring Festival
    date(2026, 2, 28),  # Sat, Spring Festival
    date(2026, 5, 9),  # Sat, Labour Day
    date(2026, 9, 20),  # Sun, National Day
    date(2026, 10, 10),  # Sat, National Day
]
# Weekend holidays (off anyway): a sample
WEEKEND_HOLIDAYS_2026 = [
    date(2026, 1, 3),
    date(2026, 2, 15),
    date(2026, 2, 21),
    date(2026, 2, 22),
    date(2026, 4, 4),
    date(2026, 4, 5),
    date(2026, 5, 2),
    date(2026, 5, 3),
    date(2026, 6, 20),
    date(2026, 6, 21),
    date(2026, 9, 26),
    date(2026, 9, 27),
    date(2026, 10, 3),
    date(2026, 10, 4),
]


@pytest.fixture(scope="module")
def cal() -> WorkingDayCalendar:
    return build_calendar()


def at(y: int, m: int, d: int, hh: int = 10, mm: int = 0, tz: timezone = SHANGHAI) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


# -- the 2026 official data --------------------------------------------------------------------


@pytest.mark.parametrize("day", DAYS_OFF_2026, ids=str)
def test_every_2026_weekday_holiday_is_not_a_working_day(cal, day):
    assert day.weekday() < 5
    assert not cal.is_working_day(day)


@pytest.mark.parametrize("day", MAKEUP_2026, ids=str)
def test_every_2026_makeup_weekend_day_is_a_working_day(cal, day):
    assert day.weekday() >= 5
    assert cal.is_working_day(day)


@pytest.mark.parametrize("day", WEEKEND_HOLIDAYS_2026, ids=str)
def test_weekend_holidays_are_not_working_days(cal, day):
    assert not cal.is_working_day(day)


def test_the_2026_lists_are_exactly_what_the_calendar_holds(cal):
    year = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    off_weekdays = [d for d in year if d.weekday() < 5 and not cal.is_working_day(d)]
    working_weekends = [d for d in year if d.weekday() >= 5 and cal.is_working_day(d)]
    assert off_weekdays == DAYS_OFF_2026
    assert working_weekends == MAKEUP_2026
    assert sum(cal.is_working_day(d) for d in year) == 261 - len(DAYS_OFF_2026) + len(MAKEUP_2026)


def test_2026_is_official_and_2027_is_not(cal):
    assert cal.is_official(date(2026, 12, 31))
    assert not cal.is_official(date(2027, 1, 1))
    assert cal.coverage_end() == date(2026, 12, 31)


# -- counting ----------------------------------------------------------------------------------


def test_domain_example_wednesday_before_national_day_plus_three(cal):
    deadline = cal.add_working_days(at(2026, 9, 30, 10), 3)
    assert deadline == Deadline(datetime(2026, 10, 10, 23, 59, 59, tzinfo=SHANGHAI), provisional=False)
    assert deadline.due_at.isoformat() == "2026-10-10T23:59:59+08:00"


def test_the_start_day_is_not_counted(cal):
    # Mon 2026-09-21 23:59 → the 1st working day after is Tue 09-22
    assert cal.add_working_days(at(2026, 9, 21, 23, 59), 1).due_date == date(2026, 9, 22)
    # a fact on a working day at 00:00 still does not count that day
    assert cal.add_working_days(at(2026, 9, 22, 0, 0), 1).due_date == date(2026, 9, 23)


def test_a_fact_on_a_day_off_counts_from_the_next_working_day(cal):
    # Sat 2026-10-03 (holiday) + 1 → Thu 10-08
    assert cal.add_working_days(at(2026, 10, 3), 1).due_date == date(2026, 10, 8)


def test_a_utc_start_that_is_already_the_next_day_in_shanghai(cal):
    # 2026-09-29 17:30Z = Wed 2026-09-30 01:30+08:00 → same as the domain example
    start = datetime(2026, 9, 29, 17, 30, tzinfo=UTC)
    assert cal.add_working_days(start, 3).due_at == datetime(2026, 10, 10, 23, 59, 59, tzinfo=SHANGHAI)
    # 15:59Z is still Tuesday 09-29 in Shanghai → 09-30, 10-08, 10-09
    start = datetime(2026, 9, 29, 15, 59, tzinfo=UTC)
    assert cal.add_working_days(start, 3).due_date == date(2026, 10, 9)


def test_due_time_is_tz_aware_end_of_day_in_shanghai(cal):
    due = cal.add_working_days(at(2026, 3, 2), 5).due_at
    assert due.tzinfo is not None and due.utcoffset() == timedelta(hours=8)
    assert (due.hour, due.minute, due.second) == (23, 59, 59)


def test_fifteen_working_days_across_national_day(cal):
    # discovered Tue 2026-09-22: 09-23,24,28,29,30 (5), 10-08,09,10 (8), 12..16 (13), 19, 20 (15)
    assert cal.add_working_days(at(2026, 9, 22), 15).due_date == date(2026, 10, 20)


def test_ten_working_days_over_spring_festival(cal):
    # Fri 2026-02-13 + 10: Sat 02-14 (make-up, 1), 02-24..27 (5), Sat 02-28 (6), 03-02..05 (10)
    assert cal.add_working_days(at(2026, 2, 13), 10).due_date == date(2026, 3, 5)


def test_a_deadline_crossing_into_2027_is_provisional(cal):
    deadline = cal.add_working_days(at(2026, 12, 28), 5)
    assert deadline.provisional is True
    # whatever the projection says, the date is a working day after 2026-12-31
    assert deadline.due_date > date(2026, 12, 31)
    assert cal.is_working_day(deadline.due_date)


def test_a_deadline_ending_on_the_last_day_of_2026_is_not_provisional(cal):
    # Thu 2026-12-24 + 5 → 12-25, 28, 29, 30, 31
    deadline = cal.add_working_days(at(2026, 12, 24), 5)
    assert deadline == Deadline(datetime(2026, 12, 31, 23, 59, 59, tzinfo=SHANGHAI), False)


def test_2027_projection_is_used_not_silently_weekdays(cal):
    # holidays projects 2027-01-01 (Fri) as a day off; provisional but not a weekday-only count
    assert not cal.is_working_day(date(2027, 1, 1))
    deadline = cal.add_working_days(at(2026, 12, 31), 1)
    assert deadline.due_date == date(2027, 1, 4)
    assert deadline.provisional


@pytest.mark.parametrize("n", [0, -1, -10])
def test_zero_or_negative_periods_are_rejected(cal, n):
    with pytest.raises(ValueError, match="at least 1"):
        cal.add_working_days(at(2026, 9, 30), n)


def test_a_naive_start_is_rejected(cal):
    with pytest.raises(ValueError, match="offset"):
        cal.add_working_days(datetime(2026, 9, 30, 10), 3)


def test_non_int_periods_are_rejected(cal):
    with pytest.raises(TypeError):
        cal.add_working_days(at(2026, 9, 30), 1.5)  # type: ignore[arg-type]


def test_is_working_day_rejects_datetimes(cal):
    with pytest.raises(TypeError):
        cal.is_working_day(at(2026, 9, 30))


# -- between and extensions ---------------------------------------------------------------------


def test_working_days_between_counts_after_a_up_to_and_including_b(cal):
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert cal.working_days_between(date(2026, 9, 30), date(2026, 9, 30)) == 0
    assert cal.working_days_between(date(2026, 10, 1), date(2026, 10, 7)) == 0
    assert cal.working_days_between(date(2026, 9, 18), date(2026, 9, 21)) == 2  # Sun 09-20 make-up
    assert cal.working_days_between(date(2026, 10, 10), date(2026, 9, 30)) == -3


def test_between_is_the_inverse_of_adding(cal):
    for start in (date(2026, 1, 1) + timedelta(days=i) for i in range(0, 360, 7)):
        for n in (1, 3, 5, 10, 15, 20):
            due = cal.add_working_days(datetime.combine(start, datetime.min.time(), SHANGHAI), n)
            assert cal.working_days_between(start, due.due_date) == n


def test_a_pause_moves_the_due_time_by_the_working_days_in_between(cal):
    # determination received Mon 2026-09-14, 10 WD → 09-28 (Sun 09-20 is a make-up day)
    due = cal.add_working_days(at(2026, 9, 14), 10)
    # 09-15..18 (4), Sun 09-20 make-up (5), 09-21..24 (9), Fri 09-25 Mid-Autumn off, Mon 09-28 (10)
    assert due.due_date == date(2026, 9, 28)
    # referred on 09-16, returned on 09-22: 09-17, 18, 20, 21, 22 do not count
    pause = cal.working_days_between(date(2026, 9, 16), date(2026, 9, 22))
    assert pause == 5
    moved = cal.extend_deadline(due, pause)
    assert cal.working_days_between(due.due_date, moved.due_date) == 5
    assert cal.extend_deadline(due, 0) is due


def test_is_met_by_uses_the_instant_not_the_wall_clock(cal):
    due = cal.add_working_days(at(2026, 9, 30), 3)
    assert due.is_met_by(datetime(2026, 10, 10, 15, 59, 59, tzinfo=UTC))
    assert not due.is_met_by(datetime(2026, 10, 10, 16, 0, 0, tzinfo=UTC))


# -- the pure value --------------------------------------------------------------------------------


def test_a_calendar_built_from_explicit_data():
    cal = WorkingDayCalendar(
        days_off=frozenset({date(2030, 1, 1)}),
        makeup_workdays=frozenset({date(2030, 1, 5)}),
        official_years=frozenset({2030}),
        version="test",
    )
    assert not cal.is_working_day(date(2030, 1, 1))
    assert cal.is_working_day(date(2030, 1, 5))
    # Mon 2029-12-31 + 2 → Wed 01-02, Thu 01-03; counted over 2030 only → official
    assert cal.add_working_days(at(2029, 12, 31), 2) == Deadline(
        datetime(2030, 1, 3, 23, 59, 59, tzinfo=SHANGHAI), False
    )
    # starting on 2029-12-30: 12-31 is a 2029 day, not official → provisional
    assert cal.add_working_days(at(2029, 12, 30), 2).provisional


def test_a_date_both_off_and_working_is_rejected():
    with pytest.raises(ValueError, match="both"):
        WorkingDayCalendar(
            days_off=frozenset({date(2030, 1, 5)}), makeup_workdays=frozenset({date(2030, 1, 5)})
        )


def test_coverage_warning_within_sixty_days():
    cal = weekdays_only_calendar({2025, 2026})
    assert cal.coverage_end() == date(2026, 12, 31)
    assert cal.coverage_warning(date(2026, 10, 31)) is None
    warning = cal.coverage_warning(date(2026, 11, 1))
    assert warning is not None and "2026-12-31" in warning and "2027" in warning
    assert "ended" in (cal.coverage_warning(date(2027, 1, 2)) or "")
    assert weekdays_only_calendar().coverage_warning(date(2026, 1, 1)) is not None
    with pytest.raises(LookupError):
        weekdays_only_calendar().coverage_end()


# -- overrides ---------------------------------------------------------------------------------


OVERRIDE_2027 = """
label = "test announcement for 2027"
official_years = [2027]
days_off = [2027-01-01, 2027-02-08, 2027-02-09, 2027-02-10, 2027-02-11, 2027-02-12]
makeup_workdays = ["2027-02-06", 2027-02-20]
"""


def test_overrides_make_2027_official(tmp_path):
    path = tmp_path / "overrides.toml"
    path.write_text(OVERRIDE_2027, encoding="utf-8")
    cal = build_calendar(parse_overrides(path))
    assert cal.is_official(date(2027, 6, 1))
    assert cal.coverage_end() == date(2027, 12, 31)
    assert cal.is_working_day(date(2027, 2, 6))  # Sat make-up from the file
    assert not cal.is_working_day(date(2027, 2, 8))
    # the projection of 2027 is dropped: Labour Day 2027-05-03 (projected) is a plain Monday now
    assert cal.is_working_day(date(2027, 5, 3))
    deadline = cal.add_working_days(at(2026, 12, 28), 5)
    # 12-29, 30, 31, (01-01 off, 02/03 weekend) 01-04, 01-05
    assert deadline == Deadline(datetime(2027, 1, 5, 23, 59, 59, tzinfo=SHANGHAI), provisional=False)
    assert "overrides=" in cal.version and "overrides=none" not in cal.version


def test_the_version_names_packages_and_override_hash(cal, tmp_path):
    assert "chinesecalendar=1.11.0" in cal.version
    assert "holidays=0.109" in cal.version
    assert cal.version.endswith("overrides=none")
    path = tmp_path / "o.toml"
    path.write_text(OVERRIDE_2027, encoding="utf-8")
    v1 = build_calendar(parse_overrides(path)).version
    path.write_text(OVERRIDE_2027 + "\n# changed\n", encoding="utf-8")
    assert build_calendar(parse_overrides(path)).version != v1


def test_load_calendar_reads_the_file_named_by_the_environment(tmp_path):
    path = tmp_path / "o.toml"
    path.write_text(OVERRIDE_2027, encoding="utf-8")
    cal = load_calendar({"HZBUS_CALENDAR_OVERRIDES": str(path)})
    assert cal.is_official(date(2027, 1, 1))
    assert not load_calendar({}).is_official(date(2027, 1, 1))
    with pytest.raises(UserError, match="no such file"):
        load_calendar({"HZBUS_CALENDAR_OVERRIDES": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize(
    "text, message",
    [
        ("official_years = [2027]\n", "no days_off"),
        ("days_off = ['not a date']\n", "not a date"),
        ("makeup_workdays = [2027-02-08]\n", "Saturdays or Sundays"),
        ("holidays = []\n", "unknown key"),
        ("days_off = [2027-02-06]\nmakeup_workdays = [2027-02-06]\n", "both"),
        ("days_off = [\n", "override file"),
    ],
)
def test_bad_override_files_are_operator_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        parse_overrides(path)


def test_the_example_override_file_parses_and_changes_nothing(cal):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "domain" / "data" / "calendar_overrides.example.toml"
    overrides = parse_overrides(example)
    assert overrides.official_years == frozenset() and not overrides.days_off
    other = build_calendar(overrides)
    assert other.days_off == cal.days_off and other.makeup_workdays == cal.makeup_workdays


def test_unused_override_class_defaults_are_empty():
    assert CalendarOverrides().digest == "none"
