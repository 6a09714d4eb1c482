"""Complaints outside the receiver's jurisdiction [协作机制 四]: handled by the case transfer
rules [协作机制 二(一)]."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.calendar import WorkingDayCalendar
from domain.events import Event
from domain.obligations.model import Obligation
from domain.obligations.rules._common import fulfilment_by, known, settle
from domain.obligations.rules.cases import transfer_deadline


def complaint_referral(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """complaint_referral [协作机制 四, 二(一)]: a complaint that verification finds outside the
    receiving dept's jurisdiction (不属于本部门职权管辖范围) is handled by the case transfer
    rule: transferred within 3 working days of the verification, 15 at most with an extension
    notified before the 3 days ran out. Responsible: the dept that verified it. Fulfilled by a
    CaseTransferred carrying the complaint's id."""
    verified = next(
        (
            e
            for e in known(events, as_of, "ComplaintVerified")
            if e.fields.get("finding") == "out_of_jurisdiction"
        ),
        None,
    )
    if verified is None:
        return None
    start = verified.occurred_at
    period, ext = transfer_deadline(calendar, start, list(known(events, as_of, "TransferExtensionNotified")))
    return settle(
        kind="complaint_referral",
        ref=ref,
        responsible=verified.source_dept,
        trigger=verified,
        started_at=start,
        deadline=calendar.add_working_days(start, period),
        fulfilment=fulfilment_by(next(known(events, as_of, "CaseTransferred"), None)),
        as_of=as_of,
        calendar=calendar,
        period=period,
        extended=ext is not None,
        extension_reason=None if ext is None else ext.fields.get("reason"),
    )
