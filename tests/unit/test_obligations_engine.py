"""The fold, the routing and the streaming API: order and duplicates do not matter, a missed
alert is raised once, a late fulfilment resolves it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.events import Event
from domain.obligations import (
    Alert,
    AlertResolved,
    FindingRaised,
    FindingWithdrawn,
    KeyState,
    ObligationChanged,
    advance,
    apply,
    correlation_keys,
    due_times,
    evaluate,
    evaluate_events,
    findings,
    fold,
    next_wakeup,
    warn_at,
)
from tests.unit.test_obligations_rules import (
    CAL,
    at,
    discovered,
    due,
    ev,
    extension,
    transferred,
    verified,
)


def case_story() -> list[Event]:
    """An urgent case: discovered, extension notified, transferred late-ish, acknowledged."""
    return [
        discovered("2026-11-02 10:00", urgent=True),
        extension("2026-11-04 10:00"),
        ev("StopOrdered", "2026-11-02 11:00", "DQ-ZD-WK", case_id="C1"),
        transferred("2026-11-24 10:00", materials=("transfer_letter",)),
        ev(
            "TransferAcknowledged",
            "2026-12-02 10:00",
            "HZ-SJJ",
            case_id="C1",
            decision="accepted",
            reason=None,
        ),
    ]


# -- routing -----------------------------------------------------------------------------------------


def test_a_transfer_carrying_a_complaint_goes_to_its_case_and_its_complaint() -> None:
    t = transferred("2026-11-05 10:00", complaint_id="T1", case_id="C9")
    assert correlation_keys(t) == ["case:C9", "complaint:T1"]
    assert correlation_keys(transferred("2026-11-05 10:00")) == ["case:C1"]


def test_each_event_type_routes_to_the_key_of_its_obligation() -> None:
    assert correlation_keys(verified()) == ["complaint:T1"]
    assert correlation_keys(
        ev("InfoShared", "2026-11-02 10:00", share_id="G1", to_dept="X", info_kind="k")
    ) == ["share:G1"]
    joint = ev(
        "ConsultationMeetingHeld", "2026-12-31 23:30", "HZ-ZFJ", meeting_id="M", kind="joint", participants=[]
    )
    assert correlation_keys(joint) == ["year:2026"]
    assert correlation_keys(ev("ComplaintReplied", "2026-11-02 10:00", complaint_id="T1")) == []


# -- the fold ----------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), copies=st.lists(st.integers(0, 4), min_size=5, max_size=5))
def test_shuffled_and_duplicated_events_give_identical_obligations_and_findings(
    seed: int, copies: list[int]
) -> None:
    story = case_story()
    events = [e for e, n in zip(story, copies, strict=True) for _ in range(n + 1)]
    random.Random(seed).shuffle(events)
    as_of = at("2026-12-10 00:00")
    expected = fold("case:C1", story)
    shuffled = fold("case:C1", events)
    assert shuffled.events == expected.events
    assert evaluate(shuffled, as_of, CAL) == evaluate(expected, as_of, CAL)
    assert findings(shuffled, as_of) == findings(expected, as_of)
    # the streaming path ends where the batch path does
    state = KeyState("case:C1")
    for e in events:
        state, _ = apply(state, e, CAL, as_of)
    assert list(state.obligations) == evaluate(expected, as_of, CAL)


def test_a_retried_event_keeps_its_first_publication_time() -> None:
    first = ev(
        "ApprovalIssued",
        "2026-11-02 10:00",
        "HZ-SJJ",
        event_id="A",
        approval_id="A1",
        published="2026-11-06 09:00",
    )
    retry = replace(first, published_at=at("2026-11-03 09:00"))
    for order in ([first, retry], [retry, first]):
        (e,) = fold("approval:A1", order).events
        assert e.published_at == at("2026-11-03 09:00")


def test_the_batch_evaluation_sorts_by_due_time_and_adds_the_annual_meeting() -> None:
    result = evaluate_events([*case_story(), verified()], at("2026-12-10 00:00"), CAL)
    dues = [(o.due_at, o.obligation_id) for o in result.obligations]
    assert dues == sorted(dues)
    assert {o.kind for o in result.obligations} == {
        "case_transfer",
        "transfer_ack",
        "complaint_referral",
        "annual_joint_meeting",
    }
    assert [f.kind for f in result.findings] == ["incomplete_transfer"]


def test_the_batch_orders_many_obligations_sharing_due_days_by_due_time_then_id() -> None:
    # 60 approvals over 5 days: many share a due day (23:59:59 of a working day), so the order
    # among them is by id; any input order gives the same output
    events = [
        ev(
            "ApprovalIssued",
            f"2026-11-{2 + i % 5:02d} {9 + i % 7:02d}:00",
            "HZ-SJJ",
            event_id=f"E{i}",
            approval_id=f"A{(i * 37) % 60:02d}",
        )
        for i in range(60)
    ]
    as_of = at("2026-12-10 00:00")
    result = evaluate_events(events, as_of, CAL, keep_states=False)
    keys = [(o.due_at, o.obligation_id) for o in result.obligations]
    assert len(keys) == 61 and len({d for d, _ in keys}) < 10  # 60 approvals, the annual meeting
    assert keys == sorted(keys)
    rng = random.Random(3)
    for _ in range(3):
        shuffled = rng.sample(events, len(events))
        assert evaluate_events(shuffled, as_of, CAL, keep_states=False).obligations == result.obligations


def test_the_batch_builds_each_key_state_with_every_field_as_its_init_would() -> None:
    from dataclasses import fields

    as_of = at("2026-12-10 00:00")
    result = evaluate_events([*case_story(), verified()], as_of, CAL)
    assert set(result.states) == {"case:C1", "complaint:C1", "complaint:T1", "year:2026"}
    for state in result.states.values():
        # every field set (an unset slot raises AttributeError here), as KeyState(...) sets it
        assert type(state) is KeyState
        assert state == KeyState(**{f.name: getattr(state, f.name) for f in fields(KeyState)})
        assert state.as_of == as_of
        assert list(state.obligations) == evaluate(state, as_of, CAL)
        assert list(state.findings) == findings(state, as_of)


def test_the_years_assessed_run_from_the_earliest_known_event_to_as_of() -> None:
    from datetime import timedelta, timezone

    from domain.obligations import years_to_assess

    old = ev("StopOrdered", "2024-12-31 23:30", case_id="C1")
    utc_new_year = replace(old, occurred_at=at("2025-01-01 07:30").astimezone(timezone(timedelta(0))))
    future = ev("StopOrdered", "2027-03-01 10:00", case_id="C1")
    as_of = at("2026-11-20 00:00")
    assert years_to_assess([future, utc_new_year, old], as_of) == range(2024, 2027)
    assert years_to_assess([future, utc_new_year], as_of) == range(2025, 2027)
    assert years_to_assess([future], as_of) == range(2026, 2027)
    assert years_to_assess([], as_of) == range(2026, 2027)


def test_a_batch_that_keeps_no_states_gives_the_same_obligations_and_findings() -> None:
    events = [*case_story(), verified(), *case_story()]  # duplicates too
    for as_of in (at("2026-11-03 00:00"), at("2026-12-10 00:00")):
        kept = evaluate_events(events, as_of, CAL)
        lean = evaluate_events(events, as_of, CAL, keep_states=False)
        assert (lean.as_of, lean.obligations, lean.findings) == (kept.as_of, kept.obligations, kept.findings)
        assert lean.states == {} and kept.states


def test_a_key_state_survives_a_round_trip_through_a_table() -> None:
    state, _ = advance(fold("case:C1", case_story()), at("2026-12-10 00:00"), CAL)
    stored = state.to_dict(lambda e: {"id": e.event_id})
    by_id = {e.event_id: e for e in state.events}
    assert KeyState.from_dict(stored, lambda d: by_id[d["id"]]) == state


# -- streaming ---------------------------------------------------------------------------------------


def kinds(changes: Sequence[object]) -> list[str]:
    out = []
    for c in changes:
        if isinstance(c, ObligationChanged):
            out.append(f"changed:{c.obligation.kind}:{c.obligation.status}")
        elif isinstance(c, Alert):
            out.append(f"alert:{c.kind}")
        elif isinstance(c, AlertResolved):
            out.append(f"resolved:{c.alert_kind}")
        elif isinstance(c, FindingRaised):
            out.append(f"finding:{c.finding.kind}")
        elif isinstance(c, FindingWithdrawn):
            out.append(f"withdrawn:{c.finding.kind}")
    return out


def test_streaming_warns_on_the_due_day_raises_missed_once_and_resolves_it_on_a_late_transfer() -> None:
    state = KeyState("case:C1")
    state, changes = apply(state, discovered("2026-11-02 10:00"), CAL, at("2026-11-02 10:00"))
    assert kinds(changes) == ["changed:case_transfer:open"]
    assert due_times(state) == [("case_transfer:C1", due("2026-11-05"))]
    assert next_wakeup(state, CAL) == at("2026-11-05 00:00")

    state, changes = advance(state, at("2026-11-05 00:00"), CAL)
    assert kinds(changes) == ["alert:due_soon"]
    assert next_wakeup(state, CAL) == at("2026-11-06 00:00")

    state, changes = advance(state, at("2026-11-06 00:00"), CAL)
    assert kinds(changes) == ["changed:case_transfer:missed", "resolved:due_soon", "alert:missed"]
    missed = next(c for c in changes if isinstance(c, Alert))
    assert (missed.raised_at, missed.dedup_key, missed.clause) == (
        due("2026-11-05"),
        "case_transfer:C1:missed",
        "协作机制 二(一)",
    )
    assert due_times(state) == []

    for day in ("2026-11-07 00:00", "2026-11-09 00:00"):  # the delay grows, nothing is re-raised
        state, changes = advance(state, at(day), CAL)
        assert changes == []

    transfer = transferred("2026-11-09 10:00")
    state, changes = apply(state, transfer, CAL, at("2026-11-09 10:00"))
    assert kinds(changes) == ["changed:case_transfer:late", "changed:transfer_ack:open", "resolved:missed"]
    resolved = next(c for c in changes if isinstance(c, AlertResolved))
    assert resolved.resolved_at == at("2026-11-09 10:00") and resolved.obligation.status == "late"

    state, changes = apply(state, transfer, CAL, at("2026-11-09 10:05"))  # a duplicate changes nothing
    assert changes == []


def test_a_re_transfer_streams_its_own_clock_and_a_late_earlier_transfer_takes_it_over() -> None:
    answered = ev("TransferAcknowledged", "2026-11-03 09:00", "HZ-SJJ", case_id="C1", decision="rejected")
    later = transferred("2026-11-10 10:00")  # back to HZ-SJJ, whose answer was given: a new clock
    state = KeyState("case:C1")
    for event in (transferred("2026-11-02 10:00"), answered, later):
        state, changes = apply(state, event, CAL, event.occurred_at)
    assert kinds(changes) == ["changed:transfer_ack:open"]
    assert due_times(state) == [(f"transfer_ack:C1:{later.event_id}", due("2026-11-17"))]
    state, changes = advance(state, at("2026-11-18 00:00"), CAL)
    assert kinds(changes) == ["changed:transfer_ack:missed", "alert:missed"]

    # a transfer dated between the answer and `later` arrives late: its clock comes first, and
    # `later` is now the same transfer sent again; its clock is gone and its alert resolved
    between = transferred("2026-11-06 10:00")
    state, changes = apply(state, between, CAL, at("2026-11-18 00:05"))
    assert sorted(kinds(changes)) == ["alert:missed", "changed:transfer_ack:missed", "resolved:missed"]
    resolved = next(c for c in changes if isinstance(c, AlertResolved))
    raised = next(c for c in changes if isinstance(c, Alert))
    assert resolved.dedup_key == f"transfer_ack:C1:{later.event_id}:missed"
    assert raised.dedup_key == f"transfer_ack:C1:{between.event_id}:missed"
    assert raised.raised_at == due("2026-11-13")


def test_a_clock_stopped_by_a_referral_resolves_the_missed_alert_and_leaves_the_deadline_index() -> None:
    request = ev(
        "DeterminationRequested", "2026-11-02 10:00", request_id="R1", case_id="C1", to_dept="HZ-GTJ"
    )
    state, _ = apply(KeyState("request:R1"), request, CAL, at("2026-11-02 10:00"))
    state, changes = advance(state, at("2026-11-17 00:00"), CAL)
    assert "alert:missed" in kinds(changes)
    referral = ev(
        "DeterminationReferred", "2026-11-04 10:00", "HZ-GTJ", request_id="R1", to_dept="X", reason="送检"
    )
    state, changes = apply(state, referral, CAL, at("2026-11-17 09:00"))
    assert kinds(changes) == ["changed:determination_reply:open", "resolved:missed"]
    assert due_times(state) == [] and warn_at(state.obligations[0], CAL) is None


def test_a_stop_order_arriving_late_withdraws_the_urgent_transfer_finding() -> None:
    state = KeyState("case:C1")
    state, _ = apply(state, discovered("2026-11-02 10:00", urgent=True), CAL, at("2026-11-02 10:00"))
    state, changes = apply(state, transferred("2026-11-03 10:00"), CAL, at("2026-11-03 10:00"))
    assert "finding:urgent_transfer_without_stop" in kinds(changes)
    stop = ev("StopOrdered", "2026-11-02 11:00", "DQ-ZD-WK", case_id="C1")
    state, changes = apply(state, stop, CAL, at("2026-11-03 12:00"))
    assert kinds(changes) == ["withdrawn:urgent_transfer_without_stop"]


def test_now_never_goes_backwards() -> None:
    state, _ = advance(fold("case:C1", [discovered("2026-11-02 10:00")]), at("2026-11-10 00:00"), CAL)
    again, changes = advance(state, at("2026-11-03 00:00"), CAL)
    assert again.as_of == at("2026-11-10 00:00") and changes == []


def test_the_due_soon_warning_starts_at_midnight_of_the_last_working_day() -> None:
    (o,) = evaluate(fold("year:2026", []), at("2026-06-01 00:00"), CAL)
    assert warn_at(o, CAL) == at("2026-12-31 00:00")  # Thu 12-31 is a working day
    (t,) = [x for x in evaluate(fold("case:C1", [discovered("2026-09-30 10:00")]), at("2026-10-01"), CAL)]
    assert warn_at(t, CAL) == at("2026-10-10 00:00")  # the make-up Saturday is the last day


def test_restating_a_key_says_again_what_its_last_steps_said() -> None:
    """A worker killed after storing a state but before sending the step's facts gets the input
    again and must say the facts again (restate): the same obligations, the active alerts, the
    findings, with the same ids."""
    from domain.obligations import restate

    state = KeyState("case:C1")
    said: dict[str, object] = {}
    for step in (
        lambda s: apply(s, discovered("2026-11-02 10:00", urgent=True), CAL, at("2026-11-02 10:00")),
        lambda s: advance(s, at("2026-11-05 00:00"), CAL),
        lambda s: advance(s, at("2026-11-06 00:00"), CAL),
    ):
        state, changes = step(state)
        for c in changes:
            if isinstance(c, ObligationChanged):
                said[c.obligation.obligation_id] = c.obligation
            elif isinstance(c, FindingRaised):
                said[c.finding.finding_id] = c.finding
    again = restate(state, CAL)
    assert kinds(again) == ["changed:case_transfer:missed", "alert:missed"]
    restated = {c.obligation.obligation_id: c.obligation for c in again if isinstance(c, ObligationChanged)}
    assert restated == {o.obligation_id: o for o in state.obligations}
    assert all(said[k] == v for k, v in restated.items())  # what the last step said of each
    alert = next(c for c in again if isinstance(c, Alert))
    assert (alert.kind, alert.dedup_key, alert.raised_at) == (
        "missed",
        "case_transfer:C1:missed",
        due("2026-11-05"),
    )
    assert {c.finding.finding_id for c in again if isinstance(c, FindingRaised)} == {
        f.finding_id for f in state.findings
    }
    assert restate(KeyState("case:C2"), CAL) == []  # never evaluated: nothing to say
