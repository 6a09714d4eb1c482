"""``hzbus simulate``: a deterministic stream of canonical-JSON events (JSON Lines)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from domain.departments import load_registry
from hzbus.calendar_source import load_calendar
from hzbus.errors import UserError
from producers.simulate import DEFAULT_START, simulate, write_jsonl


def _start(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="generate a plausible, seeded stream of events (JSON Lines)",
        description=(
            "Simulate the departments' facts over a window of days as canonical-JSON events, one a "
            "line, sorted by occurred_at. The same --seed gives the same bytes."
        ),
    )
    p.add_argument("--days", type=int, default=60, help="length of the window in days (default 60)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--start",
        type=_start,
        default=DEFAULT_START,
        help=f"first day of the window (default {DEFAULT_START.isoformat()})",
    )
    p.add_argument(
        "--scale", type=float, default=1.0, help="volume multiplier (1.0 ≈ 180 events per working day)"
    )
    p.add_argument("--out", default="-", help="output file (.jsonl); '-' or omitted: stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        raise UserError("--days must be at least 1")
    if not args.scale > 0:
        raise UserError("--scale must be positive")
    calendar = load_calendar()
    warning = calendar.coverage_warning(args.start)
    began = time.perf_counter()
    out: BinaryIO
    if args.out == "-":
        out = sys.stdout.buffer
        close = False
    else:
        path = Path(args.out)
        if path.parent and not path.parent.exists():
            raise UserError(f"--out {path}: directory {path.parent} does not exist")
        out = path.open("wb")
        close = True
    try:
        events = simulate(
            days=args.days,
            seed=args.seed,
            start=args.start,
            scale=args.scale,
            calendar=calendar,
            registry=load_registry(),
        )
        counts = write_jsonl(out, events)
    finally:
        if close:
            out.close()
    elapsed = time.perf_counter() - began
    total = sum(counts.values())
    by_type = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    print(
        f"simulate: {total} events in {elapsed:.1f}s (seed {args.seed}, {args.days} days from "
        f"{args.start.isoformat()}, scale {args.scale:g}): {by_type}",
        file=sys.stderr,
    )
    if warning:
        print(f"simulate: warning: {warning}", file=sys.stderr)
    return 0
