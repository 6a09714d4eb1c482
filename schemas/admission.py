"""What a consumer admits from the bus: the checks the ClickHouse sink and the worker make on
every record before it becomes a fact. A refused record gets a named reason (the sink keeps it
as a dead letter, the worker skips it with the same reason); it never stops a consumer.

The checks, in order (each reason starts with its name):

- ``oversized``: the record is larger than ``MAX_EVENT_BYTES`` (64 KiB). Department records
  are a few hundred bytes; the bound keeps one record from filling a key's state in the worker
  (its table changelog records, like every Kafka record, stop at about 1 MiB). ``hzbus
  publish`` rejects the same records before they reach the bus.
- ``does not decode``: not an event of the contract (``codec.DecodeError``, see wire-format.md).
- ``wrong topic``: a valid event of a type that belongs to another topic family. Per-key order
  holds only within one family's topic, and the family is part of the contract
  (``hzbus.topic`` in each schema).
- ``unknown department``: a department-valued field (``"hzbus.refers": "department"``) names no
  department of the registry: a department publishes only as itself, a registered
  identity [信息资源共享机制 五], and every obligation needs a responsible department.
- ``clock skew``: ``occurred_at`` or ``recorded_at`` is later than the record's publication
  time (the broker's append time) by more than ``MAX_SKEW`` (10 minutes), or ``occurred_at``
  is later than ``recorded_at`` by more than that; or a time is before ``EARLIEST``
  (2000-01-01, e.g. a clock reset to 1970). Publication is the broker's time, never a time the
  sender typed [协作机制 三(二)1]: a business time in the future of publication would start a
  deadline clock in the future. Times in the past are accepted (a late share is a fact to
  score, not bad input). ``hzbus publish`` applies the same bounds against its own clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from domain.departments import load_registry
from domain.events import SHANGHAI, Event
from schemas import codec

#: the largest record a consumer admits (and the publisher publishes), Avro bytes
MAX_EVENT_BYTES = 64 * 1024
#: tolerated difference between a department's clock and the broker's (or the adapter's)
MAX_SKEW = timedelta(minutes=10)
#: no business or adapter time of this bus is older (the notice is of 2016)
EARLIEST = datetime(2000, 1, 1, tzinfo=SHANGHAI)

_SKEW_MS = int(MAX_SKEW.total_seconds() * 1000)
_EARLIEST_MS = int(EARLIEST.timestamp() * 1000)


class _Contract:
    """Per type: its topic family and department-valued fields; the registry's codes (loaded once)."""

    def __init__(self) -> None:
        self.families = {t: codec.topic_family(t) for t in codec.event_types()}
        self.department_fields = {
            t: tuple(f["name"] for f in codec.schema_of(t)["fields"] if f.get("hzbus.refers") == "department")
            for t in codec.event_types()
        }
        self.codes = frozenset(d.code for d in load_registry())


@cache
def _contract() -> _Contract:
    return _Contract()


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(SHANGHAI).isoformat()
    except (OverflowError, ValueError, OSError):
        return f"{ms} ms since 1970"


def _unknown(code: str, name: str) -> str:
    return (
        f"unknown department: {code!r} in field {name!r} is not in the department registry "
        "[信息资源共享机制 五]"
    )


def size_refusal(size: int) -> str | None:
    """The reason to refuse a record of ``size`` bytes, or None."""
    if size > MAX_EVENT_BYTES:
        return f"oversized: {size:,} bytes, over the bus limit of {MAX_EVENT_BYTES:,} bytes per event"
    return None


def refusal(
    event_type: str,
    source_dept: str,
    fields: Mapping[str, Any],
    occurred_ms: int,
    recorded_ms: int,
    *,
    topic_family: str | None,
    published_ms: int,
) -> str | None:
    """The reason to refuse a decoded event found on ``topic_family``'s topic (None: not known,
    not checked) and published (appended by the broker) at ``published_ms``, or None to admit
    it. Times in epoch ms."""
    contract = _contract()
    family = contract.families.get(event_type)
    if family != topic_family and topic_family is not None:
        return f"wrong topic: {event_type} belongs on the {family} topic, found on {topic_family}"
    codes = contract.codes
    if source_dept not in codes:
        return _unknown(source_dept, "source_dept")
    for name in contract.department_fields[event_type]:
        if name != "source_dept":
            value = fields.get(name)
            for code in value if isinstance(value, list) else (value,):
                if isinstance(code, str) and code not in codes:
                    return _unknown(code, name)
    latest = published_ms + _SKEW_MS
    if not (_EARLIEST_MS <= occurred_ms <= latest and _EARLIEST_MS <= recorded_ms <= latest):
        return _skew(occurred_ms, recorded_ms, published_ms)
    if occurred_ms > recorded_ms + _SKEW_MS:
        return (
            f"clock skew: occurred_at {_iso(occurred_ms)} is after recorded_at {_iso(recorded_ms)} "
            f"by more than {MAX_SKEW}"
        )
    return None


def _skew(occurred_ms: int, recorded_ms: int, published_ms: int) -> str:
    for name, ms in (("occurred_at", occurred_ms), ("recorded_at", recorded_ms)):
        if ms > published_ms + _SKEW_MS:
            return (
                f"clock skew: {name} {_iso(ms)} is after its publication time {_iso(published_ms)} "
                f"(the broker's) by more than {MAX_SKEW} [协作机制 三(二)1]"
            )
    name, ms = ("occurred_at", occurred_ms) if occurred_ms < _EARLIEST_MS else ("recorded_at", recorded_ms)
    return f"clock skew: {name} {_iso(ms)} is before {EARLIEST.date()} (a clock reset?)"


def event_refusal(event: Event, *, topic_family: str | None, published_ms: int) -> str | None:
    """:func:`refusal` of a decoded :class:`Event`."""
    return refusal(
        event.type,
        event.source_dept,
        event.fields,
        int(event.occurred_at.timestamp() * 1000),
        int(event.recorded_at.timestamp() * 1000),
        topic_family=topic_family,
        published_ms=published_ms,
    )
