"""The Avro contract: the .avsc files follow domain.md and the conventions of docs/wire-format.md,
and every version kept in schemas/avro/history still decodes under the current schema."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form

from hzbus.topics import event_families
from schemas import codec
from schemas.samples import sample_event

AVRO = Path(codec.__file__).resolve().parent / "avro"
CURRENT = sorted(AVRO.glob("*.avsc"))
HISTORY = sorted((AVRO / "history").glob("*.avsc"))
CJK = re.compile(r"[\u4e00-\u9fff]")

#: The catalogue of domain.md ("Events"), in its order.
DOMAIN_TYPES = [
    "ViolationDiscovered",
    "TransferExtensionNotified",
    "StopOrdered",
    "CaseTransferred",
    "TransferAcknowledged",
    "ApprovalIssued",
    "PenaltyDecided",
    "CoerciveMeasureDecided",
    "DeterminationRequested",
    "DeterminationExtended",
    "DeterminationReferred",
    "DeterminationReferralReturned",
    "DeterminationReplied",
    "ComplaintReceived",
    "ComplaintVerified",
    "ComplaintReplied",
    "InfoFormed",
    "InfoShared",
    "ConsultationMeetingHeld",
    "AssessmentAdjusted",
]

#: The fixed value sets of domain.md, exactly as it writes them (canonical values).
DOMAIN_ENUMS = {
    ("ViolationDiscovered", "origin"): ["inspection", "complaint", "referral", "monitoring"],
    ("CaseTransferred", "materials"): ["transfer_letter", "source_material", "evidence", "other"],
    ("TransferAcknowledged", "decision"): ["accepted", "rejected"],
    ("ApprovalIssued", "approval_kind"): ["license", "filing", "confirmation"],
    ("ApprovalIssued", "decision"): ["granted", "denied", "revoked", "suspended"],
    ("PenaltyDecided", "penalty_kind"): [
        "warning",
        "public_criticism",
        "fine",
        "confiscation",
        "license_suspension",
        "license_revocation",
        "business_restriction",
        "closure",
        "detention",
        "other",
    ],
    ("CoerciveMeasureDecided", "measure_kind"): ["seal", "seize", "freeze", "other"],
    ("ComplaintReceived", "channel"): ["12345", "phone", "letter", "web", "visit"],
    ("ComplaintVerified", "finding"): ["no_violation", "in_jurisdiction", "out_of_jurisdiction"],
    ("ConsultationMeetingHeld", "kind"): ["joint", "thematic"],
}

#: The type's own fields as domain.md names them; "?" = optional.
DOMAIN_FIELDS = {
    "ViolationDiscovered": "case_id subject_id domain matter_code jurisdiction_dept urgent origin",
    "TransferExtensionNotified": "case_id to_dept reason",
    "StopOrdered": "case_id",
    "CaseTransferred": "case_id to_dept materials leader_approved cc_coordination_office complaint_id?",
    "TransferAcknowledged": "case_id decision reason?",
    "ApprovalIssued": "approval_id subject_id domain matter_code approval_kind decision valid_until?",
    "PenaltyDecided": "penalty_id case_id subject_id domain matter_code penalty_kind amount_yuan? "
    "legal_basis unlicensed_operation requires_permit_suspension",
    "CoerciveMeasureDecided": "measure_id case_id subject_id measure_kind",
    "DeterminationRequested": "request_id case_id to_dept question?",
    "DeterminationExtended": "request_id reason",
    "DeterminationReferred": "request_id to_dept reason",
    "DeterminationReferralReturned": "request_id",
    "DeterminationReplied": "request_id conclusion",
    "ComplaintReceived": "complaint_id channel subject_id? summary?",
    "ComplaintVerified": "complaint_id finding",
    "ComplaintReplied": "complaint_id",
    "InfoFormed": "share_id to_dept info_kind extension_reason?",
    "InfoShared": "share_id to_dept info_kind",
    "ConsultationMeetingHeld": "meeting_id kind participants",
    "AssessmentAdjusted": "dept quarter item points reason",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def own_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(schema["fields"][len(codec.COMMON_FIELDS) :])


def is_optional(field: dict[str, Any]) -> bool:
    return isinstance(field["type"], list) and "null" in field["type"]


def history_id(path: Path) -> str:
    return path.name


# --------------------------------------------------------------------------- the catalogue


def test_there_is_one_schema_per_event_type_of_domain_md() -> None:
    assert sorted(p.stem for p in CURRENT) == sorted(DOMAIN_TYPES) == codec.event_types()


@pytest.mark.parametrize("event_type", DOMAIN_TYPES)
def test_each_schema_has_the_fields_domain_md_names(event_type: str) -> None:
    schema = codec.schema_of(event_type)
    written = [f["name"] + ("?" if is_optional(f) else "") for f in own_fields(schema)]
    assert written == DOMAIN_FIELDS[event_type].split()


@pytest.mark.parametrize(("event_type", "field"), sorted(DOMAIN_ENUMS))
def test_each_fixed_value_set_is_an_enum_with_the_symbols_of_domain_md(event_type: str, field: str) -> None:
    (spec,) = [f for f in own_fields(codec.schema_of(event_type)) if f["name"] == field]
    enum = spec["type"]["items"] if spec["type"]["type"] == "array" else spec["type"]
    canonical = enum.get("hzbus.canonical", {})
    assert enum["type"] == "enum"
    assert [canonical.get(s, s) for s in enum["symbols"]] == DOMAIN_ENUMS[(event_type, field)]


def test_the_only_symbol_renamed_for_avro_is_the_12345_hotline() -> None:
    renamed = {
        symbol: value
        for path in CURRENT
        for field in own_fields(load(path))
        for t in [field["type"], field["type"].get("items") if isinstance(field["type"], dict) else None]
        if isinstance(t, dict) and t.get("type") == "enum"
        for symbol, value in t.get("hzbus.canonical", {}).items()
    }
    assert renamed == {"hotline_12345": "12345"}


# --------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("path", CURRENT + HISTORY, ids=lambda p: str(p.relative_to(AVRO)))
def test_every_schema_follows_the_conventions_of_the_contract(path: Path) -> None:
    schema = load(path)
    assert schema["type"] == "record"
    assert schema["name"] == path.name.split(".")[0]
    assert schema["namespace"] == "cn.gov.huzhou.hzbus.events"
    assert schema["hzbus.topic"] in event_families()
    assert isinstance(schema["hzbus.version"], int) and schema["hzbus.version"] >= 1
    common = schema["fields"][:4]
    assert [f["name"] for f in common] == ["event_id", "source_dept", "occurred_at", "recorded_at"]
    assert [f["type"] for f in common[:2]] == ["string", "string"]
    assert [f["type"] for f in common[2:]] == [{"type": "long", "logicalType": "timestamp-millis"}] * 2
    key = [f for f in schema["fields"] if f["name"] == schema["hzbus.key"]]
    assert key and key[0]["type"] == "string", "the record key is a required string field"
    parse_schema(schema)  # valid Avro


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.stem)
def test_every_record_and_field_is_documented_in_chinese_and_english(path: Path) -> None:
    schema = load(path)
    for doc in [schema["doc"], *(f["doc"] for f in schema["fields"])]:
        chinese, _, english = doc.partition(" / ")
        assert CJK.search(chinese) and english, doc


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.stem)
def test_optional_fields_are_null_unions_defaulting_to_null(path: Path) -> None:
    for field in load(path)["fields"]:
        if isinstance(field["type"], list):
            assert field["type"][0] == "null" and len(field["type"]) == 2, field["name"]
            assert "default" in field and field["default"] is None, field["name"]


# --------------------------------------------------------------------------- history and evolution


def test_every_type_keeps_its_earlier_versions_in_history() -> None:
    kept: dict[str, set[int]] = {}
    for path in HISTORY:
        name, version = re.fullmatch(r"(\w+)\.v(\d+)\.avsc", path.name).groups()  # type: ignore[union-attr]
        assert load(path)["hzbus.version"] == int(version)
        kept.setdefault(name, set()).add(int(version))
    for event_type in codec.event_types():
        current = codec.schema_of(event_type)["hzbus.version"]
        versions = kept.get(event_type, set())
        assert versions, f"{event_type}: no history copy"
        assert set(range(1, current)) <= versions <= set(range(1, current + 1)), event_type


@pytest.mark.parametrize("path", HISTORY, ids=history_id)
def test_a_history_version_never_loses_renames_or_retypes_a_field(path: Path) -> None:
    old = load(path)
    new = codec.schema_of(old["name"])
    old_fields = {f["name"]: f for f in old["fields"]}
    new_fields = {f["name"]: f for f in new["fields"]}
    assert old_fields.keys() <= new_fields.keys(), "fields are never removed or renamed"
    for name, field in old_fields.items():
        pcf = to_parsing_canonical_form
        assert pcf({"type": "record", "name": "x", "fields": [field]}) == pcf(
            {"type": "record", "name": "x", "fields": [new_fields[name]]}
        ), f"{name}: type changed"
    for name in new_fields.keys() - old_fields.keys():
        assert is_optional(new_fields[name]) and new_fields[name]["default"] is None, (
            f"{name}: a field added after v{old['hzbus.version']} must be optional with default null"
        )


@pytest.mark.parametrize("n", [0, 1], ids=["optional fields set", "optional fields null"])
@pytest.mark.parametrize("path", HISTORY, ids=history_id)
def test_data_written_with_a_history_version_decodes_under_the_current_schema(path: Path, n: int) -> None:
    old = load(path)
    written = sample_event(old["name"], n, schema=old)
    data = codec.encode_with(written, old)
    assert data[2:10].hex() == fingerprint(to_parsing_canonical_form(old), "CRC-64-AVRO")
    decoded = codec.decode(data)
    assert codec.type_of(data) == old["name"]
    assert (decoded.type, decoded.event_id, decoded.source_dept) == (
        written.type,
        written.event_id,
        written.source_dept,
    )
    assert (decoded.occurred_at, decoded.recorded_at) == (written.occurred_at, written.recorded_at)
    current_names = [f["name"] for f in own_fields(codec.schema_of(old["name"]))]
    assert list(decoded.fields) == current_names
    for name in current_names:
        assert decoded[name] == written.fields.get(name), name  # fields added later read as None


def test_complaint_received_v2_added_an_optional_summary_and_still_reads_v1() -> None:
    v1 = load(AVRO / "history" / "ComplaintReceived.v1.avsc")
    v2 = codec.schema_of("ComplaintReceived")
    assert (v1["hzbus.version"], v2["hzbus.version"]) == (1, 2)
    v1_event = sample_event("ComplaintReceived", 0, schema=v1)
    v1_bytes = codec.encode_with(v1_event, v1)
    v2_bytes = codec.encode(sample_event("ComplaintReceived", 0))
    assert v1_bytes[2:10] != v2_bytes[2:10], "a new field is a new writer fingerprint"
    decoded = codec.decode(v1_bytes)
    assert decoded["summary"] is None
    assert decoded["channel"] == v1_event["channel"]


def test_resolution_is_really_exercised_a_required_field_added_without_default_would_fail() -> None:
    """Proves the compatibility test has teeth: fastavro refuses the breaking change that the
    evolution rules forbid, so a history file that cannot be read would fail the test above."""
    v1 = load(AVRO / "history" / "ComplaintReceived.v1.avsc")
    breaking = json.loads(json.dumps(v1))
    breaking["fields"].append({"name": "handled_by", "type": "string", "doc": "承办部门 / handler"})
    body = io.BytesIO()
    record = {
        "event_id": "e",
        "source_dept": "HZ-ZFJ",
        "occurred_at": 0,
        "recorded_at": 0,
        "complaint_id": "c",
        "channel": "phone",
        "subject_id": None,
    }
    schemaless_writer(body, parse_schema(v1), record)
    body.seek(0)
    with pytest.raises(Exception, match="handled_by"):
        schemaless_reader(body, parse_schema(v1), parse_schema(breaking))


def test_no_two_event_types_share_a_writer_fingerprint() -> None:
    seen: dict[str, str] = {}
    for path in CURRENT + HISTORY:
        schema = load(path)
        fp = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
        if fp in seen:
            assert seen[fp] == schema["name"], f"{path.name} collides with {seen[fp]}"
        seen[fp] = schema["name"]
