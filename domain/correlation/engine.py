"""The correlation engine: fold events into per-subject state, evaluate the rules, emit changes.

Shells (the Faust worker, the replay command) call only this module:

- :func:`prepare` turns a raw event into the event the core accepts (relevant type, subject id
  pseudonymised with :func:`subject_key`), or ``None`` for events the rules do not use;
- :func:`apply` adds one prepared event to a subject's state and returns the correlations that
  changed: new ones, and ``withdrawn`` copies of those a late-arriving fact no longer supports;
- :func:`evaluate` gives every correlation that holds for a state.

Invariant (tested with permutations): for any order and duplication of the same events,
the outputs of :func:`apply`, accumulated by ``correlation_id`` (last emission wins, withdrawn
dropped), equal :func:`evaluate` on the final state, and the final states are equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from domain.correlation import rules
from domain.correlation.model import (
    DEFAULT_POLICY,
    ApprovalDecision,
    Correlation,
    CorrelationPolicy,
    Fact,
    PenaltyFact,
    SubjectState,
)
from domain.events import Event
from domain.privacy import is_personal_id, pseudonymise

#: the event types the correlation rules fold over (CoerciveMeasureDecided is not a penalty)
CORRELATION_EVENT_TYPES = frozenset({"ApprovalIssued", "PenaltyDecided"})


def subject_key(subject_id: str, key: bytes) -> str:
    """The subject key of the correlation state: personal ID numbers pseudonymised with ``key``
    (:func:`domain.privacy.pseudonymise`), organisation codes unchanged [信息资源共享机制 五]."""
    return pseudonymise(subject_id, key)


def prepare(event: Event, key: bytes) -> Event | None:
    """``event`` ready for :func:`apply`: its ``subject_id`` replaced by :func:`subject_key`.

    ``None`` for event types the correlation rules do not use. The shell calls this first, keys
    its table by ``prepared["subject_id"]`` and passes the prepared event to :func:`apply`.
    """
    if event.type not in CORRELATION_EVENT_TYPES:
        return None
    subject_id = event.get("subject_id")
    if not isinstance(subject_id, str) or not subject_id:
        raise ValueError(f"event {event.event_id}: {event.type} without a subject_id")
    return event.with_fields({**event.fields, "subject_id": subject_key(subject_id, key)})


def fact_of(event: Event) -> Fact:
    """The fact a prepared ApprovalIssued or PenaltyDecided event reports."""
    if event.type == "ApprovalIssued":
        return ApprovalDecision(
            event_id=event.event_id,
            approval_id=_text(event, "approval_id"),
            domain=_text(event, "domain"),
            matter_code=_text(event, "matter_code"),
            approval_kind=_text(event, "approval_kind"),
            decision=_text(event, "decision"),
            issuing_dept=event.source_dept,
            decided_at=event.occurred_at,
            recorded_at=event.recorded_at,
            valid_until=event.get("valid_until"),
        )
    if event.type == "PenaltyDecided":
        return PenaltyFact(
            event_id=event.event_id,
            penalty_id=_text(event, "penalty_id"),
            case_id=_text(event, "case_id"),
            domain=_text(event, "domain"),
            penalty_kind=_text(event, "penalty_kind"),
            deciding_dept=event.source_dept,
            decided_at=event.occurred_at,
            recorded_at=event.recorded_at,
            unlicensed_operation=bool(event.get("unlicensed_operation", False)),
            requires_permit_suspension=bool(event.get("requires_permit_suspension", False)),
        )
    raise ValueError(f"event {event.event_id}: {event.type} is not a correlation event; use prepare()")


def _text(event: Event, name: str) -> str:
    value: Any = event.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"event {event.event_id}: {event.type}.{name} missing")
    return value


def evaluate(
    state: SubjectState, *, policy: CorrelationPolicy = DEFAULT_POLICY, as_of: datetime | None = None
) -> list[Correlation]:
    """Every correlation that holds for ``state``, ordered by (became_true_at, correlation_id).

    With ``as_of`` (tz-aware), only facts decided at or before it count: the correlations as
    they stood at that business time (for a replay's ``--as-of``).
    """
    facts = state if as_of is None else state.known_by(as_of)
    found = [
        *rules.penalty_on_approved_subject(facts, policy),
        *rules.unlicensed_no_approval_on_record(facts, policy),
        *rules.approval_to_recently_penalised(facts, policy),
        *rules.repeat_offender(facts, policy),
    ]
    return sorted(found, key=lambda c: (c.became_true_at, c.correlation_id))


def apply(
    state: SubjectState | None, event: Event, *, policy: CorrelationPolicy = DEFAULT_POLICY
) -> tuple[SubjectState, list[Correlation]]:
    """Add one prepared event to ``state`` (``None``: a subject not seen before).

    Returns the new state and the correlations that changed: those that now hold and were not
    emitted for ``state`` (or hold with different content), and, with ``status="withdrawn"``,
    those emitted for ``state`` that no longer hold. A duplicate event (same event_id) changes
    nothing and emits nothing. Raises ``ValueError`` for an event of another subject, an event
    type the rules do not use, or a subject id that is still a personal ID number.
    """
    subject = _text(event, "subject_id")
    if is_personal_id(subject):
        raise ValueError(
            f"event {event.event_id}: subject_id is a personal ID number; call prepare() first "
            "[信息资源共享机制 五]"
        )
    if state is None:
        state = SubjectState(subject=subject)
    elif state.subject != subject:
        raise ValueError(f"event {event.event_id} is about another subject than this state")
    new_state = state.with_fact(fact_of(event))
    if new_state is state:
        return state, []
    return new_state, changes(state, new_state, policy=policy)


def changes(
    before: SubjectState, after: SubjectState, *, policy: CorrelationPolicy = DEFAULT_POLICY
) -> list[Correlation]:
    """What to emit going from ``before`` to ``after``: new or changed correlations, then withdrawals."""
    old = {c.correlation_id: c for c in evaluate(before, policy=policy)}
    new = {c.correlation_id: c for c in evaluate(after, policy=policy)}
    emitted = [c for cid, c in new.items() if old.get(cid) != c]
    withdrawn = [c.withdrawn() for cid, c in old.items() if cid not in new]
    return emitted + sorted(withdrawn, key=lambda c: (c.became_true_at, c.correlation_id))


def fold(
    events: Iterable[Event], *, key: bytes, policy: CorrelationPolicy = DEFAULT_POLICY
) -> dict[str, SubjectState]:
    """The states of all subjects after ``events`` (raw events, any order; others are skipped).

    For the replay command and tests; evaluate each state for the correlations.
    """
    states: dict[str, SubjectState] = {}
    for raw in events:
        event = prepare(raw, key)
        if event is None:
            continue
        subject = event["subject_id"]
        states[subject], _ = apply(states.get(subject), event, policy=policy)
    return states
