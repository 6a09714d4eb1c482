"""The worker's route stage (its own consumer, group ``<prefix>-worker-route``) on the real
broker: an upgrade from a worker whose Faust agent routed the source topics, a route stage the
broker refuses, and the secured mode (stream_processors/worker.py, docs/reliability.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from domain import obligations
from hzbus.config import Settings
from hzbus.lag import group_lag, wait_for_worker
from hzbus.processes import spawn_hzbus
from hzbus.topics import event_topics, topic_name
from infra import kafka_security
from producers.readers import read_records
from producers.simulate import write_simulation
from schemas import codec
from stream_processors.envelope import EVENT, batch_entries, unpack
from tests.conftest import Bus
from tests.integration.faults import read_topic
from tests.integration.helpers import (
    _env,
    publish_file,
    replayed,
    set_topic_config,
    stop,
    worker_process,
    worker_until_stopped,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def thirds(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six days of simulated events in three files, in order."""
    folder = tmp_path_factory.mktemp("route")
    whole = folder / "events.jsonl"
    write_simulation(whole, days=6, seed=11, start=date(2026, 9, 21))
    lines = whole.read_bytes().splitlines(keepends=True)
    parts = []
    for i in range(3):
        part = folder / f"part{i}.jsonl"
        part.write_bytes(b"".join(lines[i * len(lines) // 3 : (i + 1) * len(lines) // 3]))
        parts.append(part)
    return parts


def keyed_ids(*paths: Path) -> set[str]:
    """The events of ``paths`` that the route stage re-keys onto by-key (those with a
    correlation key)."""
    events = [codec.from_canonical(r.data) for p in paths for r in read_records(p) if r.data is not None]
    return {e.event_id for e in events if obligations.correlation_keys(e)}


def routed_ids(settings: Settings, prefix: str) -> list[str]:
    """The event ids in the by-key batch records, one per entry (a repeat: routed twice)."""
    topic = topic_name(prefix, "by-key")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{prefix}.check"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        ids: list[str] = []
        left = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 30
        while left and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is not None:
                    continue
                if msg.offset() + 1 >= ends[msg.partition()]:
                    left.discard(msg.partition())
                for _key, value in batch_entries(msg.key() or b"", msg.value()):
                    kind, _moment, payload = unpack(value)
                    if kind == EVENT:
                        ids.append(codec.decode(payload).event_id)
        assert not left, f"by-key partitions {sorted(left)} not read to their end"
        return ids
    finally:
        consumer.close()


def source_ends(settings: Settings, prefix: str) -> dict[tuple[str, int], int]:
    """The end offset of every source partition holding records."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{prefix}.check"})
    try:
        ends = {}
        md = consumer.list_topics(timeout=10)
        for topic in event_topics(prefix):
            for p in md.topics[topic].partitions:
                end = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                if end > 0:
                    ends[topic, p] = end
        return ends
    finally:
        consumer.close()


def set_group_offsets(settings: Settings, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``offsets`` for ``group`` (no member of it may be running), as its consumer would."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in offsets.items()])
    for fut in admin.alter_consumer_group_offsets([request]).values():
        fut.result(timeout=30)


def test_a_worker_upgraded_from_the_faust_route_agent_routes_exactly_what_that_left(
    bus: Bus, thirds: list[Path]
) -> None:
    # A worker of before the route task routed the first third through its Faust agent: its
    # group (<prefix>-worker) committed the end of every source partition it read.
    publish_file(bus, thirds[0], historical=True)
    set_group_offsets(bus.settings, f"{bus.prefix}-worker", source_ends(bus.settings, bus.prefix))
    publish_file(bus, thirds[1], historical=True)  # arrives while it is stopped for the upgrade
    worker = worker_process(bus, "w1")
    try:
        wait_for_worker(bus.settings, bus.prefix, alive=lambda: worker.poll() is None)
    finally:
        stop(worker)
    routed = routed_ids(bus.settings, bus.prefix)
    assert keyed_ids(thirds[0]) and not keyed_ids(thirds[0]) & set(routed)  # nothing routed again
    assert set(routed) == keyed_ids(thirds[1])  # nothing skipped, also where the old group had no offset
    assert group_lag(bus.settings, f"{bus.prefix}-worker-route", event_topics(bus.prefix)) == 0

    # Once the route group has offsets of its own they win: the old group's (here set back to
    # the start) are not followed again.
    publish_file(bus, thirds[2], historical=True)
    back = dict.fromkeys(source_ends(bus.settings, bus.prefix), 0)
    set_group_offsets(bus.settings, f"{bus.prefix}-worker", back)
    worker = worker_process(bus, "w1")
    try:
        wait_for_worker(bus.settings, bus.prefix, alive=lambda: worker.poll() is None)
    finally:
        stop(worker)
    assert set(routed_ids(bus.settings, bus.prefix)) == keyed_ids(thirds[1], thirds[2])


def test_a_route_stage_the_broker_refuses_stops_the_worker_loudly_and_loses_nothing(
    bus: Bus, thirds: list[Path], tmp_path: Path
) -> None:
    publish_file(bus, thirds[0], historical=True)
    by_key = topic_name(bus.prefix, "by-key")
    set_topic_config(bus.settings, by_key, "max.message.bytes", "200")  # every batch record is larger
    status, text = worker_until_stopped(bus, tmp_path / "worker.log")
    assert status == 1, text[-3000:]
    assert "route stage failed: MessageSizeTooLargeError" in text, text[-3000:]
    published = sum(source_ends(bus.settings, bus.prefix).values())
    route_group = f"{bus.prefix}-worker-route"
    assert group_lag(bus.settings, route_group, event_topics(bus.prefix)) == published  # nothing committed

    set_topic_config(bus.settings, by_key, "max.message.bytes", None)  # the broker accepts them again
    worker = worker_process(bus, "w1")
    try:
        wait_for_worker(bus.settings, bus.prefix, alive=lambda: worker.poll() is None)
    finally:
        stop(worker)
    assert set(routed_ids(bus.settings, bus.prefix)) == keyed_ids(thirds[0])


@pytest.fixture
def secured_bus(bus: Bus) -> Iterator[Bus]:
    """``bus`` with the secured mode's bus principal and its ACLs for the prefix."""
    kafka_security.ensure_principals(bus.settings, prefix=bus.prefix, codes=[])
    yield bus  # the bus fixture drops the prefix's ACLs with its topics


def test_in_the_secured_mode_the_route_stage_signs_in_as_the_bus(
    secured_bus: Bus, thirds: list[Path]
) -> None:
    bus = secured_bus
    publish_file(bus, thirds[0], historical=True)
    scram = replace(bus.settings, kafka_security="scram")
    # Only the SCRAM listener as bootstrap: a client of the worker that ignored the secured mode
    # would speak PLAINTEXT to it and get nothing.
    only_scram = f"127.0.0.1:{scram.kafka_scram_port}"
    env = {
        **_env(bus),
        "HZBUS_KAFKA_SECURITY": "scram",
        "HZBUS_KAFKA_BOOTSTRAP": only_scram,
        "HZBUS_KAFKA_SCRAM_PORT": str(scram.kafka_scram_port),
    }
    worker = spawn_hzbus("worker", "--name", "w1", "--loglevel", "error", env=env)
    try:
        wait_for_worker(bus.settings, bus.prefix, alive=lambda: worker.poll() is None)
    finally:
        stop(worker)
    assert worker.returncode in (0, -15), worker.returncode
    assert set(routed_ids(bus.settings, bus.prefix)) == keyed_ids(thirds[0])
    assert group_lag(bus.settings, f"{bus.prefix}-worker-route", event_topics(bus.prefix)) == 0
    # the track step's facts, written by the librdkafka writer, signed in as the bus too
    facts = read_topic(bus, "obligations")
    written = {orjson.loads(value)["obligation"]["obligation_id"] for _key, value in facts}
    assert written == set(replayed(thirds[0], datetime.now(UTC)))
