"""What every rule shares: which facts are known at ``as_of``, and how a due time, a fulfilment
and ``as_of`` give a status and a delay (domain.md, "Time rules")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Final

from domain.calendar import Deadline, WorkingDayCalendar, shanghai_date
from domain.events import Event
from domain.obligations.model import CLAUSES, RULE_VERSION, Obligation
from domain.values import draft_class


def known(events: Iterable[Event], as_of: datetime, *types: str) -> Iterator[Event]:
    """The events of ``types`` whose business time is not after ``as_of``, in time order."""
    return (e for e in events if e.type in types and e.occurred_at <= as_of)


def first_known(events: Iterable[Event], as_of: datetime, *types: str) -> Event | None:
    """The earliest event of ``types`` known at ``as_of`` (events are sorted by time, then id)."""
    for e in events:  # a plain loop: this runs for every rule of every key
        if e.type in types and e.occurred_at <= as_of:
            return e
    return None


def publication_time(event: Event) -> datetime:
    """When a fact reached the bus: the broker's append time, or ``recorded_at`` for an event
    replayed from a file (domain.md: never a time the sender typed) [协作机制 三(二)1]."""
    return event.published_at if event.published_at is not None else event.recorded_at


class Fulfilment:
    """The fact that fulfils an obligation: its time and event id. A plain class, not a
    dataclass: compiled, it is a native class built without an interpreted ``__init__`` (a
    dataclass keeps the one ``dataclasses`` generates)."""

    def __init__(self, at: datetime, event_id: str) -> None:
        self.at: Final = at
        self.event_id: Final = event_id


def fulfilment_by(event: Event | None) -> Fulfilment | None:
    return None if event is None else Fulfilment(event.occurred_at, event.event_id)


def delay_working_days(calendar: WorkingDayCalendar, due_at: datetime, when: datetime) -> int:
    """Working days from the due date to ``when`` (after the due time): a day off counts as the
    next working day, so anything after the due time is at least 1 working day late."""
    day = shanghai_date(when)
    if not calendar.is_working_day(day):
        day = calendar.next_working_day(day)
    return max(1, calendar.working_days_between(shanghai_date(due_at), day))


def settle(
    *,
    kind: str,
    ref: str,
    responsible: str,
    trigger: Event,
    started_at: datetime,
    deadline: Deadline,
    fulfilment: Fulfilment | None,
    as_of: datetime,
    calendar: WorkingDayCalendar,
    period: int,
    extended: bool = False,
    extension_reason: str | None = None,
    paused_working_days: int = 0,
    clock_stopped_since: datetime | None = None,
    obligation_id: str | None = None,
) -> Obligation:
    """The obligation at ``as_of``: ``met`` when fulfilled by the due time, ``late`` after it;
    unfulfilled, ``missed`` once ``as_of`` is past the due time unless the clock is stopped
    (then ``open``). A fulfilment while the clock is stopped is on time. The id is
    ``f"{kind}:{ref}"`` unless ``obligation_id`` is given (a ref with several clocks)."""
    due_at = deadline.due_at
    delay = 0
    if fulfilment is not None and fulfilment.at <= as_of:
        on_time = clock_stopped_since is not None or fulfilment.at <= due_at
        status = "met" if on_time else "late"
        if not on_time:
            delay = delay_working_days(calendar, due_at, fulfilment.at)
        fulfilled_at: datetime | None = fulfilment.at
        fulfilled_by: str | None = fulfilment.event_id
    else:
        fulfilled_at = fulfilled_by = None
        if clock_stopped_since is None and as_of > due_at:
            status = "missed"
            delay = delay_working_days(calendar, due_at, as_of)
        else:
            status = "open"
    # Obligation(obligation_id=..., ..., fulfilled_by=...), built as a draft (domain.values)
    o: Any = _new(_DRAFT)
    o.obligation_id = f"{kind}:{ref}" if obligation_id is None else obligation_id
    o.kind = kind
    o.ref = ref
    o.responsible_dept = responsible
    o.started_at = started_at
    o.due_at = due_at
    o.status = status
    o.fulfilled_at = fulfilled_at
    o.provisional = deadline.provisional
    o.clause = CLAUSES[kind]
    o.rule_version = RULE_VERSION
    o.calendar_version = calendar.version
    o.period_working_days = period
    o.extended = extended
    o.extension_reason = extension_reason
    o.paused_working_days = paused_working_days
    o.clock_stopped_since = clock_stopped_since
    o.delay_working_days = delay
    o.trigger_event_id = trigger.event_id
    o.fulfilled_by = fulfilled_by
    o.__class__ = Obligation
    return o


# settle builds each Obligation as its __init__ would (Obligation has no __post_init__), from
# compiled code, without the interpreted __init__: a draft of the same slots filled in, then
# made an Obligation (domain.values.draft_class); tests/unit/test_obligations_rules.py checks
# every field is set as Obligation(...) sets it
_DRAFT: Final = draft_class(Obligation)
_new: Final[Callable[[type], Any]] = object.__new__
