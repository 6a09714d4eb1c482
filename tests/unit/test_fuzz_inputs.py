"""Property tests of everything that reads outside input: whatever arrives, each reader either
returns a value or raises its own named error; nothing else escapes (no traceback for the operator)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.departments import load_registry
from producers.mapping import load_mapping
from producers.pipeline import PrepareContext, prepare
from producers.readers import read_csv, read_jsonl, read_jsonl_objects
from producers.validate import RejectedRecord, validate_event
from schemas import codec
from schemas.samples import sample_events

REGISTRY = load_registry()
DATA = Path(__file__).resolve().parent.parent / "data"
NOW = datetime(2027, 1, 1, tzinfo=UTC)
VALID = [codec.encode(e) for e in sample_events(40)]
CANONICAL = [codec.to_canonical(e) for e in sample_events(40)]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@FAST
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_an_event_or_a_decode_error(data: bytes) -> None:
    try:
        event = codec.decode(data)
    except codec.DecodeError as exc:
        assert str(exc)  # says why
    else:
        assert event.type in codec.event_types()


@FAST
@given(st.sampled_from(VALID), st.integers(min_value=0, max_value=400), st.binary(max_size=20))
def test_a_valid_message_cut_or_corrupted_decodes_or_says_why(valid: bytes, cut: int, junk: bytes) -> None:
    for data in (valid[:cut], valid[:cut] + junk, valid[:10] + junk + valid[10 + len(junk) :]):
        try:
            event = codec.decode(data)
        except codec.DecodeError as exc:
            assert str(exc)
        else:
            assert event.type in codec.event_types()


@FAST
@given(st.binary(max_size=500))
def test_any_bytes_read_as_json_lines_give_records_or_named_errors(data: bytes) -> None:
    for record in read_jsonl(io.BytesIO(data)):
        assert record.line >= 1
        assert (record.data is None) == (record.error is not None)


JSONL_PIECES = [
    b'{"a": 1}',
    b'{"a": "\xe5\x8d\x8f"}',
    b"\xef\xbb\xbf",
    b"\r",
    b"\n",
    b" ",
    b"\xff",
    b"\xed\xa0\x80",
    b"[1]",
    b'"x"',
    b"{",
    b"}",
    b"null",
]


@FAST
@given(st.lists(st.sampled_from(JSONL_PIECES) | st.binary(max_size=8), max_size=12))
def test_reading_only_the_values_of_json_lines_gives_the_same_values_and_errors(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    records = [(r.line, r.data, r.error) for r in read_jsonl(io.BytesIO(data))]
    assert list(read_jsonl_objects(io.BytesIO(data))) == records


@FAST
@given(st.binary(max_size=500))
def test_any_bytes_read_as_csv_give_records_or_named_errors(data: bytes) -> None:
    for record in read_csv(io.BytesIO(b"a,b,c\n" + data)):
        assert record.line >= 1
        assert (record.data is None) == (record.error is not None)


@FAST
@given(st.sampled_from(CANONICAL), st.text(max_size=12), json_values)
def test_a_mutated_event_is_valid_or_rejected_with_a_reason(
    base: dict[str, Any], name: str, value: Any
) -> None:
    for obj in (
        {**base, name: value},
        {k: v for k, v in base.items() if k != name} if name in base else base,
        {**base, **({name: value} if name else {}), "type": value},
    ):
        try:
            validate_event(obj, REGISTRY, publishing_dept=None, now=NOW)
        except RejectedRecord as exc:
            assert str(exc)


@FAST
@given(json_values)
def test_any_json_value_is_an_event_or_an_event_error(value: Any) -> None:
    try:
        codec.from_canonical(value)
    except codec.EventError as exc:
        assert str(exc)


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _decodes_or_says_why(data: bytes) -> None:
    """Both decoders (``decode`` for the worker, ``decode_record`` for the sink) give an event
    or a ``DecodeError`` with a reason; nothing else escapes."""
    for decode in (codec.decode, codec.decode_record):
        try:
            decode(data)
        except codec.DecodeError as exc:
            assert str(exc)


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    shift = z = 0
    while True:
        b = data[pos]
        z |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if not b & 0x80:
            return (z >> 1) ^ -(z & 1), pos


def _times_at(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of the occurred_at and recorded_at longs: after the header and two strings."""
    pos = 10
    for _ in range(2):  # event_id, source_dept
        size, pos = _read_long(data, pos)
        pos += size
    spans = []
    for _ in range(2):
        start = pos
        _, pos = _read_long(data, pos)
        spans.append((start, pos))
    return spans


@FAST
@given(
    st.sampled_from(VALID),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=10, max_value=200),
)
def test_a_valid_message_with_any_long_spliced_in_decodes_or_says_why(
    valid: bytes, recorded: bool, n: int, at: int
) -> None:
    # a corrupted time (year 300,000, or before year 1) is a DecodeError too, not an
    # OverflowError out of the datetime arithmetic
    start, end = _times_at(valid)[recorded]
    _decodes_or_says_why(valid[:start] + _zigzag(n) + valid[end:])
    _decodes_or_says_why(valid[:at] + _zigzag(n) + valid[at + 1 :])  # anywhere else


@FAST
@given(st.sampled_from(VALID), st.lists(st.integers(min_value=0, max_value=2**16), max_size=4))
def test_a_valid_message_with_flipped_bits_decodes_or_says_why(valid: bytes, flips: list[int]) -> None:
    data = bytearray(valid)
    for flip in flips:
        data[flip // 8 % len(data)] ^= 1 << (flip % 8)
    _decodes_or_says_why(bytes(data))


@FAST
@given(st.sampled_from(VALID), st.sampled_from(VALID))
def test_the_fingerprint_of_another_type_on_a_body_decodes_or_says_why(head: bytes, body: bytes) -> None:
    _decodes_or_says_why(head[:10] + body[10:])


APPROVAL_HEADER = (DATA / "approval_register.csv").read_bytes().splitlines()[0]
APPROVAL_ROWS = (DATA / "approval_register.csv").read_bytes().splitlines()[1:]
CSV_CONTEXT = PrepareContext(REGISTRY, "HZ-SJJ", NOW, load_mapping("approval_register"))
cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@FAST
@given(st.sampled_from(APPROVAL_ROWS), st.integers(min_value=0, max_value=7), cells)
def test_a_department_csv_row_with_any_cell_changed_is_published_or_rejected_with_its_line(
    row: bytes, column: int, value: str
) -> None:
    # the path a department's register takes: CSV reader, column mapping, validation, Avro
    fields = next(csv.reader([row.decode("utf-8")]))
    fields[column % len(fields)] = value  # (one row of the sample is short on purpose)
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    data = APPROVAL_HEADER + b"\n" + out.getvalue().encode("utf-8")
    prepared = prepare(read_csv(io.BytesIO(data)), CSV_CONTEXT)
    assert len(prepared.ids) + len(prepared.rejects) == prepared.read == 1
    for line, reason, _raw in prepared.rejects:
        assert line == 2 and reason
