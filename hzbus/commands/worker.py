"""``hzbus worker``: the stream processor (deadline clocks, correlation, alerts)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="run the stream processor: obligations, alerts, correlations",
        description=(
            "A Faust worker: keeps the deadline clock of every obligation of the notice, raises an "
            "alert when one is missed (and resolves it on a late fulfilment), correlates approvals and "
            "penalties per subject. Start several with different --name to share the partitions."
        ),
    )
    p.add_argument("--prefix", help="topic prefix (default: HZBUS_TOPIC_PREFIX or 'hzbus')")
    p.add_argument("--name", default="w1", help="worker name: its local state directory (default w1)")
    p.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="URL",
        help="DingTalk/WeCom group-robot webhook for alerts (repeatable)",
    )
    p.add_argument("--no-console", action="store_true", help="do not print alerts on stdout")
    p.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run the deadline clocks shifted by this many seconds (drills and tests)",
    )
    p.add_argument("--loglevel", default="warn", choices=("crit", "error", "warn", "info", "debug"))
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import faust

    from hzbus.calendar_source import load_calendar
    from hzbus.config import load_settings
    from infra import manager
    from stream_processors.notifiers import ConsoleNotifier, Notifier, WebhookNotifier
    from stream_processors.worker import build_app, changelog_topics

    settings = load_settings()
    prefix = args.prefix or settings.topic_prefix
    manager.ensure_topics(settings, prefix=prefix, extra=changelog_topics(prefix))
    calendar = load_calendar()
    from datetime import UTC, datetime, timedelta

    warning = calendar.coverage_warning(datetime.now(UTC).date())
    if warning:
        print(f"hzbus worker: warning: {warning}", file=sys.stderr)
    notifiers: list[Notifier] = [] if args.no_console else [ConsoleNotifier()]
    notifiers += [WebhookNotifier(url) for url in args.webhook]
    offset = timedelta(seconds=args.clock_offset)
    app = build_app(
        settings,
        calendar,
        prefix=prefix,
        datadir=Path(settings.state_dir) / "worker" / prefix / args.name,
        notifiers=notifiers,
        clock=lambda: datetime.now(UTC) + offset,
    )
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    import gc

    from stream_processors.worker import GC_THRESHOLDS

    gc.set_threshold(*GC_THRESHOLDS)  # the collector cost ~40% of the worker's CPU (worker.py)
    worker = faust.Worker(app, loglevel=args.loglevel, quiet=True, redirect_stdouts=False)
    worker.spinner = None  # its terminal codes would mix with the alerts printed on stdout
    app.hzbus_worker = worker  # the route stage stops it if it fails (stream_processors/worker.py)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        status: int = getattr(app, "hzbus_exit_status", 0)
        if not exc.code and status:
            raise SystemExit(status) from None
        raise
    return 0
