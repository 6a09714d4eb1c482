"""The codec's generated fast paths give exactly what its general (fastavro) paths give.

``schemas.codec`` generates, per schema, an encoder, a decoder and a canonical-JSON reader
for the ordinary case and falls back to the general code for anything else. These tests
prove the fast paths byte-identical (encode) and value-identical (decode, from_canonical)
over every sample event and edge values, and that unusual input still takes the general path.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from domain.events import SHANGHAI, Event
from schemas import avro_fast, codec
from schemas.samples import sample_event, sample_events

SAMPLES = sample_events(400)


def general_encode(event: Event) -> bytes:
    return codec._encode(codec._current(event.type), event)


def general_decode(data: bytes, monkeypatch: pytest.MonkeyPatch) -> Event:
    with monkeypatch.context() as m:
        m.setattr(codec, "_REGISTRY", replace(codec._registry(), record_decoders={}))
        return codec.decode(data)


def general_from_canonical(obj: Any, monkeypatch: pytest.MonkeyPatch) -> Event:
    with monkeypatch.context() as m:
        m.setattr(codec, "_REGISTRY", replace(codec._registry(), readers={}))
        return codec.from_canonical(obj)


def edge_variants(event: Event) -> list[Event]:
    """``event`` with long, multi-byte, empty and extreme values in every field the schema allows."""
    spec = codec._current(event.type)
    out = []
    for variant in range(4):
        fields = dict(event.fields)
        for f in spec.fields:
            value = fields.get(f.name)
            kind = f.type.kind
            if value is None:
                continue
            if kind == "string" and f.pattern is None and f.name != spec.key:
                fields[f.name] = ["", "案" * 70, "x" * 8200, "é\u0000\U0001f600"][variant]
            elif kind == "double":
                fields[f.name] = [0.0, -1e308, 5e-324, math.inf][variant]
            elif kind in ("int", "long"):
                fields[f.name] = [0, -1, 2**31 - 1, -(2**31)][variant]
            elif kind == "date":
                fields[f.name] = [date(1970, 1, 1), date(1969, 12, 31), date(9999, 12, 31), date(1, 1, 1)][
                    variant
                ]
            elif kind == "timestamp":
                fields[f.name] = datetime(1960, 1, 1, tzinfo=SHANGHAI) + timedelta(milliseconds=variant * 999)
            elif kind == "array":
                fields[f.name] = [[], value * 30, value[:1], value][variant]
            elif kind == "boolean":
                fields[f.name] = bool(variant % 2)
        when = [
            datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=SHANGHAI),
            datetime(2026, 9, 30, 10, 0, 0, 1000, tzinfo=SHANGHAI),
            datetime(1970, 1, 1, tzinfo=SHANGHAI),
            datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=SHANGHAI),
        ][variant]
        out.append(replace(event, fields=fields, occurred_at=when, event_id="事件" * (variant * 40)))
    return out


EDGES = [e for t in codec.event_types() for n in (0, 1) for e in edge_variants(sample_event(t, n))]


def fast_encode(event: Event) -> bytes | None:
    e, encoder = event, codec._registry().encoders[event.type]
    return encoder.encode(e.event_id, e.source_dept, e.occurred_at, e.recorded_at, dict(e.fields))


@pytest.mark.parametrize("event", SAMPLES + EDGES, ids=lambda e: e.type)
def test_the_fast_encoder_writes_the_bytes_fastavro_writes(event: Event) -> None:
    fast = fast_encode(event)
    assert fast is not None, "the ordinary case must take the fast path"
    assert fast == general_encode(event) == codec.encode(event)


@pytest.mark.parametrize("event", SAMPLES + EDGES, ids=lambda e: e.type)
def test_the_fast_decoder_reads_what_fastavro_reads(event: Event, monkeypatch: pytest.MonkeyPatch) -> None:
    data = codec.encode(event)
    fast = codec.decode(data)
    slow = general_decode(data, monkeypatch)
    assert fast == slow
    assert list(fast.fields) == list(slow.fields)  # same order: the stored payload JSON depends on it
    assert fast.occurred_at.tzinfo is slow.occurred_at.tzinfo


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_the_generated_canonical_reader_gives_the_general_readers_event(
    event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = codec.to_canonical(event)
    fast = codec._registry().readers[event.type](obj)
    slow = general_from_canonical(obj, monkeypatch)
    assert fast == slow == event
    assert list(fast.fields) == list(slow.fields)
    assert fast.recorded_at.tzinfo is slow.recorded_at.tzinfo


def test_unusual_values_take_the_general_path_and_keep_its_result() -> None:
    event = sample_event("PenaltyDecided", 0)
    amount = next(f.name for f in codec._current(event.type).fields if f.type.kind == "double")
    as_int = replace(event, fields={**event.fields, amount: 100})  # an int for a double: fastavro accepts it
    assert fast_encode(as_int) is None
    assert codec.encode(as_int) == general_encode(as_int)


@pytest.mark.parametrize(
    "change",
    [
        {"occurred_at": "2026-09-30 10:00:00"},
        {"occurred_at": "2026-09-30T10:00:00.123456+08:00"},
        {"occurred_at": "2026-09-30T02:00:00Z"},
        {"amount_yuan": 100},
        {"amount_yuan": True},
        {"amount_yuan": "100"},
        {"case_id": None},
        {"extra": 1},
        {"event_id": 7},
    ],
)
def test_canonical_objects_off_the_fast_path_get_the_general_result_or_message(
    change: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = {**codec.to_canonical(sample_event("PenaltyDecided", 0)), **change}
    obj = {k: v for k, v in obj.items() if not (k == "case_id" and v is None)}
    try:
        expected: Any = general_from_canonical(obj, monkeypatch)
    except codec.EventError as exc:
        expected = ("error", str(exc), exc.field)
    try:
        got: Any = codec.from_canonical(obj)
    except codec.EventError as exc:
        got = ("error", str(exc), exc.field)
    assert got == expected


def test_corrupt_bodies_get_the_general_decoders_message(monkeypatch: pytest.MonkeyPatch) -> None:
    data = codec.encode(sample_event("CaseTransferred", 0))
    for bad in (data[:-1], data + b"\x00", data[:12], data[:10] + b"\x01" + data[11:]):
        with pytest.raises(codec.DecodeError) as slow:
            general_decode(bad, monkeypatch)
        with pytest.raises(codec.DecodeError) as fast:
            codec.decode(bad)
        assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize("event", SAMPLES + EDGES, ids=lambda e: e.type)
def test_the_sinks_record_decoder_reads_what_the_event_decoder_reads(event: Event) -> None:
    data = codec.encode(event)
    decoded = codec.decode(data)
    fast = codec.record_decoders()[data[:10]].decode(data)
    assert fast == codec.decode_record(data)
    assert fast == (
        decoded.type,
        decoded.event_id,
        decoded.source_dept,
        codec._ms_of(decoded.occurred_at),
        codec._ms_of(decoded.recorded_at),
        dict(decoded.fields),
    )
    assert list(fast[5]) == list(decoded.fields)  # same order: the stored payload JSON depends on it


def test_corrupt_bodies_get_the_same_message_from_the_record_decoder() -> None:
    data = codec.encode(sample_event("CaseTransferred", 0))
    for bad in (data[:-1], data + b"\x00", data[:12], data[:10] + b"\x01" + data[11:]):
        with pytest.raises(codec.DecodeError) as event_path:
            codec.decode(bad)
        with pytest.raises(codec.DecodeError) as record_path:
            codec.decode_record(bad)
        assert str(record_path.value) == str(event_path.value)


@pytest.mark.parametrize(
    "value", [0, 1, -1, 63, -64, 64, 2**31, -(2**31), 1_795_808_618_000, 2**63 - 1, -(2**63)]
)
def test_the_varint_reader_reads_every_width(value: int) -> None:
    z = (value << 1) ^ (value >> 63)
    raw = bytearray()
    while z >= 0x80:
        raw.append((z & 0x7F) | 0x80)
        z >>= 7
    raw.append(z)
    assert avro_fast.read_long(bytes(raw) + b"tail", 0) == (value, len(raw))


def test_a_varint_over_64_bits_leaves_the_fast_path() -> None:
    with pytest.raises(avro_fast.Slow):
        avro_fast.read_long(b"\xff" * 10 + b"\x01", 0)
