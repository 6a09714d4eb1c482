"""Benchmark of the bus (issue 2): publisher and sink against their physical baselines.

All four figures come from the same run on the same local broker and server:

* publisher: simulated events through ``hzbus publish``'s pipeline (read, validate, Avro
  encode, idempotent produce) vs Kafka's own ``ProducerPerformance`` tool at the same record
  count and average record size and the same producer settings;
* sink: the ClickHouse sink (consume, decode, pseudonymise, batch insert, commit) vs a raw
  clickhouse-driver insert of the very same rows in 20,000-row batches.

Usage: ``.venv/bin/python -m benchmarks.bench_bus [--events 200000]``. Prints a table and
writes ``benchmarks/results/bus.json``. Ratios are what to compare; absolute rates on a
shared 2-core machine are noise.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from domain.departments import load_registry
from hzbus.config import load_settings
from hzbus.tables import render
from infra import kafka_local, manager
from producers.pipeline import RejectWriter, publish_records
from producers.publisher import KafkaPublisher, producer_config
from producers.readers import read_records
from producers.simulate import write_simulation
from schemas import codec
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.rows import EVENT_COLUMNS, event_row
from sinks.clickhouse.sink import EventSink, clickhouse_client

RESULTS = Path(__file__).resolve().parent / "results"


def simulate(n: int, work: Path) -> Path:
    path = work / f"bench-{n}.jsonl"
    if not path.exists():
        full = work / "bench-full.jsonl"
        scale = 1.0
        while True:
            count = write_simulation(full, days=92, seed=11, start=date(2026, 8, 20), scale=scale)
            if count >= n:
                break
            scale *= 1.2 * n / count
        with full.open("rb") as src, path.open("wb") as dst:
            for i, line in enumerate(src):
                if i >= n:
                    break
                dst.write(line)
    return path


def producer_performance(settings, topic: str, n: int, size: int) -> float:
    libs = kafka_local.paths(settings).libs
    cfg = producer_config(settings)
    props = [
        f"{k}={v}"
        for k, v in cfg.items()
        if k in ("bootstrap.servers", "acks", "compression.type", "linger.ms", "enable.idempotence")
    ]
    props.append(f"batch.size={min(int(cfg['batch.size']), 1_000_000)}")
    out = subprocess.run(
        [
            "java",
            "-Xmx512m",
            "-cp",
            f"{libs}/*",
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(n),
            "--record-size",
            str(size),
            "--throughput",
            "-1",
            "--producer-props",
            *props,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    final = [line for line in out.splitlines() if "records sent" in line][-1]
    match = re.search(r"([\d.]+) records/sec", final)
    assert match, final
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    n = args.events
    tag = uuid.uuid4().hex[:8]
    prefix, database = f"bench{tag}", f"bench_{tag}"
    settings = load_settings(topic_prefix=prefix, clickhouse_database=database)
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    manager.ensure_topics(settings, prefix=prefix)
    work = Path(settings.state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    sample = simulate(n, work)
    events = [e for e in (codec.decode_json_line(line) for line in sample.read_bytes().splitlines())]
    avg_size = round(sum(len(codec.encode(e)) for e in events) / len(events))
    results: dict[str, float | int | str] = {"events": n, "avg_record_bytes": avg_size}
    try:
        # publisher vs ProducerPerformance
        t0 = time.perf_counter()
        summary = publish_records(
            read_records(sample, "jsonl"),
            publisher=KafkaPublisher(settings, prefix=prefix),
            registry=load_registry(),
            rejects=RejectWriter(work / "bench.rejects.jsonl", str(sample), console=None),
            publishing_dept=None,
            now=datetime.now(UTC),
        )
        publish_rate = summary.published / (time.perf_counter() - t0)
        assert summary.rejected == 0, summary
        baseline_topic = f"{prefix}.deadletter"  # an empty topic of the same broker
        pp_rate = producer_performance(settings, baseline_topic, n, avg_size)
        results.update(
            publisher_eps=publish_rate,
            producer_performance_eps=pp_rate,
            publisher_ratio=publish_rate / pp_rate,
        )

        # sink vs raw insert of the same rows
        sink = EventSink(settings, prefix=prefix, database=database)
        sink.prepare()
        marks: list[float] = []
        t0 = time.perf_counter()
        sink.run(stop_when_idle=5.0, on_batch=lambda s: marks.append(time.perf_counter()))
        sink_rate = n / (marks[-1] - t0)
        client = clickhouse_client(settings)
        raw_db = f"{database}_raw"
        migrate(client, raw_db)
        now = datetime.now(UTC)
        key = settings.pseudonym_key.encode()
        rows = [
            event_row(
                e.with_published_at(now),
                topic="t",
                partition=0,
                offset=i,
                published_ms=0,
                ingested_at=now,
                pseudonym_key=key,
            )
            for i, e in enumerate(events)
        ]
        sql = f"INSERT INTO {raw_db}.events ({', '.join(EVENT_COLUMNS)}) VALUES"
        t0 = time.perf_counter()
        for i in range(0, len(rows), 20_000):
            client.execute(sql, rows[i : i + 20_000])
        raw_rate = n / (time.perf_counter() - t0)
        client.execute(f"DROP DATABASE IF EXISTS {raw_db}")
        results.update(sink_eps=sink_rate, raw_insert_rps=raw_rate, sink_ratio=sink_rate / raw_rate)
        stored = client.execute(f"SELECT count() FROM {database}.events FINAL")[0][0]
        results["stored_distinct"] = stored
        client.execute(f"DROP DATABASE IF EXISTS {database}")
    finally:
        manager.delete_topics(load_settings(), prefix)
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bus.json").write_text(json.dumps(results, indent=2) + "\n")
    out = io.StringIO()
    print(
        render(
            ("measure", "events/s", "baseline", "baseline/s", "ratio", "target"),
            [
                (
                    "publisher",
                    f"{results['publisher_eps']:,.0f}",
                    "Kafka ProducerPerformance",
                    f"{results['producer_performance_eps']:,.0f}",
                    f"{results['publisher_ratio']:.0%}",
                    ">= 30%",
                ),
                (
                    "sink",
                    f"{results['sink_eps']:,.0f}",
                    "raw clickhouse-driver insert",
                    f"{results['raw_insert_rps']:,.0f}",
                    f"{results['sink_ratio']:.0%}",
                    ">= 50%",
                ),
            ],
            title=f"{n:,} events, {avg_size} bytes each on average (Avro single-object encoding)",
        ),
        file=out,
    )
    print(out.getvalue())


if __name__ == "__main__":
    main()
