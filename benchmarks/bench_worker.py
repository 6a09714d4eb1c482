"""Stream throughput of the worker (issue 3) against a bare aiokafka + fastavro consume loop.

The same simulated events are published once to a fresh prefix; then, in the same run:

* baseline: a bare aiokafka consumer reads every event topic from the start and decodes each
  value with fastavro (schemaless_reader behind the 10-byte single-object header), nothing else;
* Faust ceiling (``--faust-ceiling``, the default): a trivial Faust agent (raw bytes,
  concurrency 1, counting only: ``benchmarks/faust_ceiling.py``) over the same topics, timed like
  the worker: what Faust itself allows on this machine;
* worker: ``hzbus worker`` processes the same topics (decode, re-key, fold, evaluate, tables,
  outputs), timed from its first committed source offset to the moment it has committed every
  event (its route stage) and every repartition record routed from them (its agents): not the
  catch-up of its deadline sweep after the import (``events_lag``). Afterwards, the records the
  worker wrote per event (repartition topics, table changelogs, facts) are counted from the
  topics' end offsets.
* I/O floor (``--io-floor``, the default): a bare producer writes as many records of the
  worker's sizes as it wrote, through aiokafka and through librdkafka; with the bare read, the
  best any worker writing that much could do (``floor_eps``, ``librdkafka_floor_eps``), and what
  the 50% target leaves for everything else an event needs (``processing_budget_us``), to set
  against the worker's CPU per event.

Usage: ``.venv/bin/python -m benchmarks.bench_worker [--events 50000] [--no-faust-ceiling]``;
writes ``benchmarks/results/worker.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from domain.departments import load_registry
from hzbus.config import PROJECT_ROOT, Settings, load_settings
from hzbus.lag import end_offsets, group_lag, worker_groups
from hzbus.processes import spawn_hzbus
from hzbus.topics import TopicSpec, event_topics, topic_name
from infra import manager
from infra.procs import die_with_parent
from producers.pipeline import RejectWriter, publish_records
from producers.publisher import KafkaPublisher
from producers.readers import read_records
from producers.simulate import write_simulation
from schemas import codec

RESULTS = Path(__file__).resolve().parent / "results"


async def bare_loop(bootstrap: str, topics: list[str], n: int) -> float:
    """Events/s of a bare aiokafka + fastavro loop over ``topics`` (n events in all)."""
    from aiokafka import AIOKafkaConsumer
    from fastavro import parse_schema, schemaless_reader

    readers = {codec.fingerprint_of(t): parse_schema(codec.schema_of(t)) for t in codec.event_types()}
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"bare-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    started = None
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    value = record.value
                    schemaless_reader(io.BytesIO(value[10:]), readers[value[2:10].hex()], None)
                    seen += 1
    finally:
        await consumer.stop()
    assert started is not None
    return n / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def events_lag(settings: Settings, prefix: str) -> Callable[[], int]:
    """The worker's lag on the events it was given: its route stage's lag on the source topics,
    then, once that is 0 (every event routed, its batch records acknowledged), its agents' lag
    on the repartition records written by then. Not what its deadline sweep writes once the
    import has been quiet for 3 s (ticks of every key whose due time passed, and their alerts):
    the clocks catching up after the import, whose records the window waited for or not
    depending on how soon the last commits were seen (one run: 3,332 alerts, 6.4% instead of
    7–9%). The sweep may still start before the window ends, when the agents commit their last
    records more than 3 s after the last imported event; its CPU then counts, and the result's
    ``records_written`` shows its alerts (2 runs of 12 since)."""
    (route_group, sources), (agents_group, topics) = worker_groups(prefix)
    repartitioned = [t for t in topics if not t.endswith(".alerts")]
    ends: dict[tuple[str, int], int] = {}

    def lag() -> int:
        if not ends:
            routed = group_lag(settings, route_group, sources)
            if routed:
                return routed
            ends.update(end_offsets(settings, repartitioned))
        return group_lag(settings, agents_group, repartitioned, upto=ends)

    return lag


def time_group(
    settings: Settings, group: str, sources: list[str], lag: Callable[[], int], pid: int | None = None
) -> tuple[float, float | None]:
    """Events/s of ``group``: from its first commit on ``sources`` until ``lag()`` is 0 (the
    worker: no lag in any of its groups); with ``pid``, also the CPU seconds that process spent
    per event in the same window (to tell a worker short of CPU from one waiting)."""
    total = group_lag(settings, group, sources)
    while group_lag(settings, group, sources) >= total:  # until the first commit
        time.sleep(0.1)
    started = time.perf_counter()
    cpu_start = cpu_seconds(pid) if pid else 0.0
    start_lag = group_lag(settings, group, sources)  # events still to go when the clock started
    while lag() > 0:
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    cpu = (cpu_seconds(pid) - cpu_start) / start_lag if pid else None
    return start_lag / elapsed, cpu


def record_sizes(settings: Settings, prefix: str, families: list[str], sample: int = 5000) -> tuple[int, int]:
    """Average key and value sizes of the first ``sample`` records of each of ``families``
    (topics of the prefix that the worker wrote), weighted alike."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"{prefix}-sizes",
            "enable.auto.commit": False,
        }
    )
    keys = values = count = 0
    try:
        for family in families:
            name = f"{prefix}-{family}" if family.startswith("worker-") else topic_name(prefix, family)
            metadata = consumer.list_topics(name, timeout=10).topics[name]
            consumer.assign([TopicPartition(name, p, 0) for p in metadata.partitions])
            seen = 0
            while seen < sample:
                messages = consumer.consume(1000, timeout=2)
                if not messages:
                    break
                for m in messages:
                    if m.error() is None:
                        keys += len(m.key() or b"")
                        values += len(m.value() or b"")
                        seen += 1
            count += seen
            consumer.unassign()
    finally:
        consumer.close()
    return keys // max(count, 1), values // max(count, 1)


async def bare_produce(bootstrap: str, topic: str, n: int, key_size: int, value_size: int) -> float:
    """Records/s of a bare aiokafka producer writing ``n`` keyed records of the given sizes to
    ``topic``, with the worker's producer settings (acks all, linger 10 ms, 256 KiB batches),
    awaiting each send as the worker does, to the final flush."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, max_batch_size=256 << 10
    )
    await producer.start()
    value = b"v" * value_size
    keys = [f"{i:0{key_size}d}".encode()[-key_size:] for i in range(50_000)]
    try:
        started = time.perf_counter()
        for i in range(n):
            await producer.send(topic, value, key=keys[i % len(keys)])
        await producer.flush()
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


def bare_produce_librdkafka(bootstrap: str, topic: str, n: int, key_size: int, value_size: int) -> float:
    """Records/s of a bare confluent-kafka (librdkafka) producer writing the same records: acks
    all, idempotent, linger 10 ms, a Python delivery callback per record (what a worker needs
    to learn each changelog record's offset), to the final flush."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 10,
            "batch.size": 256 << 10,
        }
    )
    delivered = [0]

    def on_delivery(err: object, _msg: object) -> None:
        delivered[0] += err is None

    value = b"v" * value_size
    keys = [f"{i:0{key_size}d}".encode()[-key_size:] for i in range(50_000)]
    started = time.perf_counter()
    for i in range(n):
        while True:
            try:
                producer.produce(topic, value, keys[i % len(keys)], on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.01)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush()
    elapsed = time.perf_counter() - started
    if delivered[0] != n:
        raise RuntimeError(f"librdkafka delivered {delivered[0]} of {n} records")
    return n / elapsed


def written_records(settings: Settings, prefix: str) -> dict[str, int]:
    """Records in each topic the worker writes (end offsets; the topics were empty before)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{prefix}-count"})
    try:
        metadata = consumer.list_topics(timeout=10)
        source = set(event_topics(prefix))
        out = {}
        for name, topic in sorted(metadata.topics.items()):
            if not name.startswith(prefix) or name in source or "faustceiling" in name:
                continue
            tps = [TopicPartition(name, p) for p in topic.partitions]
            out[name[len(prefix) + 1 :]] = sum(consumer.get_watermark_offsets(t, timeout=10)[1] for t in tps)
        return out
    finally:
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument(
        "--faust-ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a trivial Faust agent over the same topics (default: yes)",
    )
    parser.add_argument(
        "--io-floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a bare aiokafka producer writing as many records as the worker wrote (default: yes)",
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        help="run the worker of this checkout (its own .venv, bootstrapped) instead of this one's, "
        "to compare two versions alternately on the same machine",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "worker.json", help="result file")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    prefix = f"benchworker{tag}"
    base = load_settings()
    settings = load_settings(topic_prefix=prefix)
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    manager.ensure_topics(settings, prefix=prefix)
    work = Path(settings.state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    full = work / "worker-full.jsonl"
    write_simulation(full, days=60, seed=13, start=date(2026, 9, 1), scale=max(1.0, args.events / 6000))
    path = work / f"worker-{args.events}.jsonl"
    lines = full.read_bytes().splitlines()[: args.events]
    path.write_bytes(b"\n".join(lines) + b"\n")
    n = len(lines)
    try:
        publish_records(
            read_records(path),
            publisher=KafkaPublisher(settings, historical=True),
            registry=load_registry(),
            rejects=RejectWriter(work / "worker.rejects.jsonl", str(path), console=io.StringIO()),
            publishing_dept=None,
            now=datetime.now(UTC),
        )
        bare = asyncio.run(bare_loop(settings.kafka_bootstrap, event_topics(prefix), n))
        topics = event_topics(prefix)
        ceiling = None
        if args.faust_ceiling:
            counter = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.faust_ceiling", "--prefix", prefix],
                cwd=PROJECT_ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
            try:
                group = f"{prefix}-worker-faustceiling"
                ceiling, _ = time_group(settings, group, topics, lambda: group_lag(settings, group, topics))
            finally:
                counter.terminate()
                counter.wait(30)
        worker_args = ("worker", "--name", "bench", "--no-console", "--loglevel", "error")
        if args.checkout is None:
            worker = spawn_hzbus(*worker_args, env={"HZBUS_TOPIC_PREFIX": prefix})
        else:  # another version of the worker, on the same events and broker
            worker = subprocess.Popen(
                [str(args.checkout / ".venv" / "bin" / "python"), "-m", "hzbus.cli", *worker_args],
                cwd=args.checkout,
                env={**os.environ, "HZBUS_TOPIC_PREFIX": prefix},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        try:
            route_group = worker_groups(prefix)[0][0]  # the route stage reads the source topics
            worker_eps, worker_cpu = time_group(
                settings, route_group, topics, events_lag(settings, prefix), worker.pid
            )
        finally:
            worker.terminate()
            worker.wait(30)
        written = written_records(settings, prefix)
        floor = None
        if args.io_floor:  # what the worker's writes alone cost through aiokafka
            key_size, value_size = record_sizes(
                settings, prefix, ["obligations", "worker-obligation-state-changelog"]
            )
            topic = f"{prefix}-worker-iofloor"  # removed with the prefix
            spec = TopicSpec(family="iofloor", name=topic, partitions=8, config={}, carries_events=False)
            manager.ensure_topics(settings, prefix=prefix, extra=[spec])
            total = sum(written.values())
            produced = bare_produce(settings.kafka_bootstrap, topic, total, key_size, value_size)
            produce_rps = asyncio.run(produced)
            librdkafka_rps = bare_produce_librdkafka(
                settings.kafka_bootstrap, topic, total, key_size, value_size
            )
            floor = {
                "key_bytes": key_size,
                "value_bytes": value_size,
                "bare_produce_records_per_s": produce_rps,
                # reading every event once (the bare loop) + writing what the worker wrote
                "floor_eps": 1 / (1 / bare + (total / n) / produce_rps),
                "librdkafka_produce_records_per_s": librdkafka_rps,
                "librdkafka_floor_eps": 1 / (1 / bare + (total / n) / librdkafka_rps),
            }
            # what the target leaves for everything but reading and writing, at best (librdkafka)
            floor["processing_budget_us"] = 1e6 / (0.5 * bare) - 1e6 / floor["librdkafka_floor_eps"]
    finally:
        manager.delete_prefix(base, prefix)
    result = {
        "events": n,
        "bare_aiokafka_fastavro_eps": bare,
        "faust_ceiling_eps": ceiling,
        "worker_eps": worker_eps,
        "worker_checkout": str(args.checkout or PROJECT_ROOT),
        "worker_cpu_us_per_event": round(worker_cpu * 1e6, 1) if worker_cpu else None,
        "worker_busy": round(worker_cpu * worker_eps, 2) if worker_cpu else None,
        "ratio": worker_eps / bare,
        "faust_ceiling_ratio": ceiling / bare if ceiling else None,
        "worker_of_ceiling": worker_eps / ceiling if ceiling else None,
        "io_floor": floor,
        "io_floor_ratio": floor["floor_eps"] / bare if floor else None,
        "records_written_per_event": round(sum(written.values()) / n, 2),
        "records_written": written,
        "target": 0.5,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{n:,} events: worker {worker_eps:,.0f} events/s, "
        f"bare aiokafka + fastavro loop {bare:,.0f} events/s, "
        f"ratio {worker_eps / bare:.1%} (target >= 50%)"
    )
    if worker_cpu:
        print(
            f"worker CPU {worker_cpu * 1e6:,.1f} µs per event; busy {worker_cpu * worker_eps:.0%} "
            "of the measured window (100%: one core, the whole time)"
        )
    if ceiling:
        print(
            f"Faust ceiling (trivial agent, same topics) {ceiling:,.0f} events/s: "
            f"{ceiling / bare:.1%} of the bare loop; the worker is {worker_eps / ceiling:.1%} of it"
        )
    if floor:
        print(
            f"aiokafka alone, writing what the worker wrote ({floor['key_bytes']} + "
            f"{floor['value_bytes']} bytes a record): {floor['bare_produce_records_per_s']:,.0f} records/s; "
            f"with the bare read, {floor['floor_eps']:,.0f} events/s at best: "
            f"{floor['floor_eps'] / bare:.1%} of the bare loop"
        )
        print(
            f"librdkafka writing the same: {floor['librdkafka_produce_records_per_s']:,.0f} records/s; "
            f"with the bare read, {floor['librdkafka_floor_eps']:,.0f} events/s at best: "
            f"{floor['librdkafka_floor_eps'] / bare:.1%} of the bare loop"
        )
        print(
            f"at 50%, decoding, rules, states and tables would have {floor['processing_budget_us']:.1f} µs "
            "an event left after reading and writing through librdkafka"
            + (f"; the worker spent {worker_cpu * 1e6:.1f} µs of CPU an event in all" if worker_cpu else "")
        )
    print(f"records written by the worker per event: {result['records_written_per_event']} {written}")


if __name__ == "__main__":
    main()
