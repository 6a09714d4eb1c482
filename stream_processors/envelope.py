"""The envelope of the worker's repartition topics (pure, no I/O).

Records re-keyed by correlation key (case, request, subject...) carry either an event (the
original Avro bytes plus its publication time) or a *tick*: "re-evaluate this key now", sent
by the deadline sweep so that state changes happen inside the agent that owns the key.

    b"E" + int64 publication ms (-1: none; the core then uses recorded_at) + Avro bytes
    b"T" + int64 now ms                                   (one key: the record's key)
    b"K" + int64 now ms + keys joined by newlines         (many keys of the record's partition)
    b"B" + (uint16 key length, uint32 value length, key, value)*   (a batch: many keys of the
                                                          record's partition, each value an E or T)

The route agent sends one ``B`` record per partition and batch of source events instead of a
record per event and key: Faust's per-message machinery costs far more than the rules
(docs/performance.md, "Worker throughput").
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

EVENT = 0x45  # "E"
TICK = 0x54  # "T"
TICKS = 0x4B  # "K"
BATCH = 0x42  # "B"
_MS = struct.Struct(">q")
_ENTRY = struct.Struct(">HI")


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def pack_event(avro: bytes, published: datetime | None) -> bytes:
    return b"E" + _MS.pack(to_ms(published) if published is not None else -1) + avro


def pack_tick(now: datetime) -> bytes:
    return b"T" + _MS.pack(to_ms(now))


def pack_ticks(now: datetime, keys: list[str]) -> bytes:
    return b"K" + _MS.pack(to_ms(now)) + "\n".join(keys).encode("utf-8")


def pack_batch(entries: list[tuple[bytes, bytes]]) -> bytes:
    """One record of many (key, E or T envelope) entries, in their order."""
    parts = [b"B"]
    for key, value in entries:
        parts += (_ENTRY.pack(len(key), len(value)), key, value)
    return b"".join(parts)


def batch_entries(key: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    """The (key, envelope) inputs of a repartition record: a batch's entries in order, or the
    record itself. ValueError for a batch cut short."""
    if not value or value[0] != BATCH:
        return [(key, value)]
    out = []
    pos, end, size = 1, len(value), _ENTRY.size
    while pos < end:
        if pos + size > end:
            raise ValueError("a worker batch cut short")
        klen, vlen = _ENTRY.unpack_from(value, pos)
        pos += size
        if pos + klen + vlen > end:
            raise ValueError("a worker batch cut short")
        out.append((value[pos : pos + klen], value[pos + klen : pos + klen + vlen]))
        pos += klen + vlen
    return out


def tick_keys(payload: bytes) -> list[str]:
    return payload.decode("utf-8").split("\n") if payload else []


def unpack(value: bytes) -> tuple[int, datetime | None, bytes]:
    """(kind, time, payload): for an event the publication time (or None) and the Avro bytes;
    for a tick the moment to evaluate at and b"" (or, for a batch of ticks, the keys)."""
    if len(value) < 9 or value[0] not in (EVENT, TICK, TICKS):
        raise ValueError("not a worker envelope")
    (ms,) = _MS.unpack_from(value, 1)
    return value[0], (from_ms(ms) if ms >= 0 else None), value[9:]
