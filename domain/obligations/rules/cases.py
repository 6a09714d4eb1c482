"""Case transfer (案件移送) [协作机制 二(一), 二(二)]: the transfer clock, the receiver's answer,
and the findings on a transfer's form (materials, approval, copy, urgent cases)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from domain.calendar import WorkingDayCalendar
from domain.events import Event
from domain.obligations.model import CLAUSES, RULE_VERSION, Finding, Obligation
from domain.obligations.rules._common import first_known, fulfilment_by, known, settle

TRANSFER_WORKING_DAYS = 3
TRANSFER_MAX_WORKING_DAYS = 15
ACK_WORKING_DAYS = 5
#: the materials of 协作机制 二(二) 1–3 (item 4, "other", is only what else there is)
REQUIRED_MATERIALS = ("transfer_letter", "source_material", "evidence")


def organisation(dept: str) -> str:
    """The department a unit belongs to: a township squadron (``DQ-ZD-WK``) is part of its
    county bureau (``DQ-ZFJ``); any other code is its own organisation."""
    county, sep, _ = dept.partition("-ZD-")
    return f"{county}-ZFJ" if sep else dept


def lacks_jurisdiction(discoverer: str, jurisdiction: str) -> bool:
    """True when the discovering dept must transfer: the dept holding jurisdiction is another
    organisation. A squadron and its county bureau (or two squadrons of one bureau) are one
    enforcement dept: a case passed between them is internal, not a transfer of 二(一)."""
    return organisation(discoverer) != organisation(jurisdiction)


def transfer_deadline(
    calendar: WorkingDayCalendar, start: datetime, extensions: Sequence[Event]
) -> tuple[int, Event | None]:
    """(period, extension) of a transfer clock started at ``start``.

    3 WD; an extension notified *before* (not after) the 3-WD due (事先告知) stretches it to 15
    WD after the start, the hard maximum — further notices add nothing [协作机制 二(一)].
    """
    base = calendar.add_working_days(start, TRANSFER_WORKING_DAYS)
    for ext in extensions:
        if ext.occurred_at <= base.due_at:
            return TRANSFER_MAX_WORKING_DAYS, ext
    return TRANSFER_WORKING_DAYS, None


def case_transfer(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> Obligation | None:
    """case_transfer [协作机制 二(一)]: a dept that discovers a violation under another dept's
    jurisdiction transfers it within 3 working days of the discovery (15 at most when it
    notified an extension before the 3 days ran out). Responsible: the discovering dept.
    Fulfilled by the first CaseTransferred of the case."""
    discovered = first_known(events, as_of, "ViolationDiscovered")
    if discovered is None:
        return None
    if not lacks_jurisdiction(discovered.source_dept, discovered.fields["jurisdiction_dept"]):
        return None
    start = discovered.occurred_at
    period, ext = transfer_deadline(calendar, start, list(known(events, as_of, "TransferExtensionNotified")))
    return settle(
        kind="case_transfer",
        ref=ref,
        responsible=discovered.source_dept,
        trigger=discovered,
        started_at=start,
        deadline=calendar.add_working_days(start, period),
        fulfilment=fulfilment_by(first_known(events, as_of, "CaseTransferred")),
        as_of=as_of,
        calendar=calendar,
        period=period,
        extended=ext is not None,
        extension_reason=None if ext is None else ext.fields.get("reason"),
    )


def transfer_acks(
    ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> list[Obligation]:
    """transfer_ack [协作机制 二(一)]: the receiving dept tells the transferring dept in writing
    within 5 working days of the transfer whether it takes the case. Responsible: the
    transfer's ``to_dept``. Fulfilled by a TransferAcknowledged (accepted or rejected).

    A case may be transferred more than once: rejected by one dept, it goes to another (or back
    to the same one with more evidence), and each receiver owes its own answer. So each transfer
    to an organisation with no unanswered transfer of the case starts a clock; a transfer to an
    organisation whose answer is still owed is the same transfer sent again (a letter re-sent
    with the missing materials) and starts none. Each answer, in time order, settles the
    earliest clock still owed by its sender's organisation, else the earliest clock still owed;
    an answer dated before the first transfer (clocks of two systems) settles the first clock,
    and one that finds every transfer answered is an answer said again. With one transfer, its
    first answer settles it, whoever sent it, as before re-transfers were tracked.

    The first clock's id is ``transfer_ack:<case_id>``, a later one's
    ``transfer_ack:<case_id>:<event_id of its transfer>``; ``ref`` is the case id for all."""
    clocks: list[tuple[Event, str]] = []  # (transfer, receiving organisation), in time order
    answers: dict[int, Event] = {}  # index in clocks → the answer that settled it
    early: Event | None = None  # the first answer dated before any transfer
    for e in events:  # in time order, then id
        if e.occurred_at > as_of:
            continue
        if e.type == "CaseTransferred":
            org = organisation(e.fields["to_dept"])
            if any(o == org and i not in answers for i, (_, o) in enumerate(clocks)):
                continue  # the same transfer sent again
            clocks.append((e, org))
            if early is not None and len(clocks) == 1:
                answers[0] = early
        elif e.type == "TransferAcknowledged":
            owed = [i for i in range(len(clocks)) if i not in answers]
            if not owed:
                if not clocks and early is None:  # dated before the transfer: it answers the first one
                    early = e
                continue  # every transfer so far answered: an answer said again
            sender = organisation(e.source_dept)
            mine = [i for i in owed if clocks[i][1] == sender]
            answers[(mine or owed)[0]] = e
    out: list[Obligation] = []
    for i, (transfer, _) in enumerate(clocks):
        start = transfer.occurred_at
        out.append(
            settle(
                kind="transfer_ack",
                ref=ref,
                responsible=transfer.fields["to_dept"],
                trigger=transfer,
                started_at=start,
                deadline=calendar.add_working_days(start, ACK_WORKING_DAYS),
                fulfilment=fulfilment_by(answers.get(i)),
                as_of=as_of,
                calendar=calendar,
                period=ACK_WORKING_DAYS,
                obligation_id=None if i == 0 else f"transfer_ack:{ref}:{transfer.event_id}",
            )
        )
    return out


def missing_items(transfer: Event) -> tuple[str, ...]:
    """What a CaseTransferred lacks of 协作机制 二(一)/(二): the materials 1–3, the leader's
    approval (经部门领导批准) and the copy to the coordination office (抄送统筹协调指挥办事机构)."""
    materials = set(transfer.fields.get("materials") or ())
    missing = [m for m in REQUIRED_MATERIALS if m not in materials]
    if not transfer.fields.get("leader_approved"):
        missing.append("leader_approval")
    if not transfer.fields.get("cc_coordination_office"):
        missing.append("cc_coordination_office")
    return tuple(missing)


def _finding(kind: str, ref: str, transfer: Event, details: tuple[str, ...] = ()) -> Finding:
    return Finding(
        finding_id=f"{kind}:{ref}:{transfer.event_id}",
        kind=kind,
        ref=ref,
        dept=transfer.source_dept,
        at=transfer.occurred_at,
        clause=CLAUSES[kind],
        rule_version=RULE_VERSION,
        details=details,
        event_id=transfer.event_id,
    )


def transfer_findings(ref: str, events: Sequence[Event], as_of: datetime) -> list[Finding]:
    """Findings on each transfer known at ``as_of``:

    - ``incomplete_transfer`` [协作机制 二(二)]: a transfer must be approved by the dept's leader,
      made in writing with the transfer letter, the source material and the evidence with the
      reasons, and copied to the coordination office [二(一)]; the missing items are listed.
    - ``urgent_transfer_without_stop`` [协作机制 二(一)]: in an urgent case the discovering dept
      first orders the violation stopped and fixes the evidence, then transfers: an urgent
      case's transfer with no StopOrdered at or before it.
    """
    discovered: Event | None = None
    stops: list[datetime] = []
    transfers: list[Event] = []
    for e in events:  # one pass over the facts known at as_of, in their order
        if e.occurred_at > as_of:
            continue
        kind = e.type
        if kind == "CaseTransferred":
            transfers.append(e)
        elif kind == "ViolationDiscovered":
            if discovered is None:
                discovered = e
        elif kind == "StopOrdered":
            stops.append(e.occurred_at)
    out: list[Finding] = []
    for transfer in transfers:
        missing = missing_items(transfer)
        if missing:
            out.append(_finding("incomplete_transfer", ref, transfer, missing))
        if (
            discovered is not None
            and discovered.fields.get("urgent")
            and not any(t <= transfer.occurred_at for t in stops)
        ):
            out.append(_finding("urgent_transfer_without_stop", ref, transfer))
    return out
