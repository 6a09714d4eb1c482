"""``hzbus infra install | up | down | restart | status | topics | principals``: the local Kafka
broker and ClickHouse, and the identities of the secured mode (docs/security.md).

Progress goes to stderr; ``status`` and ``topics`` print their result on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from hzbus.config import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "infra",
        help="install, start, stop and inspect the local Kafka broker and ClickHouse",
        description="Local Kafka (KRaft, jars from Maven Central) and ClickHouse (Debian package) "
        "under the state dir (.state/ by default). See docs/infra.md.",
    )
    sub = parser.add_subparsers(dest="infra_command", metavar="ACTION", required=True)

    p = sub.add_parser("install", help="fetch the Kafka jars and install clickhouse-server if missing")
    p.set_defaults(handler=_install)

    p = sub.add_parser("up", help="start whatever is not running (idempotent), then create the topics")
    p.add_argument("--no-topics", action="store_true", help="do not create the bus's topics")
    p.set_defaults(handler=_up)

    p = sub.add_parser("down", help="stop the processes that `infra up` started")
    p.set_defaults(handler=_down)

    p = sub.add_parser(
        "restart",
        help="stop and start again what `infra up` started, with the current configuration "
        "(new listeners, another HZBUS_KAFKA_SECURITY)",
    )
    p.add_argument("--no-topics", action="store_true", help="do not create the bus's topics")
    p.set_defaults(handler=_restart)

    p = sub.add_parser("status", help="both services: running?, pid, ports, version, topics")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_status)

    p = sub.add_parser("topics", help="create/verify every topic of infra/topics.json (idempotent)")
    p.add_argument("--prefix", help="topic name prefix (default: the topic_prefix setting)")
    p.set_defaults(handler=_topics)

    p = sub.add_parser(
        "principals",
        help="SCRAM principals (operator, bus, one per department), ingress topics and ACLs of the "
        "secured mode (idempotent)",
    )
    p.add_argument("--prefix", help="topic name prefix (default: the topic_prefix setting)")
    p.add_argument(
        "--dept", action="append", metavar="CODE", help="only these departments (default: the whole registry)"
    )
    p.set_defaults(handler=_principals)


def _install(args: argparse.Namespace) -> int:
    from infra import manager

    manager.ensure_installed(load_settings())
    print("infra install: ok", file=sys.stderr)
    return 0


def _up(args: argparse.Namespace) -> int:
    from infra import manager

    settings = load_settings()
    started = time.monotonic()
    manager.ensure_up(settings)
    _after_up(settings, args.no_topics)
    print(
        f"infra up: Kafka {settings.kafka_bootstrap}, ClickHouse "
        f"{settings.clickhouse_host}:{settings.clickhouse_port} ready ({time.monotonic() - started:.1f} s)",
        file=sys.stderr,
    )
    return 0


def _after_up(settings: Any, no_topics: bool) -> None:
    """The bus's topics and, in the secured mode, its principals, ingress topics and ACLs."""
    from hzbus import kafka_auth
    from infra import kafka_security, manager

    if no_topics:
        return
    result = manager.ensure_topics(settings)
    if result["created"]:
        print(f"created {len(result['created'])} topics ({settings.topic_prefix}.*)", file=sys.stderr)
    if kafka_auth.secured(settings):
        done = kafka_security.ensure_principals(settings)
        print(
            f"secured mode: {len(done['principals'])} SCRAM principals ({len(done['created'])} new), "
            f"{len(done['acls'])} ACLs, SCRAM listener {done['scram_bootstrap']}",
            file=sys.stderr,
        )


def _restart(args: argparse.Namespace) -> int:
    from infra import manager

    settings = load_settings()
    manager.restart(settings)
    _after_up(settings, args.no_topics)
    print(f"infra restart: done (Kafka security: {settings.kafka_security})", file=sys.stderr)
    return 0


def _principals(args: argparse.Namespace) -> int:
    from infra import kafka_security

    settings = load_settings()
    done = kafka_security.ensure_principals(settings, prefix=args.prefix, codes=args.dept)
    created = set(done["created"])
    for name in done["principals"]:
        print(f"User:{name:<24} {'created' if name in created else 'ok'}")
    for entry in done["acls"]:
        print(entry.describe())
    print(
        f"passwords (mode 0600): {done['credentials']}/<principal>; SCRAM-SHA-256 listener "
        f"{done['scram_bootstrap']}; departments publish with HZBUS_KAFKA_SECURITY=scram",
        file=sys.stderr,
    )
    return 0


def _down(args: argparse.Namespace) -> int:
    from infra import manager

    manager.down(load_settings())
    return 0


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _status(args: argparse.Namespace) -> int:
    from infra import manager

    settings = load_settings()
    st = manager.status(settings)
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        k, c = st["kafka"], st["clickhouse"]
        owner_k = "started by hzbus infra" if k["managed"] else "not started by hzbus infra"
        owner_c = "started by hzbus infra" if c["managed"] else "not started by hzbus infra"
        print(
            f"kafka       {k['state']:<8} pid {_fmt(k['pid']):<8} {k['bootstrap']} "
            f"(controller {_fmt(k['controller_port'])})  version {_fmt(k['version'])}  "
            f"topics {_fmt(k['topics'])} ({_fmt(k['bus_topics'])} under {settings.topic_prefix}.)  "
            f"[{owner_k}]"
        )
        print(
            f"clickhouse  {c['state']:<8} pid {_fmt(c['pid']):<8} {c['host']}:{c['port']} "
            f"(http {c['http_port']})  version {_fmt(c['version'])}  [{owner_c}]"
        )
    both = st["kafka"]["state"] == "running" and st["clickhouse"]["state"] == "running"
    return 0 if both else 1


def _topics(args: argparse.Namespace) -> int:
    from hzbus.topics import all_topics
    from infra import manager

    settings = load_settings()
    prefix = args.prefix or settings.topic_prefix
    result = manager.ensure_topics(settings, prefix=prefix)
    created, fixed = set(result["created"]), set(result["fixed"])
    for spec in all_topics(prefix):
        what = "created" if spec.name in created else ("fixed" if spec.name in fixed else "ok")
        cfg = " ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
        print(f"{spec.name:<32} {spec.partitions:>3} partitions  {what:<7}  {cfg}")
    return 0
