"""The gate of the secured mode: ingress topics → family topics, or the dead-letter topic.

In the secured mode (docs/security.md) a department's adapter signs in as ``User:dept-<code>``
and may write only ``<prefix>.ingress.<code>`` (an ACL the broker enforces), so the topic a record
comes from is its producer's authenticated identity. The gate consumes every ingress topic and
decides each record with :func:`decide`:

* ``source_dept`` is not the topic's department → refused: a department publishes only as itself
  [信息资源共享机制 五];
* the ``hzbus-historical`` header is set → refused: only the operator imports past records, whose
  publication time is then the adapter's ``recorded_at``; a department's publication time is the
  broker's append time, never a time the sender typed [协作机制 三(二)1];
* it does not decode → refused (the sink would refuse it too);
* otherwise forwarded, byte for byte, to its family topic, keyed by its correlation id, with the
  ingress topic's append time as its publication time (``hzbus-published-ms``: a gate that was down
  does not make a department late) and its principal (``hzbus-principal``). Any other header the
  adapter set is dropped.

A refused record goes to ``<prefix>.deadletter`` with the reason (and from there, through the
sink, to the ``dead_letters`` table). Delivery: at least once — a batch's forwards and dead
letters are acknowledged by the broker before its ingress offsets are committed; a record
forwarded twice is the same event (same ``event_id``) and is stored and evaluated once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hzbus import deadletters, identity, kafka_auth
from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.topics import topic_name
from producers.publisher import HISTORICAL_HEADER
from schemas import codec

log = logging.getLogger("hzbus.gate")
LOG_APPEND_TIME = 2  # confluent_kafka.TIMESTAMP_LOG_APPEND_TIME


@dataclass(frozen=True)
class Forward:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Refuse:
    reason: str


def decide(
    prefix: str,
    topic: str,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]] | None,
    appended_ms: int | None,
) -> Forward | Refuse:
    """Where one record of an ingress topic goes (pure: no I/O)."""
    owner = identity.owner_of_ingress_topic(prefix, topic)
    if owner is None:
        return Refuse(f"{topic} is not an ingress topic of prefix {prefix}")
    principal = f"User:{identity.dept_principal(owner)}"
    if any(name == HISTORICAL_HEADER for name, _ in headers or ()):
        return Refuse(
            f"header {HISTORICAL_HEADER} set by {principal}: only the operator imports past records; "
            "a department's publication time is the broker's append time [协作机制 三(二)1]"
        )
    try:
        if not value:
            raise codec.DecodeError("empty message")
        event = codec.decode(value)
    except codec.DecodeError as exc:
        return Refuse(f"does not decode: {exc}")
    if event.source_dept != owner:
        return Refuse(
            f"source_dept {event.source_dept} does not match the producing principal {principal} "
            f"(topic {topic}): a department publishes only as itself [信息资源共享机制 五]"
        )
    out_headers = [(identity.PRINCIPAL_HEADER, principal.encode("utf-8"))]
    if appended_ms is not None and appended_ms >= 0:
        out_headers.insert(0, (identity.PUBLISHED_HEADER, str(appended_ms).encode()))
    return Forward(
        topic=topic_name(prefix, codec.topic_family(event.type)),
        key=codec.key_of(event).encode("utf-8"),
        value=value,
        headers=out_headers,
    )


@dataclass
class GateStats:
    forwarded: int = 0
    refused: int = 0
    batches: int = 0


class Gate:
    """Consume every ``<prefix>.ingress.*`` topic as the bus principal; forward or refuse."""

    def __init__(self, settings: Settings, *, prefix: str | None = None, group: str | None = None) -> None:
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        self.prefix = prefix or settings.topic_prefix
        self.group = group or f"{self.prefix}.gate"
        self.dead_topic = topic_name(self.prefix, "deadletter")
        auth = kafka_auth.client_config(settings, identity.BUS)
        quiet = {"log_level": 0, "error_cb": lambda err: log.debug("kafka: %s", err)}
        self.consumer = Consumer(
            {
                **auth,
                **quiet,
                "group.id": self.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": 5000,  # a new department's topic is seen soon
                "client.id": "hzbus-gate",
            }
        )
        self.producer = Producer(
            {
                **auth,
                **quiet,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "client.id": "hzbus-gate",
            }
        )
        self.pattern = "^" + re.escape(identity.ingress_prefix(self.prefix)) + ".+"
        self.assigned = False
        self._failed: list[str] = []

    def prepare(self) -> None:
        """The dead-letter topic and the family topics must exist (``hzbus infra topics``)."""
        from confluent_kafka import KafkaException

        try:
            md = self.producer.list_topics(timeout=15)
        except KafkaException as exc:
            raise UserError(
                f"cannot reach Kafka at {kafka_auth.bootstrap(self.settings)}: {exc.args[0]}"
            ) from None
        families = {codec.topic_family(t) for t in codec.event_types()}
        wanted = {self.dead_topic, *(topic_name(self.prefix, f) for f in families)}
        missing = sorted(wanted - set(md.topics))
        if missing:
            raise UserError(
                f"topic(s) {', '.join(missing)} do not exist or are not visible to "
                f"{kafka_auth.principal_of(kafka_auth.client_config(self.settings, identity.BUS))} "
                f"(create them with `hzbus infra principals --prefix {self.prefix}`)"
            )

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        self.assigned = True
        log.info("gate: %d ingress partition(s)", len(partitions))

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._failed.append(f"{msg.topic()}: {err.str()}")

    def run(
        self,
        *,
        stop_when_idle: float | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> GateStats:
        """Until ``should_stop()`` or, with ``stop_when_idle``, until nothing arrived for that long."""
        from confluent_kafka import KafkaError, KafkaException, TopicPartition

        stats = GateStats()
        self.consumer.subscribe([self.pattern], on_assign=self._on_assign)
        last: float | None = None  # the last record, or the assignment
        try:
            while not should_stop():
                messages: list[Any] = self.consumer.consume(num_messages=1000, timeout=0.2)
                now = time.monotonic()
                offsets: dict[tuple[str, int], int] = {}
                for msg in messages:
                    err = msg.error()
                    if err is not None:
                        if err.code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                            log.warning("gate: consume error: %s", err)
                        continue
                    last = now
                    self._handle(msg, stats, on_refused)
                    offsets[msg.topic(), msg.partition()] = msg.offset() + 1
                if offsets:
                    self._commit(offsets, stats, TopicPartition, KafkaException)
                if stop_when_idle is not None and self.assigned:
                    last = last if last is not None else now
                    if now - last >= stop_when_idle:
                        break
        finally:
            self.consumer.close()
        return stats

    def _handle(self, msg: Any, stats: GateStats, on_refused: Callable[[str, str], None] | None) -> None:
        ts_type, ts_ms = msg.timestamp()
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        appended = ts_ms if ts_type == LOG_APPEND_TIME else None
        decision = decide(self.prefix, topic, msg.value(), msg.headers(), appended)
        if isinstance(decision, Forward):
            self._produce(decision.topic, decision.value, decision.key, decision.headers)
            stats.forwarded += 1
            return
        where = f"{topic}[{partition}]@{offset}"
        log.warning("gate: refused %s: %s", where, decision.reason)
        owner = identity.owner_of_ingress_topic(self.prefix, topic) or "?"
        dead_headers = [
            *deadletters.headers(topic, partition, offset, decision.reason, "gate"),
            (identity.PRINCIPAL_HEADER, f"User:{identity.DEPT_PREFIX}{owner}".encode()),
        ]
        self._produce(self.dead_topic, msg.value(), msg.key(), dead_headers)
        stats.refused += 1
        if on_refused is not None:
            on_refused(where, decision.reason)

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, headers: list[Any]) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers, on_delivery=self._delivered)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _commit(self, offsets: dict[tuple[str, int], int], stats: GateStats, tp: Any, kafka_exc: Any) -> None:
        remaining = self.producer.flush(60)
        if remaining or self._failed:
            failed = "; ".join(self._failed[:3]) or f"{remaining} record(s) unacknowledged"
            raise UserError(f"gate: forwarding failed ({failed}); ingress offsets not committed")
        try:
            self.consumer.commit(offsets=[tp(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
        except kafka_exc as exc:  # a rebalance took the partitions: re-delivered, forwarded again
            log.warning("gate: offset commit failed (%s); the batch will be forwarded again", exc)
        stats.batches += 1
