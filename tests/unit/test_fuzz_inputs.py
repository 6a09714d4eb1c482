"""Property tests of everything that reads outside input: whatever arrives, each reader either
returns a value or raises its own named error; nothing else escapes (no traceback for the operator)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.departments import load_registry
from producers.readers import read_csv, read_jsonl
from producers.validate import RejectedRecord, validate_event
from schemas import codec
from schemas.samples import sample_events

REGISTRY = load_registry()
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
