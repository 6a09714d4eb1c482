"""The envelope of the worker's repartition topics (pure, no I/O).

Records re-keyed by correlation key (case, request, subject...) carry either an event (the
original Avro bytes plus its publication time) or a *tick*: "re-evaluate this key now", sent
by the deadline sweep so that state changes happen inside the agent that owns the key.

    b"E" + int64 publication ms (-1: none; the core then uses recorded_at) + Avro bytes
    b"T" + int64 now ms                                   (one key: the record's key)
    b"K" + int64 now ms + keys joined by newlines         (many keys of the record's partition)
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

EVENT = 0x45  # "E"
TICK = 0x54  # "T"
TICKS = 0x4B  # "K"
_MS = struct.Struct(">q")


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


def tick_keys(payload: bytes) -> list[str]:
    return payload.decode("utf-8").split("\n") if payload else []


def unpack(value: bytes) -> tuple[int, datetime | None, bytes]:
    """(kind, time, payload): for an event the publication time (or None) and the Avro bytes;
    for a tick the moment to evaluate at and b"" (or, for a batch of ticks, the keys)."""
    if len(value) < 9 or value[0] not in (EVENT, TICK, TICKS):
        raise ValueError("not a worker envelope")
    (ms,) = _MS.unpack_from(value, 1)
    return value[0], (from_ms(ms) if ms >= 0 else None), value[9:]
