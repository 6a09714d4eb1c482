"""Professional determination (专业认定) for the enforcement dept [协作机制 五(二)]."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.calendar import WorkingDayCalendar, shanghai_date
from domain.events import Event
from domain.obligations.model import Obligation
from domain.obligations.rules._common import first_known, fulfilment_by, settle

REPLY_WORKING_DAYS = 10
EXTENSION_WORKING_DAYS = 10


def determination_reply(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """determination_reply [协作机制 五(二)]: the requested business dept replies in writing
    within 10 working days of receiving the request (自收到执法协作文书之日起; receipt = the
    request's business time). Responsible: the request's ``to_dept``.

    - 情况复杂的,可适当延长10个工作日: a DeterminationExtended made before the due time (or while
      the clock is stopped) adds 10 working days to the original due, once.
    - 如需上级部门或相关专业机构认定的,时间另计: from a DeterminationReferred (made before the due
      time) to its DeterminationReferralReturned the clock stops: the working days after the
      referral's date up to and including the return's date are not counted, the due time moves
      by that many. A referral not yet returned keeps the clock stopped: the obligation stays
      ``open`` (its ``due_at`` a lower bound) and a reply meanwhile is on time.

    Fulfilled by the first DeterminationReplied; facts after the reply do not move the due.
    """
    requested = first_known(events, as_of, "DeterminationRequested")
    if requested is None:
        return None
    start = requested.occurred_at
    deadline = calendar.add_working_days(start, REPLY_WORKING_DAYS)
    reply = first_known(events, as_of, "DeterminationReplied")
    horizon = reply.occurred_at if reply is not None else as_of
    extension: Event | None = None
    stopped: datetime | None = None
    paused = 0
    for e in events:
        if e.occurred_at > horizon:
            break
        if e.type == "DeterminationExtended":
            if extension is None and (stopped is not None or e.occurred_at <= deadline.due_at):
                extension = e
                deadline = calendar.extend_deadline(deadline, EXTENSION_WORKING_DAYS)
        elif e.type == "DeterminationReferred":
            if stopped is None and e.occurred_at <= deadline.due_at:
                stopped = e.occurred_at
        elif e.type == "DeterminationReferralReturned" and stopped is not None:
            days = max(0, calendar.working_days_between(shanghai_date(stopped), shanghai_date(e.occurred_at)))
            paused += days
            deadline = calendar.extend_deadline(deadline, days)
            stopped = None
    return settle(
        kind="determination_reply",
        ref=ref,
        responsible=requested.fields["to_dept"],
        trigger=requested,
        started_at=start,
        deadline=deadline,
        fulfilment=fulfilment_by(reply),
        as_of=as_of,
        calendar=calendar,
        period=REPLY_WORKING_DAYS + (EXTENSION_WORKING_DAYS if extension is not None else 0),
        extended=extension is not None,
        extension_reason=None if extension is None else extension.fields.get("reason"),
        paused_working_days=paused,
        clock_stopped_since=stopped,
    )
