"""The correlation core: the four rules, arrival order, dedup, serialisation, privacy."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.correlation import (
    DEFAULT_POLICY,
    Correlation,
    CorrelationPolicy,
    SubjectState,
    apply,
    evaluate,
    fold,
    months_after,
    prepare,
    subject_key,
)
from domain.events import Event
from domain.privacy import is_personal_id
from schemas.codec import from_canonical

ORG = "91330500MA2B3C4D5E"  # an organisation: not personal data
KEY = b"test-pseudonym-key"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def person(stem: str = "33050219800101001") -> str:
    """A well-formed personal ID number (GB 11643 check digit)."""
    total = sum(int(c) * w for c, w in zip(stem, _WEIGHTS, strict=True))
    return stem + "10X98765432"[total % 11]


PERSON = person()


def at(day: str, clock: str = "10:00:00") -> str:
    return f"{day}T{clock}+08:00"


def approval(
    eid: str,
    day: str,
    *,
    approval_id: str = "APR-1",
    decision: str = "granted",
    domain: str = "construction",
    subject: str = ORG,
    dept: str = "HZ-JSJ",
    valid_until: str | None = None,
    clock: str = "10:00:00",
    recorded: str | None = None,
) -> Event:
    obj: dict[str, Any] = {
        "type": "ApprovalIssued",
        "event_id": eid,
        "source_dept": dept,
        "occurred_at": at(day, clock),
        "recorded_at": recorded or at(day, clock),
        "approval_id": approval_id,
        "subject_id": subject,
        "domain": domain,
        "matter_code": "CN-L01",
        "approval_kind": "license",
        "decision": decision,
        "valid_until": valid_until,
    }
    return from_canonical(obj)


def penalty(
    eid: str,
    day: str,
    *,
    penalty_id: str | None = None,
    domain: str = "construction",
    subject: str = ORG,
    kind: str = "fine",
    unlicensed: bool = False,
    suspension: bool = False,
    dept: str = "WX-ZFJ",
    clock: str = "10:00:00",
    recorded: str | None = None,
) -> Event:
    obj: dict[str, Any] = {
        "type": "PenaltyDecided",
        "event_id": eid,
        "source_dept": dept,
        "occurred_at": at(day, clock),
        "recorded_at": recorded or at(day, clock),
        "penalty_id": penalty_id or f"PEN-{eid}",
        "case_id": f"CASE-{eid}",
        "subject_id": subject,
        "domain": domain,
        "matter_code": "CN-P01",
        "penalty_kind": kind,
        "amount_yuan": 5000.0,
        "legal_basis": "《建筑法》第六十四条",
        "unlicensed_operation": unlicensed,
        "requires_permit_suspension": suspension,
    }
    return from_canonical(obj)


def run(*events: Event, policy: CorrelationPolicy = DEFAULT_POLICY) -> tuple[SubjectState, list[Correlation]]:
    """Apply prepared events in the given order; the state and every emission."""
    state: SubjectState | None = None
    emitted: list[Correlation] = []
    for e in events:
        prepared = prepare(e, KEY)
        assert prepared is not None
        state, out = apply(state, prepared, policy=policy)
        emitted.extend(out)
    assert state is not None
    return state, emitted


def kinds(correlations: list[Correlation]) -> list[str]:
    return [c.kind for c in correlations]


def accumulate(emitted: list[Correlation]) -> dict[str, Correlation]:
    """What a consumer holds: last emission per id, withdrawn ones dropped."""
    held: dict[str, Correlation] = {}
    for c in emitted:
        held[c.correlation_id] = c
    return {cid: c for cid, c in held.items() if c.status == "active"}


# ------------------------------------------------------------------ penalty on an approved subject


def test_penalty_on_subject_with_active_approval_links_both_and_tells_the_issuing_dept() -> None:
    state, emitted = run(
        approval("a1", "2026-01-05", valid_until="2027-01-05"),
        penalty("p1", "2026-03-02"),
    )
    [link] = evaluate(state)
    assert link.kind == "penalty_on_approved_subject"
    assert (
        link.approval_ids == ("APR-1",) and link.penalty_ids == ("PEN-p1",) and link.case_ids == ("CASE-p1",)
    )
    assert link.notify_dept == "HZ-JSJ"
    assert link.clause == "分工办法 二"
    assert link.became_true_at == datetime.fromisoformat(at("2026-03-02"))
    assert link.rule_version == DEFAULT_POLICY.rule_version
    assert link.correlation_id == f"penalty_on_approved_subject:{ORG}:PEN-p1:APR-1"
    assert emitted == [link]


def test_a_penalty_in_another_domain_is_not_linked() -> None:
    state, _ = run(approval("a1", "2026-01-05"), penalty("p1", "2026-03-02", domain="environment"))
    assert "penalty_on_approved_subject" not in kinds(evaluate(state))


def test_an_approval_expired_before_the_penalty_is_not_active() -> None:
    state, _ = run(approval("a1", "2025-01-05", valid_until="2026-03-01"), penalty("p1", "2026-03-02"))
    assert evaluate(state) == []


def test_an_approval_valid_until_the_penalty_day_is_still_active() -> None:
    state, _ = run(
        approval("a1", "2025-01-05", valid_until="2026-03-02"), penalty("p1", "2026-03-02", clock="23:00:00")
    )
    assert kinds(evaluate(state)) == ["penalty_on_approved_subject"]


@pytest.mark.parametrize("decision", ["revoked", "suspended", "denied"])
def test_an_approval_revoked_suspended_or_denied_before_the_penalty_is_not_active(decision: str) -> None:
    state, _ = run(
        approval("a1", "2025-01-05"),
        approval("a2", "2026-02-01", decision=decision),
        penalty("p1", "2026-03-02"),
    )
    assert evaluate(state) == []


def test_a_revocation_after_the_penalty_does_not_undo_the_link() -> None:
    state, _ = run(
        approval("a1", "2025-01-05"),
        penalty("p1", "2026-03-02"),
        approval("a2", "2026-04-01", decision="revoked"),
    )
    assert kinds(evaluate(state)) == ["penalty_on_approved_subject"]


def test_an_approval_granted_after_the_penalty_is_not_linked() -> None:
    state, _ = run(penalty("p1", "2026-03-02"), approval("a1", "2026-03-03"))
    assert "penalty_on_approved_subject" not in kinds(evaluate(state))


def test_a_late_approval_links_with_an_earlier_penalty_when_it_arrives() -> None:
    state = None
    p = prepare(penalty("p1", "2026-03-02"), KEY)
    a = prepare(approval("a1", "2026-01-05"), KEY)
    assert p is not None and a is not None
    state, first = apply(state, p)
    assert first == []
    state, second = apply(state, a)
    assert kinds(second) == ["penalty_on_approved_subject"]
    assert second == evaluate(state)


def test_a_late_earlier_revocation_withdraws_the_link() -> None:
    state, emitted = run(
        approval("a1", "2025-01-05"),
        penalty("p1", "2026-03-02"),
        approval("a2", "2026-02-01", decision="revoked"),
    )
    assert [(c.kind, c.status) for c in emitted] == [
        ("penalty_on_approved_subject", "active"),
        ("penalty_on_approved_subject", "withdrawn"),
    ]
    assert evaluate(state) == []
    assert accumulate(emitted) == {}


def test_a_renewal_before_the_penalty_replaces_an_expired_grant() -> None:
    state, _ = run(
        approval("a1", "2024-01-05", valid_until="2025-01-05"),
        approval("a2", "2025-01-04", valid_until="2026-01-04"),
        penalty("p1", "2025-06-01"),
    )
    assert kinds(evaluate(state)) == ["penalty_on_approved_subject"]


def test_two_active_approvals_in_the_domain_give_two_links() -> None:
    state, _ = run(
        approval("a1", "2025-01-05"),
        approval("b1", "2025-02-05", approval_id="APR-2", dept="HZ-GHJ"),
        penalty("p1", "2026-03-02"),
    )
    links = evaluate(state)
    assert sorted(c.notify_dept or "" for c in links) == ["HZ-GHJ", "HZ-JSJ"]


# ------------------------------------------------------------------ permit suspension notice


@pytest.mark.parametrize(
    ("kind", "flag"), [("fine", True), ("license_suspension", False), ("license_revocation", False)]
)
def test_a_penalty_that_suspends_the_permit_obliges_the_enforcement_dept_to_notify(
    kind: str, flag: bool
) -> None:
    state, _ = run(approval("a1", "2025-01-05"), penalty("p1", "2026-03-02", kind=kind, suspension=flag))
    notices = [c for c in evaluate(state) if c.kind == "permit_suspension_notice"]
    assert len(notices) == 1
    [notice] = notices
    assert notice.responsible_dept == "WX-ZFJ" and notice.notify_dept == "HZ-JSJ"
    assert notice.clause == "协作机制 五(三)"
    assert notice.due_at is None  # the notice says only 及时: no period to count
    assert notice.correlation_id == f"permit_suspension_notice:{ORG}:PEN-p1:APR-1"


def test_an_ordinary_fine_needs_no_permit_suspension_notice() -> None:
    state, _ = run(approval("a1", "2025-01-05"), penalty("p1", "2026-03-02"))
    assert "permit_suspension_notice" not in kinds(evaluate(state))


def test_no_permit_suspension_notice_without_an_active_approval() -> None:
    state, _ = run(penalty("p1", "2026-03-02", kind="license_revocation"))
    assert evaluate(state) == []


# ------------------------------------------------------------------ unlicensed, no approval on record


def test_unlicensed_operation_without_any_approval_on_record_is_linked() -> None:
    policy = CorrelationPolicy(competent_depts={"construction": "HZ-JSJ"})
    state, _ = run(penalty("p1", "2026-03-02", unlicensed=True), policy=policy)
    [link] = evaluate(state, policy=policy)
    assert link.kind == "unlicensed_no_approval_on_record"
    assert link.correlation_id == f"unlicensed_no_approval_on_record:{ORG}:PEN-p1"
    assert link.notify_dept == "HZ-JSJ" and link.clause == "分工办法 二"
    assert link.approval_ids == ()


def test_a_domain_without_a_competent_dept_gives_a_link_without_a_dept() -> None:
    state, _ = run(penalty("p1", "2026-03-02", unlicensed=True))
    [link] = evaluate(state)
    assert link.notify_dept is None


@pytest.mark.parametrize("decision", ["granted", "denied", "revoked", "suspended"])
def test_any_earlier_decision_in_the_domain_counts_as_on_record(decision: str) -> None:
    state, _ = run(
        approval("a1", "2025-01-05", decision=decision), penalty("p1", "2026-03-02", unlicensed=True)
    )
    assert "unlicensed_no_approval_on_record" not in kinds(evaluate(state))


def test_an_approval_in_another_domain_is_not_on_record() -> None:
    state, _ = run(
        approval("a1", "2025-01-05", domain="environment"),
        penalty("p1", "2026-03-02", unlicensed=True),
    )
    assert kinds(evaluate(state)) == ["unlicensed_no_approval_on_record"]


def test_an_approval_decided_after_the_penalty_does_not_undo_the_link() -> None:
    state, _ = run(penalty("p1", "2026-03-02", unlicensed=True), approval("a1", "2026-05-05"))
    assert "unlicensed_no_approval_on_record" in kinds(evaluate(state))


def test_a_late_arriving_earlier_approval_withdraws_the_link() -> None:
    state, emitted = run(
        penalty("p1", "2026-03-02", unlicensed=True), approval("a1", "2026-01-05", decision="denied")
    )
    assert [(c.kind, c.status) for c in emitted] == [
        ("unlicensed_no_approval_on_record", "active"),
        ("unlicensed_no_approval_on_record", "withdrawn"),
    ]
    assert evaluate(state) == []


def test_a_licensed_penalty_is_not_an_unlicensed_link() -> None:
    state, _ = run(penalty("p1", "2026-03-02"))
    assert evaluate(state) == []


# ------------------------------------------------------------------ approval to a recently penalised subject


def test_an_approval_granted_within_12_months_of_a_penalty_is_flagged() -> None:
    state, _ = run(penalty("p1", "2025-03-10"), approval("a1", "2026-03-10", dept="HZ-JSJ"))
    flags = [c for c in evaluate(state) if c.kind == "approval_to_recently_penalised"]
    assert len(flags) == 1
    [flag] = flags
    assert flag.notify_dept == "HZ-JSJ" and flag.clause == "协作机制 三(二)3"
    assert flag.became_true_at == datetime.fromisoformat(at("2026-03-10"))
    assert flag.correlation_id == f"approval_to_recently_penalised:{ORG}:APR-1:PEN-p1"


def test_an_approval_granted_a_day_after_the_12_months_is_not_flagged() -> None:
    state, _ = run(penalty("p1", "2025-03-10"), approval("a1", "2026-03-11"))
    assert evaluate(state) == []


def test_the_12_months_are_counted_on_shanghai_dates() -> None:
    # 2025-03-10 23:30 Shanghai is 15:30 UTC; the grant at 2026-03-11 00:30 Shanghai is one day late
    state, _ = run(
        penalty("p1", "2025-03-10", clock="23:30:00"), approval("a1", "2026-03-11", clock="00:30:00")
    )
    assert evaluate(state) == []


@pytest.mark.parametrize("decision", ["denied", "revoked", "suspended"])
def test_only_grants_are_flagged(decision: str) -> None:
    state, _ = run(penalty("p1", "2025-06-10"), approval("a1", "2025-09-10", decision=decision))
    assert evaluate(state) == []


def test_a_penalty_in_another_domain_does_not_flag_the_approval() -> None:
    state, _ = run(penalty("p1", "2025-06-10", domain="environment"), approval("a1", "2025-09-10"))
    assert evaluate(state) == []


def test_a_penalty_after_the_grant_does_not_flag_it() -> None:
    state, _ = run(approval("a1", "2025-09-10"), penalty("p1", "2025-10-10"))
    assert "approval_to_recently_penalised" not in kinds(evaluate(state))


def test_a_renewed_approval_is_flagged_once_per_penalty_from_its_first_qualifying_grant() -> None:
    state, _ = run(
        penalty("p1", "2025-06-10"),
        approval("a1", "2025-09-10", valid_until="2025-12-31"),
        approval("a2", "2026-01-02"),
    )
    flags = [c for c in evaluate(state) if c.kind == "approval_to_recently_penalised"]
    assert [f.became_true_at.date() for f in flags] == [date(2025, 9, 10)]


# ------------------------------------------------------------------ repeat offender


def test_three_penalties_within_12_months_list_the_subject_once() -> None:
    state, emitted = run(
        penalty("p1", "2025-03-10"), penalty("p2", "2025-08-01"), penalty("p3", "2026-03-10")
    )
    [listing] = evaluate(state)
    assert listing.kind == "repeat_offender"
    assert listing.penalty_ids == ("PEN-p1", "PEN-p2", "PEN-p3")
    assert listing.clause == "协作机制 三(二)3"
    assert listing.domain is None
    assert listing.notify_dept == "WX-ZFJ"
    assert listing.became_true_at == datetime.fromisoformat(at("2026-03-10"))
    assert listing.correlation_id == f"repeat_offender:{ORG}:PEN-p3"
    assert emitted == [listing]


def test_two_penalties_are_not_a_repeat_offence() -> None:
    state, _ = run(penalty("p1", "2025-03-10"), penalty("p2", "2025-08-01"))
    assert evaluate(state) == []


def test_three_penalties_spread_over_12_months_and_a_day_are_not_a_repeat_offence() -> None:
    state, _ = run(penalty("p1", "2025-03-10"), penalty("p2", "2025-08-01"), penalty("p3", "2026-03-11"))
    assert evaluate(state) == []


def test_repeat_offences_count_over_all_domains() -> None:
    state, _ = run(
        penalty("p1", "2025-03-10", domain="construction"),
        penalty("p2", "2025-04-10", domain="environment"),
        penalty("p3", "2025-05-10", domain="urban_management"),
    )
    assert kinds(evaluate(state)) == ["repeat_offender"]


def test_a_fourth_penalty_in_the_run_does_not_list_the_subject_again() -> None:
    state, _ = run(*(penalty(f"p{i}", f"2025-0{i}-10") for i in range(1, 7)))
    assert kinds(evaluate(state)) == ["repeat_offender"]


def test_a_new_run_after_a_lapse_lists_the_subject_again() -> None:
    state, _ = run(
        penalty("p1", "2023-01-10"),
        penalty("p2", "2023-02-10"),
        penalty("p3", "2023-03-10"),
        penalty("p4", "2025-01-10"),
        penalty("p5", "2025-02-10"),
        penalty("p6", "2025-03-10"),
    )
    listings = evaluate(state)
    assert [c.correlation_id.rsplit(":", 1)[1] for c in listings] == ["PEN-p3", "PEN-p6"]


def test_a_late_earlier_penalty_moves_the_listing_to_the_penalty_that_now_completes_the_count() -> None:
    _, emitted = run(
        penalty("p1", "2025-03-10"),
        penalty("p2", "2025-04-10"),
        penalty("p3", "2025-05-10"),
        penalty("p0", "2025-01-10"),
    )
    assert [(c.correlation_id.rsplit(":", 1)[1], c.status) for c in emitted] == [
        ("PEN-p3", "active"),
        ("PEN-p2", "active"),
        ("PEN-p3", "withdrawn"),
    ]


def test_threshold_and_window_are_policy() -> None:
    policy = CorrelationPolicy(repeat_threshold=2, repeat_window_months=6, key_supervision_dept="HZ-TCB")
    state, _ = run(penalty("p1", "2025-03-10"), penalty("p2", "2025-09-10"), policy=policy)
    [listing] = evaluate(state, policy=policy)
    assert listing.notify_dept == "HZ-TCB"
    assert listing.rule_version == "correlation/1;repeat=2in6m;recent=12m"
    assert evaluate(state, policy=CorrelationPolicy(repeat_threshold=2, repeat_window_months=5)) == []


def test_the_same_penalty_resent_under_a_new_event_id_counts_once() -> None:
    state, _ = run(
        penalty("p1", "2025-03-10"),
        penalty("p2", "2025-04-10"),
        penalty("p2-retry", "2025-04-10", penalty_id="PEN-p2", recorded="2025-04-11T09:00:00+08:00"),
    )
    assert evaluate(state) == []


# ------------------------------------------------------------------ dedup, order, as_of


def test_a_duplicate_event_changes_nothing_and_emits_nothing() -> None:
    a = prepare(approval("a1", "2025-01-05"), KEY)
    p = prepare(penalty("p1", "2026-03-02"), KEY)
    assert a is not None and p is not None
    state, _ = apply(None, a)
    state, first = apply(state, p)
    again, second = apply(state, p)
    assert first and second == [] and again is state


def test_two_different_facts_under_one_event_id_resolve_the_same_whatever_the_order() -> None:
    first = penalty("p1", "2025-03-10", domain="construction")
    second = penalty("p1", "2025-03-10", domain="environment")
    one, _ = run(first, second)
    other, _ = run(second, first)
    assert one == other and len(one.penalties) == 1


def test_month_arithmetic_clamps_to_the_end_of_the_month() -> None:
    assert months_after(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert months_after(date(2025, 3, 31), 11) == date(2026, 2, 28)
    assert months_after(date(2025, 12, 15), 1) == date(2026, 1, 15)


def test_as_of_shows_the_correlations_as_they_stood_then() -> None:
    state, _ = run(penalty("p1", "2025-03-10"), penalty("p2", "2025-04-10"), penalty("p3", "2025-05-10"))
    assert evaluate(state, as_of=datetime.fromisoformat(at("2025-05-09"))) == []
    assert kinds(evaluate(state, as_of=datetime.fromisoformat(at("2025-05-10")))) == ["repeat_offender"]


def test_coercive_measures_and_other_events_are_not_correlation_events() -> None:
    measure = from_canonical(
        {
            "type": "CoerciveMeasureDecided",
            "event_id": "m1",
            "source_dept": "WX-ZFJ",
            "occurred_at": at("2026-01-05"),
            "recorded_at": at("2026-01-05"),
            "measure_id": "M-1",
            "case_id": "C-1",
            "subject_id": ORG,
            "measure_kind": "seal",
        }
    )
    assert prepare(measure, KEY) is None
    with pytest.raises(ValueError, match="not a correlation event"):
        apply(None, measure)


def test_an_event_about_another_subject_is_refused() -> None:
    state, _ = run(penalty("p1", "2025-03-10"))
    other = prepare(penalty("p2", "2025-03-11", subject="91330500MA2XXXXXX1"), KEY)
    assert other is not None
    with pytest.raises(ValueError, match="another subject"):
        apply(state, other)


# ------------------------------------------------------------------ serialisation


def test_state_round_trips_through_json() -> None:
    state, _ = run(
        approval("a1", "2025-01-05", valid_until="2026-01-05"),
        approval("a2", "2025-06-05", decision="revoked"),
        penalty("p1", "2025-03-10", unlicensed=True, suspension=True, kind="license_suspension"),
    )
    text = json.dumps(state.to_dict())
    back = SubjectState.from_dict(json.loads(text))
    assert back == state
    assert evaluate(back) == evaluate(state)


def test_correlations_round_trip_through_json() -> None:
    state, _ = run(approval("a1", "2025-01-05"), penalty("p1", "2025-03-10", suspension=True))
    for c in evaluate(state):
        assert Correlation.from_dict(json.loads(json.dumps(c.to_dict()))) == c
        assert Correlation.from_dict(c.withdrawn().to_dict()).status == "withdrawn"


def test_an_unknown_state_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        SubjectState.from_dict({"format": 99, "subject": ORG, "approvals": [], "penalties": []})


# ------------------------------------------------------------------ privacy


def test_subject_key_pseudonymises_personal_ids_and_keeps_organisation_codes() -> None:
    assert is_personal_id(PERSON)
    assert subject_key(ORG, KEY) == ORG
    pseudonym = subject_key(PERSON, KEY)
    assert pseudonym.startswith("P-") and PERSON not in pseudonym
    assert subject_key(PERSON, KEY) == pseudonym


def test_a_personal_id_never_reaches_the_state_or_the_outputs() -> None:
    events = [
        approval("a1", "2025-01-05", subject=PERSON),
        penalty("p1", "2025-03-10", subject=PERSON, suspension=True),
        penalty("p2", "2025-04-10", subject=PERSON, unlicensed=True, domain="environment"),
        penalty("p3", "2025-05-10", subject=PERSON),
        approval("a2", "2025-06-05", approval_id="APR-2", subject=PERSON),
    ]
    state, emitted = run(*events)
    assert state.subject == subject_key(PERSON, KEY)
    assert len(set(kinds(emitted))) == 5  # every kind of output
    assert PERSON not in json.dumps(state.to_dict())
    assert PERSON not in json.dumps([c.to_dict() for c in emitted])


def test_the_core_refuses_a_personal_id_that_was_not_pseudonymised() -> None:
    with pytest.raises(ValueError, match="personal ID"):
        apply(None, penalty("p1", "2025-03-10", subject=PERSON))
    with pytest.raises(ValueError, match="personal ID"):
        SubjectState(subject=PERSON)


# ------------------------------------------------------------------ order independence (property)

DAYS = [f"{y}-{m:02d}-{d:02d}" for y in (2024, 2025, 2026) for m in (1, 3, 6, 9, 12) for d in (1, 10, 28)]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """A few approval decisions and penalties for two subjects (one a person), over three years."""
    subjects = [ORG, PERSON]
    events: list[Event] = []
    for i in range(draw(st.integers(0, 5))):
        events.append(
            approval(
                f"a{i}",
                draw(st.sampled_from(DAYS)),
                approval_id=f"APR-{draw(st.integers(1, 3))}",
                decision=draw(st.sampled_from(["granted", "granted", "revoked", "suspended", "denied"])),
                domain=draw(st.sampled_from(["construction", "environment"])),
                subject=draw(st.sampled_from(subjects)),
                dept=draw(st.sampled_from(["HZ-JSJ", "HZ-HBJ"])),
                valid_until=draw(st.sampled_from([None, "2025-06-30", "2026-12-31"])),
            )
        )
    for i in range(draw(st.integers(0, 7))):
        events.append(
            penalty(
                f"p{i}",
                draw(st.sampled_from(DAYS)),
                penalty_id=f"PEN-{draw(st.integers(0, 6))}",
                domain=draw(st.sampled_from(["construction", "environment"])),
                subject=draw(st.sampled_from(subjects)),
                kind=draw(st.sampled_from(["fine", "warning", "license_revocation"])),
                unlicensed=draw(st.booleans()),
                suspension=draw(st.booleans()),
                recorded=draw(st.sampled_from([None, "2026-12-31T10:00:00+08:00"])),
            )
        )
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=histories())
def test_any_order_and_duplication_gives_the_same_state_and_correlations(
    data: st.DataObject, events: list[Event]
) -> None:
    policy = CorrelationPolicy(repeat_threshold=3, competent_depts={"construction": "HZ-JSJ"})
    reference = fold(events, key=KEY, policy=policy)
    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=4)) if events else events
    shuffled = data.draw(st.permutations(duplicated))

    states: dict[str, SubjectState] = {}
    emitted: list[Correlation] = []
    for raw in shuffled:
        event = prepare(raw, KEY)
        assert event is not None
        subject = event["subject_id"]
        states[subject], out = apply(states.get(subject), event, policy=policy)
        emitted.extend(out)

    assert states == reference
    expected = {c.correlation_id: c for s in states.values() for c in evaluate(s, policy=policy)}
    assert accumulate(emitted) == expected
    for s in states.values():
        assert SubjectState.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert PERSON not in json.dumps([c.to_dict() for c in emitted])
