"""The worker's librdkafka writer on the real broker (stream_processors/output.py): changelog
offsets handed to Faust, a refused record reported and never committed past, and a worker that
cannot write its facts stopping without losing them (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from hzbus.lag import wait_for_worker
from hzbus.topics import TopicSpec, topic_name
from infra import manager
from producers.simulate import write_simulation
from stream_processors.output import DeliveryFailed, RecordWriter
from tests.conftest import Bus
from tests.integration.faults import read_topic
from tests.integration.helpers import (
    publish_file,
    replayed,
    set_topic_config,
    stop,
    worker_process,
    worker_until_stopped,
)

pytestmark = pytest.mark.integration


def extra_topic(bus: Bus, family: str, partitions: int = 2) -> str:
    name = f"{bus.prefix}-worker-{family}"  # removed with the prefix
    spec = TopicSpec(family=family, name=name, partitions=partitions, config={}, carries_events=False)
    manager.ensure_topics(bus.settings, prefix=bus.prefix, extra=[spec])
    return name


def test_the_writer_hands_on_changelog_offsets_and_reports_a_refused_record(bus: Bus) -> None:
    changelog = extra_topic(bus, "demo-changelog")
    refusing = extra_topic(bus, "refusing", partitions=1)
    set_topic_config(bus.settings, refusing, "max.message.bytes", "200")
    persisted: dict[tuple[str, int], int] = {}

    def on_persisted(topic: str, partition: int, offset: int) -> None:
        assert offset > persisted.get((topic, partition), -1), "offsets handed on in order"
        persisted[topic, partition] = offset

    async def run() -> None:
        writer = RecordWriter(
            {"bootstrap.servers": bus.settings.kafka_bootstrap},
            changelogs=lambda topic: topic == changelog,
            on_persisted=on_persisted,
        )
        for i in range(10):
            writer.send(changelog, f"k{i}".encode(), b"state", partition=i % 2)
        writer.send(changelog, b"k0", None, partition=0)  # a deleted key: a tombstone
        await writer.flush()
        assert persisted == {(changelog, 0): 5, (changelog, 1): 4}

        written = writer.send(changelog, b"k1", b"state", partition=1, ack=True)
        assert written is not None
        await writer.acknowledged([written])
        assert persisted[changelog, 1] == 5
        refused = writer.send(refusing, b"big", os.urandom(5000), ack=True)  # incompressible
        assert refused is not None
        with pytest.raises(DeliveryFailed, match="was not written"):
            await writer.acknowledged([refused])
        with pytest.raises(DeliveryFailed, match=rf"{refusing}\[0\] \(key b'big'\)"):
            await writer.flush()
        assert writer.close() == 0

    asyncio.run(run())


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("output") / "events.jsonl"
    write_simulation(path, days=4, seed=17, start=date(2026, 9, 21))
    return path


def test_a_worker_that_cannot_write_its_facts_stops_and_loses_none(
    bus: Bus, sample: Path, tmp_path: Path
) -> None:
    publish_file(bus, sample, historical=True)
    facts = topic_name(bus.prefix, "obligations")
    set_topic_config(bus.settings, facts, "max.message.bytes", "200")  # every obligation fact is larger
    status, text = worker_until_stopped(bus, tmp_path / "worker.log")
    assert status != 0, text[-3000:]
    assert f"a record to {facts}[" in text and "was not written" in text, text[-3000:]
    assert "offsets not committed" in text, text[-3000:]

    set_topic_config(bus.settings, facts, "max.message.bytes", None)  # the broker accepts them again
    worker = worker_process(bus, "w1")
    try:
        wait_for_worker(bus.settings, bus.prefix, alive=lambda: worker.poll() is None)
    finally:
        stop(worker)
    written = {
        orjson.loads(value)["obligation"]["obligation_id"] for _key, value in read_topic(bus, "obligations")
    }
    assert written == set(replayed(sample, datetime.now(UTC)))
