"""Stream throughput of the worker (issue 3) against a bare aiokafka + fastavro consume loop.

The same simulated events are published once to a fresh prefix; then, in the same run:

* baseline: a bare aiokafka consumer reads every event topic from the start and decodes each
  value with fastavro (schemaless_reader behind the 10-byte single-object header), nothing else;
* Faust ceiling (``--faust-ceiling``, the default): a trivial Faust agent (raw bytes,
  concurrency 1, counting only: ``benchmarks/faust_ceiling.py``) over the same topics, timed like
  the worker: what Faust itself allows on this machine;
* worker: ``hzbus worker`` processes the same topics (decode, re-key, fold, evaluate, tables,
  outputs), timed from its first committed source offset to the moment its group has no lag left
  on any topic it reads. Afterwards, the records the worker wrote per event (repartition topics,
  table changelogs, facts) are counted from the topics' end offsets.

Usage: ``.venv/bin/python -m benchmarks.bench_worker [--events 50000] [--no-faust-ceiling]``;
writes ``benchmarks/results/worker.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from domain.departments import load_registry
from hzbus.config import PROJECT_ROOT, Settings, load_settings
from hzbus.lag import group_lag, worker_groups, worker_lag
from hzbus.processes import spawn_hzbus
from hzbus.topics import event_topics
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


def time_group(settings: Settings, group: str, sources: list[str], lag: Callable[[], int]) -> float:
    """Events/s of ``group``: from its first commit on ``sources`` until ``lag()`` is 0 (the
    worker: no lag in any of its groups)."""
    total = group_lag(settings, group, sources)
    while group_lag(settings, group, sources) >= total:  # until the first commit
        time.sleep(0.1)
    started = time.perf_counter()
    start_lag = group_lag(settings, group, sources)  # events still to go when the clock started
    while lag() > 0:
        time.sleep(0.2)
    return start_lag / (time.perf_counter() - started)


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
                ceiling = time_group(settings, group, topics, lambda: group_lag(settings, group, topics))
            finally:
                counter.terminate()
                counter.wait(30)
        worker = spawn_hzbus(
            "worker",
            "--name",
            "bench",
            "--no-console",
            "--loglevel",
            "error",
            env={"HZBUS_TOPIC_PREFIX": prefix},
        )
        try:
            route_group = worker_groups(prefix)[0][0]  # the route stage reads the source topics
            worker_eps = time_group(settings, route_group, topics, lambda: worker_lag(settings, prefix))
        finally:
            worker.terminate()
            worker.wait(30)
        written = written_records(settings, prefix)
    finally:
        manager.delete_prefix(base, prefix)
    result = {
        "events": n,
        "bare_aiokafka_fastavro_eps": bare,
        "faust_ceiling_eps": ceiling,
        "worker_eps": worker_eps,
        "ratio": worker_eps / bare,
        "faust_ceiling_ratio": ceiling / bare if ceiling else None,
        "worker_of_ceiling": worker_eps / ceiling if ceiling else None,
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
    if ceiling:
        print(
            f"Faust ceiling (trivial agent, same topics) {ceiling:,.0f} events/s: "
            f"{ceiling / bare:.1%} of the bare loop; the worker is {worker_eps / ceiling:.1%} of it"
        )
    print(f"records written by the worker per event: {result['records_written_per_event']} {written}")


if __name__ == "__main__":
    main()
