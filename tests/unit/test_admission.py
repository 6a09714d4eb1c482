"""What consumers admit from the bus (schemas.admission): every refusal is named, every valid
event of the contract is admitted, and nothing else comes out of it."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.events import SHANGHAI, Event
from hzbus.config import PROJECT_ROOT
from schemas import admission, codec
from schemas.samples import sample_events

PUBLISHED = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
PUBLISHED_MS = int(PUBLISHED.timestamp() * 1000)
EVENTS = sample_events(60)
H, D = timedelta(hours=1), timedelta(days=1)
EPOCH, Y1999 = datetime(1970, 1, 1, 8, tzinfo=SHANGHAI), datetime(1999, 12, 31, tzinfo=SHANGHAI)


def at(event: Event, **times: datetime) -> Event:
    from dataclasses import replace

    return replace(event, **times)


def refused(event: Event, family: str | None = None, published_ms: int = PUBLISHED_MS) -> str | None:
    fam = codec.topic_family(event.type) if family is None else family
    return admission.event_refusal(event, topic_family=fam, published_ms=published_ms)


def test_every_sample_event_of_every_type_on_its_own_topic_is_admitted() -> None:
    base = PUBLISHED - timedelta(days=3)
    assert {e.type for e in EVENTS} == set(codec.event_types())
    for e in EVENTS:
        assert refused(at(e, occurred_at=base, recorded_at=base + timedelta(hours=1))) is None, e


def test_an_event_on_the_topic_of_another_family_is_refused_as_wrong_topic() -> None:
    case = next(e for e in EVENTS if e.type == "ViolationDiscovered")
    reason = refused(at(case, occurred_at=PUBLISHED, recorded_at=PUBLISHED), family="approvals")
    assert reason == "wrong topic: ViolationDiscovered belongs on the cases topic, found on approvals"


def test_an_unknown_department_in_any_department_field_is_named_with_its_field() -> None:
    transfer = next(e for e in EVENTS if e.type == "CaseTransferred")
    ok = at(transfer, occurred_at=PUBLISHED, recorded_at=PUBLISHED)
    from dataclasses import replace

    reason = refused(replace(ok, source_dept="HZ-NOPE"))
    assert reason is not None and reason.startswith("unknown department: 'HZ-NOPE' in field 'source_dept'")
    assert "[信息资源共享机制 五]" in reason
    reason = refused(replace(ok, fields={**ok.fields, "to_dept": "XX-ZFJ"}))
    assert reason is not None and "'XX-ZFJ' in field 'to_dept'" in reason
    meeting = next(e for e in EVENTS if e.type == "ConsultationMeetingHeld")
    bad = replace(
        meeting,
        occurred_at=PUBLISHED,
        recorded_at=PUBLISHED,
        fields={**meeting.fields, "participants": ["HZ-ZFJ", "HZ-QQQ"]},
    )
    reason = refused(bad)
    assert reason is not None and "'HZ-QQQ' in field 'participants'" in reason


@pytest.mark.parametrize(
    ("occurred", "recorded", "words"),
    [
        # the department's clock runs an hour ahead of the broker's
        (PUBLISHED + H, PUBLISHED + H, "occurred_at 2026-11-02T10:00:00+08:00 is after its publication time"),
        (PUBLISHED, PUBLISHED + 400 * D, "recorded_at 2027-12-07T09:00:00+08:00 is after its"),
        # a clock reset to the epoch
        (EPOCH, PUBLISHED, "occurred_at 1970-01-01T08:00:00+08:00 is before 2000"),
        (PUBLISHED - D, Y1999, "recorded_at 1999-12-31T00:00:00+08:00 is before 2000"),
        # business time after the adapter's own record of it
        (PUBLISHED - H, PUBLISHED - 3 * H, "occurred_at 2026-11-02T08:00:00+08:00 is after recorded_at"),
    ],
)
def test_a_clock_skewed_time_is_refused_against_the_broker_time(
    occurred: datetime, recorded: datetime, words: str
) -> None:
    e = next(e for e in EVENTS if e.type == "ApprovalIssued")
    reason = refused(at(e, occurred_at=occurred, recorded_at=recorded))
    assert reason is not None and reason.startswith("clock skew: ") and words in reason, reason


def test_times_in_the_past_and_within_ten_minutes_ahead_are_admitted() -> None:
    e = next(e for e in EVENTS if e.type == "PenaltyDecided")
    # a decision shared a year late is a late share to score, not bad input
    assert refused(at(e, occurred_at=PUBLISHED - timedelta(days=365), recorded_at=PUBLISHED)) is None
    ahead = PUBLISHED + timedelta(minutes=9, seconds=59)
    assert refused(at(e, occurred_at=ahead, recorded_at=ahead)) is None


def test_the_size_limit_is_the_bus_limit() -> None:
    assert admission.size_refusal(admission.MAX_EVENT_BYTES) is None
    assert admission.size_refusal(admission.MAX_EVENT_BYTES + 1) == (
        "oversized: 65,537 bytes, over the bus limit of 65,536 bytes per event"
    )


def test_an_unknown_topic_family_skips_only_the_topic_check() -> None:
    e = at(EVENTS[0], occurred_at=PUBLISHED, recorded_at=PUBLISHED)
    assert admission.event_refusal(e, topic_family=None, published_ms=PUBLISHED_MS) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(EVENTS),
    st.sampled_from([*{codec.topic_family(t) for t in codec.event_types()}, "nope", ""]),
    st.text(max_size=12),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.integers(min_value=-(2**62), max_value=2**62),
    st.integers(min_value=-(2**62), max_value=2**62),
)
def test_any_decoded_values_are_admitted_or_refused_with_a_named_reason(
    event: Event, family: str, dept: str, occurred_ms: int, recorded_ms: int, published_ms: int
) -> None:
    fields: dict[str, Any] = dict(event.fields)
    reason = admission.refusal(
        event.type, dept, fields, occurred_ms, recorded_ms, topic_family=family, published_ms=published_ms
    )
    if reason is not None:
        assert reason.split(":")[0] in ("wrong topic", "unknown department", "clock skew"), reason


def test_a_failpoint_kills_its_process_on_the_armed_pass_only() -> None:
    code = (
        "from hzbus.failpoints import reached\n"
        "for i in range(1, 6):\n"
        "    reached('other.point')\n"
        "    print(i, flush=True)\n"
        "    reached('test.point')\n"
    )
    env = {"HZBUS_FAILPOINT": "test.point:3", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=60
    )
    assert done.returncode == -9  # SIGKILL, as a crash would
    assert done.stdout.split() == [b"1", b"2", b"3"]
    unarmed = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, timeout=60)
    assert unarmed.returncode == 0 and unarmed.stdout.split() == [b"1", b"2", b"3", b"4", b"5"]
