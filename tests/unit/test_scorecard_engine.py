"""The scorecard core: a crafted 2026Q4, scored by hand in this file, equals the engine's card;
section caps; quarter = quarter of the due time; manual entries; restatement after close; 年评."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from domain.departments import load_registry
from domain.events import Event
from domain.obligations import Obligation, evaluate_events
from domain.scorecard import (
    InMemoryStore,
    Quarter,
    Scorecard,
    adjustments_from_events,
    close_quarter,
    load_policy,
    rank_year,
    score_quarter,
)
from hzbus.calendar_source import load_calendar
from schemas.codec import from_canonical

Q4 = Quarter(2026, 4)
#: the evaluation moment of the crafted quarter: after its end, so the annual meeting is decided
AS_OF = datetime.fromisoformat("2027-01-08T12:00:00+08:00")
SUBJECT = "91330502MA2B3C4D5E"
ALL_MATERIALS = ["transfer_letter", "source_material", "evidence"]


def ev(
    type_: str, event_id: str, source: str, at: str, recorded: str | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "type": type_,
        "event_id": event_id,
        "source_dept": source,
        "occurred_at": at,
        "recorded_at": recorded or at,
        **fields,
    }


def discovered(
    eid: str, dept: str, at: str, case: str, jurisdiction: str, recorded: str | None = None
) -> dict[str, Any]:
    return ev(
        "ViolationDiscovered",
        eid,
        dept,
        at,
        recorded,
        case_id=case,
        subject_id=SUBJECT,
        domain="market",
        matter_code="MK-P01",
        jurisdiction_dept=jurisdiction,
        urgent=False,
        origin="inspection",
    )


def transferred(
    eid: str, dept: str, at: str, case: str, to: str, complaint: str | None = None
) -> dict[str, Any]:
    return ev(
        "CaseTransferred",
        eid,
        dept,
        at,
        case_id=case,
        to_dept=to,
        materials=ALL_MATERIALS,
        leader_approved=True,
        cc_coordination_office=True,
        complaint_id=complaint,
    )


def adjusted(
    eid: str, by: str, dept: str, item: str, points: float, reason: str, at: str = "2026-12-20T10:00:00+08:00"
) -> dict[str, Any]:
    return ev(
        "AssessmentAdjusted",
        eid,
        by,
        at,
        dept=dept,
        quarter="2026Q4",
        item=item,
        points=points,
        reason=reason,
    )


def crafted_events() -> list[dict[str, Any]]:
    """2026Q4, canonical JSON. Dues in working days (day of the fact not counted)."""
    return [
        # HZ-NYJ discovers Wed 09-30 (Q3), due Sat 10-10 (make-up day, Q4), transfers Mon 10-12: late, -1 二.2
        discovered("v0", "HZ-NYJ", "2026-09-30T10:00:00+08:00", "C-0", "HZ-ZFJ"),
        transferred("t0", "HZ-NYJ", "2026-10-12T09:00:00+08:00", "C-0", "HZ-ZFJ"),
        # HZ-SJJ discovers Mon 11-02, due Thu 11-05, transfers Mon 11-09: late, -1 二.2
        discovered("v1", "HZ-SJJ", "2026-11-02T10:00:00+08:00", "C-1", "HZ-ZFJ"),
        transferred("t1", "HZ-SJJ", "2026-11-09T09:00:00+08:00", "C-1", "HZ-ZFJ"),
        # HZ-HBJ discovers Tue 12-01, due Fri 12-04, never transfers: missed, -1 二.2
        discovered("v2", "HZ-HBJ", "2026-12-01T10:00:00+08:00", "C-2", "HZ-ZFJ"),
        # HZ-ZFJ discovers Tue 11-10 and transfers the next day: met
        discovered("v3", "HZ-ZFJ", "2026-11-10T10:00:00+08:00", "C-3", "HZ-SLJ"),
        transferred("t3", "HZ-ZFJ", "2026-11-11T09:00:00+08:00", "C-3", "HZ-SLJ"),
        # a township squadron (not an assessed unit) misses a transfer: reported apart, not ranked
        discovered("v4", "DQ-ZD-WK", "2026-11-16T10:00:00+08:00", "C-4", "HZ-SJJ"),
        # HZ-SJJ discovers Wed 12-30: due in January 2027 = Q1, not this quarter
        discovered("v9", "HZ-SJJ", "2026-12-30T10:00:00+08:00", "C-9", "HZ-ZFJ"),
        # determinations to HZ-GHJ: received Mon 11-02 due 11-16, replied 11-20: late, -2 二.7;
        # received Tue 12-01 due Tue 12-15, no reply: missed, -2 二.7
        ev(
            "DeterminationRequested",
            "d1",
            "HZ-ZFJ",
            "2026-11-02T10:00:00+08:00",
            request_id="R-1",
            case_id="C-3",
            to_dept="HZ-GHJ",
            question=None,
        ),
        ev(
            "DeterminationReplied",
            "d1r",
            "HZ-GHJ",
            "2026-11-20T10:00:00+08:00",
            request_id="R-1",
            conclusion="符合规划",
        ),
        ev(
            "DeterminationRequested",
            "d2",
            "HZ-ZFJ",
            "2026-12-01T10:00:00+08:00",
            request_id="R-2",
            case_id="C-3",
            to_dept="HZ-GHJ",
            question=None,
        ),
        # HZ-JSJ verifies a complaint out of its jurisdiction Mon 11-02 (due 11-05), transfers 11-06: -1 二.5
        ev(
            "ComplaintVerified",
            "c1",
            "HZ-JSJ",
            "2026-11-02T10:00:00+08:00",
            complaint_id="CP-1",
            finding="out_of_jurisdiction",
        ),
        transferred("c1t", "HZ-JSJ", "2026-11-06T10:00:00+08:00", "CP-1", "HZ-ZFJ", complaint="CP-1"),
        # HZ-SJJ decides Mon 11-02 (due 11-05) but the record reaches the bus 11-09: late, -1 二.2
        ev(
            "ApprovalIssued",
            "a1",
            "HZ-SJJ",
            "2026-11-02T10:00:00+08:00",
            "2026-11-09T10:00:00+08:00",
            approval_id="A-1",
            subject_id=SUBJECT,
            domain="market",
            matter_code="MK-L01",
            approval_kind="license",
            decision="granted",
            valid_until=None,
        ),
        # HZ-ZFJ's penalty shared at once: met
        ev(
            "PenaltyDecided",
            "p1",
            "HZ-ZFJ",
            "2026-11-03T10:00:00+08:00",
            penalty_id="P-1",
            case_id="C-1",
            subject_id=SUBJECT,
            domain="market",
            matter_code="MK-P01",
            penalty_kind="fine",
            amount_yuan=5000.0,
            legal_basis="《浙江省城市管理相对集中行政处罚权条例》",
            unlicensed_operation=False,
            requires_permit_suspension=False,
        ),
        # no joint meeting in 2026: annual_joint_meeting:2026 missed, -2 二.1 to HZ-ZFJ
        # (a thematic meeting does not count)
        ev(
            "ConsultationMeetingHeld",
            "m1",
            "HZ-ZFJ",
            "2026-11-18T14:00:00+08:00",
            meeting_id="M-1",
            kind="thematic",
            participants=["HZ-ZFJ", "HZ-SJJ"],
        ),
        # manual entries of the joint-meeting office: -2 二.4 to HZ-SLJ; HZ-RFB loses 25 in section 一
        # (capped at its 20 points); an entry sent by HZ-SJJ is rejected
        adjusted("adj1", "HZ-LXB", "HZ-SLJ", "二.4", -2.0, "未参加全市河道违建联合整治行动"),
        adjusted("adj2", "HZ-LXB", "HZ-RFB", "一.1", -15.0, "未建立组织机构"),
        adjusted("adj3", "HZ-LXB", "HZ-RFB", "一.2", -10.0, "未建立相关工作制度"),
        adjusted("adj4", "HZ-SJJ", "HZ-SJJ", "二.2", 5.0, "自评加分"),
    ]


#: the hand-computed 2026Q4 at AS_OF: dept -> (score, {item: deducted}, obligation ids behind)
EXPECTED: dict[str, tuple[float, dict[str, float], set[str]]] = {
    "HZ-SJJ": (98.0, {"二.2": 2.0}, {"case_transfer:C-1", "approval_share:A-1"}),
    "HZ-HBJ": (99.0, {"二.2": 1.0}, {"case_transfer:C-2"}),
    "HZ-NYJ": (99.0, {"二.2": 1.0}, {"case_transfer:C-0"}),
    "HZ-GHJ": (96.0, {"二.7": 4.0}, {"determination_reply:R-1", "determination_reply:R-2"}),
    "HZ-JSJ": (99.0, {"二.5": 1.0}, {"complaint_referral:CP-1"}),
    "HZ-ZFJ": (98.0, {"二.1": 2.0}, {"annual_joint_meeting:2026"}),
    "HZ-SLJ": (98.0, {"二.4": 2.0}, set()),
    "HZ-RFB": (80.0, {"一.1": 15.0, "一.2": 10.0}, set()),
}
UNTOUCHED = ["HZ-FGW", "HZ-JYJ", "HZ-GAJ", "HZ-GTJ", "HZ-LYJ", "HZ-SWJ", "HZ-TYJ", "HZ-LW", "HZ-AJJ"]


@pytest.fixture(autouse=True)
def _no_calendar_overrides(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HZBUS_CALENDAR_OVERRIDES", raising=False)
    yield


def events_of(raw: list[dict[str, Any]]) -> list[Event]:
    return [from_canonical(r) for r in raw]


def card_at(raw: list[dict[str, Any]], as_of: datetime = AS_OF, quarter: Quarter = Q4) -> Scorecard:
    events = events_of(raw)
    obligations = evaluate_events(events, as_of, load_calendar()).obligations
    return score_quarter(
        obligations, adjustments_from_events(events), quarter, load_policy(), load_registry(), as_of
    )


def test_the_crafted_quarter_equals_the_hand_computed_scorecard() -> None:
    card = card_at(crafted_events())
    assert len(card.departments) == 17
    for dept, (score, items, obligation_ids) in EXPECTED.items():
        d = card.department(dept)
        assert d.score == score, dept
        per_item: dict[str, float] = {}
        for item, _clause, pts, _ds in d.by_item():
            per_item[item] = per_item.get(item, 0.0) + pts
        assert per_item == items, dept
        assert set(d.obligation_ids) == obligation_ids, dept
    for dept in UNTOUCHED:
        assert card.department(dept).score == 100.0 and not card.department(dept).deductions
    ranks = {d.dept: d.rank for d in card.departments}
    assert {ranks[d] for d in UNTOUCHED} == {1}
    assert ranks["HZ-HBJ"] == ranks["HZ-JSJ"] == ranks["HZ-NYJ"] == 10
    assert ranks["HZ-SJJ"] == ranks["HZ-SLJ"] == ranks["HZ-ZFJ"] == 13
    assert (ranks["HZ-GHJ"], ranks["HZ-RFB"]) == (16, 17)
    assert [d.dept for d in card.departments][-2:] == ["HZ-GHJ", "HZ-RFB"]


def test_every_deduction_names_its_clause_and_the_obligation_or_entry_behind_it() -> None:
    card = card_at(crafted_events())
    sjj = card.department("HZ-SJJ")
    by_ref = {d.ref: d for d in sjj.deductions}
    transfer = by_ref["case_transfer:C-1"]
    assert (transfer.item, transfer.status, transfer.basis) == ("二.2", "late", "协作机制 二(一)")
    assert transfer.clause.startswith("考评细则 (二)2")
    assert by_ref["approval_share:A-1"].basis == "协作机制 三(二)1"
    meeting = card.department("HZ-ZFJ").deductions[0]
    assert (meeting.item, meeting.status) == ("二.1", "missed")
    assert meeting.clause.startswith("考评细则 (二)1 协调会商")
    slj = card.department("HZ-SLJ").deductions[0]
    assert (slj.source, slj.ref, slj.basis) == ("adjustment", "adj1", "未参加全市河道违建联合整治行动")
    assert all(d.clause for x in card.departments for d in x.deductions)


def test_a_section_stops_at_its_points() -> None:
    rfb = card_at(crafted_events()).department("HZ-RFB")
    org = rfb.section("organisation")
    assert (org.uncapped, org.deducted, org.score, org.capped) == (25.0, 20.0, 0.0, True)
    assert rfb.section("cooperation").score == 50.0 and rfb.score == 80.0


def test_cooperation_stops_at_50_however_many_determinations_are_missed() -> None:
    due = datetime.fromisoformat("2026-11-16T23:59:59+08:00")
    missed = [
        Obligation(
            f"determination_reply:R{i}",
            "determination_reply",
            f"R{i}",
            "HZ-GHJ",
            due,
            due,
            "missed",
            None,
            False,
            "协作机制 五(二)",
            "2026.1",
            "test",
        )
        for i in range(30)
    ]
    card = score_quarter(missed, [], Q4, load_policy(), load_registry(), AS_OF)
    ghj = card.department("HZ-GHJ")
    coop = ghj.section("cooperation")
    assert (coop.uncapped, coop.deducted) == (60.0, 50.0)
    assert ghj.score == 50.0 and len(ghj.obligation_ids) == 30


def test_the_quarter_is_the_quarter_of_the_due_time() -> None:
    events = crafted_events()
    q4 = card_at(events)
    assert "case_transfer:C-0" in q4.department("HZ-NYJ").obligation_ids  # discovered in Q3, due in Q4
    assert "case_transfer:C-9" not in q4.department("HZ-SJJ").obligation_ids  # discovered in Q4, due in Q1
    q1 = card_at(events, as_of=datetime.fromisoformat("2027-01-20T12:00:00+08:00"), quarter=Quarter(2027, 1))
    assert q1.department("HZ-SJJ").obligation_ids == ["case_transfer:C-9"]


def test_county_squadrons_are_reported_apart_and_never_folded_into_the_city_bureau() -> None:
    card = card_at(crafted_events())
    assert [(d.dept, d.score, d.rank, d.assessed) for d in card.unassessed] == [("DQ-ZD-WK", 99.0, 0, False)]
    assert "case_transfer:C-4" not in card.department("HZ-ZFJ").obligation_ids


def test_an_entry_not_sent_by_the_joint_meeting_office_is_rejected_with_its_reason() -> None:
    card = card_at(crafted_events())
    assert [(r.event_id, r.dept) for r in card.rejected] == [("adj4", "HZ-SJJ")]
    assert "HZ-LXB" in card.rejected[0].reason


def test_before_the_year_ends_the_annual_meeting_costs_nothing() -> None:
    card = card_at(crafted_events(), as_of=datetime.fromisoformat("2026-12-20T12:00:00+08:00"))
    assert card.department("HZ-ZFJ").score == 100.0
    # the complaint was late already; the second determination is not due until 12-15 ... it is missed
    assert card.department("HZ-GHJ").score == 96.0


def test_a_scorecard_survives_a_round_trip_through_json() -> None:
    card = card_at(crafted_events())
    assert Scorecard.from_dict(card.to_dict()) == card


def late_facts() -> list[dict[str, Any]]:
    """Facts arriving after the close: HZ-TYJ's discovery of 12-01 (recorded 01-10, never
    transferred: -1 二.2) and HZ-GHJ's late reply to R-2 (missed -> late: still -2)."""
    return [
        discovered("v5", "HZ-TYJ", "2026-12-01T09:00:00+08:00", "C-5", "HZ-ZFJ", "2027-01-10T09:00:00+08:00"),
        ev(
            "DeterminationReplied",
            "d2r",
            "HZ-GHJ",
            "2027-01-09T10:00:00+08:00",
            request_id="R-2",
            conclusion="符合规划",
        ),
    ]


def test_a_fact_after_the_close_is_a_restatement_not_a_silent_change() -> None:
    store = InMemoryStore()
    closed_at = datetime.fromisoformat("2027-01-08T13:00:00+08:00")
    first = close_quarter(store, card_at(crafted_events()), closed_at)
    assert first.action == "published" and first.card.department("HZ-TYJ").score == 100.0

    later = datetime.fromisoformat("2027-01-12T12:00:00+08:00")
    again = close_quarter(store, card_at(crafted_events() + late_facts(), as_of=later), later)
    assert again.action == "restated" and again.restatement is not None
    r = again.restatement
    assert r.revision == 1 and len(r.changes) == 1  # GHJ's missed -> late costs the same: no change
    change = r.changes[0]
    assert (change.dept, change.old_score, change.new_score) == ("HZ-TYJ", 100.0, 99.0)
    assert change.obligation_ids == ["case_transfer:C-5"]
    assert "case_transfer:C-5" in change.why and "二.2" in change.why

    published = store.published("2026Q4")
    assert published is not None and published[0].department("HZ-TYJ").score == 100.0  # frozen
    official = store.official("2026Q4")
    assert official is not None and official.department("HZ-TYJ").score == 99.0
    assert official.department("HZ-TYJ").rank == official.department("HZ-HBJ").rank == 9  # re-ranked

    third = close_quarter(store, card_at(crafted_events() + late_facts(), as_of=later), later)
    assert third.action == "unchanged" and len(store.restatements("2026Q4")) == 1


def test_the_year_ranks_on_the_average_of_its_quarters() -> None:
    q4 = card_at(crafted_events())
    q3 = card_at([], as_of=datetime.fromisoformat("2026-10-01T00:00:00+08:00"), quarter=Quarter(2026, 3))
    year = rank_year(2026, {"2026Q3": q3, "2026Q4": q4}, official_quarters={"2026Q4"})
    assert (year.quarters, year.official, year.provisional) == (
        ("2026Q3", "2026Q4"),
        ("2026Q4",),
        ("2026Q3",),
    )
    rows = {r.dept: r for r in year.rows}
    assert (rows["HZ-RFB"].quarter_scores, rows["HZ-RFB"].total, rows["HZ-RFB"].average) == (
        (100.0, 80.0),
        180.0,
        90.0,
    )
    assert rows["HZ-RFB"].rank == 17 and rows["HZ-FGW"].rank == 1
    assert rows["HZ-GHJ"].average == 98.0
