"""Obligations and findings as the plain values a JSON writer serialises: ``hzbus replay``'s lines.

:func:`obligation_values` and :func:`finding_values` give :meth:`Obligation.to_dict` and
:meth:`Finding.to_dict` with their times left as datetimes (a JSON writer such as orjson
writes an aware datetime as ``isoformat()`` does, for offsets in whole minutes) and a
finding's details as the tuple: the same keys in the same order. Compiled with mypyc when
built (``hzbus/native.py``), a dict of them serialises about twice as fast as the frozen,
slotted dataclass itself. tests/unit/test_replay.py checks the lines against ``to_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from domain.obligations.model import Finding, Obligation


def obligation_values(o: Obligation) -> dict[str, object]:
    """``o.to_dict()`` with its times as datetimes (the order of ``Obligation``'s fields)."""
    return {
        "obligation_id": o.obligation_id,
        "kind": o.kind,
        "ref": o.ref,
        "responsible_dept": o.responsible_dept,
        "started_at": o.started_at,
        "due_at": o.due_at,
        "status": o.status,
        "fulfilled_at": o.fulfilled_at,
        "provisional": o.provisional,
        "clause": o.clause,
        "rule_version": o.rule_version,
        "calendar_version": o.calendar_version,
        "period_working_days": o.period_working_days,
        "extended": o.extended,
        "extension_reason": o.extension_reason,
        "paused_working_days": o.paused_working_days,
        "clock_stopped_since": o.clock_stopped_since,
        "delay_working_days": o.delay_working_days,
        "trigger_event_id": o.trigger_event_id,
        "fulfilled_by": o.fulfilled_by,
    }


def finding_values(f: Finding) -> dict[str, object]:
    """``f.to_dict()`` with its time as a datetime and its details as the tuple."""
    return {
        "finding_id": f.finding_id,
        "kind": f.kind,
        "ref": f.ref,
        "dept": f.dept,
        "at": f.at,
        "clause": f.clause,
        "rule_version": f.rule_version,
        "details": f.details,
        "event_id": f.event_id,
    }


def write_lines(
    obligations: Iterable[Obligation],
    findings: Iterable[Finding],
    dumps: Callable[..., bytes],
    option: int,
    write: Callable[[bytes], object],
) -> None:
    """``write(dumps(values, option=option))`` of each obligation, then of each finding
    (``dumps``: ``orjson.dumps``)."""
    for o in obligations:
        write(dumps(obligation_values(o), option=option))
    for f in findings:
        write(dumps(finding_values(f), option=option))
