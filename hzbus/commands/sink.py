"""``hzbus sink clickhouse``: store every event of the bus in ClickHouse."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sink", help="consume the bus into a store")
    p.add_argument("target", choices=("clickhouse",), help="the store")
    p.add_argument("--prefix", help="topic prefix (default: HZBUS_TOPIC_PREFIX or 'hzbus')")
    p.add_argument("--database", help="ClickHouse database (default: HZBUS_CLICKHOUSE_DATABASE or 'hzbus')")
    p.add_argument("--group", help="consumer group (default: <prefix>.sink.clickhouse)")
    p.add_argument(
        "--stop-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit once nothing has arrived for this long (default: run until interrupted)",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="sink processes in the consumer group (each takes a share of the partitions; "
        "2 on a 2-core machine roughly doubles throughput). Default 1",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hzbus.config import load_settings
    from sinks.clickhouse.parallel import run_processes
    from sinks.clickhouse.sink import EventSink, SinkStats, check_database_name, tune_gc_for_sink_process

    settings = load_settings()
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()

    def progress(stats: SinkStats) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        print(
            f"sink: {stats.events} events, {stats.dead_letters} dead letters stored "
            f"({stats.events / elapsed:,.0f}/s)",
            file=sys.stderr,
        )

    if args.processes == 1:
        sink = EventSink(settings, prefix=args.prefix, database=args.database, group=args.group)
        sink.prepare()
        tune_gc_for_sink_process()
        stats = sink.run(stop_when_idle=args.stop_when_idle, on_batch=progress, should_stop=lambda: stopping)
    else:
        stats = run_processes(
            settings,
            args.processes,
            prefix=args.prefix,
            database=args.database,
            group=args.group,
            stop_when_idle=args.stop_when_idle,
            on_batch=progress,
            should_stop=lambda: stopping,
        )
    database = check_database_name(args.database or settings.clickhouse_database)
    print(
        f"sink: done: {stats.events} events and {stats.dead_letters} dead letters stored in "
        f"{database} in {stats.batches} batches",
        file=sys.stderr,
    )
    return 0
