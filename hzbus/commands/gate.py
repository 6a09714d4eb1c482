"""``hzbus gate``: the secured mode's check of who published what (docs/security.md)."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gate",
        help="secured mode: forward each department's ingress records whose source_dept is the "
        "producing principal to the bus, the others to the dead-letter topic",
        description=(
            "Consumes <prefix>.ingress.<dept> (each writable only by User:dept-<dept>, an ACL of "
            "`hzbus infra principals`) as the bus principal. A record is forwarded to its family "
            "topic when its source_dept is that department and it carries no hzbus-historical "
            "header; otherwise it goes to <prefix>.deadletter with the reason [信息资源共享机制 五]."
        ),
    )
    p.add_argument("--prefix", help="topic prefix (default: HZBUS_TOPIC_PREFIX or 'hzbus')")
    p.add_argument(
        "--stop-when-idle",
        type=float,
        metavar="SECONDS",
        help="exit once nothing has arrived for this long (default: run until interrupted)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hzbus import kafka_auth
    from hzbus.config import load_settings
    from stream_processors.gate import Gate

    settings = load_settings()
    if not kafka_auth.secured(settings):
        print(
            "hzbus gate: note: HZBUS_KAFKA_SECURITY is not 'scram': departments publish straight to "
            "the family topics in the open mode, so the ingress topics stay empty",
            file=sys.stderr,
        )
    gate = Gate(settings, prefix=args.prefix)
    gate.prepare()
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def refused(where: str, reason: str) -> None:
        print(f"gate: refused {where}: {reason}", file=sys.stderr)

    stats = gate.run(stop_when_idle=args.stop_when_idle, should_stop=lambda: stopping, on_refused=refused)
    print(f"gate: done: {stats.forwarded} forwarded, {stats.refused} refused", file=sys.stderr)
    return 0
