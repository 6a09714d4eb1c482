"""The one codec: canonical JSON ⇄ Event ⇄ Avro single-object bytes (schemas/codec.py)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from domain.events import SHANGHAI, Event
from hzbus.topics import event_families
from schemas import codec
from schemas.samples import sample_event

ALL_TYPES = codec.event_types()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def canonical(**overrides: Any) -> dict[str, Any]:
    """A valid canonical ViolationDiscovered, with overrides (None removes a key)."""
    obj: dict[str, Any] = {
        "type": "ViolationDiscovered",
        "event_id": "e-0001",
        "source_dept": "HZ-ZFJ",
        "occurred_at": "2026-09-30T10:00:00+08:00",
        "recorded_at": "2026-09-30T10:05:00+08:00",
        "case_id": "ZF-2026-0930-001",
        "subject_id": "91330500MA2B3C4D5E",
        "domain": "市场监管",
        "matter_code": "330217001000",
        "jurisdiction_dept": "HZ-SJJ",
        "urgent": False,
        "origin": "inspection",
    }
    for key, value in overrides.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return obj


DROP = object()


def with_fields(event: Event, **changes: Any) -> Event:
    """``event`` with fields replaced (``DROP`` removes one), bypassing every check."""
    fields = {**event.fields, **changes}
    return replace(event, fields={k: v for k, v in fields.items() if v is not DROP})


def reject(obj: Any) -> codec.EventError:
    with pytest.raises(codec.EventError) as caught:
        codec.from_canonical(obj)
    return caught.value


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("n", [0, 1], ids=["optional fields set", "optional fields null"])
@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_event_type_survives_the_avro_round_trip(event_type: str, n: int) -> None:
    event = sample_event(event_type, n)
    assert codec.decode(codec.encode(event)) == event


@pytest.mark.parametrize("n", [0, 1], ids=["optional fields set", "optional fields null"])
@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_event_type_survives_the_canonical_json_round_trip(event_type: str, n: int) -> None:
    event = sample_event(event_type, n)
    assert codec.from_canonical(codec.to_canonical(event)) == event
    assert codec.decode_json_line(codec.encode_json(event)) == event
    assert codec.decode_json_line(codec.encode_json(event).decode("utf-8")) == event


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_the_bytes_are_single_object_encoding_with_the_schema_fingerprint(event_type: str) -> None:
    data = codec.encode(sample_event(event_type))
    schema = codec.schema_of(event_type)
    expected = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")  # fastavro: little-endian hex
    assert data[:2] == b"\xc3\x01"
    assert data[2:10].hex() == expected == codec.fingerprint_of(event_type)
    assert codec.type_of(data) == event_type


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_the_body_is_what_plain_fastavro_writes_with_the_logical_types(event_type: str) -> None:
    event = sample_event(event_type)
    schema = codec.schema_of(event_type)
    record = {
        "event_id": event.event_id,
        "source_dept": event.source_dept,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        **event.fields,
    }
    if event_type == "ComplaintReceived" and record["channel"] == "12345":
        record["channel"] = "hotline_12345"
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(schema), record)
    assert codec.encode(event)[10:] == body.getvalue()


def test_a_complaint_from_the_12345_hotline_travels_as_symbol_hotline_12345_and_comes_back_as_12345() -> None:
    event = codec.from_canonical(
        {
            "type": "ComplaintReceived",
            "event_id": "ts-20260930-0001",
            "source_dept": "HZ-ZFJ",
            "occurred_at": "2026-09-30T09:12:00+08:00",
            "recorded_at": "2026-09-30T09:15:30.250+08:00",
            "complaint_id": "12345-2026-093001",
            "channel": "12345",
            "subject_id": "91330500MA2B3C4D5E",
            "summary": "市民反映某餐饮店油烟扰民，夜间噪声超标",
        }
    )
    data = codec.encode(event)
    assert b"hotline" not in data  # enums travel as their index
    decoded = codec.decode(data)
    assert decoded["channel"] == "12345"
    assert decoded["summary"] == "市民反映某餐饮店油烟扰民，夜间噪声超标"
    assert codec.to_canonical(decoded)["channel"] == "12345"


def test_a_realistic_transfer_with_chinese_text_round_trips() -> None:
    event = Event(
        type="CaseTransferred",
        event_id="ws-20261009-0042",
        source_dept="DQ-ZFJ",
        occurred_at=datetime(2026, 10, 9, 16, 30, tzinfo=SHANGHAI),
        recorded_at=datetime(2026, 10, 9, 16, 31, 2, 500_000, tzinfo=SHANGHAI),
        fields={
            "case_id": "德综执〔2026〕第0931号",
            "to_dept": "HZ-HBJ",
            "materials": ["transfer_letter", "source_material", "evidence"],
            "leader_approved": True,
            "cc_coordination_office": False,
            "complaint_id": "12345-2026-093001",
        },
    )
    assert codec.decode(codec.encode(event)) == event
    assert codec.from_canonical(codec.to_canonical(event)) == event


def test_a_realistic_penalty_keeps_its_amount_in_yuan_and_its_legal_basis() -> None:
    obj = {
        "type": "PenaltyDecided",
        "event_id": "cf-2026-1012-007",
        "source_dept": "HZ-ZFJ",
        "occurred_at": "2026-10-12T11:00:00+08:00",
        "recorded_at": "2026-10-12T11:00:09+08:00",
        "penalty_id": "湖综执罚决字〔2026〕第1207号",
        "case_id": "ZF-2026-0930-001",
        "subject_id": "91330500MA2B3C4D5E",
        "domain": "城市管理",
        "matter_code": "330217001000",
        "penalty_kind": "fine",
        "amount_yuan": 5000.5,
        "legal_basis": "《浙江省城市市容和环境卫生管理条例》第四十二条",
        "unlicensed_operation": True,
        "requires_permit_suspension": False,
    }
    event = codec.from_canonical(obj)
    assert codec.decode(codec.encode(event))["amount_yuan"] == 5000.5
    assert codec.to_canonical(codec.decode(codec.encode(event))) == obj


def test_an_approval_valid_until_is_a_date_in_canonical_json_and_in_the_event() -> None:
    event = codec.from_canonical(
        {
            "type": "ApprovalIssued",
            "event_id": "xk-0001",
            "source_dept": "HZ-SJJ",
            "occurred_at": "2026-09-28T15:00:00+08:00",
            "recorded_at": "2026-09-28T15:00:00+08:00",
            "approval_id": "JY33050020260928001",
            "subject_id": "91330500MA2B3C4D5E",
            "domain": "食品经营",
            "matter_code": "330217002000",
            "approval_kind": "license",
            "decision": "granted",
            "valid_until": "2031-09-27",
        }
    )
    assert event["valid_until"] == date(2031, 9, 27)
    assert codec.decode(codec.encode(event))["valid_until"] == date(2031, 9, 27)
    assert codec.to_canonical(event)["valid_until"] == "2031-09-27"


def test_an_assessment_deduction_is_a_negative_number_of_points() -> None:
    event = codec.from_canonical(
        {
            "type": "AssessmentAdjusted",
            "event_id": "kp-2026Q4-01",
            "source_dept": "HZ-LXB",
            "occurred_at": "2026-12-28T09:00:00+08:00",
            "recorded_at": "2026-12-28T09:00:00+08:00",
            "dept": "HZ-GHJ",
            "quarter": "2026Q4",
            "item": "二.3",
            "points": -2,
            "reason": "未按规定参加联合执法行动",
        }
    )
    assert event["points"] == -2.0 and isinstance(event["points"], float)
    assert codec.decode(codec.encode(event)) == event


# --------------------------------------------------------------------------- times


def test_decoded_times_are_aware_and_in_shanghai_time() -> None:
    event = Event(
        type="StopOrdered",
        event_id="e",
        source_dept="HZ-ZFJ",
        occurred_at=datetime(2026, 9, 30, 2, 0, tzinfo=UTC),
        recorded_at=datetime(2026, 9, 30, 2, 0, 0, 7000, tzinfo=UTC),
        fields={"case_id": "c"},
    )
    decoded = codec.decode(codec.encode(event))
    assert decoded.occurred_at.utcoffset() == timedelta(hours=8)
    assert decoded.occurred_at.isoformat() == "2026-09-30T10:00:00+08:00"
    assert decoded.recorded_at.isoformat() == "2026-09-30T10:00:00.007000+08:00"


def test_canonical_times_in_another_offset_are_read_as_the_same_instant_in_shanghai_time() -> None:
    event = codec.from_canonical(canonical(occurred_at="2026-09-30T02:00:00Z"))
    assert event.occurred_at == at("2026-09-30T10:00:00+08:00")
    assert event.occurred_at.utcoffset() == timedelta(hours=8)
    assert event.occurred_at.date() == date(2026, 9, 30)


def test_canonical_times_are_rendered_with_offset_and_milliseconds_only_when_nonzero() -> None:
    event = codec.from_canonical(canonical(recorded_at="2026-09-30T10:05:00.120+08:00"))
    out = codec.to_canonical(event)
    assert out["occurred_at"] == "2026-09-30T10:00:00+08:00"
    assert out["recorded_at"] == "2026-09-30T10:05:00.120+08:00"


def test_digits_finer_than_a_millisecond_are_dropped_so_json_and_avro_agree() -> None:
    event = codec.from_canonical(canonical(recorded_at="2026-09-30T10:05:00.123456+08:00"))
    assert event.recorded_at.microsecond == 123000
    assert codec.decode(codec.encode(event)) == event


def test_published_at_is_not_part_of_the_body() -> None:
    event = sample_event("InfoShared")
    published = event.with_published_at(datetime(2026, 10, 1, tzinfo=SHANGHAI))
    assert codec.encode(published) == codec.encode(event)
    assert codec.decode(codec.encode(published)).published_at is None


# --------------------------------------------------------------------------- catalogue


def test_every_type_is_carried_by_a_topic_family_of_the_catalogue() -> None:
    families = {codec.topic_family(t) for t in ALL_TYPES}
    assert families == set(event_families())


@pytest.mark.parametrize(
    ("event_type", "family", "key"),
    [
        ("ViolationDiscovered", "cases", "case_id"),
        ("TransferAcknowledged", "cases", "case_id"),
        ("ApprovalIssued", "approvals", "approval_id"),
        ("PenaltyDecided", "penalties", "case_id"),
        ("CoerciveMeasureDecided", "penalties", "case_id"),
        ("DeterminationReplied", "determinations", "request_id"),
        ("ComplaintVerified", "complaints", "complaint_id"),
        ("InfoFormed", "sharing", "share_id"),
        ("ConsultationMeetingHeld", "meetings", "meeting_id"),
        ("AssessmentAdjusted", "assessments", "dept"),
    ],
)
def test_each_family_keys_its_records_by_the_correlation_id(event_type: str, family: str, key: str) -> None:
    assert codec.topic_family(event_type) == family
    assert codec.key_field(event_type) == key
    event = sample_event(event_type)
    assert codec.key_of(event) == event[key]


def test_a_penalty_and_a_coercive_measure_of_one_case_share_the_record_key() -> None:
    penalty = sample_event("PenaltyDecided")
    measure = sample_event("CoerciveMeasureDecided")
    assert codec.key_of(penalty) == codec.key_of(measure) == "case_id-000000"


def test_schema_of_returns_a_copy_callers_cannot_corrupt() -> None:
    codec.schema_of("StopOrdered")["fields"].clear()
    assert codec.schema_of("StopOrdered")["fields"]


def test_asking_the_catalogue_about_an_unknown_type_is_an_event_error() -> None:
    with pytest.raises(codec.EventError, match=r"unknown event type 'CaseTransfered'.*'CaseTransferred'"):
        codec.topic_family("CaseTransfered")


# --------------------------------------------------------------------------- canonical validation


def test_a_json_array_is_not_an_event() -> None:
    err = reject([canonical()])
    assert "expected a JSON object, got array" in str(err)
    assert err.field is None


def test_an_event_without_type_names_the_missing_field() -> None:
    err = reject(canonical(type=None))
    assert "missing required field 'type'" in str(err)
    assert err.field == "type"


def test_a_type_that_is_not_a_string_is_rejected() -> None:
    err = reject(canonical(type=7))
    assert "field 'type': expected string, got number" in str(err)


def test_an_unknown_type_is_rejected_with_a_suggestion() -> None:
    err = reject(canonical(type="ViolationDiscoverd"))
    assert "unknown event type 'ViolationDiscoverd'" in str(err)
    assert "did you mean 'ViolationDiscovered'" in str(err)
    assert err.field == "type"


def test_a_missing_required_field_is_named() -> None:
    err = reject(canonical(urgent=None))
    assert str(err) == "ViolationDiscovered e-0001: missing required field(s) 'urgent'"
    assert err.field == "urgent"


def test_a_missing_common_field_is_named() -> None:
    err = reject(canonical(source_dept=None))
    assert "missing required field(s) 'source_dept'" in str(err)
    assert err.field == "source_dept"


def test_null_for_a_required_field_is_named_with_the_type_expected() -> None:
    err = reject(canonical(case_id=None) | {"case_id": None})
    assert "field 'case_id': expected string, got null" in str(err)


def test_an_unknown_extra_field_is_rejected_and_named() -> None:
    err = reject(canonical(colour="red"))
    assert "unknown field(s) 'colour'" in str(err)
    assert err.field == "colour"


def test_published_at_is_not_a_field_of_the_canonical_form() -> None:
    err = reject(canonical(published_at="2026-09-30T10:00:00+08:00"))
    assert err.field == "published_at"


def test_a_number_where_a_string_is_expected_is_named() -> None:
    err = reject(canonical(matter_code=330217001000))
    assert "field 'matter_code': expected string, got number" in str(err)
    assert err.field == "matter_code"


def test_a_string_where_a_boolean_is_expected_is_named() -> None:
    err = reject(canonical(urgent="yes"))
    assert "field 'urgent': expected boolean, got string" in str(err)


def test_a_boolean_is_not_a_number_of_points() -> None:
    obj = codec.to_canonical(sample_event("AssessmentAdjusted"))
    err = reject(obj | {"points": True})
    assert "field 'points': expected number, got boolean" in str(err)


def test_an_enum_value_outside_the_contract_lists_the_allowed_values() -> None:
    err = reject(canonical(origin="hotline"))
    assert (
        "field 'origin': value 'hotline' not allowed; allowed: inspection, complaint, referral, monitoring"
        in str(err)
    )
    assert err.field == "origin"


def test_the_avro_symbol_hotline_12345_is_not_a_canonical_value() -> None:
    obj = codec.to_canonical(sample_event("ComplaintReceived"))
    err = reject(obj | {"channel": "hotline_12345"})
    assert "allowed: 12345, phone, letter, web, visit" in str(err)


def test_a_bad_item_of_an_array_is_named_with_its_index() -> None:
    obj = codec.to_canonical(sample_event("CaseTransferred"))
    err = reject(obj | {"materials": ["transfer_letter", "photos"]})
    assert "field 'materials[1]': value 'photos' not allowed" in str(err)
    assert err.field == "materials"


def test_a_string_where_an_array_is_expected_is_named() -> None:
    obj = codec.to_canonical(sample_event("ConsultationMeetingHeld"))
    err = reject(obj | {"participants": "HZ-ZFJ,HZ-SJJ"})
    assert "field 'participants': expected array, got string" in str(err)


@pytest.mark.parametrize("text", ["2026-09-30 10:00", "30/09/2026 10:00:00+08:00", "yesterday"])
def test_a_timestamp_that_is_not_iso_8601_is_a_bad_timestamp(text: str) -> None:
    err = reject(canonical(occurred_at=text))
    assert "field 'occurred_at': bad timestamp" in str(err)
    assert err.field == "occurred_at"


def test_a_timestamp_without_offset_is_a_bad_timestamp() -> None:
    err = reject(canonical(recorded_at="2026-09-30T10:05:00"))
    assert "field 'recorded_at': bad timestamp '2026-09-30T10:05:00': no UTC offset" in str(err)
    assert err.field == "recorded_at"


def test_a_timestamp_given_as_epoch_number_is_a_bad_timestamp() -> None:
    err = reject(canonical(occurred_at=1790000000000))
    assert "field 'occurred_at': bad timestamp: expected an ISO-8601 string, got number" in str(err)


def test_a_date_that_is_not_yyyy_mm_dd_is_named() -> None:
    obj = codec.to_canonical(sample_event("ApprovalIssued"))
    err = reject(obj | {"valid_until": "2031/09/27"})
    assert "field 'valid_until': bad date '2031/09/27'" in str(err)


def test_a_quarter_not_written_like_2026q4_is_rejected() -> None:
    obj = codec.to_canonical(sample_event("AssessmentAdjusted"))
    err = reject(obj | {"quarter": "2026-Q4"})
    assert "field 'quarter': value '2026-Q4' does not match" in str(err)


def test_optional_fields_may_be_absent_or_null() -> None:
    obj = codec.to_canonical(sample_event("TransferAcknowledged", 1))
    assert obj["reason"] is None
    del obj["reason"]
    assert codec.from_canonical(obj)["reason"] is None


def test_department_codes_are_not_checked_by_the_codec() -> None:
    assert codec.from_canonical(canonical(jurisdiction_dept="NOT-A-DEPT")).source_dept == "HZ-ZFJ"


def test_a_line_that_is_not_json_is_an_event_error() -> None:
    with pytest.raises(codec.EventError, match="not JSON"):
        codec.decode_json_line(b'{"type": "StopOrdered",')


# --------------------------------------------------------------------------- encode checks


def test_encoding_an_event_with_a_field_the_schema_lacks_names_the_field() -> None:
    event = with_fields(sample_event("StopOrdered"), to_dept="HZ-SJJ")
    with pytest.raises(codec.EventError, match="unknown field\\(s\\) 'to_dept'") as caught:
        codec.encode(event)
    assert caught.value.field == "to_dept"


def test_encoding_an_event_without_a_required_field_names_the_field() -> None:
    event = with_fields(sample_event("ViolationDiscovered"), urgent=DROP)
    with pytest.raises(codec.EventError, match="field 'urgent': missing required field") as caught:
        codec.encode(event)
    assert caught.value.field == "urgent"


def test_encoding_a_number_where_a_string_is_expected_names_the_field() -> None:
    bad = with_fields(sample_event("DeterminationReplied"), conclusion=42)
    with pytest.raises(codec.EventError, match="field 'conclusion': expected string, got number"):
        codec.encode(bad)


def test_encoding_an_enum_value_outside_the_contract_names_the_field() -> None:
    bad = with_fields(sample_event("ComplaintVerified"), finding="unclear")
    with pytest.raises(codec.EventError, match="field 'finding': value 'unclear' not allowed"):
        codec.encode(bad)


def test_encoding_an_unknown_type_is_an_event_error() -> None:
    event = Event("CaseClosed", "e", "HZ-ZFJ", at("2026-09-30T10:00+08:00"), at("2026-09-30T10:00+08:00"))
    with pytest.raises(codec.EventError, match="unknown event type 'CaseClosed'"):
        codec.encode(event)


def test_validate_is_as_strict_as_the_canonical_form() -> None:
    event = sample_event("ViolationDiscovered")
    codec.validate(event)
    bad = with_fields(event, urgent=1)
    with pytest.raises(codec.EventError, match="field 'urgent': expected boolean, got number"):
        codec.validate(bad)


def test_the_key_of_an_event_without_its_key_field_is_an_event_error() -> None:
    event = Event("StopOrdered", "e", "HZ-ZFJ", at("2026-09-30T10:00+08:00"), at("2026-09-30T10:00+08:00"))
    with pytest.raises(codec.EventError, match="field 'case_id': the record key") as caught:
        codec.key_of(event)
    assert caught.value.field == "case_id"


# --------------------------------------------------------------------------- decode errors


def decode_error(data: Any) -> codec.DecodeError:
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(data)
    return caught.value


def test_empty_bytes_are_too_short() -> None:
    assert "too short: 0 bytes" in str(decode_error(b""))


def test_a_header_cut_short_is_too_short() -> None:
    assert "too short: 6 bytes" in str(decode_error(codec.encode(sample_event("StopOrdered"))[:6]))


def test_bytes_without_the_single_object_marker_have_a_bad_magic() -> None:
    confluent_framing = b"\x00\x00\x00\x00\x07" + codec.encode(sample_event("StopOrdered"))[10:]
    assert "bad magic 0000" in str(decode_error(confluent_framing))


def test_json_bytes_have_a_bad_magic() -> None:
    assert "bad magic 7b22" in str(decode_error(codec.encode_json(sample_event("StopOrdered"))))


def test_a_fingerprint_no_schema_has_is_unknown() -> None:
    data = bytearray(codec.encode(sample_event("StopOrdered")))
    data[2:10] = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    err = decode_error(bytes(data))
    assert "unknown schema fingerprint 0102030405060708" in str(err)
    assert err.fingerprint == "0102030405060708"


def test_a_truncated_body_is_reported_with_its_type() -> None:
    data = codec.encode(sample_event("ViolationDiscovered"))
    err = decode_error(data[:-5])
    assert "truncated or corrupt body for ViolationDiscovered v1" in str(err)


def test_trailing_bytes_after_the_body_are_corruption() -> None:
    err = decode_error(codec.encode(sample_event("StopOrdered")) + b"\x00")
    assert "1 trailing bytes" in str(err)


def test_an_enum_index_out_of_range_is_a_corrupt_body() -> None:
    data = codec.encode(sample_event("ComplaintVerified"))
    assert "corrupt body for ComplaintVerified" in str(decode_error(data[:-1] + b"\x7e"))


def test_text_is_not_bytes() -> None:
    assert "expected bytes, got str" in str(decode_error("c301"))


def test_a_bytearray_or_memoryview_decodes_like_bytes() -> None:
    data = codec.encode(sample_event("ComplaintReplied"))
    assert codec.decode(bytearray(data)) == codec.decode(memoryview(data)) == codec.decode(data)


def test_the_schema_files_are_json_the_codec_can_explain() -> None:
    """A smoke test of the loader's error for a malformed writer schema."""
    broken = json.loads(json.dumps(codec.schema_of("StopOrdered")))
    broken["namespace"] = "elsewhere"
    with pytest.raises(ValueError, match="namespace must be"):
        codec.encode_with(sample_event("StopOrdered"), broken)
