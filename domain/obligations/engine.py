"""The obligation engine: one pure core for the Faust worker, ``hzbus replay`` and the scorecard.

- **Batch** (replay, scorecard): :func:`evaluate_events` groups events by correlation key, folds
  each key's state and evaluates it at ``as_of``.
- **Per key** (any shell): :func:`evaluate` and :func:`findings` of one :class:`KeyState`.
- **Streaming** (Faust worker, state in a table keyed by the correlation key): :func:`apply` an
  event, :func:`advance` when a due time passes; both return the new state and the changes
  (:class:`ObligationChanged`, :class:`Alert`, :class:`AlertResolved`, :class:`FindingRaised`,
  :class:`FindingWithdrawn`) against the state's previous evaluation. :func:`due_times` and
  :func:`next_wakeup` feed a durable deadline index.

No function reads the clock: ``as_of``/``now`` is an argument (tz-aware); the calendar is a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from operator import attrgetter
from typing import Any, Final

from domain.calendar import WorkingDayCalendar, shanghai_date
from domain.events import SHANGHAI, Event
from domain.obligations.keys import ONE_KEY, correlation_keys, year_key
from domain.obligations.model import (
    Alert,
    AlertResolved,
    Change,
    Finding,
    FindingRaised,
    FindingWithdrawn,
    Obligation,
    ObligationChanged,
)
from domain.obligations.rules.cases import case_transfer, transfer_acks, transfer_findings
from domain.obligations.rules.complaints import complaint_referral
from domain.obligations.rules.determinations import determination_reply
from domain.obligations.rules.meetings import annual_joint_meeting
from domain.obligations.rules.sharing import approval_share, penalty_share, written_share
from domain.obligations.state import KeyState, unique_events
from domain.values import draft_class

Rule = Callable[[str, Sequence[Event], datetime, WorkingDayCalendar], Obligation | None]
#: a rule with one clock per trigger of the key (a case transferred more than once)
SeriesRule = Callable[[str, Sequence[Event], datetime, WorkingDayCalendar], list[Obligation]]

#: the rules evaluated for each kind of correlation key
RULES: dict[str, tuple[Rule, ...]] = {
    "case": (case_transfer,),
    "complaint": (complaint_referral,),
    "approval": (approval_share,),
    "penalty": (penalty_share,),
    "measure": (penalty_share,),
    "share": (written_share,),
    "request": (determination_reply,),
}
SERIES_RULES: dict[str, tuple[SeriesRule, ...]] = {"case": (transfer_acks,)}

_ONE_SECOND = timedelta(seconds=1)


def _require_aware(moment: datetime, name: str) -> None:
    if type(moment) is datetime and moment.tzinfo is SHANGHAI:
        return
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")


#: the stable output order of obligations: (due_at, obligation_id)
sort_key: Callable[[Obligation], tuple[datetime, str]] = attrgetter("due_at", "obligation_id")
_by_obligation_id: Final = attrgetter("obligation_id")
_by_at: Final = attrgetter("at")
_by_finding_id: Final = attrgetter("finding_id")


# -- per key ---------------------------------------------------------------------------------------


def evaluate(state: KeyState, as_of: datetime, calendar: WorkingDayCalendar) -> list[Obligation]:
    """The obligations of one key from the facts known at ``as_of`` (events with
    ``occurred_at <= as_of``; for the sharing obligations, publication not after ``as_of``).
    A ``year:<yyyy>`` key always has its annual_joint_meeting once the year has begun."""
    _require_aware(as_of, "as_of")
    prefix, _, ref = state.key.partition(":")  # checked by KeyState
    return _evaluate(prefix, ref, state.events, as_of, calendar)


def _evaluate(
    prefix: str, ref: str, events: Sequence[Event], as_of: datetime, calendar: WorkingDayCalendar
) -> list[Obligation]:
    if prefix == "year":
        found = annual_joint_meeting(int(ref), events, as_of, calendar)
        return [] if found is None else [found]
    out = []
    for rule in RULES[prefix]:
        obligation = rule(ref, events, as_of, calendar)
        if obligation is not None:
            out.append(obligation)
    series = SERIES_RULES.get(prefix)
    if series is not None:
        for many in series:
            out.extend(many(ref, events, as_of, calendar))
    if len(out) > 1:
        out.sort(key=sort_key)
    return out


def findings(state: KeyState, as_of: datetime) -> list[Finding]:
    """The findings of one key at ``as_of`` (transfers only: ``case:`` keys)."""
    _require_aware(as_of, "as_of")
    prefix, _, ref = state.key.partition(":")
    return _findings(prefix, ref, state.events, as_of)


def _findings(prefix: str, ref: str, events: Sequence[Event], as_of: datetime) -> list[Finding]:
    return transfer_findings(ref, events, as_of) if prefix == "case" else []


def warn_at(obligation: Obligation, calendar: WorkingDayCalendar) -> datetime | None:
    """When the ``due_soon`` warning begins: 00:00 Asia/Shanghai of the last working day of the
    period (the due day itself for a working-day period; for the annual meeting the last working
    day on or before 12-31). None while the clock is stopped."""
    if obligation.clock_stopped_since is not None:
        return None
    day: date = shanghai_date(obligation.due_at)
    for _ in range(366):
        if calendar.is_working_day(day):
            break
        day -= timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def active_alerts(
    obligations: Iterable[Obligation], as_of: datetime | None, calendar: WorkingDayCalendar
) -> dict[tuple[str, str], Obligation]:
    """The alerts whose condition holds at ``as_of``, by (obligation_id, alert kind):
    ``missed`` while the obligation is missed; ``due_soon`` while it is open, its clock running
    and :func:`warn_at` reached."""
    out: dict[tuple[str, str], Obligation] = {}
    if as_of is None:
        return out
    for o in obligations:
        if o.status == "missed":
            out[(o.obligation_id, "missed")] = o
        elif o.status == "open":
            w = warn_at(o, calendar)
            if w is not None and w <= as_of <= o.due_at:
                out[(o.obligation_id, "due_soon")] = o
    return out


# -- streaming -------------------------------------------------------------------------------------


def apply(
    state: KeyState, event: Event, calendar: WorkingDayCalendar, now: datetime
) -> tuple[KeyState, list[Change]]:
    """Add ``event`` to its key's state and re-evaluate at ``now`` (the stream's watermark; a
    ``now`` earlier than the state's last evaluation is raised to it). Returns the new state and
    the changes since the last evaluation. Idempotent: applying an event already seen changes
    nothing (except what the passing of time does)."""
    return advance(state.with_event(event), now, calendar)


def advance(state: KeyState, now: datetime, calendar: WorkingDayCalendar) -> tuple[KeyState, list[Change]]:
    """Re-evaluate the state at ``now`` (a due time or warning time has passed). Returns the new
    state and the changes: an open obligation whose due time passed becomes ``missed`` and raises
    the ``missed`` alert once; a late fulfilment turns it ``late`` and resolves the alert."""
    _require_aware(now, "now")
    as_of = now if state.as_of is None or now > state.as_of else state.as_of
    obligations = evaluate(state, as_of, calendar)
    found = findings(state, as_of)
    changes: list[Change] = []
    before = {o.obligation_id: o for o in state.obligations}
    for o in obligations:
        prev = before.get(o.obligation_id)
        if prev is None or not prev.same_facts(o):
            changes.append(ObligationChanged(o, prev, as_of))
    changes.extend(_alert_changes(state.obligations, state.as_of, obligations, as_of, calendar))
    old_findings = {f.finding_id: f for f in state.findings}
    new_findings = {f.finding_id: f for f in found}
    changes.extend(FindingRaised(f, as_of) for i, f in new_findings.items() if i not in old_findings)
    changes.extend(FindingWithdrawn(f, as_of) for i, f in old_findings.items() if i not in new_findings)
    # built, not replace()d: replace() costs more than the rest of this line
    new_state = KeyState(state.key, state.events, as_of, tuple(obligations), tuple(found))
    return new_state, changes


def restate(state: KeyState, calendar: WorkingDayCalendar) -> list[Change]:
    """The facts that state the key as it stands at its last evaluation, as if nothing had been
    said before: each obligation (``previous`` None), each alert active at ``as_of`` raised, each
    finding raised; ``at`` is the state's ``as_of``.

    For a shell that cannot tell whether the facts of a step reached their readers: a stream
    processor killed after storing a state but before its facts were sent gets the step's input
    again, and applying it changes nothing (:func:`apply` is idempotent), so the facts would be
    lost. Said again instead, they are the same facts (obligation, alert and finding ids are
    stable); the readers keep each once. An alert raised and resolved within the lost step is
    not restated (it is no longer active)."""
    as_of = state.as_of
    if as_of is None:
        return []
    changes: list[Change] = [ObligationChanged(o, None, as_of) for o in state.obligations]
    changes.extend(_alert_changes((), None, state.obligations, as_of, calendar))
    changes.extend(FindingRaised(f, as_of) for f in state.findings)
    return changes


def _alert_changes(
    old: Sequence[Obligation],
    old_as_of: datetime | None,
    new: Sequence[Obligation],
    as_of: datetime,
    calendar: WorkingDayCalendar,
) -> list[Change]:
    before = active_alerts(old, old_as_of, calendar)
    after = active_alerts(new, as_of, calendar)
    current = {o.obligation_id: o for o in new}
    out: list[Change] = []
    for (oid, kind), o in sorted(before.items()):
        if (oid, kind) in after:
            continue
        now_o = current.get(oid, o)
        if now_o.fulfilled_at is not None:
            resolved_at = now_o.fulfilled_at
        elif kind == "due_soon" and now_o.status == "missed":
            resolved_at = now_o.due_at
        else:
            resolved_at = as_of
        out.append(AlertResolved(kind, now_o, resolved_at))
    for (oid, kind), o in sorted(after.items()):
        if (oid, kind) in before:
            continue
        raised_at = o.due_at if kind == "missed" else warn_at(o, calendar) or as_of
        out.append(Alert(kind, o, raised_at))
    return out


def due_times(state: KeyState) -> list[tuple[str, datetime]]:
    """(obligation_id, due_at) of the open obligations whose clock runs, as of the last
    evaluation: the entries of a worker's durable deadline index. The obligation is missed from
    the first instant after ``due_at`` (:func:`next_wakeup` gives that instant)."""
    running = [o for o in state.obligations if o.status == "open" and o.clock_stopped_since is None]
    return sorted(((o.obligation_id, o.due_at) for o in running), key=lambda x: (x[1], x[0]))


def next_wakeup(state: KeyState, calendar: WorkingDayCalendar) -> datetime | None:
    """The earliest moment after the last evaluation at which :func:`advance` may change
    something: a ``due_soon`` warning begins, an open obligation turns missed (one second after
    its due time: 00:00 of the next day), or a fact already in the state becomes known (an event
    dated in the future of the watermark, or a decision's publication in a replayed file)."""
    as_of = state.as_of
    candidates: list[datetime] = []
    for o in state.obligations:
        if o.status != "open" or o.clock_stopped_since is not None:
            continue
        candidates.append(o.due_at + _ONE_SECOND)
        w = warn_at(o, calendar)
        if w is not None:
            candidates.append(w)
    for e in state.events:
        candidates.append(e.occurred_at)
        if e.type in ("ApprovalIssued", "PenaltyDecided", "CoerciveMeasureDecided"):
            candidates.append(e.published_at or e.recorded_at)
    later = [c for c in candidates if as_of is None or c > as_of]
    return min(later) if later else None


# -- batch -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything a batch of events obliges at ``as_of``: obligations sorted by (due_at,
    obligation_id), findings by (at, finding_id), and the states per key (none when
    :func:`evaluate_events` is told not to keep them)."""

    as_of: datetime
    obligations: list[Obligation]
    findings: list[Finding]
    states: dict[str, KeyState]


def group_by_key(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events of each correlation key (an event may belong to several keys)."""
    return {key: group if type(group) is list else [group] for key, group in _groups(events).items()}


def _groups(events: Iterable[Event]) -> dict[str, Any]:
    """:func:`group_by_key`, except that a key of one event holds that event, not a list of it
    (most keys of a batch have one: a list each would be built and freed for nothing)."""
    groups: dict[str, Any] = {}
    one_key = ONE_KEY
    for event in events:
        hit = one_key.get(event.type)
        if hit is not None:  # the usual case: the key of correlation_keys, without its list
            _add(groups, f"{hit[0]}{event.fields[hit[1]]}", event)
        else:
            for key in correlation_keys(event):
                _add(groups, key, event)
    return groups


def _add(groups: dict[str, Any], key: str, event: Event) -> None:
    seen = groups.get(key)
    if seen is None:
        groups[key] = event
    elif type(seen) is list:
        seen.append(event)
    else:
        groups[key] = [seen, event]


def years_to_assess(events: Iterable[Event], as_of: datetime) -> range:
    """The years whose annual_joint_meeting is evaluated: from the year of the earliest event
    known at ``as_of`` (or as_of's year) to as_of's year."""
    last = shanghai_date(as_of).year
    # the year of the earliest instant: a later instant is never in an earlier Shanghai year
    earliest: datetime | None = None
    for e in events:  # min() of the times known at as_of, in a plain loop (it sees every event)
        t = e.occurred_at
        if t <= as_of and (earliest is None or t < earliest):
            earliest = t
    first = last if earliest is None else shanghai_date(earliest).year
    return range(min(first, last), last + 1)


def evaluate_events(
    events: Iterable[Event], as_of: datetime, calendar: WorkingDayCalendar, *, keep_states: bool = True
) -> Evaluation:
    """Fold ``events`` (any order, duplicates allowed) into per-key states and evaluate them at
    ``as_of``: what ``hzbus replay`` prints and what the scorecard counts. ``keep_states=False``
    leaves :attr:`Evaluation.states` empty (the obligations and findings are the same): for a
    shell that prints or counts them only, which then neither builds nor frees a state per key."""
    _require_aware(as_of, "as_of")
    # in the events' own zone object: comparing aware datetimes that share a tzinfo skips
    # two utcoffset() calls each, and the rules compare as_of with every event time
    as_of = as_of.astimezone(SHANGHAI)
    events = list(events)
    groups = _groups(events)
    for year in years_to_assess(events, as_of):
        groups.setdefault(year_key(year), [])
    obligations: list[Obligation] = []
    found: list[Finding] = []
    states: dict[str, KeyState] = {}
    for key, group in groups.items():
        # evaluate(state) and findings(state) of the key's state, built once (as_of checked above)
        prefix, _, ref = key.partition(":")
        events_ = unique_events(group) if type(group) is list else (group,)
        obs = _evaluate(prefix, ref, events_, as_of, calendar)
        fnd = _findings(prefix, ref, events_, as_of)
        if keep_states:
            states[key] = _key_state(key, events_, as_of, tuple(obs), tuple(fnd))
        obligations.extend(obs)
        found.extend(fnd)
    obligations = _by_due_then_id(obligations)
    found.sort(key=_by_finding_id)  # by (at, finding_id), likewise
    found.sort(key=_by_at)
    return Evaluation(as_of, obligations, found, states)


def _by_due_then_id(obligations: list[Obligation]) -> list[Obligation]:
    """``sorted(obligations, key=sort_key)``: by (due_at, obligation_id), equal pairs in their
    order. Obligations share few due times (the end of a working day), so they are grouped by
    it and only each group is sorted by id, instead of all of them by id and then by due time:
    comparing ids is most of the work, and a group needs fewer comparisons per id."""
    groups: dict[datetime, list[Obligation]] = {}
    for o in obligations:
        due = o.due_at
        group = groups.get(due)
        if group is None:
            groups[due] = [o]
        else:
            group.append(o)
    out: list[Obligation] = []
    for due in sorted(groups):
        group = groups[due]
        if len(group) > 1:
            group.sort(key=_by_obligation_id)
        out.extend(group)
    return out


def _key_state(
    key: str,
    events: tuple[Event, ...],
    as_of: datetime,
    obligations: tuple[Obligation, ...],
    findings: tuple[Finding, ...],
) -> KeyState:
    """``KeyState(key, events, as_of, obligations, findings)`` built as a draft of its slots
    (``domain.values.draft_class``), without the interpreted ``__init__`` and its
    ``__post_init__`` check of the key: :func:`evaluate_events` makes its keys with
    :func:`correlation_keys` and :func:`year_key`, which give only known kinds.
    tests/unit/test_obligations_engine.py checks every field is set as ``KeyState(...)`` sets it."""
    state: Any = _new(_STATE_DRAFT)
    state.key = key
    state.events = events
    state.as_of = as_of
    state.obligations = obligations
    state.findings = findings
    state.__class__ = KeyState
    return state


_STATE_DRAFT: Final = draft_class(KeyState)
_new: Final[Callable[[type], Any]] = object.__new__
