"""Valid sample events built generically from the schemas, for tests and benchmarks.

``sample_event(t, n)`` is deterministic: the same ``(t, n)`` gives the same event. Optional
fields are filled for even ``n`` and left ``None`` for odd ``n``, so a pair of samples covers
both branches of every union. It walks the raw ``.avsc`` JSON itself (not the codec's model),
so tests that compare the two catch a codec that misreads a schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from domain.events import SHANGHAI, Event
from schemas import codec

#: Department codes of domain.md used for fields marked ``"hzbus.refers": "department"``.
DEPARTMENTS = ("HZ-ZFJ", "HZ-SJJ", "HZ-HBJ", "HZ-JSJ", "DQ-ZFJ", "AJ-ZFJ")
BASE_TIME = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)


def sample_event(event_type: str, n: int = 0, *, schema: Mapping[str, Any] | None = None) -> Event:
    """A valid event of ``event_type`` (under ``schema``, default the current one)."""
    raw = codec.schema_of(event_type) if schema is None else schema
    occurred_at = BASE_TIME + timedelta(seconds=n, milliseconds=(n % 2) * 125)
    fields = {f["name"]: _value(f, f["type"], n) for f in raw["fields"][len(codec.COMMON_FIELDS) :]}
    return Event(
        type=event_type,
        event_id=f"{event_type}-{n:08d}",
        source_dept=DEPARTMENTS[n % len(DEPARTMENTS)],
        occurred_at=occurred_at,
        recorded_at=occurred_at + timedelta(seconds=5),
        fields=fields,
    )


def sample_events(count: int, event_types: Sequence[str] | None = None) -> list[Event]:
    """``count`` events cycling over ``event_types`` (default: every type), unique ids."""
    types = list(event_types or codec.event_types())
    return [sample_event(types[i % len(types)], i) for i in range(count)]


def _value(field: Mapping[str, Any], t: Any, n: int) -> Any:
    if isinstance(t, list):
        if n % 2:
            return None
        return _value(field, next(b for b in t if b != "null"), n)
    name = field["name"]
    if isinstance(t, dict):
        kind, logical = t["type"], t.get("logicalType")
        if logical == "timestamp-millis":
            return BASE_TIME + timedelta(days=n)
        if logical == "date":
            return date(2027, 12, 31) + timedelta(days=n)
        if kind == "enum":
            canonical = t.get("hzbus.canonical", {})
            symbols = [canonical.get(s, s) for s in t["symbols"]]
            return symbols[n % len(symbols)]
        if kind == "array":
            items = t["items"]
            if isinstance(items, dict) and items.get("type") == "enum":
                return list(items["symbols"][: 1 + n % len(items["symbols"])])
            return [_value(field, items, n + i) for i in range(1 + n % 3)]
        return _value(field, kind, n)
    if t == "string":
        if field.get("hzbus.refers") == "department":
            return DEPARTMENTS[(n + 1) % len(DEPARTMENTS)]
        if field.get("hzbus.pattern"):  # the only pattern is the quarter
            return f"{2026 + n // 4 % 10}Q{n % 4 + 1}"
        return f"{name}-{n:06d}"
    if t == "boolean":
        return n % 2 == 0
    if t in ("double", "float"):
        return 100.5 + n
    if t in ("int", "long"):
        return n
    raise ValueError(f"field {name}: no sample for type {t!r}")
