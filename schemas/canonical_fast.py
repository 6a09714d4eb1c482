"""Table-driven reading of canonical JSON objects into events: the fast path of
``codec.from_canonical`` and the line loop of ``hzbus replay``.

Compiled to a C extension with mypyc when built (``python -m hzbus.native build``;
docs/performance.md, "Compiled hot paths"); plain Python otherwise, with the same results. It
replaced the per-schema readers the codec generated with ``exec`` (which mypyc cannot compile).
It handles the ordinary case only: an object of known fields with values of exactly the
schema's types, times written ``YYYY-MM-DDTHH:MM:SS+08:00`` or read by ``fromisoformat``.
Anything else raises (:class:`Slow`, or any error on the way), and the codec's general code
decides and explains, exactly as before.

This module imports nothing of the project: the codec describes each schema to it
(:class:`FieldSpec`, with the kinds of ``schemas.avro_fast``) and hands it the event class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

import orjson

from schemas.avro_fast import (  # the kinds of value (codec._Type.kind), numbered once
    ARRAY,
    BOOLEAN,
    DATE,
    DOUBLE,
    ENUM,
    FLOAT,
    INT,
    LONG,
    STRING,
    TIMESTAMP,
)


class Slow(Exception):
    """Not the ordinary case: the general reader decides."""


#: the keys of every event besides its type's own fields
_COMMON = ("event_id", "source_dept", "occurred_at", "recorded_at")
_TYPE_AND_COMMON = frozenset(("type", *_COMMON))
#: a value no JSON object holds
_ABSENT: object = object()


class FieldSpec:
    """One field of a type: its name, kind (and, for an array, its items' kind), whether it
    may be null or absent, the allowed values of an enum, and the full-match of its pattern."""

    def __init__(
        self,
        name: str,
        kind: int,
        optional: bool,
        symbols: frozenset[str],
        item_kind: int,
        item_symbols: frozenset[str],
        pattern: Callable[[str], object] | None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.optional = optional
        self.symbols = symbols
        self.item_kind = item_kind
        self.item_symbols = item_symbols
        self.pattern = pattern


class TimeReader:
    """``codec._parse_timestamp`` of an ordinary ISO string in ``zone`` (+08:00); raises
    otherwise. The usual form, ``2026-09-30T10:00:00+08:00``, is its hour (parsed once,
    remembered) plus its minutes and seconds, read from their digits. An hour is remembered
    only from a time that ``fromisoformat`` read and that ``isoformat`` writes back
    identically, so whatever the cache answers, the general parser answers the same."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.hours: dict[str, datetime] = {}
        #: MM:SS as minutes * 60 + seconds (MM and SS from 00 to 59)
        self.minute_second: list[timedelta] = [timedelta(seconds=s) for s in range(3600)]

    def read(self, value: object) -> datetime:
        if not isinstance(value, str):
            raise Slow()
        if len(value) == 25 and value[13] == ":" and value[16] == ":" and value.endswith("+08:00"):
            hour = self.hours.get(value[:13])
            if hour is not None:
                # the digits of MM:SS read in place (no slice, no lookup by text)
                m1 = ord(value[14]) - 48
                m2 = ord(value[15]) - 48
                s1 = ord(value[17]) - 48
                s2 = ord(value[18]) - 48
                if 0 <= m1 <= 5 and 0 <= m2 <= 9 and 0 <= s1 <= 5 and 0 <= s2 <= 9:
                    return hour + self.minute_second[(m1 * 10 + m2) * 60 + s1 * 10 + s2]
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise Slow()
        micro = parsed.microsecond
        if micro % 1000:
            parsed = parsed.replace(microsecond=micro // 1000 * 1000)
        local = parsed.astimezone(self.zone)
        if len(self.hours) < 100_000 and local.isoformat() == value:
            self.hours[value[:13]] = local.replace(minute=0, second=0, microsecond=0)
        return local


class EventMaker:
    """Builds instances of a frozen, slotted event class with the fields ``type, event_id,
    source_dept, occurred_at, recorded_at, fields, published_at`` (in that order) without its
    ``__init__``, so without the ``__post_init__`` check (the reader's times are aware by
    construction): a draft of the same slots filled in, then given the class (as
    ``domain.values.draft_class`` does; CPython checks the two layouts are the same)."""

    def __init__(self, cls: type) -> None:
        names = ("type", "event_id", "source_dept", "occurred_at", "recorded_at", "fields", "published_at")
        slots = tuple(getattr(cls, "__slots__", ()))
        if slots != names:
            raise TypeError(f"{cls.__name__}: expected the slots {names}, got {slots}")
        self.cls = cls
        self.draft: type = type(f"{cls.__name__}Draft", (), {"__slots__": names})
        self.new: Callable[[type], Any] = object.__new__

    def make(
        self,
        event_type: str,
        event_id: str,
        source_dept: str,
        occurred_at: datetime,
        recorded_at: datetime,
        fields: dict[str, object],
    ) -> Any:
        event = self.new(self.draft)
        event.type = event_type
        event.event_id = event_id
        event.source_dept = source_dept
        event.occurred_at = occurred_at
        event.recorded_at = recorded_at
        event.fields = fields
        event.published_at = None
        event.__class__ = self.cls
        return event


class ObjectReader:
    """``codec.from_canonical`` of one type for an ordinary, valid object (see the module)."""

    def __init__(
        self,
        event_type: str,
        allowed: frozenset[str],
        fields: list[FieldSpec],
        times: TimeReader,
        maker: EventMaker,
    ) -> None:
        if len(allowed) != len(fields) + 5 or {f.name for f in fields} | _TYPE_AND_COMMON != allowed:
            raise ValueError(f"{event_type}: the allowed keys must be its fields, 'type' and {_COMMON}")
        self.event_type = event_type
        self.allowed = allowed
        self.fields = fields
        #: the fields of an event, in order, each None: copied and filled in for each object
        #: (the copy is sized at once; filling in adds no key)
        self.blank: dict[str, object] = dict.fromkeys([f.name for f in fields])
        self.times = times
        self.maker = maker

    def read(self, obj: dict[str, Any]) -> Any:
        # every key of obj is allowed when the allowed keys found in it are as many: "type"
        # (the caller found it), the four common fields (required below) and the type's own
        # fields present (null or not), counted as they are looked up
        present = 5
        event_id = obj.get("event_id")
        source_dept = obj.get("source_dept")
        if not isinstance(event_id, str) or not isinstance(source_dept, str):
            raise Slow()
        times = self.times
        occurred_at = times.read(obj.get("occurred_at"))
        recorded_at = times.read(obj.get("recorded_at"))
        out = self.blank.copy()
        absent = _ABSENT
        for f in self.fields:
            v = obj.get(f.name, absent)
            if v is absent or v is None:  # out has None for it
                if not f.optional:
                    raise Slow()
                if v is None:
                    present += 1
                continue
            present += 1
            kind = f.kind
            if kind == ARRAY:
                if type(v) is not list:
                    raise Slow()
                items: list[object] = []
                for item in v:
                    items.append(self.value(item, f.item_kind, f.item_symbols))
                out[f.name] = items
            else:
                out[f.name] = self.value(v, kind, f.symbols)
            pattern = f.pattern
            if pattern is not None and (type(v) is not str or not pattern(v)):
                raise Slow()
        if present != len(obj):  # a key of no field of the type
            raise Slow()
        return self.maker.make(self.event_type, event_id, source_dept, occurred_at, recorded_at, out)

    def value(self, v: object, kind: int, symbols: frozenset[str]) -> object:
        """One value of ``kind`` (not an array), exactly of its JSON type."""
        if kind == STRING:
            if type(v) is not str:
                raise Slow()
            return v
        if kind == ENUM:
            if type(v) is not str or v not in symbols:
                raise Slow()
            return v
        if kind == BOOLEAN:
            if type(v) is not bool:
                raise Slow()
            return v
        if kind in (INT, LONG):
            if type(v) is not int:
                raise Slow()
            return v
        if kind in (DOUBLE, FLOAT):
            if type(v) is float:
                return v
            if type(v) is not int:
                raise Slow()
            return float(v)
        if kind == TIMESTAMP:
            return self.times.read(v)
        if kind == DATE:
            if type(v) is not str:
                raise Slow()
            return date.fromisoformat(v)
        raise Slow()


def read_lines(
    lines: Iterable[bytes],
    readers: dict[str, ObjectReader],
    general: Callable[[int, bytes, object], Any],
) -> list[Any]:
    """The events of canonical-JSON ``lines`` (numbered from 1), in order: each line that orjson
    reads as an object of a known type in the ordinary case is read here; any other line goes
    to ``general(number, raw, value)`` (``value`` is what orjson read, or None), which returns
    the event or None (a blank or bad line, which it reports itself)."""
    events: list[Any] = []
    loads = orjson.loads
    number = 0
    for raw in lines:
        number += 1
        try:
            value = loads(raw)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is dict:
            event_type = value.get("type")
            if type(event_type) is str:
                reader = readers.get(event_type)
                if reader is not None:
                    try:
                        events.append(reader.read(value))
                        continue
                    except Exception:  # not the ordinary case: the general path decides
                        pass
        event = general(number, raw, value)
        if event is not None:
            events.append(event)
    return events
