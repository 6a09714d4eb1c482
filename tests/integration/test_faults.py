"""Faults, on a Kafka broker and a ClickHouse server of these tests' own (the shared ones are
never stopped): the broker stopped and restarted mid-stream, ClickHouse down for 30 s, the
worker and the sink killed with SIGKILL at six points each. After each fault the same three
checks (faults.assert_nothing_lost_nothing_twice): the event ids in ClickHouse are the ids
published, the obligations are those of ``hzbus replay`` of the same events, and every alert
reached the console and the webhook robot exactly once. docs/reliability.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from confluent_kafka import Producer

from hzbus.topics import event_topics
from producers.simulate import write_simulation
from tests.conftest import Bus
from tests.integration import faults
from tests.integration.faults import Crashing, Publishing, Robot, ids_of, wait_until
from tests.integration.helpers import publish_file, stored_event_ids
from tests.integration.private_services import PrivateServices

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A month of simulated department events (about 2,900, every family), with a hundred
    or so alerts due as of now."""
    path = tmp_path_factory.mktemp("faults") / "events.jsonl"
    write_simulation(path, days=30, seed=5, start=date(2026, 9, 21))
    return path


@pytest.fixture
def robot() -> Iterator[Robot]:
    with Robot() as r:
        yield r


def stored_count(bus: Bus) -> int:
    try:
        return len(stored_event_ids(bus))
    except Exception:  # the sink has not created its tables yet
        return 0


def stopping(*processes: Crashing) -> None:
    for p in processes:
        p.stop()


def worker_committed(bus: Bus) -> int:
    """Events whose offsets the worker has committed (-1: the broker did not say)."""
    from confluent_kafka import Consumer, TopicPartition

    group, bootstrap = f"{bus.prefix}-worker-route", bus.settings.kafka_bootstrap  # the route stage's
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(t, p) for t in event_topics(bus.prefix) for p in metadata.topics[t].partitions
        ]
        return sum(max(0, tp.offset) for tp in consumer.committed(partitions, timeout=10))
    except Exception:
        return -1
    finally:
        consumer.close()


def test_a_broker_stopped_and_restarted_mid_stream_loses_nothing(
    private: PrivateServices, sample: Path, robot: Robot, tmp_path: Path
) -> None:
    lines = sample.read_bytes().splitlines(keepends=True)
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_bytes(b"".join(lines[:400]))
    rest.write_bytes(b"".join(lines[400:]))
    console = tmp_path / "console.txt"
    with private.bus() as bus:
        worker, sink = faults.worker(bus, tmp_path, console, robot), faults.sink(bus, tmp_path)
        try:
            publish_file(bus, first, historical=True)
            wait_until(  # the worker runs: it has processed events and committed their offsets
                lambda: worker.alive() and sink.alive() and worker_committed(bus) >= 300,
                90,
                "the worker to process the first events",
            )
            publishing = Publishing(bus, rest, rate=200.0)  # about 12 s of publishing
            publishing.start()
            wait_until(lambda: publishing.read >= 500, 30, "the publisher to get going")
            read_at_stop = publishing.read
            try:
                private.stop_kafka()
                down_since = time.monotonic()
                while time.monotonic() - down_since < 10:  # the publisher queues, the consumers wait
                    assert worker.alive() and sink.alive(), "a process stopped while the broker was down"
                    time.sleep(0.5)
            finally:
                private.start()
            assert read_at_stop < len(lines) - 400, "the broker was not stopped mid-stream"
            summary = publishing.finish(timeout=180)
            assert (summary.published, summary.rejected) == (summary.read, 0), publishing.rejects.getvalue()
            faults.assert_nothing_lost_nothing_twice(
                bus, ids_of(sample), sample, robot, console, [worker, sink]
            )
        finally:
            stopping(worker, sink)


def test_clickhouse_down_for_30_seconds_loses_nothing(
    private: PrivateServices, sample: Path, robot: Robot, tmp_path: Path
) -> None:
    lines = sample.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[:1000]))
    second.write_bytes(b"".join(lines[1000:]))
    console = tmp_path / "console.txt"
    with private.bus() as bus:
        worker, sink = faults.worker(bus, tmp_path, console, robot), faults.sink(bus, tmp_path)
        try:
            publish_file(bus, first, historical=True)
            wait_until(lambda: sink.alive() and stored_count(bus) >= 500, 60, "the first events stored")
            private.stop_clickhouse()
            try:
                down_since = time.monotonic()
                summary = publish_file(bus, second, historical=True)  # the bus takes them meanwhile
                assert summary.published == len(lines) - 1000
                while time.monotonic() - down_since < 30:
                    assert worker.alive() and sink.alive(), "a process stopped while ClickHouse was down"
                    time.sleep(0.5)
                assert "ClickHouse write failed" in sink.log.read_text(), "the sink never tried to write"
            finally:
                private.start()
            faults.assert_nothing_lost_nothing_twice(
                bus, ids_of(sample), sample, robot, console, [worker, sink]
            )
        finally:
            stopping(worker, sink)


#: where the worker is killed, in this order (hzbus/failpoints.py), then 4 s after a start
WORKER_KILLS: list[str | float] = [
    "worker.routed:300",  # events re-keyed, the source offsets not committed
    "worker.tracked:600",  # key states stored, obligation and alert facts buffered
    "worker.correlated:30",  # subject states stored, correlations buffered
    "worker.swept:1",  # right after a due time: the sweep sent its ticks, nothing evaluated yet
    "worker.notified:10",  # alerts delivered and marked, offsets and changelogs not committed
    4.0,  # SIGKILL from outside during start-up (table recovery, group join)
]
#: where the sink is killed, in this order, then 3 s after a start
SINK_KILLS: list[str | float] = [
    "sink.dead_letter:1",  # a dead letter produced, neither flushed nor stored nor committed
    "sink.consumed:2",  # a batch decoded, nothing of it written
    "sink.mid_write:2",  # the batch's events inserted, its facts and dead letters not
    "sink.written:2",  # the batch in ClickHouse, its offsets not committed
    "sink.committed:3",  # right after a commit
    3.0,  # SIGKILL from outside, wherever it is
]


def test_a_worker_and_a_sink_killed_at_six_points_each_lose_nothing_and_alert_once(
    private: PrivateServices, sample: Path, robot: Robot, tmp_path: Path
) -> None:
    console = tmp_path / "console.txt"
    with private.bus() as bus:
        publish_file(bus, sample, historical=True)
        producer = Producer({"bootstrap.servers": bus.settings.kafka_bootstrap})
        corrupt = [b"this is not avro", b"\xc3\x01" + b"\x00" * 8 + b"\x02"]
        for value in corrupt:
            producer.produce(f"{bus.prefix}.cases", value, b"case-x")
        assert producer.flush(30) == 0
        worker = faults.worker(bus, tmp_path, console, robot, WORKER_KILLS)
        sink = faults.sink(bus, tmp_path, SINK_KILLS, batch=100)
        try:
            deadline = time.monotonic() + 240
            while not (worker.on_last_life and sink.on_last_life):
                worker.step()
                sink.step()
                assert time.monotonic() < deadline, (
                    f"the kill plan did not finish within 240 s: worker {worker.kills}, sink {sink.kills}"
                )
                time.sleep(0.2)
            assert len(worker.kills) == len(WORKER_KILLS) and len(sink.kills) == len(SINK_KILLS)
            dead = "SELECT reason FROM {db}_restricted.dead_letters FINAL"
            wait_until(lambda: len(bus.query(dead)) >= 2, 60, "the two corrupt records kept as dead letters")
            reasons = bus.query(dead)
            assert len(reasons) == 2 and all(r[0].startswith("does not decode") for r in reasons), reasons
            faults.assert_nothing_lost_nothing_twice(
                bus, ids_of(sample), sample, robot, console, [worker, sink], restart_if_stalled=worker
            )
        finally:
            stopping(worker, sink)
