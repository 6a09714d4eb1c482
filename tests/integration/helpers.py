"""Helpers for integration tests: publish files, run the sink, read ClickHouse."""

from __future__ import annotations

import io
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from domain.departments import load_registry
from domain.obligations import evaluate_events
from hzbus.calendar_source import load_calendar
from hzbus.config import Settings
from hzbus.processes import spawn_hzbus
from producers.pipeline import PublishSummary, RejectWriter, publish_records
from producers.publisher import KafkaPublisher
from producers.readers import read_records
from schemas import codec
from sinks.clickhouse.sink import EventSink, SinkStats
from tests.conftest import Bus

ROOT = Path(__file__).resolve().parents[2]


def publish_file(
    bus: Bus, path: Path, rejects: Path | None = None, historical: bool = False, expect_rejects: bool = False
) -> PublishSummary:
    """``hzbus publish PATH`` for the test's prefix. Unless ``expect_rejects``, every record must
    be published: a test that later misses an event then knows it left the publisher."""
    console = io.StringIO()
    writer = RejectWriter(rejects or path.with_suffix(".rejects.jsonl"), str(path), console=console)
    summary = publish_records(
        read_records(path),
        publisher=KafkaPublisher(bus.settings, prefix=bus.prefix, historical=historical),
        registry=load_registry(),
        rejects=writer,
        publishing_dept=None,
        now=datetime.now(UTC),
    )
    if not expect_rejects:
        assert summary.rejected == 0 and summary.published == summary.read, (
            f"{path.name}: {summary.published} of {summary.read} published, {summary.rejected} rejected: "
            f"{console.getvalue()[:2000]}"
        )
    return summary


def run_sink(bus: Bus, idle: float = 3.0) -> SinkStats:
    sink = EventSink(bus.settings, prefix=bus.prefix, database=bus.database)
    sink.prepare()
    return sink.run(stop_when_idle=idle)


def _env(bus: Bus) -> dict[str, str]:
    return {
        "HZBUS_TOPIC_PREFIX": bus.prefix,
        "HZBUS_CLICKHOUSE_DATABASE": bus.database,
        "HZBUS_KAFKA_BOOTSTRAP": bus.settings.kafka_bootstrap,
        "HZBUS_CLICKHOUSE_PORT": str(bus.settings.clickhouse_port),
        "HZBUS_STATE_DIR": str(bus.settings.state_dir),
    }


def sink_process(bus: Bus, *extra: str, batch_size: int | None = None) -> subprocess.Popen[bytes]:
    env = _env(bus)
    if batch_size:
        env["HZBUS_SINK_BATCH_SIZE"] = str(batch_size)
        env["HZBUS_SINK_BATCH_SECONDS"] = "0.05"
    return spawn_hzbus(
        "sink", "clickhouse", *extra, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def stored_event_ids(bus: Bus) -> set[str]:
    return {r[0] for r in bus.query("SELECT event_id FROM {db}.events FINAL")}


def distinct_count(bus: Bus) -> int:
    return int(bus.query("SELECT count() FROM {db}.events FINAL")[0][0])


def worker_process(
    bus: Bus, name: str = "w1", *extra: str, output: Path | None = None
) -> subprocess.Popen[bytes]:
    """``hzbus worker`` for the test's prefix; alerts printed to ``output`` (or discarded)."""
    out = output.open("ab") if output is not None else subprocess.DEVNULL
    return spawn_hzbus("worker", "--name", name, "--loglevel", "error", *extra, env=_env(bus), stdout=out)


def worker_until_stopped(bus: Bus, log_path: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run ``hzbus worker`` (warnings and errors to ``log_path``) until it stops by itself: its
    exit status and log. A worker still running after ``timeout`` seconds fails the test."""
    with log_path.open("wb") as log:
        worker = spawn_hzbus(
            "worker",
            "--name",
            "w1",
            "--loglevel",
            "warn",
            env=_env(bus),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            status = worker.wait(timeout)
        finally:
            stop(worker)
    return status, log_path.read_text(encoding="utf-8", errors="replace")


def set_topic_config(settings: Settings, topic: str, key: str, value: str | None) -> None:
    """Set (or, with None, remove) one config of ``topic`` on the broker."""
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    entry = ConfigEntry(key, value or "", incremental_operation=op)
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(timeout=30)
    time.sleep(1.0)  # the broker applies it when it replays the metadata log


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def stored_obligations(bus: Bus) -> dict[str, tuple[object, ...]]:
    """obligation id → (status, due_at, fulfilled_at, responsible_dept), as stored in ClickHouse."""
    rows = bus.query(
        "SELECT obligation_id, status, toUnixTimestamp(due_at), "
        "if(isNull(fulfilled_at), 0, toUnixTimestamp(assumeNotNull(fulfilled_at))), responsible_dept "
        "FROM {db}.obligations FINAL"
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def replayed(path: Path, as_of: datetime) -> dict[str, tuple[object, ...]]:
    """What ``hzbus replay`` computes for the same file (the same engine, offline), in the
    shape of :func:`stored_obligations`."""
    events = [codec.from_canonical(r.data) for r in read_records(path) if r.data is not None]
    evaluation = evaluate_events(events, as_of, load_calendar())
    return {
        o.obligation_id: (
            o.status,
            int(o.due_at.timestamp()),
            int(o.fulfilled_at.timestamp()) if o.fulfilled_at else 0,
            o.responsible_dept,
        )
        for o in evaluation.obligations
    }


def assert_same_obligations(
    bus: Bus, stored: dict[str, tuple[object, ...]], expected: dict[str, tuple[object, ...]]
) -> None:
    """``stored == expected``, or a failure that says, for each obligation missing or different,
    what the worker wrote of it to the obligations topic and how far the sink committed there:
    a fact the worker never wrote, or one the sink did not store."""
    if stored == expected:
        return
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    differ = sorted(k for k in set(expected) & set(stored) if expected[k] != stored[k])
    lines = [f"{len(missing)} missing, {len(extra)} not expected, {len(differ)} different of {len(expected)}"]
    written = obligation_facts(bus, set(missing[:10] + differ[:10]))
    for k in missing[:10] + differ[:10]:
        on_topic = written.get(k) or "nothing"
        lines.append(f"{k}: expected {expected[k]}, stored {stored.get(k)}; on the topic: {on_topic}")
    lines.extend(f"{k}: stored {stored[k]}, not expected" for k in extra[:10])
    raise AssertionError("\n".join(lines))


def obligation_facts(bus: Bus, ids: set[str]) -> dict[str, list[str]]:
    """The records of the obligations topic whose key is one of ``ids``: partition@offset, the
    status written, and the sink group's committed offset of that partition."""
    from confluent_kafka import Consumer, TopicPartition

    topic = f"{bus.prefix}.obligations"
    consumer = Consumer(
        {
            "bootstrap.servers": bus.settings.kafka_bootstrap,
            "group.id": f"{bus.prefix}.sink.clickhouse",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    found: dict[str, list[str]] = {}
    try:
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            tp = TopicPartition(topic, p)
            (committed,) = consumer.committed([tp], timeout=10)
            for msg in partition_records(consumer, tp):
                key = (msg.key() or b"").decode()
                if key in ids:
                    status = orjson.loads(msg.value() or b"{}").get("obligation", {}).get("status")
                    found.setdefault(key, []).append(
                        f"[{p}]@{msg.offset()} {status} (sink committed {committed.offset})"
                    )
    finally:
        consumer.close()
    return found


def partition_records(consumer: Any, tp: Any, timeout: float = 30.0) -> Iterator[Any]:
    """Every record of one partition (a confluent-kafka ``TopicPartition``), from its start to
    its end as of now, read with ``consumer``; fails if the end is not reached in ``timeout``."""
    from confluent_kafka import TopicPartition

    low, high = consumer.get_watermark_offsets(tp, timeout=10)
    if high <= low:
        return
    consumer.assign([TopicPartition(tp.topic, tp.partition, low)])
    seen, deadline = low, time.monotonic() + timeout
    while seen < high and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=1.0):
            if msg.error() is None:
                seen = (msg.offset() or 0) + 1
                yield msg
    assert seen >= high, f"could not read {tp.topic}[{tp.partition}] to its end ({seen} < {high})"
