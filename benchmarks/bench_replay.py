"""Throughput of ``hzbus replay`` (issue 3) against a bare orjson parse of the same file.

In the same process and run, over the same simulated file (canonical JSON, one event a line):

* baseline: read the file and ``orjson.loads`` every line, nothing else;
* replay: what ``hzbus replay FILE --as-of T`` does: read and strictly validate every line,
  fold the events into per-key states, evaluate every obligation and finding at ``--as-of``,
  and render the JSON Lines output (written to /dev/null); like the command, without the cyclic
  garbage collector (``batch_memory``). The command then ends its process with the batch alive
  (``os._exit`` once its output is flushed), so the rate stops there too; freeing the batch,
  which an in-process caller pays, is reported apart (``free_s``: releasing the events and
  obligations, and the collector's first pass once back).

Both are timed in CPU seconds of this process (``time.process_time``), which neighbours on a
shared machine disturb less than wall time; the median of ``--repeat`` rounds is reported.
Each round also runs the command itself (``hzbus replay FILE --as-of T > /dev/null``) and
reports its CPU seconds (``command_s``, the child's user + system time): start-up and imports
included, which the in-process figures leave out.

Each round also says what the 30% target leaves after reading (``budget``): the rate of the read
phase alone against the bare parse (``read_only_ratio``: with evaluation and output free, replay
could be no faster), and the µs an event left for evaluating and writing at 30%
(``rest_budget_us``) against what they took (``rest_us``).

Usage: ``.venv/bin/python -m benchmarks.bench_replay [--events 200000] [--repeat 3]``; writes
``benchmarks/results/replay.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench_bus import simulate
from domain.calendar import WorkingDayCalendar
from domain.events import SHANGHAI
from domain.obligations import evaluate_events
from hzbus.calendar_source import load_calendar
from hzbus.commands.replay import batch_memory, read_events, write_jsonl
from hzbus.config import load_settings

RESULTS = Path(__file__).resolve().parent / "results"


def bare_parse(path: Path) -> float:
    t0 = time.process_time()
    with path.open("rb") as fh:
        n = sum(1 for line in fh if orjson.loads(line) is not None)
    return n / (time.process_time() - t0)


def command(path: Path, as_of: str) -> float:
    """CPU seconds of ``hzbus replay`` run as a process over ``path``, output to /dev/null."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open("/dev/null", "wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "hzbus.cli", "replay", str(path), "--as-of", as_of],
            stdout=out,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"hzbus replay {path} exited with status {done.returncode}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def replay(path: Path, as_of: datetime) -> tuple[float, dict[str, float], int]:
    calendar = load_calendar()
    t0 = time.process_time()
    with batch_memory():  # as hzbus replay does, the batch freed inside
        n, obligations, (t1, t2, t3) = _replay(path, as_of, calendar)
    t4 = time.process_time()  # the batch freed and the collector back: the command skips that
    return (
        n / (t3 - t0),
        {"read_s": t1 - t0, "evaluate_s": t2 - t1, "render_s": t3 - t2, "free_s": t4 - t3},
        obligations,
    )


def _replay(path: Path, as_of: datetime, calendar: WorkingDayCalendar) -> tuple[int, int, tuple[float, ...]]:
    events, errors = read_events(path)
    t1 = time.process_time()
    result = evaluate_events(events, as_of, calendar, keep_states=False)  # as hzbus replay does
    t2 = time.process_time()
    with open("/dev/null", "wb") as out:
        write_jsonl(result, out)
    t3 = time.process_time()
    assert not errors, errors[:3]
    return len(events), len(result.obligations), (t1, t2, t3)


def budget(n: int, base_eps: float, phases: dict[str, float], target: float = 0.3) -> dict[str, float]:
    """What the target leaves after reading, from one round's figures: the rate of reading alone
    (parse, validate, one event object a line) against the bare parse, and the µs an event that
    evaluating and writing the output may take at ``target`` against what they took."""
    read_us = phases["read_s"] / n * 1e6
    return {
        "read_only_ratio": (n / phases["read_s"]) / base_eps,
        "rest_budget_us": 1e6 / (target * base_eps) - read_us,
        "rest_us": (phases["evaluate_s"] + phases["render_s"]) / n * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--as-of", default="2026-11-20T00:00:00+08:00")
    args = parser.parse_args()
    work = Path(load_settings().state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    path = simulate(args.events, work)
    as_of = datetime.fromisoformat(args.as_of).astimezone(SHANGHAI)
    rounds: list[dict[str, Any]] = []
    for _ in range(args.repeat):
        base = bare_parse(path)
        rate, phases, obligations = replay(path, as_of)
        spent = command(path, args.as_of)
        rounds.append(
            {
                "orjson_eps": base,
                "replay_eps": rate,
                "ratio": rate / base,
                **phases,
                "command_s": spent,
                **budget(args.events, base, phases),
            }
        )
        print(", ".join(f"{k} {v:,.3f}" for k, v in rounds[-1].items()), f"obligations {obligations:,}")
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    results = {
        "events": args.events,
        "as_of": args.as_of,
        "obligations": obligations,
        "median": median,
        "rounds": rounds,
        "target": 0.3,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replay.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"replay {median['replay_eps']:,.0f} events/s vs bare orjson parse "
        f"{median['orjson_eps']:,.0f} lines/s: "
        f"{median['ratio']:.1%} (target >= 30%); CPU s: read+validate {median['read_s']:.2f}, "
        f"evaluate {median['evaluate_s']:.2f}, render {median['render_s']:.2f}, free {median['free_s']:.2f} "
        f"(not paid by the command, which exits); the command as a process: {median['command_s']:.2f} CPU s, "
        f"{args.events / median['command_s']:,.0f} events/s with its start-up"
    )
    print(
        f"reading alone (parse, validate, an event object a line) runs at {median['read_only_ratio']:.1%} "
        f"of the bare parse; at 30%, evaluating and writing would have {median['rest_budget_us']:.2f} µs "
        f"an event left, and take {median['rest_us']:.2f}"
    )


if __name__ == "__main__":
    main()
