"""``hzbus demo``: the main job, end to end on this machine.

Starts local Kafka + ClickHouse (installing them if needed), simulates a realistic sample of
department events, publishes it through the department adapters' pipeline (as an import of
past records), runs the stream processor (``hzbus worker``) and the ClickHouse sink until both
have caught up, and prints what landed, read back from ClickHouse: events per type and
department, obligations by status, alerts raised and resolved, the scorecard of the quarter and
the path of the HTML report.

The demo works in its own corner of the services (topic prefix ``demo``, database
``hzbus_demo``) and resets it first, so that every run tells the same story.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from producers.readers import SourceRecord

DEMO_PREFIX = "demo"
DEMO_DATABASE = "hzbus_demo"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the main job: infra, sample events, publish, worker, sink, statistics"
    )
    p.add_argument(
        "--days", type=int, help="days of simulated activity (default: from --start up to today, at most 92)"
    )
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
    from domain.events import SHANGHAI
    from domain.scorecard import Quarter
    from hzbus.config import load_settings
    from hzbus.errors import UserError
    from hzbus.lag import wait_for_worker
    from hzbus.processes import spawn_hzbus
    from hzbus.tables import render
    from infra import manager
    from producers.pipeline import RejectWriter, publish_records
    from producers.publisher import KafkaPublisher
    from producers.readers import read_records
    from producers.simulate import write_simulation
    from sinks.clickhouse.queries import load_query, question_of
    from sinks.clickhouse.sink import EventSink, clickhouse_client

    settings = load_settings(topic_prefix=DEMO_PREFIX, clickhouse_database=DEMO_DATABASE)
    bus_settings = load_settings()
    registry = load_registry()
    if args.days is None:
        args.days = max(1, min(92, (datetime.now(UTC).date() - args.start).days))
    if args.days < 1:
        raise UserError("--days must be at least 1")
    work = Path(settings.state_dir) / "demo"

    say("== 1/6 local Kafka and ClickHouse")
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    client = clickhouse_client(settings)
    manager.delete_prefix(bus_settings, DEMO_PREFIX)  # a fresh corner for the demo
    client.execute(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}")
    client.execute(f"DROP DATABASE IF EXISTS {DEMO_DATABASE}_restricted")
    shutil.rmtree(Path(settings.state_dir) / "worker" / DEMO_PREFIX, ignore_errors=True)
    manager.ensure_topics(settings, prefix=DEMO_PREFIX)

    say(f"== 2/6 simulating {args.days} days of department events (seed {args.seed}, from {args.start})")
    work.mkdir(parents=True, exist_ok=True)
    sample = work / f"events-{args.start}-{args.days}d-seed{args.seed}-x{args.scale:g}.jsonl"
    count = write_simulation(sample, days=args.days, seed=args.seed, start=args.start, scale=args.scale)
    say(f"   {count:,} events in {sample}")

    say("== 3/6 publishing through the department adapters (an import of past records)")
    started = time.monotonic()
    summary = publish_records(
        read_records(sample, "jsonl"),
        publisher=KafkaPublisher(settings, historical=True),
        registry=registry,
        rejects=RejectWriter(work / "rejects.jsonl", str(sample)),
        publishing_dept=None,
        now=datetime.now(UTC),
    )
    say(
        f"   {summary.published:,} published, {summary.rejected:,} rejected "
        f"in {time.monotonic() - started:.1f} s"
    )

    say("== 4/6 stream processor: deadline clocks, alerts, correlations (hzbus worker)")
    alerts_out = work / "alerts.txt"
    env = {"HZBUS_TOPIC_PREFIX": DEMO_PREFIX, "HZBUS_CLICKHOUSE_DATABASE": DEMO_DATABASE}
    worker_log = work / "worker.log"
    with alerts_out.open("w") as out, worker_log.open("w") as log:
        worker = spawn_hzbus(
            "worker", "--name", "demo", "--loglevel", "warn", env=env, stdout=out, stderr=log
        )
    say(f"   alerts to {alerts_out}, worker log {worker_log}")
    try:
        wait_for_worker(
            settings,
            DEMO_PREFIX,
            alive=lambda: worker.poll() is None,
            progress=lambda lag: say(f"   worker: {lag:,} messages to go"),
        )

        say("== 5/6 ClickHouse sink (events and the worker's facts, until it has caught up)")
        sink = EventSink(settings)
        sink.prepare()
        stats = sink.run(stop_when_idle=3.0)
        say(f"   {stats.events:,} events, {stats.facts:,} facts, {stats.dead_letters:,} dead letters stored")

        late = late_fulfilments(client, DEMO_DATABASE, datetime.now(UTC))
        say(f"== 6/6 {len(late)} late fulfilments arrive live from the departments; their alerts resolve")
        publish_records(
            iter(late),
            publisher=KafkaPublisher(settings),
            registry=registry,
            rejects=RejectWriter(work / "late.rejects.jsonl", "late fulfilments"),
            publishing_dept=None,
            now=datetime.now(UTC),
        )
        time.sleep(1.0)
        wait_for_worker(settings, DEMO_PREFIX, quiet=2.0, alive=lambda: worker.poll() is None)
        stats = EventSink(settings).run(stop_when_idle=3.0)
        say(f"   {stats.events:,} events, {stats.facts:,} facts stored")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()

    db = DEMO_DATABASE
    print()
    print(
        render(
            ("event type", "events", "departments"),
            client.execute(load_query("events_by_type", db)),
            title=f"{question_of('events_by_type')}  [ClickHouse {db}.events]",
        )
    )
    print()
    rows = []
    for code, events, types, last in client.execute(load_query("events_by_department", db)):
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
    print(
        render(
            ("obligation kind", "open", "met", "late", "missed", "clause"),
            client.execute(load_query("obligations_by_kind_and_status", db)),
            title=f"{question_of('obligations_by_kind_and_status')}  [ClickHouse {db}.obligations]",
        )
    )
    print()
    raised, resolved = client.execute(
        f"SELECT countIf(event = 'raised'), countIf(event = 'resolved') FROM {db}.alerts FINAL"
    )[0]
    lines = [_plain(line) for line in alerts_out.read_text(encoding="utf-8").splitlines() if "【" in line]
    print(
        f"Alerts: {raised:,} raised, {resolved:,} resolved [ClickHouse {db}.alerts]; "
        f"{len(lines):,} delivered to the console notifier ({alerts_out}), for example:"
    )
    for line in lines[:4] + [line for line in lines if "解除" in line][:3]:
        print(f"  {line}")
    print()
    quarter = str(Quarter.of(datetime.now(SHANGHAI)))
    from hzbus.cli import main as hzbus

    os.environ["HZBUS_TOPIC_PREFIX"], os.environ["HZBUS_CLICKHOUSE_DATABASE"] = DEMO_PREFIX, DEMO_DATABASE
    hzbus(["scorecard", "--quarter", quarter])
    print()
    report = Path(settings.state_dir) / "reports" / f"report-{quarter}.html"
    hzbus(["report", "--quarter", quarter, "--out", str(report)])
    return 0


def _plain(line: str) -> str:
    """A console line without terminal control sequences (Faust's spinner writes some)."""
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)


def late_fulfilments(client: Any, database: str, now: datetime, limit: int = 3) -> list[SourceRecord]:
    """Canonical events that fulfil, late, a few obligations missed in the demo: the replies a
    requested department finally sends (DeterminationReplied) and the acknowledgements of
    transferred cases (TransferAcknowledged), each from the responsible department."""
    rows = client.execute(
        f"SELECT kind, ref, responsible_dept FROM {database}.obligations FINAL "
        "WHERE status = 'missed' AND kind IN ('determination_reply', 'transfer_ack') "
        f"ORDER BY due_at LIMIT {int(limit)}"
    )
    stamp = now.isoformat()
    out: list[SourceRecord] = []
    for i, (kind, ref, dept) in enumerate(rows, start=1):
        common = {"source_dept": dept, "occurred_at": stamp, "recorded_at": stamp}
        if kind == "determination_reply":
            event = {
                "type": "DeterminationReplied",
                **common,
                "request_id": ref,
                "conclusion": "经现场核查，认定属实（逾期答复）",
            }
        else:
            event = {
                "type": "TransferAcknowledged",
                **common,
                "case_id": ref,
                "decision": "accepted",
                "reason": None,
            }
        out.append(SourceRecord(i, str(event), event))
    return out
