"""The one codec: canonical JSON ⇄ :class:`~domain.events.Event` ⇄ Avro bytes on the bus.

The ``.avsc`` files in ``schemas/avro`` are the contract (one per event type, the previous
versions in ``schemas/avro/history``); this module is the only place that turns events into
bytes and back. See ``docs/wire-format.md``.

Wire format: Avro *single-object encoding* — ``C3 01``, the 8-byte little-endian
CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the Avro binary
body. The fingerprint names the writer schema among every version kept in the repository;
:func:`decode` resolves it to the current (reader) schema. ``published_at`` is not part of
the body: it is the broker's append time, set by the consumer.

Canonical JSON form: a flat object with ``type``, the common fields (``event_id``,
``source_dept``, ``occurred_at``, ``recorded_at``) and the type's own fields; times are
ISO-8601 with an offset, dates ``YYYY-MM-DD``, enum values as domain.md writes them
(``"12345"`` for the hotline channel, whose Avro symbol is ``hotline_12345``).

Schemas are read lazily, once, on first use; importing this module does no I/O.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from domain.events import SHANGHAI, Event
from schemas import avro_fast, canonical_fast

__all__ = [
    "MAGIC",
    "NAMESPACE",
    "DecodeError",
    "EventError",
    "decode",
    "decode_json_line",
    "encode",
    "encode_json",
    "encode_with",
    "event_types",
    "fingerprint_of",
    "from_canonical",
    "key_field",
    "key_of",
    "schema_of",
    "to_canonical",
    "topic_family",
    "type_of",
    "validate",
]

AVRO_DIR = Path(__file__).resolve().parent / "avro"
HISTORY_DIR = AVRO_DIR / "history"
NAMESPACE = "cn.gov.huzhou.hzbus.events"
#: Marker of Avro single-object encoding (spec: "Single-object encoding").
MAGIC = b"\xc3\x01"
HEADER_SIZE = 10
COMMON_FIELDS = ("event_id", "source_dept", "occurred_at", "recorded_at")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC).astimezone(SHANGHAI)
_EPOCH_DATE = date(1970, 1, 1)
_MS = timedelta(milliseconds=1)
_HISTORY_NAME = re.compile(r"^(?P<type>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[0-9]+)\.avsc$")


class EventError(ValueError):
    """An event (canonical JSON or :class:`Event`) that does not fit its schema.

    The message names the event type, the event id where known, and the field; ``field`` is
    the offending field's name (``None`` when the input is not an object at all).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DecodeError(ValueError):
    """Bytes that are not an event of this bus: too short, bad magic, unknown schema
    fingerprint, or a truncated/corrupt body. ``fingerprint`` is the hex fingerprint read
    from the header where there was one."""

    def __init__(self, message: str, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


# --------------------------------------------------------------------------- schema model


@dataclass(frozen=True, slots=True)
class _Type:
    """The part of an Avro type the codec needs. ``kind`` is one of string, boolean, int,
    long, float, double, timestamp (long timestamp-millis), date (int date), enum, array."""

    kind: str
    symbols: tuple[str, ...] = ()  # enum: canonical values, in symbol order
    to_avro: Mapping[str, str] | None = None  # enum: canonical value -> Avro symbol, where they differ
    from_avro: Mapping[str, str] | None = None
    items: _Type | None = None  # array


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: _Type
    optional: bool
    pattern: re.Pattern[str] | None


@dataclass(frozen=True, slots=True)
class _Spec:
    """One schema version of one event type, ready for the hot path."""

    type: str
    version: int
    family: str
    key: str
    raw: Mapping[str, Any]
    parsed: Any  # fastavro-parsed schema, logical types stripped (the codec converts times itself)
    fingerprint: bytes
    header: bytes
    fields: tuple[_Field, ...]  # the type's own fields, after the common ones
    names: frozenset[str]
    to_avro: tuple[tuple[str, Callable[[Any], Any]], ...]
    from_avro: tuple[tuple[str, Callable[[Any], Any]], ...]


_PRIMITIVES = {"string", "boolean", "int", "long", "float", "double"}


def _type_of(t: Any, where: str) -> tuple[_Type, bool]:
    """(type, optional) of an Avro field type as the .avsc files write it."""
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        if len(t) != 2 or len(branches) != 1:
            raise ValueError(f'{where}: only ["null", T] unions are supported, got {t}')
        return _type_of(branches[0], where)[0], True
    if isinstance(t, str):
        if t in _PRIMITIVES:
            return _Type(t), False
        raise ValueError(f"{where}: unsupported type {t!r}")
    if isinstance(t, dict):
        base, logical = t.get("type"), t.get("logicalType")
        if base == "long" and logical == "timestamp-millis":
            return _Type("timestamp"), False
        if base == "int" and logical == "date":
            return _Type("date"), False
        if base == "enum":
            mapping: dict[str, str] = dict(t.get("hzbus.canonical", {}))
            symbols = tuple(mapping.get(s, s) for s in t["symbols"])
            if not mapping:
                return _Type("enum", symbols), False
            return _Type("enum", symbols, {v: k for k, v in mapping.items()}, mapping), False
        if base == "array":
            items, optional = _type_of(t["items"], where + "[]")
            if optional:
                raise ValueError(f"{where}: optional array items are not supported")
            return _Type("array", items=items), False
        if base in _PRIMITIVES:
            return _Type(base), False
    raise ValueError(f"{where}: unsupported type {t!r}")


def _strip_logical(t: Any) -> Any:
    if isinstance(t, dict):
        return {k: _strip_logical(v) for k, v in t.items() if k != "logicalType"}
    if isinstance(t, list):
        return [_strip_logical(v) for v in t]
    return t


_CRC64_EMPTY = 0xC15D213AA4D7A795


@cache
def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


def _fingerprint(raw: Mapping[str, Any]) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, little-endian (Avro spec, single-object encoding)."""
    table = _crc64_table()
    fp = _CRC64_EMPTY
    for byte in to_parsing_canonical_form(dict(raw)).encode("utf-8"):
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def _ms_of(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _time_of(ms: int) -> datetime:
    return _EPOCH + _MS * ms


def _days_of(value: date) -> int:
    return (value - _EPOCH_DATE).days


def _date_of(days: int) -> date:
    return _EPOCH_DATE + timedelta(days=days)


def _converters(fields: tuple[_Field, ...]) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    enc: list[tuple[str, Any]] = []
    dec: list[tuple[str, Any]] = []
    for f in fields:
        t = f.type
        if t.kind == "timestamp":
            enc.append((f.name, _ms_of))
            dec.append((f.name, _time_of))
        elif t.kind == "date":
            enc.append((f.name, _days_of))
            dec.append((f.name, _date_of))
        elif t.kind == "enum" and t.to_avro and t.from_avro:
            enc.append((f.name, _mapper(t.to_avro)))
            dec.append((f.name, _mapper(t.from_avro)))
        elif t.kind == "array" and t.items is not None:
            items = t.items
            if items.kind in ("timestamp", "date") or items.to_avro:
                raise ValueError(f"field {f.name}: arrays of converted values are not supported")
    return enc, dec


def _mapper(mapping: Mapping[str, str]) -> Callable[[str], str]:
    def convert(value: str) -> str:
        return mapping.get(value, value)

    return convert


def _spec(raw: Mapping[str, Any], origin: str) -> _Spec:
    """Check one .avsc against the conventions of the contract and prepare it."""
    name = raw.get("name")
    if raw.get("type") != "record" or not isinstance(name, str):
        raise ValueError(f"{origin}: not a named record schema")
    if raw.get("namespace") != NAMESPACE:
        raise ValueError(f"{origin}: namespace must be {NAMESPACE}")
    for attr in ("hzbus.topic", "hzbus.key", "hzbus.version"):
        if attr not in raw:
            raise ValueError(f"{origin}: missing attribute {attr!r}")
    fields_raw = raw["fields"]
    common = tuple(f["name"] for f in fields_raw[: len(COMMON_FIELDS)])
    if common != COMMON_FIELDS:
        raise ValueError(f"{origin}: the fields must start with {', '.join(COMMON_FIELDS)}")
    fields = []
    for f in fields_raw[len(COMMON_FIELDS) :]:
        ftype, optional = _type_of(f["type"], f"{origin}: field {f['name']}")
        pattern = f.get("hzbus.pattern")
        fields.append(_Field(f["name"], ftype, optional, re.compile(pattern) if pattern else None))
    key = raw["hzbus.key"]
    if not any(f.name == key and f.type.kind == "string" and not f.optional for f in fields):
        raise ValueError(f"{origin}: key field {key!r} must be a required string field")
    enc, dec = _converters(tuple(fields))
    fingerprint = _fingerprint(raw)
    return _Spec(
        type=name,
        version=int(raw["hzbus.version"]),
        family=str(raw["hzbus.topic"]),
        key=key,
        raw=raw,
        parsed=parse_schema(_strip_logical(raw)),
        fingerprint=fingerprint,
        header=MAGIC + fingerprint,
        fields=tuple(fields),
        names=frozenset(f.name for f in fields),
        to_avro=tuple(enc),
        from_avro=tuple(dec),
    )


@dataclass(frozen=True, slots=True)
class _Writer:
    """A writer schema recognised by :func:`decode`, and how to read it as the current type."""

    spec: _Spec  # the writer's own version
    current: _Spec  # the reader: the current version of the same type
    reader_schema: Any  # None when the writer is the current schema (no resolution needed)


@dataclass(frozen=True, slots=True)
class _Registry:
    current: dict[str, _Spec]
    writers: dict[bytes, _Writer]  # by header: MAGIC + fingerprint
    # fast paths (see the end of this module): by type, and by header for decoders
    readers: dict[str, Callable[[dict[str, Any]], Event]]  # object_readers' read methods
    object_readers: dict[str, canonical_fast.ObjectReader]
    encoders: dict[str, avro_fast.RecordEncoder]
    record_decoders: dict[bytes, avro_fast.RecordDecoder]  # decode and decode_record, by header


_REGISTRY: _Registry | None = None


def _load(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return raw


def _registry() -> _Registry:
    global _REGISTRY
    if _REGISTRY is None:
        current: dict[str, _Spec] = {}
        for path in sorted(AVRO_DIR.glob("*.avsc")):
            spec = _spec(_load(path), path.name)
            if spec.type != path.stem:
                raise ValueError(f"{path.name}: record name {spec.type!r} must match the file name")
            current[spec.type] = spec
        writers = {s.header: _Writer(s, s, None) for s in current.values()}
        for path in sorted(HISTORY_DIR.glob("*.avsc")):
            m = _HISTORY_NAME.match(path.name)
            spec = _spec(_load(path), f"history/{path.name}")
            if not m or m["type"] != spec.type or int(m["version"]) != spec.version:
                raise ValueError(f"history/{path.name}: name must be <Type>.v<hzbus.version>.avsc")
            if spec.type not in current:
                raise ValueError(f"history/{path.name}: no current schema {spec.type}.avsc")
            if spec.header not in writers:
                now = current[spec.type]
                writers[spec.header] = _Writer(spec, now, now.parsed)
        object_readers = {t: _object_reader(s) for t, s in current.items()}
        _REGISTRY = _Registry(
            current,
            writers,
            readers={t: r.read for t, r in object_readers.items()},
            object_readers=object_readers,
            encoders={t: _record_encoder(s) for t, s in current.items()},
            record_decoders={s.header: _record_decoder(s) for s in current.values()},
        )
    return _REGISTRY


def _current(event_type: Any) -> _Spec:
    spec = (_REGISTRY or _registry()).current.get(event_type)
    if spec is None:
        raise _unknown_type(event_type)
    return spec


def _unknown_type(event_type: Any) -> EventError:
    known = sorted(_registry().current)
    hint = ""
    if isinstance(event_type, str):
        close = difflib.get_close_matches(event_type, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    return EventError(
        f"event: field 'type': unknown event type {event_type!r}{hint}; known types: {', '.join(known)}",
        "type",
    )


# --------------------------------------------------------------------------- catalogue


def event_types() -> list[str]:
    """The event types of the contract (one per ``schemas/avro/<Type>.avsc``), sorted."""
    return sorted(_registry().current)


def topic_family(event_type: str) -> str:
    """The topic family (``hzbus.topic``) that carries ``event_type``."""
    return _current(event_type).family


def key_field(event_type: str) -> str:
    """The field whose value is the Kafka record key (``hzbus.key``)."""
    return _current(event_type).key


def key_of(event: Event) -> str:
    """The Kafka record key of ``event``: the value of its type's key field."""
    name = _current(event.type).key
    value = event.fields.get(name)
    if not isinstance(value, str) or not value:
        raise EventError(
            f"{_where(event.type, event.event_id)}: field '{name}': the record key must be a "
            f"non-empty string, got {_kind(value)}",
            name,
        )
    return value


def schema_of(event_type: str) -> dict[str, Any]:
    """The current ``.avsc`` of ``event_type`` as parsed JSON (a copy)."""
    return copy.deepcopy(dict(_current(event_type).raw))


def fingerprint_of(event_type: str) -> str:
    """Hex of the 8 fingerprint bytes (as on the wire) of the current schema of ``event_type``."""
    return _current(event_type).fingerprint.hex()


# --------------------------------------------------------------------------- validation


def _where(event_type: Any, event_id: Any = None) -> str:
    if isinstance(event_id, str) and event_id:
        return f"{event_type} {event_id}"
    return str(event_type)


def _kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _bad(where: str, field: str, label: str, problem: str) -> EventError:
    return EventError(f"{where}: field '{label}': {problem}", field)


def _parse_timestamp(value: Any, where: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(where, field, field, f"bad timestamp: expected an ISO-8601 string, got {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(where, field, field, f"bad timestamp {value!r}: not ISO-8601") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _bad(where, field, field, f"bad timestamp {value!r}: no UTC offset (write e.g. +08:00)")
    # Avro carries milliseconds; finer digits are dropped so that the JSON and Avro forms agree.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000).astimezone(SHANGHAI)


def _from_json(t: _Type, value: Any, where: str, field: str, label: str) -> Any:
    """The Event value of one canonical JSON value, or an EventError naming the field."""
    kind = t.kind
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            raise _bad(where, field, label, f"expected string, got {_kind(value)}")
        if kind == "enum" and value not in t.symbols:
            raise _bad(where, field, label, f"value {value!r} not allowed; allowed: {', '.join(t.symbols)}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _bad(where, field, label, f"expected boolean, got {_kind(value)}")
        return value
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(where, field, label, f"expected number, got {_kind(value)}")
        return float(value)
    if kind in ("int", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, field, label, f"expected integer, got {_kind(value)}")
        return value
    if kind == "timestamp":
        return _parse_timestamp(value, where, label)
    if kind == "date":
        if not isinstance(value, str):
            raise _bad(where, field, label, f"bad date: expected a YYYY-MM-DD string, got {_kind(value)}")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _bad(where, field, label, f"bad date {value!r}: not YYYY-MM-DD") from None
    if kind == "array" and t.items is not None:
        if not isinstance(value, list | tuple):
            raise _bad(where, field, label, f"expected array, got {_kind(value)}")
        return [_from_json(t.items, v, where, field, f"{label}[{i}]") for i, v in enumerate(value)]
    raise AssertionError(kind)  # pragma: no cover - _type_of admits no other kind


def _check_value(t: _Type, value: Any, where: str, field: str, label: str) -> None:
    """Check one Event value (Python types, not JSON) against its type."""
    kind = t.kind
    if kind == "timestamp":
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise _bad(where, field, label, f"expected a timezone-aware datetime, got {_kind(value)}")
    elif kind == "date":
        if not isinstance(value, date) or isinstance(value, datetime):
            raise _bad(where, field, label, f"expected a date, got {_kind(value)}")
    elif kind == "array" and t.items is not None:
        if not isinstance(value, list | tuple):
            raise _bad(where, field, label, f"expected array, got {_kind(value)}")
        for i, item in enumerate(value):
            _check_value(t.items, item, where, field, f"{label}[{i}]")
    else:
        _from_json(t, value, where, field, label)


def _check_pattern(f: _Field, value: Any, where: str) -> None:
    if f.pattern is not None and isinstance(value, str) and not f.pattern.fullmatch(value):
        raise _bad(where, f.name, f.name, f"value {value!r} does not match {f.pattern.pattern}")


def _reject_unknown(spec: _Spec, names: Any, where: str, allowed: frozenset[str]) -> None:
    extra = sorted(str(n) for n in names if n not in allowed)
    if extra:
        raise EventError(
            f"{where}: unknown field(s) {', '.join(repr(n) for n in extra)}; "
            f"{spec.type} has: {', '.join(COMMON_FIELDS + tuple(f.name for f in spec.fields))}",
            extra[0],
        )


def validate(event: Event) -> None:
    """Check an :class:`Event` built in code against its current schema, as strictly as
    :func:`from_canonical` checks JSON. :func:`encode` checks structure only, for speed."""
    _check_event(_current(event.type), event)


def _check_event(spec: _Spec, event: Event) -> None:
    where = _where(event.type, event.event_id)
    for name in ("event_id", "source_dept"):
        value = getattr(event, name)
        if not isinstance(value, str):
            raise _bad(where, name, name, f"expected string, got {_kind(value)}")
    for name in ("occurred_at", "recorded_at"):
        _check_value(_TIMESTAMP, getattr(event, name), where, name, name)
    fields = event.fields
    _reject_unknown(spec, fields, where, spec.names)
    for f in spec.fields:
        value = fields.get(f.name)
        if value is None:
            if not f.optional:
                raise _bad(where, f.name, f.name, "missing required field")
            continue
        _check_value(f.type, value, where, f.name, f.name)
        _check_pattern(f, value, where)


_TIMESTAMP = _Type("timestamp")


# --------------------------------------------------------------------------- canonical JSON


def from_canonical(obj: Mapping[str, Any]) -> Event:
    """The :class:`Event` of one canonical JSON object, validated strictly against the current
    schema of its ``type``. Times come back in +08:00; optional fields may be absent or null
    (both give ``None``). Department codes are not checked here (the producer does that)."""
    if type(obj) is dict and type(event_type := obj.get("type")) is str:
        read = (_REGISTRY or _registry()).readers.get(event_type)
        if read is not None:
            try:
                return read(obj)
            except Exception:  # not the ordinary case: the general code decides and explains
                pass
    if not isinstance(obj, Mapping):
        raise EventError(f"event: expected a JSON object, got {_kind(obj)}")
    if "type" not in obj:
        raise EventError("event: missing required field 'type'", "type")
    event_type = obj["type"]
    if not isinstance(event_type, str):
        raise EventError(f"event: field 'type': expected string, got {_kind(event_type)}", "type")
    spec = _current(event_type)
    event_id = obj.get("event_id")
    where = _where(event_type, event_id)
    all_names = spec.names | _COMMON_AND_TYPE
    _reject_unknown(spec, obj.keys(), where, all_names)
    missing = [n for n in COMMON_FIELDS if n not in obj] + [
        f.name for f in spec.fields if not f.optional and f.name not in obj
    ]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise EventError(f"{where}: missing required field(s) {names}", missing[0])
    for name in ("event_id", "source_dept"):
        if not isinstance(obj[name], str):
            raise _bad(where, name, name, f"expected string, got {_kind(obj[name])}")
    occurred_at = _parse_timestamp(obj["occurred_at"], where, "occurred_at")
    recorded_at = _parse_timestamp(obj["recorded_at"], where, "recorded_at")
    fields: dict[str, Any] = {}
    for f in spec.fields:
        value = obj.get(f.name)
        if value is None:
            if not f.optional:
                raise _bad(where, f.name, f.name, f"expected {_expected(f.type)}, got null")
            fields[f.name] = None
            continue
        fields[f.name] = _from_json(f.type, value, where, f.name, f.name)
        _check_pattern(f, value, where)
    return Event(event_type, obj["event_id"], obj["source_dept"], occurred_at, recorded_at, fields)


_COMMON_AND_TYPE = frozenset((*COMMON_FIELDS, "type"))


def _expected(t: _Type) -> str:
    return {"enum": "string", "timestamp": "an ISO-8601 string", "date": "a YYYY-MM-DD string"}.get(
        t.kind, "number" if t.kind in ("double", "float", "int", "long") else t.kind
    )


def _iso(value: datetime) -> str:
    local = value if value.tzinfo is SHANGHAI else value.astimezone(SHANGHAI)
    return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")


def _to_json(t: _Type, value: Any) -> Any:
    if value is None:
        return None
    kind = t.kind
    if kind == "timestamp":
        return _iso(value)
    if kind == "date":
        return value.isoformat()
    if kind == "array" and t.items is not None:
        return [_to_json(t.items, v) for v in value]
    return value


def to_canonical(event: Event) -> dict[str, Any]:
    """The canonical JSON object of ``event``: ``type``, the common fields, then the type's
    fields in schema order (optional ones as ``null`` when absent). Times in +08:00 with
    millisecond precision where it is nonzero, e.g. ``2026-09-30T10:00:00+08:00``."""
    spec = _current(event.type)
    fields = event.fields
    if not spec.names.issuperset(fields):  # (the message is built only for a refusal)
        _reject_unknown(spec, fields, _where(event.type, event.event_id), spec.names)
    out: dict[str, Any] = {
        "type": event.type,
        "event_id": event.event_id,
        "source_dept": event.source_dept,
        "occurred_at": _iso(event.occurred_at),
        "recorded_at": _iso(event.recorded_at),
    }
    for f in spec.fields:
        value = fields.get(f.name)
        if value is None and not f.optional:
            raise _bad(_where(event.type, event.event_id), f.name, f.name, "missing required field")
        out[f.name] = _to_json(f.type, value)
    return out


def encode_json(event: Event) -> bytes:
    """One line of JSON (without the newline) in the canonical form."""
    return orjson.dumps(to_canonical(event))


def decode_json_line(line: bytes | str) -> Event:
    """The event of one canonical JSON line; malformed JSON is an :class:`EventError`."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"event: not JSON: {exc}") from None
    return from_canonical(obj)


# --------------------------------------------------------------------------- Avro wire format


def encode(event: Event) -> bytes:
    """The single-object Avro encoding of ``event`` under the current schema of its type.

    Checks structure (unknown type, unknown or missing fields, wrong value types, enum
    values) and raises :class:`EventError` naming the field; use :func:`validate` for the
    full strict check of :func:`from_canonical` (patterns, booleans given as numbers)."""
    write = (_REGISTRY or _registry()).encoders.get(event.type)
    if write is not None:
        try:
            fields = event.fields
            if not isinstance(fields, dict):
                fields = dict(fields)
            e = event
            data = write.encode(e.event_id, e.source_dept, e.occurred_at, e.recorded_at, fields)
        except Exception:  # not the ordinary case: fastavro decides and explains
            data = None
        if data is not None:
            return data
    return _encode(_current(event.type), event)


def encode_with(event: Event, writer_schema: Mapping[str, Any]) -> bytes:
    """Encode under another (older) version of the type's schema, as a producer still on that
    version would. For compatibility tests and migration tools; producers use :func:`encode`."""
    spec = _spec(writer_schema, "writer schema")
    if spec.type != event.type:
        raise EventError(f"{event.type}: the writer schema is for {spec.type}", "type")
    return _encode(spec, event)


def _encode(spec: _Spec, event: Event) -> bytes:
    fields = event.fields
    if not spec.names.issuperset(fields):
        _reject_unknown(spec, fields, _where(event.type, event.event_id), spec.names)
    record = dict(fields)
    try:
        record["event_id"] = event.event_id
        record["source_dept"] = event.source_dept
        record["occurred_at"] = (event.occurred_at - _EPOCH) // _MS
        record["recorded_at"] = (event.recorded_at - _EPOCH) // _MS
        for name, convert in spec.to_avro:
            value = record.get(name)
            if value is not None:
                record[name] = convert(value)
        out = BytesIO()
        out.write(spec.header)
        schemaless_writer(out, spec.parsed, record)
    except Exception as exc:  # explain which field, on the slow path only
        raise _explain(spec, event, exc) from exc
    return out.getvalue()


def _explain(spec: _Spec, event: Event, exc: Exception) -> EventError:
    try:
        _check_event(spec, event)
    except EventError as err:
        return err
    return EventError(f"{_where(event.type, event.event_id)}: cannot encode: {type(exc).__name__}: {exc}")


def _header(data: bytes) -> _Writer:
    """The writer named by the 10-byte header; one dict look-up on the hot path."""
    writer = (_REGISTRY or _registry()).writers.get(data[:HEADER_SIZE])
    if writer is None:
        raise _undecodable(data)
    return writer


def _undecodable(data: bytes) -> DecodeError:
    if len(data) < HEADER_SIZE:
        return DecodeError(f"too short: {len(data)} bytes, a single-object header alone is {HEADER_SIZE}")
    if data[:2] != MAGIC:
        return DecodeError(f"bad magic {data[:2].hex()}: not Avro single-object encoding (c301)")
    fingerprint = data[2:HEADER_SIZE].hex()
    return DecodeError(
        f"unknown schema fingerprint {fingerprint}: no current or history schema in "
        "schemas/avro has it (a producer on a newer contract?)",
        fingerprint,
    )


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise DecodeError(f"expected bytes, got {type(data).__name__}")


def type_of(data: bytes) -> str:
    """The event type named by the header of ``data``, without decoding the body."""
    return _header(_as_bytes(data)).current.type


def decode(data: bytes) -> Event:
    """The :class:`Event` of single-object Avro bytes, read as the current version of its
    type (older writer versions are resolved, new optional fields take their defaults).
    Times are in +08:00; ``published_at`` is ``None`` (the consumer sets the broker's time)."""
    if type(data) is not bytes:
        data = _as_bytes(data)
    fast = (_REGISTRY or _registry()).record_decoders.get(data[:HEADER_SIZE])
    if fast is not None:
        try:
            event_type, event_id, source_dept, occurred_ms, recorded_ms, fields = fast.decode(data)
            occurred_at, recorded_at = _EPOCH + _MS * occurred_ms, _EPOCH + _MS * recorded_ms
            return Event(event_type, event_id, source_dept, occurred_at, recorded_at, fields)
        except Exception:  # not the ordinary case: fastavro decides and explains
            pass
    writer = _header(data)
    body = BytesIO(data)
    body.seek(HEADER_SIZE)
    try:
        record = schemaless_reader(body, writer.spec.parsed, writer.reader_schema)
    except Exception as exc:
        raise DecodeError(
            f"truncated or corrupt body for {writer.spec.type} v{writer.spec.version}: "
            f"{type(exc).__name__}: {exc}",
            writer.spec.fingerprint.hex(),
        ) from None
    if body.tell() != len(data):
        raise DecodeError(
            f"corrupt body for {writer.spec.type}: {len(data) - body.tell()} trailing bytes",
            writer.spec.fingerprint.hex(),
        )
    if not isinstance(record, dict):  # pragma: no cover - records always decode to dicts
        raise DecodeError(f"corrupt body for {writer.spec.type}")
    spec = writer.current
    event_id = record.pop("event_id")
    source_dept = record.pop("source_dept")
    try:  # a time or date outside what Python can represent (e.g. a corrupted varint)
        occurred_at = _EPOCH + _MS * record.pop("occurred_at")
        recorded_at = _EPOCH + _MS * record.pop("recorded_at")
        for name, convert in spec.from_avro:
            value = record[name]
            if value is not None:
                record[name] = convert(value)
    except (OverflowError, ValueError) as exc:
        raise DecodeError(
            f"corrupt body for {writer.spec.type}: value out of range ({exc})", writer.spec.fingerprint.hex()
        ) from None
    return Event(spec.type, event_id, source_dept, occurred_at, recorded_at, record)


#: an event as the sink stores it: (type, event_id, source_dept, occurred_at in epoch ms,
#: recorded_at in epoch ms, the type's fields as :func:`decode` gives them)
EventRecord = tuple[str, str, str, int, int, dict[str, Any]]


def decode_record(data: bytes) -> EventRecord:
    """:func:`decode` without building the :class:`Event` and its two common datetimes: for
    a consumer that stores the times as numbers (the ClickHouse sink). Same checks, same
    errors, same field values."""
    if type(data) is not bytes:
        data = _as_bytes(data)
    fast = (_REGISTRY or _registry()).record_decoders.get(data[:HEADER_SIZE])
    if fast is not None:
        try:
            return fast.decode(data)
        except Exception:  # not the ordinary case: the general decoder decides and explains
            pass
    event = decode(data)
    return (
        event.type,
        event.event_id,
        event.source_dept,
        _ms_of(event.occurred_at),
        _ms_of(event.recorded_at),
        dict(event.fields),
    )


# --------------------------------------------------------------------------- fast paths
#
# The hot paths handle the ordinary case only: exact types, current schema versions, no
# surprises. Avro reading and writing are table-driven (schemas/avro_fast.py, compiled with
# mypyc: docs/performance.md), and so is the canonical-JSON reader (schemas/canonical_fast.py).
# Whenever an input is anything else, they return ``None`` or raise (``avro_fast.Slow``,
# ``canonical_fast.Slow``, any error), and the caller runs the general
# code above, which produces the result or the error message exactly as before. The encoder's
# bytes are those of fastavro (tests/unit/test_codec_fast.py proves it over every type and
# edge values).


def _branch(t: Any) -> tuple[Any, int]:
    """(the non-null branch, index of null) of a union, or (t, -1) for a plain type."""
    if isinstance(t, list):
        return next(b for b in t if b != "null"), t.index("null")
    return t, -1


def record_decoders() -> dict[bytes, avro_fast.RecordDecoder]:
    """The fast path of :func:`decode_record` by header (current schema versions): for a hot
    loop that calls ``decoder.decode(data)`` itself and :func:`decode_record` when it raises."""
    return (_REGISTRY or _registry()).record_decoders


def _record_encoder(spec: _Spec) -> avro_fast.RecordEncoder:
    """What :func:`encode` writes ``spec``'s events with in the ordinary case."""
    return avro_fast.RecordEncoder(spec.header, _ops(spec), _EPOCH, _EPOCH_DATE)


def _record_decoder(spec: _Spec) -> avro_fast.RecordDecoder:
    """What :func:`decode_record` reads ``spec``'s records with in the ordinary case."""
    return avro_fast.RecordDecoder(spec.type, HEADER_SIZE, _ops(spec), _EPOCH, _EPOCH_DATE)


def _ops(spec: _Spec) -> list[avro_fast.Op]:
    """The fields of ``spec`` as :mod:`schemas.avro_fast` reads and writes them."""

    def symbols(kind: _Type) -> tuple[str, ...]:  # canonical values in Avro symbol order
        from_avro = kind.from_avro or {}
        return tuple(from_avro.get(s, s) for s in ((kind.to_avro or {}).get(s, s) for s in kind.symbols))

    ops = []
    for f, raw in zip(spec.fields, spec.raw["fields"][len(COMMON_FIELDS) :], strict=True):
        null_index = _branch(raw["type"])[1] if f.optional else -1
        kind = f.type.items if f.type.kind == "array" and f.type.items is not None else f.type
        ops.append(
            avro_fast.Op(
                f.name,
                avro_fast.KINDS[f.type.kind],
                null_index,
                symbols(kind),
                avro_fast.KINDS[kind.kind] if kind is not f.type else -1,
            )
        )
    return ops


#: the fast reading of times and the building of events, shared by every type's reader
_TIMES = canonical_fast.TimeReader(SHANGHAI)
_EVENTS = canonical_fast.EventMaker(Event)


def _object_reader(spec: _Spec) -> canonical_fast.ObjectReader:
    """What :func:`from_canonical` reads ``spec``'s objects with in the ordinary case: its
    ``read(obj)`` gives the event, or raises (``canonical_fast.Slow``, any error) where the
    general code must decide or explain."""
    fields = []
    for f in spec.fields:
        items = f.type.items if f.type.kind == "array" and f.type.items is not None else None
        fields.append(
            canonical_fast.FieldSpec(
                f.name,
                avro_fast.KINDS[f.type.kind],
                f.optional,
                frozenset(f.type.symbols),
                -1 if items is None else avro_fast.KINDS[items.kind],
                frozenset(() if items is None else items.symbols),
                None if f.pattern is None else f.pattern.fullmatch,
            )
        )
    return canonical_fast.ObjectReader(spec.type, spec.names | _COMMON_AND_TYPE, fields, _TIMES, _EVENTS)


def object_readers() -> dict[str, canonical_fast.ObjectReader]:
    """The fast path of :func:`from_canonical` by type: for a hot loop
    (``canonical_fast.read_lines``) that calls :func:`from_canonical` when it raises."""
    return (_REGISTRY or _registry()).object_readers
