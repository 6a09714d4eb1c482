"""Rows of the ClickHouse tables from decoded events (pure, no I/O).

Personal ID numbers are pseudonymised here, before anything is stored for analysts
[信息资源共享机制 五]; organisation codes pass unchanged.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from domain.events import Event
from domain.privacy import pseudonymise
from schemas import codec

#: dedup_version = VERSION_BASE - broker time in ms: the earliest publication wins the merge
VERSION_BASE = (1 << 63) - 1
EVENT_COLUMNS = (
    "event_id",
    "type",
    "source_dept",
    "occurred_at",
    "recorded_at",
    "published_at",
    "ref_id",
    "subject_id",
    "payload",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "ingested_at",
    "dedup_version",
)
DEAD_LETTER_COLUMNS = (
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "reason",
    "key",
    "value_base64",
    "dead_at",
)


#: pseudonyms already computed, by key and subject: the sink's lookup before
#: ``pseudonymise`` (a dict lookup in compiled code instead of a call through its cache)
_PSEUDONYMS: dict[bytes, dict[str, str]] = {}


def _pseudonym(subject: str, key: bytes) -> str:
    known = _PSEUDONYMS.get(key)
    if known is None:
        known = _PSEUDONYMS[key] = {}
    masked = known.get(subject)
    if masked is None:
        if len(known) >= 65_536:  # bounded: subjects recur within a case, not across years
            known.clear()
        masked = known[subject] = pseudonymise(subject, key)
    return masked


def _payload(fields: Mapping[str, Any], key: bytes) -> tuple[str, bytes]:
    subject = fields.get("subject_id")
    if isinstance(subject, str) and subject:
        masked = _pseudonym(subject, key)
        if masked != subject:
            fields = {**fields, "subject_id": masked}
        return masked, orjson.dumps(fields)
    return "", orjson.dumps(fields)


def event_row(
    event: Event,
    *,
    topic: str,
    partition: int,
    offset: int,
    published_ms: int,
    ingested_at: datetime,
    pseudonym_key: bytes,
) -> tuple[Any, ...]:
    """One ``events`` row; times as tz-aware datetimes (ClickHouse stores whole seconds)."""
    subject, payload = _payload(event.fields, pseudonym_key)
    published = event.published_at or ingested_at
    return (
        event.event_id,
        event.type,
        event.source_dept,
        event.occurred_at,
        event.recorded_at,
        published,
        codec.key_of(event),
        subject,
        payload.decode("utf-8"),
        topic,
        partition,
        offset,
        ingested_at,
        VERSION_BASE - published_ms,
    )


def event_row_fast(
    record: codec.EventRecord,
    *,
    topic: str,
    partition: int,
    offset: int,
    published_ms: int,
    ingested_s: int,
    pseudonym_key: bytes,
) -> tuple[Any, ...]:
    """The :func:`event_row` of an event read from Kafka (as :func:`codec.decode_record`
    gives it), with times as epoch seconds.

    ClickHouse stores the same values: clickhouse-driver writes an aware datetime as
    ``int(dt.timestamp())`` and passes ints through, which saves it a timezone conversion
    per value, and writes the payload's UTF-8 JSON bytes to its String column as they are
    (no decoding here, no encoding there). ``published_ms`` is the broker's time (the row's
    ``published_at``); ``ingested_s`` is ``int(ingested_at.timestamp())``.
    """
    event_type, event_id, source_dept, occurred_ms, recorded_ms, fields = record
    subject, payload = _payload(fields, pseudonym_key)
    return (
        event_id,
        event_type,
        source_dept,
        occurred_ms // 1000,
        recorded_ms // 1000,
        published_ms // 1000,
        fields.get(_KEY_FIELD.get(event_type) or _key_field(event_type)) or "",
        subject,
        payload,
        topic,
        partition,
        offset,
        ingested_s,
        VERSION_BASE - published_ms,
    )


_KEY_FIELD: dict[str, str] = {}


def _key_field(event_type: str) -> str:
    name = _KEY_FIELD[event_type] = codec.key_field(event_type)
    return name


def dead_letter_row(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    key: bytes | None,
    value: bytes | None,
    dead_at: datetime,
) -> tuple[Any, ...]:
    return (
        topic,
        partition,
        offset,
        reason,
        (key or b"").decode("utf-8", errors="replace"),
        base64.b64encode(value or b"").decode("ascii"),
        dead_at,
    )
