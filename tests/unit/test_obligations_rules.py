"""The obligation rules of domain.md, one kind at a time: met, late, missed, open, extensions,
pauses, the PRC working-day calendar (National Day 2026, make-up days) and provisional dues."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Any

import pytest

from domain.calendar import WorkingDayCalendar
from domain.events import SHANGHAI, Event
from domain.obligations import Obligation, evaluate, findings, fold
from domain.obligations.rules.cases import lacks_jurisdiction

# 2026 as published by the State Council (国办发明电〔2025〕7号): weekdays off, make-up weekend days.
DAYS_OFF_2026 = frozenset(
    [
        date(2026, 1, 1), date(2026, 1, 2),
        *(date(2026, 2, d) for d in (16, 17, 18, 19, 20, 23)),
        date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 4), date(2026, 5, 5),
        date(2026, 6, 19), date(2026, 9, 25),
        *(date(2026, 10, d) for d in (1, 2, 5, 6, 7)),
    ]
)  # fmt: skip
MAKEUP_2026 = frozenset(
    [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
)
#: the calendar as data: 2026 official, 2027 not (yet)
CAL = WorkingDayCalendar(DAYS_OFF_2026, MAKEUP_2026, frozenset({2026}), "test-2026")

_ids = itertools.count(1)


def at(text: str) -> datetime:
    """``"2026-11-02 10:00"`` in Asia/Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def due(day: str) -> datetime:
    return at(f"{day} 23:59:59")


def ev(
    type_: str,
    when: str,
    source: str = "DQ-ZFJ",
    *,
    event_id: str | None = None,
    recorded: str | None = None,
    published: str | None = None,
    **fields: Any,
) -> Event:
    t = at(when)
    return Event(
        type_,
        event_id or f"e{next(_ids)}",
        source,
        t,
        at(recorded) if recorded else t,
        fields,
        at(published) if published else None,
    )


def discovered(
    when: str, source: str = "DQ-ZD-WK", jurisdiction: str = "HZ-SJJ", urgent: bool = False
) -> Event:
    return ev(
        "ViolationDiscovered",
        when,
        source,
        case_id="C1",
        subject_id="S",
        domain="market",
        matter_code="MK-P01",
        jurisdiction_dept=jurisdiction,
        urgent=urgent,
        origin="inspection",
    )


def transferred(
    when: str,
    source: str = "DQ-ZD-WK",
    to: str = "HZ-SJJ",
    complaint_id: str | None = None,
    case_id: str = "C1",
    materials: tuple[str, ...] = ("transfer_letter", "source_material", "evidence"),
    leader_approved: bool = True,
    cc: bool = True,
) -> Event:
    return ev(
        "CaseTransferred",
        when,
        source,
        case_id=case_id,
        to_dept=to,
        materials=list(materials),
        leader_approved=leader_approved,
        cc_coordination_office=cc,
        complaint_id=complaint_id,
    )


def extension(when: str, case_id: str = "C1") -> Event:
    return ev(
        "TransferExtensionNotified", when, "DQ-ZD-WK", case_id=case_id, to_dept="HZ-SJJ", reason="待核实"
    )


def obligations(key: str, events: list[Event], as_of: str) -> dict[str, Obligation]:
    return {o.kind: o for o in evaluate(fold(key, events), at(as_of), CAL)}


def one(key: str, events: list[Event], as_of: str, kind: str) -> Obligation:
    return obligations(key, events, as_of)[kind]


# -- case_transfer [协作机制 二(一)] ---------------------------------------------------------------
# discovered Mon 2026-11-02: 3 WD → Thu 11-05; 15 WD → Mon 11-23


def test_a_transfer_within_three_working_days_is_met() -> None:
    o = one(
        "case:C1",
        [discovered("2026-11-02 10:00"), transferred("2026-11-05 16:00")],
        "2026-11-30 00:00",
        "case_transfer",
    )
    assert (o.status, o.due_at, o.responsible_dept) == ("met", due("2026-11-05"), "DQ-ZD-WK")
    assert o.clause == "协作机制 二(一)" and o.obligation_id == "case_transfer:C1" and o.ref == "C1"
    assert o.fulfilled_at == at("2026-11-05 16:00") and o.delay_working_days == 0 and not o.provisional


def test_a_transfer_the_next_working_day_after_the_due_is_late_by_one_day() -> None:
    o = one(
        "case:C1",
        [discovered("2026-11-02 10:00"), transferred("2026-11-06 09:00")],
        "2026-11-30 00:00",
        "case_transfer",
    )
    assert (o.status, o.delay_working_days) == ("late", 1)


def test_a_transfer_on_the_weekend_after_a_friday_due_counts_as_one_working_day_late() -> None:
    o = one(
        "case:C1",
        [discovered("2026-11-03 10:00"), transferred("2026-11-07 10:00")],
        "2026-11-30 00:00",
        "case_transfer",
    )
    assert o.due_at == due("2026-11-06") and (o.status, o.delay_working_days) == ("late", 1)


def test_no_transfer_after_the_due_time_is_missed_and_its_delay_counts_working_days_to_as_of() -> None:
    o = one("case:C1", [discovered("2026-11-02 10:00")], "2026-11-10 12:00", "case_transfer")
    assert (o.status, o.fulfilled_at, o.delay_working_days) == ("missed", None, 3)  # 11-06, 11-09, 11-10


def test_no_transfer_before_the_due_time_is_open() -> None:
    assert (
        one("case:C1", [discovered("2026-11-02 10:00")], "2026-11-05 23:59:59", "case_transfer").status
        == "open"
    )


def test_a_transfer_after_as_of_does_not_count_yet() -> None:
    events = [discovered("2026-11-02 10:00"), transferred("2026-11-05 16:00")]
    assert one("case:C1", events, "2026-11-05 12:00", "case_transfer").status == "open"


def test_an_extension_notified_before_the_due_allows_fifteen_working_days() -> None:
    events = [discovered("2026-11-02 10:00"), extension("2026-11-05 17:00"), transferred("2026-11-20 10:00")]
    o = one("case:C1", events, "2026-11-30 00:00", "case_transfer")
    assert (o.status, o.due_at, o.extended, o.period_working_days) == ("met", due("2026-11-23"), True, 15)
    assert o.extension_reason == "待核实"


def test_an_extension_notified_after_the_due_does_not_extend() -> None:
    events = [discovered("2026-11-02 10:00"), extension("2026-11-06 09:00"), transferred("2026-11-20 10:00")]
    o = one("case:C1", events, "2026-11-30 00:00", "case_transfer")
    assert (o.status, o.due_at, o.extended) == ("late", due("2026-11-05"), False)


def test_fifteen_working_days_is_a_hard_maximum_however_many_extensions() -> None:
    events = [
        discovered("2026-11-02 10:00"),
        extension("2026-11-04 10:00"),
        extension("2026-11-20 10:00"),
        transferred("2026-11-24 10:00"),
    ]
    o = one("case:C1", events, "2026-11-30 00:00", "case_transfer")
    assert (o.status, o.due_at, o.delay_working_days) == ("late", due("2026-11-23"), 1)


@pytest.mark.parametrize(
    ("discoverer", "jurisdiction", "must_transfer"),
    [
        ("DQ-ZD-WK", "DQ-ZD-WK", False),  # its own case
        ("DQ-ZD-WK", "DQ-ZFJ", False),  # a squadron is part of its county bureau
        ("DQ-ZFJ", "DQ-ZD-XS", False),
        ("DQ-ZD-WK", "DQ-ZD-XS", False),  # two squadrons of one bureau
        ("DQ-ZD-WK", "CX-ZFJ", True),  # another county's bureau
        ("DQ-ZFJ", "HZ-SJJ", True),  # enforcement → business dept
        ("HZ-JSJ", "WX-ZFJ", True),  # business dept → enforcement
        ("HZ-ZFJ", "DQ-ZFJ", True),  # the city bureau is another dept than a county bureau
    ],
)
def test_a_case_transfer_is_owed_only_when_the_discoverer_lacks_jurisdiction(
    discoverer: str, jurisdiction: str, must_transfer: bool
) -> None:
    assert lacks_jurisdiction(discoverer, jurisdiction) is must_transfer
    found = obligations(
        "case:C1", [discovered("2026-11-02 10:00", discoverer, jurisdiction)], "2026-11-30 00:00"
    )
    assert ("case_transfer" in found) is must_transfer


# -- the working-day calendar ----------------------------------------------------------------------


def test_national_day_2026_and_the_makeup_saturday_set_the_due_of_a_transfer() -> None:
    # domain.md: discovered Wed 09-30 10:00 → 10-08, 10-09, Sat 10-10 (调休上班)
    o = one("case:C1", [discovered("2026-09-30 10:00")], "2026-10-09 12:00", "case_transfer")
    assert o.due_at == due("2026-10-10") and o.status == "open" and not o.provisional


def test_a_makeup_sunday_counts_as_a_working_day() -> None:
    # Fri 09-18 → Sun 09-20 (调休上班), Mon 09-21, Tue 09-22
    assert one(
        "case:C1", [discovered("2026-09-18 10:00")], "2026-09-19 00:00", "case_transfer"
    ).due_at == due("2026-09-22")


def test_a_determination_over_national_day_skips_the_holiday_week() -> None:
    # Tue 09-29 + 10 WD: 09-30, 10-08, 10-09, 10-10 (Sat, make-up), 10-12..16, 10-19
    events = [
        ev(
            "DeterminationRequested",
            "2026-09-29 10:00",
            "DQ-ZFJ",
            request_id="R1",
            case_id="C1",
            to_dept="HZ-GTJ",
        )
    ]
    assert one("request:R1", events, "2026-10-01 00:00", "determination_reply").due_at == due("2026-10-19")


def test_a_due_counted_over_a_year_without_official_data_is_provisional() -> None:
    late_december = one("case:C1", [discovered("2026-12-29 10:00")], "2026-12-30 00:00", "case_transfer")
    assert late_december.provisional and late_december.due_at == due("2027-01-01")
    early_december = one("case:C1", [discovered("2026-12-01 10:00")], "2026-12-02 00:00", "case_transfer")
    assert not early_december.provisional


def test_every_obligation_carries_the_rule_and_calendar_version() -> None:
    o = one("case:C1", [discovered("2026-11-02 10:00")], "2026-11-03 00:00", "case_transfer")
    assert o.calendar_version == "test-2026" and o.rule_version


# -- transfer_ack [协作机制 二(一)]: transfer Mon 11-02 → 5 WD → Mon 11-09 ---------------------------


def ack(when: str, decision: str = "accepted") -> Event:
    return ev("TransferAcknowledged", when, "HZ-SJJ", case_id="C1", decision=decision, reason=None)


@pytest.mark.parametrize(
    ("events", "as_of", "status"),
    [
        ([ack("2026-11-09 17:00")], "2026-11-30 00:00", "met"),
        ([ack("2026-11-10 09:00", "rejected")], "2026-11-30 00:00", "late"),
        ([], "2026-11-10 00:00", "missed"),
        ([], "2026-11-09 12:00", "open"),
    ],
)
def test_the_receiving_dept_answers_a_transfer_within_five_working_days(
    events: list[Event], as_of: str, status: str
) -> None:
    o = one("case:C1", [transferred("2026-11-02 10:00"), *events], as_of, "transfer_ack")
    assert (o.status, o.due_at, o.responsible_dept, o.clause) == (
        status,
        due("2026-11-09"),
        "HZ-SJJ",
        "协作机制 二(一)",
    )


def acks(events: list[Event], as_of: str) -> list[tuple[str, str, str, datetime]]:
    """(id, responsible, status, due) of the case's transfer_ack clocks, by start."""
    found = [o for o in evaluate(fold("case:C1", events), at(as_of), CAL) if o.kind == "transfer_ack"]
    return [
        (o.obligation_id, o.responsible_dept, o.status, o.due_at)
        for o in sorted(found, key=lambda o: o.started_at)
    ]


def answer(when: str, by: str, decision: str = "accepted") -> Event:
    return ev("TransferAcknowledged", when, by, case_id="C1", decision=decision, reason=None)


def test_a_case_rejected_and_transferred_to_another_dept_starts_that_depts_own_clock() -> None:
    first = transferred("2026-11-02 10:00", to="HZ-SJJ")
    second = transferred("2026-11-05 10:00", to="HZ-HBJ")  # Thu: 5 WD → Thu 11-12
    events = [
        first,
        answer("2026-11-04 09:00", "HZ-SJJ", "rejected"),
        second,
        answer("2026-11-13 09:00", "HZ-HBJ"),
    ]
    assert acks(events, "2026-11-30 00:00") == [
        ("transfer_ack:C1", "HZ-SJJ", "met", due("2026-11-09")),
        (f"transfer_ack:C1:{second.event_id}", "HZ-HBJ", "late", due("2026-11-12")),
    ]
    # before the second dept answers, its clock alone is missed
    assert [a[2] for a in acks(events[:3], "2026-11-13 00:00")] == ["met", "missed"]


def test_each_answer_settles_the_clock_its_sender_owes() -> None:
    # re-targeted before the first dept answered: both owe an answer; the second answers first
    events = [
        transferred("2026-11-02 10:00", to="HZ-SJJ"),
        transferred("2026-11-03 10:00", to="HZ-HBJ"),
        answer("2026-11-04 09:00", "HZ-HBJ"),
    ]
    assert [(a[1], a[2]) for a in acks(events, "2026-11-20 00:00")] == [
        ("HZ-SJJ", "missed"),
        ("HZ-HBJ", "met"),
    ]


def test_a_transfer_sent_again_while_its_answer_is_owed_starts_no_second_clock() -> None:
    events = [
        transferred("2026-11-02 10:00", to="HZ-SJJ", materials=("transfer_letter",)),
        transferred("2026-11-03 10:00", to="HZ-SJJ"),  # the letter again, with the missing materials
        answer("2026-11-06 09:00", "HZ-SJJ"),
    ]
    assert acks(events, "2026-11-30 00:00") == [("transfer_ack:C1", "HZ-SJJ", "met", due("2026-11-09"))]


def test_a_case_transferred_back_to_a_dept_that_rejected_it_is_owed_a_new_answer() -> None:
    again = transferred("2026-11-10 10:00", to="HZ-SJJ")  # Tue: 5 WD → Tue 11-17
    events = [transferred("2026-11-02 10:00"), answer("2026-11-03 09:00", "HZ-SJJ", "rejected"), again]
    assert acks(events, "2026-11-18 00:00") == [
        ("transfer_ack:C1", "HZ-SJJ", "met", due("2026-11-09")),
        (f"transfer_ack:C1:{again.event_id}", "HZ-SJJ", "missed", due("2026-11-17")),
    ]


def test_an_answer_said_again_does_not_settle_a_later_transfer() -> None:
    events = [
        transferred("2026-11-02 10:00", to="HZ-SJJ"),
        answer("2026-11-03 09:00", "HZ-SJJ", "rejected"),
        answer("2026-11-03 11:00", "HZ-SJJ", "rejected"),  # the same answer, recorded twice
        transferred("2026-11-05 10:00", to="HZ-HBJ"),
    ]
    assert [(a[1], a[2]) for a in acks(events, "2026-11-20 00:00")] == [
        ("HZ-SJJ", "met"),
        ("HZ-HBJ", "missed"),
    ]


def test_an_answer_dated_before_the_transfer_settles_it_and_no_other() -> None:
    events = [answer("2026-11-02 09:00", "HZ-SJJ"), transferred("2026-11-02 10:00")]
    assert [a[2] for a in acks(events, "2026-11-30 00:00")] == ["met"]
    # the same answer recorded twice, then a transfer elsewhere: that one is still owed
    events += [answer("2026-11-02 09:30", "HZ-SJJ"), transferred("2026-11-03 10:00", to="HZ-HBJ")]
    assert [(a[1], a[2]) for a in acks(events, "2026-11-30 00:00")] == [
        ("HZ-SJJ", "met"),
        ("HZ-HBJ", "missed"),
    ]


def test_re_transfers_give_the_same_clocks_in_any_order_of_arrival() -> None:
    events = [
        transferred("2026-11-02 10:00", to="HZ-SJJ"),
        answer("2026-11-04 09:00", "HZ-SJJ", "rejected"),
        transferred("2026-11-05 10:00", to="HZ-HBJ"),
        transferred("2026-11-06 10:00", to="HZ-HBJ"),
        answer("2026-11-13 09:00", "HZ-HBJ", "rejected"),
        transferred("2026-11-16 10:00", to="HZ-SJJ"),
    ]
    expected = acks(events, "2026-11-30 00:00")
    assert len(expected) == 3
    for order in itertools.permutations(events):
        assert acks([*order, *order[:2]], "2026-11-30 00:00") == expected


# -- approval_share / penalty_share [协作机制 三(二)1]: decided Mon 11-02 → Thu 11-05 ----------------


def approval(recorded: str, published: str | None = None) -> Event:
    return ev(
        "ApprovalIssued",
        "2026-11-02 10:00",
        "HZ-SJJ",
        recorded=recorded,
        published=published,
        approval_id="A1",
        subject_id="S",
        domain="market",
        matter_code="MK-L01",
        approval_kind="license",
        decision="granted",
        valid_until=None,
    )


@pytest.mark.parametrize(
    ("event", "as_of", "status"),
    [
        (approval("2026-11-05 20:00"), "2026-11-30 00:00", "met"),
        (approval("2026-11-06 09:00"), "2026-11-30 00:00", "late"),
        (approval("2026-11-09 09:00"), "2026-11-06 12:00", "missed"),
        (approval("2026-11-09 09:00"), "2026-11-04 12:00", "open"),
        # the broker's append time, not the adapter's recorded_at, is the publication
        (approval("2026-11-03 09:00", published="2026-11-06 09:00"), "2026-11-30 00:00", "late"),
    ],
)
def test_an_approval_decision_is_shared_when_it_reaches_the_bus_within_three_working_days(
    event: Event, as_of: str, status: str
) -> None:
    o = one("approval:A1", [event], as_of, "approval_share")
    assert (o.status, o.due_at, o.responsible_dept, o.clause) == (
        status,
        due("2026-11-05"),
        "HZ-SJJ",
        "协作机制 三(二)1",
    )


def test_penalties_and_coercive_measures_are_shared_within_three_working_days() -> None:
    penalty = ev(
        "PenaltyDecided",
        "2026-11-02 10:00",
        "DQ-ZFJ",
        recorded="2026-11-06 10:00",
        penalty_id="P1",
        case_id="C1",
        subject_id="S",
        domain="market",
        matter_code="MK-P01",
        penalty_kind="fine",
        amount_yuan=500.0,
        legal_basis="x",
        unlicensed_operation=False,
        requires_permit_suspension=False,
    )
    measure = ev(
        "CoerciveMeasureDecided",
        "2026-11-02 10:00",
        "DQ-ZFJ",
        recorded="2026-11-02 11:00",
        measure_id="Q1",
        case_id="C1",
        subject_id="S",
        measure_kind="seal",
    )
    p = one("penalty:P1", [penalty], "2026-11-30 00:00", "penalty_share")
    m = one("measure:Q1", [measure], "2026-11-30 00:00", "penalty_share")
    assert (p.status, p.obligation_id, p.responsible_dept) == ("late", "penalty_share:P1", "DQ-ZFJ")
    assert (m.status, m.obligation_id) == ("met", "penalty_share:Q1")


# -- written_share [协作机制 三(二)2]: formed Mon 11-02 → 5 WD Mon 11-09, 15 WD Mon 11-23 -------------


def formed(reason: str | None = None) -> Event:
    return ev(
        "InfoFormed",
        "2026-11-02 10:00",
        "HZ-SLJ",
        share_id="G1",
        to_dept="DQ-ZFJ",
        info_kind="k",
        extension_reason=reason,
    )


def shared(when: str) -> Event:
    return ev("InfoShared", when, "HZ-SLJ", share_id="G1", to_dept="DQ-ZFJ", info_kind="k")


def test_written_information_is_shared_within_five_working_days() -> None:
    assert (
        one("share:G1", [formed(), shared("2026-11-09 10:00")], "2026-11-30 00:00", "written_share").status
        == "met"
    )
    late = one("share:G1", [formed(), shared("2026-11-10 10:00")], "2026-11-30 00:00", "written_share")
    assert (late.status, late.due_at, late.clause) == ("late", due("2026-11-09"), "协作机制 三(二)2")
    assert one("share:G1", [formed()], "2026-11-10 00:00", "written_share").status == "missed"
    assert one("share:G1", [formed()], "2026-11-09 00:00", "written_share").status == "open"


def test_a_stated_reason_extends_a_written_share_to_fifteen_working_days() -> None:
    o = one("share:G1", [formed("资料整理"), shared("2026-11-20 10:00")], "2026-11-30 00:00", "written_share")
    assert (o.status, o.due_at, o.extended, o.extension_reason) == (
        "met",
        due("2026-11-23"),
        True,
        "资料整理",
    )
    blank = one("share:G1", [formed("  "), shared("2026-11-20 10:00")], "2026-11-30 00:00", "written_share")
    assert (blank.status, blank.extended) == ("late", False)


# -- determination_reply [协作机制 五(二)]: requested Mon 11-02 → 10 WD Mon 11-16 --------------------


def requested() -> Event:
    return ev(
        "DeterminationRequested",
        "2026-11-02 10:00",
        "DQ-ZFJ",
        request_id="R1",
        case_id="C1",
        to_dept="HZ-GTJ",
    )


def det(type_: str, when: str, **fields: Any) -> Event:
    return ev(type_, when, "HZ-GTJ", request_id="R1", **fields)


def replied(when: str) -> Event:
    return det("DeterminationReplied", when, conclusion="违法")


def test_a_determination_is_replied_within_ten_working_days_of_receipt() -> None:
    o = one(
        "request:R1", [requested(), replied("2026-11-16 17:00")], "2026-11-30 00:00", "determination_reply"
    )
    assert (o.status, o.due_at, o.responsible_dept, o.clause) == (
        "met",
        due("2026-11-16"),
        "HZ-GTJ",
        "协作机制 五(二)",
    )
    assert (
        one(
            "request:R1", [requested(), replied("2026-11-17 09:00")], "2026-11-30", "determination_reply"
        ).status
        == "late"
    )
    assert one("request:R1", [requested()], "2026-11-17 00:00", "determination_reply").status == "missed"
    assert one("request:R1", [requested()], "2026-11-16 00:00", "determination_reply").status == "open"


def test_a_determination_extended_before_the_due_gets_ten_more_working_days() -> None:
    events = [
        requested(),
        det("DeterminationExtended", "2026-11-10 10:00", reason="情况复杂"),
        replied("2026-11-27 10:00"),
    ]
    o = one("request:R1", events, "2026-12-10 00:00", "determination_reply")
    assert (o.status, o.due_at, o.extended, o.period_working_days) == ("met", due("2026-11-30"), True, 20)


def test_a_determination_extended_after_the_due_is_not_extended() -> None:
    events = [
        requested(),
        det("DeterminationExtended", "2026-11-17 10:00", reason="x"),
        replied("2026-11-27 10:00"),
    ]
    o = one("request:R1", events, "2026-12-10 00:00", "determination_reply")
    assert (o.status, o.due_at, o.extended) == ("late", due("2026-11-16"), False)


def test_a_determination_is_extended_once_only() -> None:
    events = [
        requested(),
        det("DeterminationExtended", "2026-11-10 10:00", reason="a"),
        det("DeterminationExtended", "2026-11-25 10:00", reason="b"),
    ]
    assert one("request:R1", events, "2026-12-01 00:00", "determination_reply").status == "missed"


def test_a_referral_and_its_return_move_the_due_by_the_working_days_in_between() -> None:
    # referred Wed 11-04, returned Tue 11-10: 11-05, 11-06, 11-09, 11-10 not counted → 11-16 + 4 WD
    events = [
        requested(),
        det("DeterminationReferred", "2026-11-04 10:00", to_dept="HZ-GTJ", reason="送检"),
        det("DeterminationReferralReturned", "2026-11-10 15:00"),
        replied("2026-11-19 10:00"),
    ]
    o = one("request:R1", events, "2026-12-01 00:00", "determination_reply")
    assert (o.status, o.due_at, o.paused_working_days, o.clock_stopped_since) == (
        "met",
        due("2026-11-20"),
        4,
        None,
    )


def test_a_referral_not_yet_returned_stops_the_clock() -> None:
    events = [requested(), det("DeterminationReferred", "2026-11-04 10:00", to_dept="HZ-GTJ", reason="送检")]
    o = one("request:R1", events, "2026-12-30 00:00", "determination_reply")
    assert (o.status, o.clock_stopped_since, o.delay_working_days) == ("open", at("2026-11-04 10:00"), 0)
    answered = one(
        "request:R1", [*events, replied("2026-12-20 10:00")], "2026-12-30 00:00", "determination_reply"
    )
    assert answered.status == "met"


def test_a_referral_after_the_due_does_not_cure_a_missed_determination() -> None:
    events = [requested(), det("DeterminationReferred", "2026-11-18 10:00", to_dept="HZ-GTJ", reason="送检")]
    assert one("request:R1", events, "2026-11-30 00:00", "determination_reply").status == "missed"


def test_an_extension_and_a_pause_add_up() -> None:
    events = [
        requested(),
        det("DeterminationReferred", "2026-11-04 10:00", to_dept="HZ-GTJ", reason="送检"),
        det("DeterminationReferralReturned", "2026-11-10 15:00"),
        det("DeterminationExtended", "2026-11-19 10:00", reason="复杂"),
    ]
    # 11-16 + 4 WD pause = 11-20, + 10 WD = 12-04
    assert one("request:R1", events, "2026-11-21 00:00", "determination_reply").due_at == due("2026-12-04")


# -- complaint_referral [协作机制 四, 二(一)]: verified Mon 11-02 → Thu 11-05 -------------------------


def verified(finding: str = "out_of_jurisdiction") -> Event:
    return ev("ComplaintVerified", "2026-11-02 10:00", "WX-ZD-ZL", complaint_id="T1", finding=finding)


def test_a_complaint_outside_the_jurisdiction_is_transferred_within_three_working_days() -> None:
    on_time = transferred("2026-11-05 10:00", "WX-ZD-ZL", complaint_id="T1", case_id="C9")
    o = one("complaint:T1", [verified(), on_time], "2026-11-30 00:00", "complaint_referral")
    assert (o.status, o.due_at, o.responsible_dept, o.clause) == (
        "met",
        due("2026-11-05"),
        "WX-ZD-ZL",
        "协作机制 四, 二(一)",
    )
    late = transferred("2026-11-06 10:00", "WX-ZD-ZL", complaint_id="T1", case_id="C9")
    assert one("complaint:T1", [verified(), late], "2026-11-30", "complaint_referral").status == "late"
    assert one("complaint:T1", [verified()], "2026-11-06 00:00", "complaint_referral").status == "missed"
    assert one("complaint:T1", [verified()], "2026-11-04 00:00", "complaint_referral").status == "open"


def test_a_complaint_in_jurisdiction_or_unfounded_owes_no_referral() -> None:
    assert obligations("complaint:T1", [verified("in_jurisdiction")], "2026-11-30 00:00") == {}
    assert obligations("complaint:T1", [verified("no_violation")], "2026-11-30 00:00") == {}


def test_a_complaint_referral_can_be_extended_like_a_case_transfer() -> None:
    events = [
        verified(),
        extension("2026-11-04 10:00", case_id="T1"),
        transferred("2026-11-20 10:00", "WX-ZD-ZL", complaint_id="T1", case_id="C9"),
    ]
    o = one("complaint:T1", events, "2026-11-30 00:00", "complaint_referral")
    assert (o.status, o.due_at, o.extended) == ("met", due("2026-11-23"), True)


# -- annual_joint_meeting [协作机制 一(三)] -----------------------------------------------------------


def meeting(
    when: str, kind: str = "joint", source: str = "HZ-ZFJ", participants: tuple[str, ...] = ("HZ-TCB",)
) -> Event:
    return ev(
        "ConsultationMeetingHeld",
        when,
        source,
        meeting_id=f"M{when}",
        kind=kind,
        participants=list(participants),
    )


def test_one_joint_meeting_a_year_meets_the_annual_obligation() -> None:
    o = one("year:2026", [meeting("2026-06-01 09:00")], "2026-12-01 00:00", "annual_joint_meeting")
    assert (o.status, o.ref, o.responsible_dept, o.due_at) == ("met", "2026", "HZ-ZFJ", due("2026-12-31"))
    assert o.clause == "协作机制 一(三)" and o.obligation_id == "annual_joint_meeting:2026"


def test_a_year_without_a_joint_meeting_is_open_then_missed() -> None:
    thematic = meeting("2026-06-01 09:00", kind="thematic", source="DQ-ZFJ")
    county = meeting("2026-07-01 09:00", source="WX-ZFJ", participants=("HZ-TCB", "HZ-SJJ"))
    assert (
        one("year:2026", [thematic, county], "2026-12-31 23:59:59", "annual_joint_meeting").status == "open"
    )
    assert one("year:2026", [thematic, county], "2027-01-04 10:00", "annual_joint_meeting").status == "missed"


def test_a_year_not_yet_begun_has_no_annual_obligation() -> None:
    assert obligations("year:2027", [], "2026-12-31 12:00") == {}


# -- findings ----------------------------------------------------------------------------------------


def test_a_transfer_without_evidence_or_leader_approval_is_an_incomplete_transfer() -> None:
    bad = transferred(
        "2026-11-03 10:00", materials=("transfer_letter", "source_material"), leader_approved=False
    )
    (f,) = findings(fold("case:C1", [discovered("2026-11-02 10:00"), bad]), at("2026-11-30 00:00"))
    assert (f.kind, f.details, f.dept, f.clause) == (
        "incomplete_transfer",
        ("evidence", "leader_approval"),
        "DQ-ZD-WK",
        "协作机制 二(二)",
    )


def test_a_complete_transfer_with_the_copy_to_the_coordination_office_has_no_finding() -> None:
    assert findings(fold("case:C1", [transferred("2026-11-03 10:00")]), at("2026-11-30 00:00")) == []
    no_copy = transferred("2026-11-03 10:00", cc=False)
    (f,) = findings(fold("case:C1", [no_copy]), at("2026-11-30 00:00"))
    assert f.details == ("cc_coordination_office",)


def test_an_urgent_case_transferred_without_a_prior_stop_order_is_a_finding() -> None:
    urgent = discovered("2026-11-02 10:00", urgent=True)
    stop_after = ev("StopOrdered", "2026-11-03 11:00", "DQ-ZD-WK", case_id="C1")
    stop_before = ev("StopOrdered", "2026-11-02 11:00", "DQ-ZD-WK", case_id="C1")
    transfer = transferred("2026-11-03 10:00")
    (f,) = findings(fold("case:C1", [urgent, transfer, stop_after]), at("2026-11-30 00:00"))
    assert (f.kind, f.clause) == ("urgent_transfer_without_stop", "协作机制 二(一)")
    assert findings(fold("case:C1", [urgent, transfer, stop_before]), at("2026-11-30 00:00")) == []


def test_settle_builds_each_obligation_with_every_field_as_its_init_would() -> None:
    from dataclasses import FrozenInstanceError, fields

    from domain.obligations.rules import _common

    assert not hasattr(Obligation, "__post_init__")
    at = datetime(2026, 9, 30, 10, tzinfo=SHANGHAI)
    event = Event("ApprovalIssued", "e1", "HZ-SJJ", at, at, {"approval_id": "A1"})
    built = _common.settle(
        kind="approval_share",
        ref="A1",
        responsible="HZ-SJJ",
        trigger=event,
        started_at=event.occurred_at,
        deadline=CAL.add_working_days(event.occurred_at, 3),
        fulfilment=None,
        as_of=event.occurred_at,
        calendar=CAL,
        period=3,
    )
    assert type(built) is Obligation
    # every field set (an unset slot raises AttributeError here), as Obligation(...) sets it
    assert built == Obligation(**{f.name: getattr(built, f.name) for f in fields(Obligation)})
    with pytest.raises(FrozenInstanceError):
        built.status = "met"  # type: ignore[misc]
    assert built.obligation_id == "approval_share:A1" and built.status == "open"
