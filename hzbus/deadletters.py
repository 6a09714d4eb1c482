"""The dead-letter topic's record format (``<prefix>.deadletter``), shared by its writers.

A dead letter is the original key and value of a record that could not be used, with headers
that say why and where it came from. The sink writes the records it cannot decode; the gate
writes the records it refuses (a ``source_dept`` that is not the producing principal, a
historical header from a department). The sink stores every other writer's dead letters in the
``dead_letters`` table too, read back from the topic (its own it stores as it writes them), so
the table mirrors the topic.
"""

from __future__ import annotations

from dataclasses import dataclass

REASON = "hzbus-reason"
SOURCE_TOPIC = "hzbus-source-topic"
SOURCE_PARTITION = "hzbus-source-partition"
SOURCE_OFFSET = "hzbus-source-offset"
#: who wrote the dead letter: "sink", "gate", or absent (another writer, or a dead letter older
#: than this header; the table's key — the refused record's topic, partition and offset — makes a
#: second copy of the same dead letter one row)
WRITTEN_BY = "hzbus-dead-letter-by"

Headers = list[tuple[str, str | bytes | None]]


def headers(topic: str, partition: int, offset: int, reason: str, by: str) -> Headers:
    return [
        (REASON, reason.encode("utf-8")),
        (SOURCE_TOPIC, topic.encode("utf-8")),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
        (WRITTEN_BY, by.encode()),
    ]


@dataclass(frozen=True)
class DeadLetterOrigin:
    written_by: str
    reason: str
    topic: str
    partition: int
    offset: int


def origin(record_headers: list[tuple[str, bytes | None]] | None) -> DeadLetterOrigin | None:
    """What a dead letter's headers say; None when they do not say where it came from."""
    found = {name: (value or b"").decode("utf-8", errors="replace") for name, value in record_headers or ()}
    try:
        return DeadLetterOrigin(
            written_by=found.get(WRITTEN_BY, ""),
            reason=found.get(REASON, ""),
            topic=found[SOURCE_TOPIC],
            partition=int(found[SOURCE_PARTITION]),
            offset=int(found[SOURCE_OFFSET]),
        )
    except (KeyError, ValueError):
        return None
