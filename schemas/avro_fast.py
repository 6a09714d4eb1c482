"""Table-driven reading of the bus's Avro records into :data:`codec.EventRecord` tuples: the
ClickHouse sink's decoder (``codec.decode_record``).

Compiled to a C extension with mypyc when built (``scripts/bootstrap.sh`` runs
``python -m hzbus.native build``; docs/performance.md, "Compiled hot paths"), about 3.5 times
faster than the generated Python decoder it replaced; plain Python otherwise, with the same
results. It handles the ordinary case only: the current schema version, exact encodings, no
surprises. Anything else raises (:class:`Slow`, or an ``IndexError`` past the end of the
bytes, a ``UnicodeDecodeError``...), and ``codec.decode_record`` runs the general decoder,
which gives the result or the error message exactly as before.

This module imports nothing of the project: the codec describes each schema to it (:class:`Op`).
"""

from __future__ import annotations

import struct
from datetime import date, datetime, timedelta
from typing import Final

#: the kinds of value (``codec._Type.kind``)
STRING: Final = 0
ENUM: Final = 1
BOOLEAN: Final = 2
INT: Final = 3
LONG: Final = 4
TIMESTAMP: Final = 5
DATE: Final = 6
DOUBLE: Final = 7
FLOAT: Final = 8
ARRAY: Final = 9

KINDS: Final = {
    "string": STRING,
    "enum": ENUM,
    "boolean": BOOLEAN,
    "int": INT,
    "long": LONG,
    "timestamp": TIMESTAMP,
    "date": DATE,
    "double": DOUBLE,
    "float": FLOAT,
    "array": ARRAY,
}

_INT_MIN: Final = -(1 << 31)
_INT_MAX: Final = (1 << 31) - 1
_LONG_MIN: Final = -(1 << 63)
_LONG_MAX: Final = (1 << 63) - 1
_UNPACK_D: Final = struct.Struct("<d").unpack_from
_UNPACK_F: Final = struct.Struct("<f").unpack_from
_PACK_D: Final = struct.Struct("<d").pack
_PACK_F: Final = struct.Struct("<f").pack


class Slow(Exception):
    """Not the ordinary case: the general decoder decides."""


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the zigzag varint at ``pos``; :class:`Slow` over 64 bits."""
    b = data[pos]
    pos += 1
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos
    z = b & 0x7F
    shift = 7
    while True:
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise Slow()
    if z >> 64:
        raise Slow()
    return (z >> 1) ^ -(z & 1), pos


def write_long(out: bytearray, n: int) -> None:
    """Append the zigzag varint of ``n`` (the caller has checked the 64-bit range)."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        out.append(z)
        return
    # the varint's bytes gathered in one int and appended at once (one call, not one a byte)
    v = 0
    k = 0
    while z >= 0x80:
        v |= ((z & 0x7F) | 0x80) << (8 * k)
        z >>= 7
        k += 1
    v |= z << (8 * k)
    out += v.to_bytes(k + 1, "little")


class Op:
    """How to read (and write) one field of a type: its name, kind, null branch (-1: not
    optional) and, for enums, the canonical values in symbol order (for an array, of its
    items)."""

    def __init__(
        self, name: str, kind: int, null_index: int, symbols: tuple[str, ...], item_kind: int = -1
    ) -> None:
        self.name = name
        self.kind = kind
        self.null_index = null_index
        self.symbols = symbols
        self.item_kind = item_kind
        self.indexes = {symbol: i for i, symbol in enumerate(symbols)}


class RecordDecoder:
    """Reads single-object bytes of one schema version (its header already matched) into
    ``(type, event_id, source_dept, occurred_at ms, recorded_at ms, fields)``, the fields as
    ``codec.decode`` gives them (timestamps as datetimes at ``epoch``'s zone, dates as dates)."""

    def __init__(
        self, event_type: str, header_size: int, ops: list[Op], epoch: datetime, epoch_date: date
    ) -> None:
        self.event_type = event_type
        self.header_size = header_size
        self.ops = ops
        self.epoch = epoch
        self.epoch_date = epoch_date
        self.ms = timedelta(milliseconds=1)

    def value(self, data: bytes, pos: int, kind: int, symbols: tuple[str, ...]) -> tuple[object, int]:
        if kind == STRING:
            n, pos = read_long(data, pos)
            end = pos + n
            if n < 0 or end > len(data):
                raise Slow()
            return data[pos:end].decode(), end
        if kind == ENUM:
            i, pos = read_long(data, pos)
            if i < 0 or i >= len(symbols):
                raise Slow()
            return symbols[i], pos
        if kind == BOOLEAN:
            b = data[pos]
            if b > 1:
                raise Slow()
            return b == 1, pos + 1
        if kind == LONG:
            return read_long(data, pos)
        if kind in (INT, DATE):
            z, pos = read_long(data, pos)
            if z < _INT_MIN or z > _INT_MAX:
                raise Slow()
            if kind == DATE:
                return self.epoch_date + timedelta(days=z), pos
            return z, pos
        if kind == TIMESTAMP:
            z, pos = read_long(data, pos)
            return self.epoch + self.ms * z, pos
        if kind == DOUBLE:
            if pos + 8 > len(data):
                raise Slow()
            return _UNPACK_D(data, pos)[0], pos + 8
        if kind == FLOAT:
            if pos + 4 > len(data):
                raise Slow()
            return _UNPACK_F(data, pos)[0], pos + 4
        raise Slow()

    def decode(self, data: bytes) -> tuple[str, str, str, int, int, dict[str, object]]:
        pos = self.header_size
        n, pos = read_long(data, pos)
        end = pos + n
        if n < 0 or end > len(data):
            raise Slow()
        event_id = data[pos:end].decode()
        n, pos = read_long(data, end)
        end = pos + n
        if n < 0 or end > len(data):
            raise Slow()
        source_dept = data[pos:end].decode()
        occurred, pos = read_long(data, end)
        recorded, pos = read_long(data, pos)
        fields: dict[str, object] = {}
        for op in self.ops:
            if op.null_index >= 0:
                b = data[pos]
                pos += 1
                if b == op.null_index << 1:
                    fields[op.name] = None
                    continue
                if b != (1 - op.null_index) << 1:
                    raise Slow()
            if op.kind == ARRAY:
                items: list[object] = []
                while True:
                    count, pos = read_long(data, pos)
                    if count == 0:
                        break
                    if count < 0:
                        raise Slow()
                    for _ in range(count):
                        item, pos = self.value(data, pos, op.item_kind, op.symbols)
                        items.append(item)
                fields[op.name] = items
            else:
                value, pos = self.value(data, pos, op.kind, op.symbols)
                fields[op.name] = value
        if pos != len(data):
            raise Slow()
        return self.event_type, event_id, source_dept, occurred, recorded, fields


class RecordEncoder:
    """Writes an event of one type as single-object bytes under the current schema (``header``
    first), byte for byte what fastavro writes; ``None`` for anything but the ordinary case
    (exact value types, known fields, values in range): the general encoder then decides and
    explains, as it does for the generated encoder this replaced."""

    def __init__(self, header: bytes, ops: list[Op], epoch: datetime, epoch_date: date) -> None:
        self.header = header
        self.ops = ops
        self.names = frozenset(op.name for op in ops)
        self.epoch = epoch
        self.epoch_date = epoch_date
        self.ms = timedelta(milliseconds=1)

    def write(self, out: bytearray, v: object, kind: int, op: Op) -> bool:
        """Append ``v`` as ``kind``; False when it is not the ordinary case."""
        if kind == STRING:
            if type(v) is not str:
                return False
            b = v.encode()
            write_long(out, len(b))
            out += b
        elif kind == ENUM:
            if type(v) is not str:
                return False
            i = op.indexes.get(v, -1)
            if i < 0:
                return False
            write_long(out, i)
        elif kind == BOOLEAN:
            if type(v) is not bool:
                return False
            out.append(1 if v else 0)
        elif kind in (INT, LONG):
            if type(v) is not int:
                return False
            lo, hi = (_INT_MIN, _INT_MAX) if kind == INT else (_LONG_MIN, _LONG_MAX)
            if v < lo or v > hi:
                return False
            write_long(out, v)
        elif kind in (DOUBLE, FLOAT):
            if type(v) is not float:
                return False
            out += _PACK_D(v) if kind == DOUBLE else _PACK_F(v)
        elif kind == TIMESTAMP:
            if type(v) is not datetime or v.tzinfo is None:
                return False
            m = (v - self.epoch) // self.ms
            if m < _LONG_MIN or m > _LONG_MAX:
                return False
            write_long(out, m)
        elif kind == DATE:
            if type(v) is not date:
                return False
            days = (v - self.epoch_date).days
            if days < _INT_MIN or days > _INT_MAX:
                return False
            write_long(out, days)
        else:
            return False
        return True

    def encode(
        self,
        event_id: object,
        source_dept: object,
        occurred_at: object,
        recorded_at: object,
        fields: dict[str, object],
    ) -> bytes | None:
        if not self.names.issuperset(fields):
            return None
        out = bytearray(self.header)
        common = (event_id, source_dept, occurred_at, recorded_at)
        for i in range(4):
            if not self.write(out, common[i], STRING if i < 2 else TIMESTAMP, _NO_OP):
                return None
        for op in self.ops:
            v = fields.get(op.name)
            if op.null_index >= 0:
                if v is None:
                    out.append(op.null_index << 1)
                    continue
                out.append((1 - op.null_index) << 1)
            elif v is None:
                return None
            if op.kind == ARRAY:
                if type(v) is not list:
                    return None
                if v:
                    write_long(out, len(v))
                    for item in v:
                        if not self.write(out, item, op.item_kind, op):
                            return None
                out.append(0)
            elif not self.write(out, v, op.kind, op):
                return None
        return bytes(out)


_NO_OP: Final = Op("", STRING, -1, ())
