"""Benchmark of the bus (issue 2): publisher and sink against their physical baselines.

All four figures come from the same run on the same local broker and server:

* publisher: simulated events through ``hzbus publish``'s pipeline (read, validate and Avro
  encode in its default two worker processes, idempotent produce in the main one) vs Kafka's
  own ``ProducerPerformance`` tool at the same record count and average record size and the
  same producer settings;
* sink: the ClickHouse sink (consume, decode, pseudonymise, batch insert, commit), in one
  process (``hzbus sink clickhouse``) and in two (``--processes 2``, one consumer group),
  each measured from its first committed batch to the batch that completes the events
  (group join and assignment excluded), vs a raw
  clickhouse-driver insert of the very same rows in 20,000-row batches, timed the same way
  (from the end of the first batch to the end of the last). Two raw baselines: the rows as
  the sink sends them (columnar, times as epoch seconds: the fastest the driver inserts,
  the one the target is judged against) and the rows as ``event_row`` builds them
  (row-oriented, times as datetimes: the baseline of the first measurements).

A warm-up round (a few thousand events through all four, not recorded) comes first; then
``--repeat`` rounds, each on fresh topics and a fresh database, and the median of each
figure with its range. Every round checks that ClickHouse holds every event once and the
same rows as the raw insert (a hash over the content columns).

Usage: ``.venv/bin/python -m benchmarks.bench_bus [--events 200000] [--repeat 3]``. Prints a
table and writes ``benchmarks/results/bus.json``. Ratios are what to compare; absolute rates
on a shared 2-core machine move with the neighbours' load.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from domain.departments import load_registry
from hzbus.commands.publish import DEFAULT_WORKERS
from hzbus.config import load_settings
from hzbus.tables import render
from hzbus.topics import topic_name
from infra import kafka_local, manager
from producers.pipeline import RejectWriter, publish_file
from producers.publisher import KafkaPublisher, producer_config
from producers.simulate import write_simulation
from schemas import codec
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.parallel import run_processes
from sinks.clickhouse.rows import EVENT_COLUMNS, event_row, event_row_fast
from sinks.clickhouse.sink import SinkStats, clickhouse_client

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


def producer_performance(settings: Any, topic: str, n: int, size: int) -> float:
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


BATCH = 20_000
#: the columns the sink and the raw insert must store identically (the rest is Kafka/ingest metadata)
CONTENT = "event_id, type, source_dept, occurred_at, recorded_at, ref_id, subject_id, payload"


def raw_insert(client: Any, database: str, rows: list[tuple[Any, ...]], *, columnar: bool) -> float:
    """Rows per second of a plain batch insert, from the end of the first batch to the end of
    the last (as the sink is timed); the whole run when there is only one batch."""
    migrate(client, database)
    sql = f"INSERT INTO {database}.events ({', '.join(EVENT_COLUMNS)}) VALUES"
    marks = [(time.perf_counter(), 0)]
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        if columnar:
            client.execute(sql, list(zip(*chunk, strict=True)), columnar=True)
        else:
            client.execute(sql, chunk)
        marks.append((time.perf_counter(), i + len(chunk)))
    return _rate(marks)


def _rate(marks: list[tuple[float, int]]) -> float:
    """Rate between the first and last (time, count) marks after the start mark, or over the
    whole run when there are too few."""
    (t0, c0), (t1, c1) = (marks[1], marks[-1]) if len(marks) > 2 else (marks[0], marks[-1])
    return (c1 - c0) / (t1 - t0)


def sink_run(settings: Any, client: Any, prefix: str, database: str, n: int, *, processes: int) -> float:
    """Events per second of the sink with ``processes`` processes (started together, each in
    a fresh interpreter), in steady state (:func:`steady_rate`); the run goes on until the
    ``n`` distinct events are stored (a rebalance may deliver some twice)."""
    marks = [(time.perf_counter(), 0)]
    complete = False

    def on_batch(stats: SinkStats) -> None:
        nonlocal complete
        marks.append((time.perf_counter(), stats.events))
        if stats.events >= n and not complete:
            complete = distinct(client, database) >= n

    # each sink process is a fresh interpreter, as `hzbus sink clickhouse` is, not this process
    # with its 200,000 decoded events (whose garbage collection would be counted against it)
    stats = run_processes(
        settings,
        processes,
        prefix=prefix,
        database=database,
        group=f"{database}.sink",
        stop_when_idle=120.0,
        should_stop=lambda: complete,
        on_batch=on_batch,
    )
    assert complete and stats.dead_letters == 0, stats
    return steady_rate(marks, settings.sink_batch_size, processes)


def steady_rate(marks: list[tuple[float, int]], full: int, processes: int = 1) -> float:
    """Events/s of the sink's sustained rate, from ``marks`` ((time, events committed), the
    first at the start): from the ``processes``-th committed batch (each process has written
    one; the raw insert is timed from the end of its first batch too) to the last *full* one
    (``full`` events). The last partial batch of each process waits for the batch timer
    (``HZBUS_SINK_BATCH_SECONDS``) before it is written: latency, not throughput. With no full
    batch after the start, the whole run counts."""
    start = min(processes, len(marks) - 1)
    ends = [i for i in range(start + 1, len(marks)) if marks[i][1] - marks[i - 1][1] >= full]
    if not ends:
        return (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
    (t0, first), (t1, last) = marks[start], marks[ends[-1]]
    return (last - first) / (t1 - t0)


def distinct(client: Any, database: str) -> int:
    return int(client.execute(f"SELECT uniqExact(event_id) FROM {database}.events")[0][0])


def content_hash(client: Any, database: str) -> tuple[int, int]:
    count, digest = client.execute(
        f"SELECT count(), sum(cityHash64({CONTENT})) FROM (SELECT {CONTENT} FROM {database}.events FINAL)"
    )[0]
    return int(count), int(digest)


def one_round(settings: Any, sample: Path, events: list[Any], avg_size: int, work: Path) -> dict[str, float]:
    """The four figures of one round on fresh topics and a fresh database."""
    n = len(events)
    tag = uuid.uuid4().hex[:8]
    prefix, database = f"bench{tag}", f"bench_{tag}"
    settings = load_settings(topic_prefix=prefix, clickhouse_database=database)
    manager.ensure_topics(settings, prefix=prefix)
    client = clickhouse_client(settings)
    try:
        t0 = time.perf_counter()
        summary = publish_file(
            sample,
            "jsonl",
            publisher=KafkaPublisher(settings, prefix=prefix),
            registry=load_registry(),
            rejects=RejectWriter(work / "bench.rejects.jsonl", str(sample), console=None),
            publishing_dept=None,
            now=datetime.now(UTC),
            workers=DEFAULT_WORKERS,
        )
        publish_rate = summary.published / (time.perf_counter() - t0)
        assert (summary.published, summary.rejected) == (n, 0), summary
        # on a topic of its own, configured as an event topic: not one the sink then reads
        pp_prefix = f"{prefix}pp"
        manager.ensure_topics(load_settings(topic_prefix=pp_prefix), prefix=pp_prefix)
        pp_rate = producer_performance(settings, topic_name(pp_prefix, "cases"), n, avg_size)

        sink_rate = sink_run(settings, client, prefix, database, n, processes=1)
        sink2_rate = sink_run(settings, client, prefix, f"{database}_p2", n, processes=2)

        now = datetime.now(UTC)
        now_s = int(now.timestamp())
        key = settings.pseudonym_key.encode()
        row_args = [dict(topic="t", partition=0, offset=i, published_ms=0) for i in range(n)]
        fast_rows = [
            event_row_fast(codec.decode_record(codec.encode(e)), **a, ingested_s=now_s, pseudonym_key=key)  # type: ignore[arg-type]
            for e, a in zip(events, row_args, strict=True)
        ]
        raw_fast = raw_insert(client, f"{database}_raw", fast_rows, columnar=True)
        del fast_rows
        legacy_rows = [
            event_row(e.with_published_at(now), **a, ingested_at=now, pseudonym_key=key)  # type: ignore[arg-type]
            for e, a in zip(events, row_args, strict=True)
        ]
        raw_legacy = raw_insert(client, f"{database}_legacy", legacy_rows, columnar=False)
        del legacy_rows
        stored = content_hash(client, database)
        assert stored[0] == n, f"{stored[0]} distinct events stored, {n} published"
        for other in (f"{database}_p2", f"{database}_raw", f"{database}_legacy"):
            assert content_hash(client, other) == stored, f"{other}: rows differ from the sink's"
    finally:
        for db in (database, f"{database}_p2", f"{database}_raw", f"{database}_legacy"):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
            client.execute(f"DROP DATABASE IF EXISTS {db}_restricted")  # dead letters (docs/security.md)
        manager.delete_topics(load_settings(), prefix)
        manager.delete_topics(load_settings(), f"{prefix}pp")
    return {
        "publisher_eps": publish_rate,
        "producer_performance_eps": pp_rate,
        "publisher_ratio": publish_rate / pp_rate,
        "sink_eps": sink_rate,
        "raw_insert_rps": raw_fast,
        "sink_ratio": sink_rate / raw_fast,
        "raw_insert_rows_datetimes_rps": raw_legacy,
        "sink_ratio_vs_rows_datetimes": sink_rate / raw_legacy,
        "sink_2p_eps": sink2_rate,
        "sink_2p_ratio": sink2_rate / raw_fast,
        "sink_2p_ratio_vs_rows_datetimes": sink2_rate / raw_legacy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds; the median is reported")
    parser.add_argument("--warmup", type=int, default=5_000, help="events of the unrecorded warm-up round")
    args = parser.parse_args()
    n = args.events
    settings = load_settings()
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    work = Path(settings.state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    sample = simulate(n, work)
    events = [codec.decode_json_line(line) for line in sample.read_bytes().splitlines()]
    avg_size = round(sum(len(codec.encode(e)) for e in events) / len(events))
    if args.warmup:
        warm = work / "bench-warmup.jsonl"
        warm.write_bytes(b"".join(sample.read_bytes().splitlines(keepends=True)[: min(args.warmup, n)]))
        one_round(settings, warm, events[: min(args.warmup, n)], avg_size, work)
    rounds = []
    for i in range(args.repeat):
        rounds.append(one_round(settings, sample, events, avg_size, work))
        print(f"round {i + 1}/{args.repeat}: " + ", ".join(f"{k} {v:,.3f}" for k, v in rounds[-1].items()))
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    spread = {k: [min(r[k] for r in rounds), max(r[k] for r in rounds)] for k in rounds[0]}
    results: dict[str, Any] = {
        "events": n,
        "avg_record_bytes": avg_size,
        "repeat": args.repeat,
        "median": median,
        "range": spread,
        "rounds": rounds,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bus.json").write_text(json.dumps(results, indent=2) + "\n")

    def rate(key: str) -> str:
        lo, hi = spread[key]
        return f"{median[key]:,.0f} ({lo:,.0f}-{hi:,.0f})"

    def ratio(key: str) -> str:
        lo, hi = spread[key]
        return f"{median[key]:.0%} ({lo:.0%}-{hi:.0%})"

    out = io.StringIO()
    print(
        render(
            ("measure", "events/s", "baseline", "baseline/s", "ratio", "target"),
            [
                (
                    "publisher",
                    rate("publisher_eps"),
                    "Kafka ProducerPerformance",
                    rate("producer_performance_eps"),
                    ratio("publisher_ratio"),
                    ">= 30%",
                ),
                (
                    "sink",
                    rate("sink_eps"),
                    "raw insert, sink's rows (columnar)",
                    rate("raw_insert_rps"),
                    ratio("sink_ratio"),
                    ">= 50%",
                ),
                (
                    "sink",
                    rate("sink_eps"),
                    "raw insert, datetime rows (first baseline)",
                    rate("raw_insert_rows_datetimes_rps"),
                    ratio("sink_ratio_vs_rows_datetimes"),
                    "",
                ),
                (
                    "sink, 2 processes",
                    rate("sink_2p_eps"),
                    "raw insert, sink's rows (columnar)",
                    rate("raw_insert_rps"),
                    ratio("sink_2p_ratio"),
                    ">= 50%",
                ),
                (
                    "sink, 2 processes",
                    rate("sink_2p_eps"),
                    "raw insert, datetime rows (first baseline)",
                    rate("raw_insert_rows_datetimes_rps"),
                    ratio("sink_2p_ratio_vs_rows_datetimes"),
                    "",
                ),
            ],
            title=f"{n:,} events, {avg_size} bytes each on average (Avro single-object encoding); "
            f"median (range) of {args.repeat} round(s)",
        ),
        file=out,
    )
    print(out.getvalue())


if __name__ == "__main__":
    main()
