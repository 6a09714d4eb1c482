"""What every rule shares: which facts are known at ``as_of``, and how a due time, a fulfilment
and ``as_of`` give a status and a delay (domain.md, "Time rules")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Final

from domain.calendar import Deadline, WorkingDayCalendar, shanghai_date
from domain.events import Event
from domain.obligations.model import CLAUSES, RULE_VERSION, Obligation


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
) -> Obligation:
    """The obligation at ``as_of``: ``met`` when fulfilled by the due time, ``late`` after it;
    unfulfilled, ``missed`` once ``as_of`` is past the due time unless the clock is stopped
    (then ``open``). A fulfilment while the clock is stopped is on time."""
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
    o = _new(Obligation)  # Obligation(obligation_id=..., ..., fulfilled_by=...), through its slots
    _set_obligation_id(o, f"{kind}:{ref}")
    _set_kind(o, kind)
    _set_ref(o, ref)
    _set_responsible_dept(o, responsible)
    _set_started_at(o, started_at)
    _set_due_at(o, due_at)
    _set_status(o, status)
    _set_fulfilled_at(o, fulfilled_at)
    _set_provisional(o, deadline.provisional)
    _set_clause(o, CLAUSES[kind])
    _set_rule_version(o, RULE_VERSION)
    _set_calendar_version(o, calendar.version)
    _set_period_working_days(o, period)
    _set_extended(o, extended)
    _set_extension_reason(o, extension_reason)
    _set_paused_working_days(o, paused_working_days)
    _set_clock_stopped_since(o, clock_stopped_since)
    _set_delay_working_days(o, delay)
    _set_trigger_event_id(o, trigger.event_id)
    _set_fulfilled_by(o, fulfilled_by)
    return o


# settle builds each Obligation as its __init__ would (domain.values.fast_init: every field
# stored through its slot's descriptor; Obligation has no __post_init__), from compiled code
# without the interpreted __init__: tests/unit/test_obligations_rules.py checks the fields are
# all set, in the order of the dataclass's
def _setter(name: str) -> Callable[[Obligation, object], None]:
    setter: Callable[[Obligation, object], None] = Obligation.__dict__[name].__set__
    return setter


_new: Final[Callable[[type[Obligation]], Obligation]] = object.__new__
SETTLED_FIELDS: Final = (
    "obligation_id",
    "kind",
    "ref",
    "responsible_dept",
    "started_at",
    "due_at",
    "status",
    "fulfilled_at",
    "provisional",
    "clause",
    "rule_version",
    "calendar_version",
    "period_working_days",
    "extended",
    "extension_reason",
    "paused_working_days",
    "clock_stopped_since",
    "delay_working_days",
    "trigger_event_id",
    "fulfilled_by",
)
_set_obligation_id: Final = _setter("obligation_id")
_set_kind: Final = _setter("kind")
_set_ref: Final = _setter("ref")
_set_responsible_dept: Final = _setter("responsible_dept")
_set_started_at: Final = _setter("started_at")
_set_due_at: Final = _setter("due_at")
_set_status: Final = _setter("status")
_set_fulfilled_at: Final = _setter("fulfilled_at")
_set_provisional: Final = _setter("provisional")
_set_clause: Final = _setter("clause")
_set_rule_version: Final = _setter("rule_version")
_set_calendar_version: Final = _setter("calendar_version")
_set_period_working_days: Final = _setter("period_working_days")
_set_extended: Final = _setter("extended")
_set_extension_reason: Final = _setter("extension_reason")
_set_paused_working_days: Final = _setter("paused_working_days")
_set_clock_stopped_since: Final = _setter("clock_stopped_since")
_set_delay_working_days: Final = _setter("delay_working_days")
_set_trigger_event_id: Final = _setter("trigger_event_id")
_set_fulfilled_by: Final = _setter("fulfilled_by")
