"""The joint consultation meeting (联合会商会议), once a year [协作机制 一(三)]."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time

from domain.calendar import Deadline, WorkingDayCalendar, end_of_day, shanghai_date
from domain.events import SHANGHAI, Event
from domain.obligations.model import CLAUSES, RULE_VERSION, Obligation
from domain.obligations.rules._common import delay_working_days

#: the city's comprehensive enforcement bureau drafts the agenda and has the meeting convened
CITY_ENFORCEMENT_DEPT = "HZ-ZFJ"


def is_city_joint_meeting(event: Event) -> bool:
    """A joint (not thematic) meeting of the city level: reported by, or attended by, HZ-ZFJ."""
    city = CITY_ENFORCEMENT_DEPT
    return event.fields.get("kind") == "joint" and (
        event.source_dept == city or city in (event.fields.get("participants") or ())
    )


def annual_joint_meeting(
    year: int, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """annual_joint_meeting [协作机制 一(三)]: the joint consultation meeting is held once a year
    (原则上每年召开1次), on the enforcement dept's agenda: due 12-31 23:59:59 Asia/Shanghai of
    the year, from 01-01 00:00. Responsible: the city enforcement bureau HZ-ZFJ. Fulfilled by a
    ConsultationMeetingHeld of kind ``joint`` of that year (a meeting of the next year counts
    for the next year, so this obligation is met, open or missed, never late). Not counted in
    working days: never provisional."""
    started_at = datetime.combine(date(year, 1, 1), time(0), tzinfo=SHANGHAI)
    if as_of < started_at:
        return None
    due_at = end_of_day(date(year, 12, 31))
    meeting = next(
        (
            e
            for e in events
            if e.type == "ConsultationMeetingHeld"
            and e.occurred_at <= as_of
            and shanghai_date(e.occurred_at).year == year
            and is_city_joint_meeting(e)
        ),
        None,
    )
    missed = meeting is None and as_of > due_at
    return Obligation(
        obligation_id=f"annual_joint_meeting:{year:04d}",
        kind="annual_joint_meeting",
        ref=f"{year:04d}",
        responsible_dept=CITY_ENFORCEMENT_DEPT,
        started_at=started_at,
        due_at=Deadline(due_at).due_at,
        status="met" if meeting is not None else "missed" if missed else "open",
        fulfilled_at=None if meeting is None else meeting.occurred_at,
        provisional=False,
        clause=CLAUSES["annual_joint_meeting"],
        rule_version=RULE_VERSION,
        calendar_version=calendar.version,
        delay_working_days=delay_working_days(calendar, due_at, as_of) if missed else 0,
        trigger_event_id="",
        fulfilled_by=None if meeting is None else meeting.event_id,
    )
