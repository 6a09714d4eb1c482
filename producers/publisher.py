"""Publishers: the port the adapters publish through, and its Kafka implementation.

``KafkaPublisher`` uses librdkafka (confluent-kafka) with the idempotent producer
(``enable.idempotence``: acks=all, no duplicates or reordering from producer retries) and
keys each record by its family's correlation id (case, approval, request, complaint...), so
all facts of one case stay in order on one partition. Delivery is confirmed by ``flush``;
a record the broker never acknowledged is reported to the caller, never dropped.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from domain.events import Event
from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.topics import topic_name
from schemas import codec

#: the header that marks a record as an import of past records (see KafkaPublisher)
HISTORICAL_HEADER = "hzbus-historical"

#: called with (event, reason) for every record that could not be delivered
FailureCallback = Callable[[Event, str], None]


class EncodedEvent(NamedTuple):
    """An event ready for the wire: its Avro single-object encoding and its record key."""

    event_id: str
    type: str
    key: bytes
    value: bytes


def encode_event(event: Event) -> EncodedEvent:
    return EncodedEvent(event.event_id, event.type, codec.key_of(event).encode("utf-8"), codec.encode(event))


class EventPublisher(abc.ABC):
    """Where department adapters hand their events."""

    def publish(self, event: Event, on_failure: FailureCallback) -> None:
        """Queue one event; ``on_failure`` is called if it is finally not delivered."""
        self.publish_encoded(encode_event(event), on_failure)

    @abc.abstractmethod
    def publish_encoded(self, event: EncodedEvent, on_failure: FailureCallback) -> None:
        """Queue one encoded event; ``on_failure`` is called with the event if it is finally
        not delivered."""

    def publish_many(
        self,
        ids: Sequence[str],
        types: Sequence[str],
        keys: Sequence[bytes],
        values: Sequence[bytes],
        on_failure: FailureCallback,
    ) -> None:
        """Queue encoded events given as columns, in order (see :meth:`publish_encoded`)."""
        for row in zip(ids, types, keys, values, strict=True):
            self.publish_encoded(EncodedEvent(*row), on_failure)

    @abc.abstractmethod
    def flush(self) -> None:
        """Block until every queued event is delivered or reported failed."""

    def close(self) -> None:
        self.flush()


@dataclass
class InMemoryPublisher(EventPublisher):
    """A publisher that keeps events in a list (unit tests of the publish pipeline)."""

    published: list[Event] = field(default_factory=list)
    fail_ids: set[str] = field(default_factory=set)

    def publish_encoded(self, event: EncodedEvent, on_failure: FailureCallback) -> None:
        decoded = codec.decode(event.value)  # what a consumer would read
        if event.event_id in self.fail_ids:
            on_failure(decoded, "simulated delivery failure")
        else:
            self.published.append(decoded)

    def flush(self) -> None:
        return None


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "batch.size": 1_000_000,
        "queue.buffering.max.messages": 500_000,
        "message.timeout.ms": 120_000,
        "client.id": "hzbus-publisher",
    }
    config.update(overrides)
    return config


def _unexpected_failure(event: Event, reason: str) -> None:
    raise RuntimeError(f"{event.event_id}: {reason}")


class KafkaPublisher(EventPublisher):
    """Publishes to ``<prefix>.<family>`` topics of a real Kafka cluster."""

    def __init__(
        self, settings: Settings, *, prefix: str | None = None, historical: bool = False, **config: Any
    ) -> None:
        from confluent_kafka import Producer

        self._prefix = prefix or settings.topic_prefix
        #: an import of past records: each record says so in a header, and the processors take
        #: its recorded_at (not the broker's append time) as its publication time (domain.md)
        self._headers: list[tuple[str, str | bytes | None]] | None = (
            [(HISTORICAL_HEADER, b"1")] if historical else None
        )
        self._producer = Producer(
            producer_config(
                settings, **{"on_delivery": self._delivered, "delivery.report.only.error": True, **config}
            )
        )
        self._produce = self._producer.produce
        self._on_failure: FailureCallback = _unexpected_failure
        self._topics: dict[str, str] = {}
        self._queued = 0
        self._check_topics(settings)

    def _check_topics(self, settings: Settings) -> None:
        from confluent_kafka import KafkaException

        try:
            metadata = self._producer.list_topics(timeout=15)
        except KafkaException as exc:
            raise UserError(
                f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc.args[0]} "
                "(start it with `hzbus infra up`, or set HZBUS_KAFKA_BOOTSTRAP)"
            ) from None
        missing = sorted(
            {topic_name(self._prefix, codec.topic_family(t)) for t in codec.event_types()}
            - set(metadata.topics)
        )
        if missing:
            raise UserError(
                f"topic(s) {', '.join(missing)} do not exist on {settings.kafka_bootstrap} "
                f"(create them with `hzbus infra topics --prefix {self._prefix}`)"
            )

    def _topic(self, event_type: str) -> str:
        topic = self._topics.get(event_type)
        if topic is None:
            topic = self._topics[event_type] = topic_name(self._prefix, codec.topic_family(event_type))
        return topic

    #: serve delivery reports every this many records (a poll costs a GIL round trip)
    POLL_EVERY = 1000

    def _delivered(self, err: Any, msg: Any) -> None:
        """librdkafka's report of a record it finally could not deliver (only failures are
        reported: a Python callback per delivered record would cost more than the produce)."""
        if err is None:
            return
        try:
            event = codec.decode(msg.value())
        except codec.DecodeError:  # cannot happen for bytes we encoded; say so if it does
            raise RuntimeError(f"undeliverable record with undecodable value: {err.str()}") from None
        self._on_failure(event, f"not delivered: {err.str()}")

    def publish_encoded(self, event: EncodedEvent, on_failure: FailureCallback) -> None:
        self._on_failure = on_failure
        topic = self._topics.get(event.type) or self._topic(event.type)
        try:
            self._produce(topic, event.value, event.key, headers=self._headers)
        except BufferError:
            while True:  # local queue full: let deliveries drain
                self._producer.poll(0.1)
                try:
                    self._produce(topic, event.value, event.key, headers=self._headers)
                    break
                except BufferError:
                    continue
        self._queued += 1
        if self._queued >= self.POLL_EVERY:
            self._queued = 0
            self._producer.poll(0)

    def publish_many(
        self,
        ids: Sequence[str],
        types: Sequence[str],
        keys: Sequence[bytes],
        values: Sequence[bytes],
        on_failure: FailureCallback,
    ) -> None:
        """:meth:`publish_encoded` for a chunk, in one tight loop (the publish pool's path)."""
        self._on_failure = on_failure
        produce, topics, headers = self._produce, self._topics, self._headers
        for event_type, key, value in zip(types, keys, values, strict=True):
            topic = topics.get(event_type) or self._topic(event_type)
            try:
                produce(topic, value, key, headers=headers)
            except BufferError:
                while True:  # local queue full: let deliveries drain
                    self._producer.poll(0.1)
                    try:
                        produce(topic, value, key, headers=headers)
                        break
                    except BufferError:
                        continue
        self._producer.poll(0)

    def flush(self) -> None:
        remaining = self._producer.flush(180)
        while remaining:
            remaining = self._producer.flush(60)
