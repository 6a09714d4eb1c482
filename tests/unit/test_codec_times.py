"""The codec's fast reading of times (an hour parsed once, minutes and seconds looked up) answers
exactly what the general parser answers: the same instant in +08:00, or the same error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import SHANGHAI
from schemas import codec
from tests.unit.test_replay import VIOLATION


def general(value: str) -> datetime | str:
    try:
        return codec._parse_timestamp(value, "ViolationDiscovered e1", "occurred_at")
    except codec.EventError as exc:
        return str(exc)


def read(value: str) -> datetime | str:
    try:
        return codec.from_canonical(dict(VIOLATION, occurred_at=value)).occurred_at
    except codec.EventError as exc:
        return str(exc)


def same(value: str) -> None:
    for _ in range(2):  # the first reading may teach the cache its hour; the second uses it
        fast, slow = read(value), general(value)
        assert fast == slow
        if isinstance(fast, datetime):
            assert isinstance(slow, datetime) and fast.tzinfo is SHANGHAI
            assert fast.isoformat() == slow.isoformat()


@pytest.mark.parametrize(
    "value",
    [
        "2026-09-30T10:00:00+08:00",
        "2026-09-30T10:59:59+08:00",
        "2026-09-30T10:60:00+08:00",
        "2026-09-30T10:00:60+08:00",
        "2026-09-30T10:5:00+08:00",
        "2026-09-30T24:00:00+08:00",
        "2026-09-30 10:00:00+08:00",
        "2026-W40-3T10:00:00+08:00",
        "2026-W40-3T10:30:00+08:00",
        "2026-09-30T10:00:00+08:30",
        "2026-09-30T10:00:00.250+08:00",
        "2026-09-30T10:00:00Z",
        "2026-09-30T10:00:00",
        "2026-09-30T10:0a:00+08:00",
        "2026-02-29T10:00:00+08:00",
        "2028-02-29T10:00:00+08:00",
    ],
)
def test_a_time_reads_as_the_general_parser_reads_it(value: str) -> None:
    same(value)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([SHANGHAI, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.integers(min_value=0, max_value=3599),
)
def test_any_written_time_reads_as_the_general_parser_reads_it(
    moment: datetime, zone: timezone, spec: str, offset: int
) -> None:
    text = moment.replace(tzinfo=zone).isoformat(timespec=spec)
    same(text)
    hour = text[:13]
    same(f"{hour}:{offset // 60:02d}:{offset % 60:02d}{text[19:]}")  # another time of that hour
