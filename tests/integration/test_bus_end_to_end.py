"""Publish → Kafka → sink → ClickHouse on the real broker and server: nothing lost, nothing twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from producers.simulate import write_simulation
from tests.conftest import Bus
from tests.integration.helpers import (
    distinct_count,
    publish_file,
    run_sink,
    sink_process,
    stored_event_ids,
)

pytestmark = pytest.mark.integration
N = 10_000


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 10,000 events of a simulated stream (several departments, every family)."""
    work = tmp_path_factory.mktemp("sample")
    full = work / "full.jsonl"
    write_simulation(full, days=92, seed=7, scale=3.0)
    lines = full.read_bytes().splitlines()[:N]
    assert len(lines) == N, "the simulation is too small for this test"
    path = work / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def ids_of(path: Path) -> set[str]:
    return {orjson.loads(line)["event_id"] for line in path.read_bytes().splitlines()}


def test_ten_thousand_published_events_are_ten_thousand_rows(bus: Bus, ten_thousand: Path) -> None:
    summary = publish_file(bus, ten_thousand)
    assert (summary.published, summary.rejected) == (N, 0)
    stats = run_sink(bus)
    assert stats.events == N and stats.dead_letters == 0
    assert distinct_count(bus) == N
    assert stored_event_ids(bus) == ids_of(ten_thousand)
    by_family = dict(bus.query("SELECT kafka_topic, count() FROM {db}.events FINAL GROUP BY kafka_topic"))
    assert set(by_family) >= {f"{bus.prefix}.{f}" for f in ("cases", "approvals", "penalties", "complaints")}


def test_publishing_the_same_file_again_adds_no_new_facts(bus: Bus, ten_thousand: Path) -> None:
    publish_file(bus, ten_thousand)
    run_sink(bus)
    publish_file(bus, ten_thousand)
    stats = run_sink(bus)
    assert stats.events == N  # the second copy did reach the sink...
    assert distinct_count(bus) == N  # ...and is one row per event in query results
    raw = bus.query("SELECT count() FROM {db}.events")[0][0]
    assert raw >= N


def test_a_sink_killed_mid_run_and_restarted_stores_every_event_once(bus: Bus, ten_thousand: Path) -> None:
    publish_file(bus, ten_thousand)
    first = sink_process(bus, "--stop-when-idle", "30", batch_size=500)
    deadline = time.monotonic() + 120
    landed = 0
    while time.monotonic() < deadline:
        landed = int(bus.query("SELECT count() FROM {db}.events")[0][0]) if _has_table(bus) else 0
        if landed >= 1000:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert 0 < landed < N, f"the sink was not killed mid-run ({landed} rows when killed)"
    second = sink_process(bus, "--stop-when-idle", "3")
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out.decode()
    assert distinct_count(bus) == N
    assert stored_event_ids(bus) == ids_of(ten_thousand)


def _has_table(bus: Bus) -> bool:
    return bool(
        bus.query("SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'events'")[0][0]
    )


def test_a_corrupt_message_goes_to_the_dead_letter_topic_and_the_rest_land(bus: Bus, tmp_path: Path) -> None:
    sample = tmp_path / "few.jsonl"
    write_simulation(sample, days=10, seed=3)
    good = ids_of(sample)
    publish_file(bus, sample)
    producer = Producer({"bootstrap.servers": bus.settings.kafka_bootstrap})
    cases = f"{bus.prefix}.cases"
    producer.produce(cases, b"this is not avro", b"case-x")
    producer.produce(cases, b"\xc3\x01" + b"\x00" * 8 + b"\x02", b"case-y")  # unknown schema fingerprint
    producer.flush(30)
    publish_file(bus, sample)  # events after the corrupt ones still land
    stats = run_sink(bus)
    assert stats.dead_letters == 2
    assert stored_event_ids(bus) == good
    reasons = sorted(r[0] for r in bus.query("SELECT reason FROM {db}_restricted.dead_letters FINAL"))
    assert all(r.startswith("does not decode") for r in reasons)
    assert any("fingerprint" in r for r in reasons)

    consumer = Consumer(
        {
            "bootstrap.servers": bus.settings.kafka_bootstrap,
            "group.id": f"{bus.prefix}.check",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([f"{bus.prefix}.deadletter"])
    kept = []
    deadline = time.monotonic() + 30
    while len(kept) < 2 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            kept.append(msg)
    consumer.close()
    assert sorted(m.value() for m in kept) == sorted(
        [b"this is not avro", b"\xc3\x01" + b"\x00" * 8 + b"\x02"]
    )
    headers = dict(kept[0].headers())
    assert headers["hzbus-source-topic"] == cases.encode()
    assert b"does not decode" in headers["hzbus-reason"]
