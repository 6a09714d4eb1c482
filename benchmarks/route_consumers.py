"""Which consumer is cheaper for the worker's route stage: aiokafka ``getmany`` in the event
loop, or confluent-kafka ``consume(num_messages=...)`` in a thread handing batches to the loop.

Publishes ``--events`` simulated events to a fresh prefix (as ``bench_worker`` does), then reads
them all with each reader in turn (``--rounds`` times, alternating), decoding each value with
the compiled codec (what the route stage does first), and prints events/s and CPU µs/event.
Usage: ``.venv/bin/python -m benchmarks.route_consumers [--events 50000] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from domain.departments import load_registry
from hzbus.config import load_settings
from hzbus.topics import event_topics
from infra import manager
from producers.pipeline import RejectWriter, publish_records
from producers.publisher import KafkaPublisher
from producers.readers import read_records
from producers.simulate import write_simulation
from schemas import codec


async def aiokafka_reader(bootstrap: str, topics: list[str], n: int, batch: int) -> tuple[float, float]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"cmp-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    started = cpu = 0.0
    try:
        while seen < n:
            fetched = await consumer.getmany(timeout_ms=50, max_records=batch)
            for records in fetched.values():
                if not started:
                    started, cpu = time.perf_counter(), time.process_time()
                for r in records:
                    codec.decode(r.value)
                    seen += 1
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1e6


async def confluent_reader(bootstrap: str, topics: list[str], n: int, batch: int) -> tuple[float, float]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"cmp-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    loop = asyncio.get_running_loop()
    seen = 0
    started = cpu = 0.0
    try:
        while seen < n:
            msgs: list[Any] = await loop.run_in_executor(None, consumer.consume, batch, 0.05)
            for m in msgs:
                if m.error():
                    continue
                if not started:
                    started, cpu = time.perf_counter(), time.process_time()
                codec.decode(m.value())
                seen += 1
    finally:
        consumer.close()
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    prefix = f"routecmp{uuid.uuid4().hex[:8]}"
    base = load_settings()
    settings = load_settings(topic_prefix=prefix)
    manager.ensure_topics(settings, prefix=prefix)
    work = Path(settings.state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    full = work / "worker-full.jsonl"
    if not full.exists():
        write_simulation(full, days=60, seed=13, start=date(2026, 9, 1), scale=max(1.0, args.events / 6000))
    path = work / f"routecmp-{args.events}.jsonl"
    lines = full.read_bytes().splitlines()[: args.events]
    path.write_bytes(b"\n".join(lines) + b"\n")
    try:
        publish_records(
            read_records(path),
            publisher=KafkaPublisher(settings, historical=True),
            registry=load_registry(),
            rejects=RejectWriter(work / "routecmp.rejects.jsonl", str(path), console=io.StringIO()),
            publishing_dept=None,
            now=datetime.now(UTC),
        )
        topics = event_topics(prefix)
        for i in range(args.rounds):
            for name, reader in (
                ("aiokafka getmany", aiokafka_reader),
                ("confluent consume/thread", confluent_reader),
            ):
                eps, us = asyncio.run(reader(settings.kafka_bootstrap, topics, len(lines), args.batch))
                print(f"round {i + 1}: {name:26s} {eps:9,.0f} events/s  {us:6.1f} µs CPU/event", flush=True)
    finally:
        manager.delete_prefix(base, prefix)


if __name__ == "__main__":
    main()
