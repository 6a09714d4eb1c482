"""Information sharing (信息互通) [协作机制 三(二)]: decisions published on the bus within 3
working days, written copies within 5 (15 with a stated reason)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.calendar import WorkingDayCalendar
from domain.events import Event
from domain.obligations.model import Obligation
from domain.obligations.rules._common import Fulfilment, first_known, fulfilment_by, publication_time, settle

SHARE_WORKING_DAYS = 3
WRITTEN_WORKING_DAYS = 5
WRITTEN_MAX_WORKING_DAYS = 15


def _published(
    kind: str, ref: str, trigger: Event | None, as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    if trigger is None:
        return None
    start = trigger.occurred_at
    return settle(
        kind=kind,
        ref=ref,
        responsible=trigger.source_dept,
        trigger=trigger,
        started_at=start,
        deadline=calendar.add_working_days(start, SHARE_WORKING_DAYS),
        fulfilment=Fulfilment(publication_time(trigger), trigger.event_id),
        as_of=as_of,
        calendar=calendar,
        period=SHARE_WORKING_DAYS,
    )


def approval_share(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """approval_share [协作机制 三(二)1]: a business dept's approval decision (许可/备案/确认,
    any decision) is made known to the enforcement dept or the sharing platform within 3
    working days of the decision. Responsible: the issuing dept. Fulfilled when the event reaches
    the bus: its publication time (broker append time; ``recorded_at`` in a replayed file), never
    a time the adapter claims."""
    return _published("approval_share", ref, first_known(events, as_of, "ApprovalIssued"), as_of, calendar)


def penalty_share(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """penalty_share [协作机制 三(二)1]: the enforcement dept makes a penalty (行政处罚) or
    coercive measure (行政强制) decision known to the business dept or the sharing platform
    within 3 working days of the decision. Responsible: the deciding dept. Fulfilled at the
    event's publication time, as approval_share."""
    trigger = first_known(events, as_of, "PenaltyDecided", "CoerciveMeasureDecided")
    return _published("penalty_share", ref, trigger, as_of, calendar)


def written_share(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """written_share [协作机制 三(二)2]: where no platform exists, information to be shared in
    writing (书面抄告) is shared within 5 working days of its forming (自形成之日起); when it
    cannot be (收集、整理等原因) the period may be extended, to 15 working days at most: an
    InfoFormed with a stated ``extension_reason``. Responsible: the forming dept. Fulfilled by
    the first InfoShared (its business time: the written copy is made off the bus)."""
    formed = first_known(events, as_of, "InfoFormed")
    if formed is None:
        return None
    reason = (formed.fields.get("extension_reason") or "").strip() or None
    period = WRITTEN_MAX_WORKING_DAYS if reason else WRITTEN_WORKING_DAYS
    start = formed.occurred_at
    return settle(
        kind="written_share",
        ref=ref,
        responsible=formed.source_dept,
        trigger=formed,
        started_at=start,
        deadline=calendar.add_working_days(start, period),
        fulfilment=fulfilment_by(first_known(events, as_of, "InfoShared")),
        as_of=as_of,
        calendar=calendar,
        period=period,
        extended=reason is not None,
        extension_reason=reason,
    )
