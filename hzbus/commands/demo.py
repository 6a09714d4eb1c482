"""``hzbus demo``: the main job, end to end on this machine.

Starts local Kafka + ClickHouse (installing them if needed), simulates a realistic sample of
department events, publishes it through the department adapters' pipeline, runs the
ClickHouse sink until it has caught up, and prints what landed, read back from ClickHouse.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job: infra, sample events, publish, sink, statistics")
    p.add_argument("--days", type=int,
                   help="days of simulated activity (default: from --start up to today, at most 92)")
    p.add_argument("--seed", type=int, default=2026, help="simulation seed (default 2026)")
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2026, 9, 21),
        help="first simulated day (default 2026-09-21, spanning National Day 2026)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="volume multiplier of the simulation")
    p.set_defaults(handler=run)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from domain.departments import load_registry
    from hzbus.config import load_settings
    from hzbus.errors import UserError
    from hzbus.tables import render
    from infra import manager
    from producers.pipeline import RejectWriter, publish_records
    from producers.publisher import KafkaPublisher
    from producers.readers import read_records
    from producers.simulate import write_simulation
    from sinks.clickhouse.queries import load_query, question_of
    from sinks.clickhouse.sink import EventSink, clickhouse_client

    settings = load_settings()
    registry = load_registry()
    if args.days is None:
        args.days = max(1, min(92, (datetime.now(UTC).date() - args.start).days))
    if args.days < 1:
        raise UserError("--days must be at least 1")
    say("== 1/4 local Kafka and ClickHouse")
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    manager.ensure_topics(settings)

    say(f"== 2/4 simulating {args.days} days of department events (seed {args.seed}, from {args.start})")
    work = Path(settings.state_dir) / "demo"
    work.mkdir(parents=True, exist_ok=True)
    sample = work / f"events-{args.start}-{args.days}d-seed{args.seed}-x{args.scale:g}.jsonl"
    count = write_simulation(sample, days=args.days, seed=args.seed, start=args.start, scale=args.scale)
    say(f"   {count:,} events in {sample}")

    say("== 3/4 publishing through the department adapters")
    started = time.monotonic()
    rejects = RejectWriter(work / "rejects.jsonl", str(sample))
    summary = publish_records(
        read_records(sample, "jsonl"),
        publisher=KafkaPublisher(settings),
        registry=registry,
        rejects=rejects,
        publishing_dept=None,
        now=datetime.now(UTC),
    )
    say(
        f"   {summary.published:,} published, {summary.rejected:,} rejected "
        f"in {time.monotonic() - started:.1f} s"
    )

    say("== 4/4 ClickHouse sink (until it has caught up)")
    sink = EventSink(settings)
    sink.prepare()
    stats = sink.run(stop_when_idle=3.0)
    say(f"   {stats.events:,} events and {stats.dead_letters:,} dead letters written this run")

    client = clickhouse_client(settings)
    db = settings.clickhouse_database
    by_type = client.execute(load_query("events_by_type", db))
    by_dept = client.execute(load_query("events_by_department", db))
    total = sum(r[1] for r in by_type)
    print()
    print(
        render(
            ("event type", "events", "departments"),
            by_type,
            title=f"{question_of('events_by_type')}  [ClickHouse {db}.events]",
        )
    )
    print()
    rows = []
    for code, events, types, last in by_dept:
        name = registry.get(code).name_zh if code in registry else "?"
        rows.append((code, name, events, types, last.strftime("%Y-%m-%d %H:%M")))
    print(
        render(
            ("dept", "department", "events", "types", "last published (+08:00)"),
            rows,
            title=f"{question_of('events_by_department')}  [ClickHouse {db}.events]",
        )
    )
    print()
    dead = client.execute(f"SELECT count() FROM {db}.dead_letters FINAL")[0][0]
    print(
        f"{total:,} distinct events in ClickHouse ({summary.published:,} published this run, "
        f"{summary.rejected:,} rejected, {dead:,} dead letters on record)"
    )
    return 0
