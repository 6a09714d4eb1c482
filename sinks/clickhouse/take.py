"""The sink's per-message loop: decode, admit, build the ``events`` row (pure, no I/O).

This is where the sink spends its time, so it is compiled with mypyc when built, with
:mod:`schemas.avro_fast`, :mod:`schemas.admission` and :mod:`sinks.clickhouse.rows`
(``python -m hzbus.native build``, run by ``scripts/bootstrap.sh``; docs/performance.md,
"Compiled hot paths"). Uncompiled, it is the same code and gives the same rows.

Every message that is not an admitted event comes back to the caller with what to do with it
(:data:`ERROR`, :data:`FACT`, :data:`RELAY`, :data:`DEAD` with the reason), in fetch order.
"""

from __future__ import annotations

from typing import Any, Final

from hzbus import identity
from schemas import admission, codec
from schemas.avro_fast import RecordDecoder
from sinks.clickhouse.rows import event_row_fast

#: confluent-kafka's timestamp type of a record of a LogAppendTime topic (the broker's time)
LOG_APPEND_TIME: Final = 2
#: what the caller does with a message handed back: a consume error; a fact of the worker's
#: (its table's row builder); a record of the dead-letter topic (relayed); a dead letter
ERROR: Final = 0
FACT: Final = 1
RELAY: Final = 2
DEAD: Final = 3


class Topics:
    """What the loop needs to know of the topics it reads."""

    def __init__(self, families: dict[str, str], facts: dict[str, str], dead_topic: str, key: bytes) -> None:
        self.families = families  # event topic -> its family
        self.facts = facts  # the worker's fact topic -> its table
        self.dead_topic = dead_topic
        self.key = key  # the pseudonym key
        self.decoders: dict[bytes, RecordDecoder] = codec.record_decoders()


def take_events(
    messages: list[Any],
    topics: Topics,
    ingested_s: int,
    rows: list[tuple[Any, ...]],
    offsets: dict[tuple[str, int], int],
    by_type: dict[str, int],
) -> list[tuple[int, Any, str]]:
    """Append the row of each admitted event of ``messages`` to ``rows``, count it in
    ``by_type`` and move ``offsets`` past every message read; return the other messages as
    ``(what, message, reason)``."""
    others: list[tuple[int, Any, str]] = []
    fallback_ms = ingested_s * 1000
    decoders = topics.decoders
    facts, families, key, dead_topic = topics.facts, topics.families, topics.key, topics.dead_topic
    for msg in messages:
        if msg.error() is not None:
            others.append((ERROR, msg, ""))
            continue
        topic: str = msg.topic()
        partition: int = msg.partition()
        offset: int = msg.offset()
        offsets[topic, partition] = offset + 1
        if topic in facts:
            others.append((FACT, msg, facts[topic]))
            continue
        if topic == dead_topic:  # dead letters of the gate, the worker... (the sink's own are stored)
            others.append((RELAY, msg, ""))
            continue
        value = msg.value()
        if not value:
            others.append((DEAD, msg, "does not decode: empty message"))
            continue
        size = len(value)
        if size > admission.MAX_EVENT_BYTES:
            others.append((DEAD, msg, str(admission.size_refusal(size))))
            continue
        decoder = decoders.get(value[: codec.HEADER_SIZE])
        try:
            if decoder is None:
                raise codec.DecodeError("not the current schema")  # the general decoder decides
            record = decoder.decode(value)
        except Exception:  # not the ordinary case: the general decoder decides and explains
            try:
                record = codec.decode_record(value)
            except codec.DecodeError as exc:
                others.append((DEAD, msg, f"does not decode: {exc}"))
                continue
        ts_type, ts_ms = msg.timestamp()
        if ts_type == 0 or ts_ms is None or ts_ms < 0:
            ts_ms = fallback_ms
        headers = msg.headers()
        if headers:  # forwarded by the gate: published when it reached the ingress topic
            ts_ms = identity.gate_published_ms(headers, ts_ms)
        event_type = record[0]
        refused = admission.refusal(  # against the broker's time (ours, on a CreateTime topic)
            event_type,
            record[2],
            record[5],
            record[3],
            record[4],
            topic_family=families.get(topic),
            published_ms=ts_ms if ts_type == LOG_APPEND_TIME else fallback_ms,
        )
        if refused is not None:
            others.append((DEAD, msg, refused))
            continue
        rows.append(
            event_row_fast(
                record,
                topic=topic,
                partition=partition,
                offset=offset,
                published_ms=ts_ms,
                ingested_s=ingested_s,
                pseudonym_key=key,
            )
        )
        by_type[event_type] = by_type.get(event_type, 0) + 1
    return others
