"""CPU cost of the worker's ``track`` step per event, without Kafka: a profiling aid, not a target.

What the ``track`` agent does for each (correlation key, event) of an import, in this process:
the key's state from a dict (the worker's cache), ``engine.apply`` at the event's recorded_at,
the state serialised as stored (``dump_state``), its next wake-up, and the fact records of its
changes (``change_records``), with the worker's thresholds of the cyclic garbage collector.
Reported in µs of CPU per event, split into those four parts.

Compare two versions by running it from each checkout in the same session, alternately (the
figures of docs/performance.md were taken so): absolute times on a shared machine are noise.

Usage: ``.venv/bin/python -m benchmarks.track_step [--events 50000]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

from benchmarks.bench_bus import simulate
from domain import obligations
from domain.obligations import KeyState
from domain.obligations.keys import correlation_keys
from hzbus.calendar_source import load_calendar
from hzbus.config import load_settings
from producers.readers import read_records
from schemas import codec
from stream_processors.worker import GC_THRESHOLDS, change_records, dump_state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    work = Path(load_settings().state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    path = simulate(args.events, work)
    events = [codec.from_canonical(r.data) for r in read_records(path) if r.data is not None]
    calendar = load_calendar()
    inputs = [(key, event) for event in events for key in correlation_keys(event)]
    gc.set_threshold(*GC_THRESHOLDS)  # the collector's thresholds of ``hzbus worker``
    cache: dict[str, KeyState] = {}
    stored: dict[str, bytes] = {}
    spent = {"apply": 0.0, "dump": 0.0, "wake-up": 0.0, "facts": 0.0}
    clock = time.process_time
    records = 0
    for ckey, event in inputs:
        t0 = clock()
        state = cache.get(ckey) or KeyState(ckey)
        state, changes = obligations.apply(state, event, calendar, event.recorded_at)
        t1 = clock()
        stored[ckey] = dump_state(state)
        cache[ckey] = state
        t2 = clock()
        obligations.next_wakeup(state, calendar)
        t3 = clock()
        records += sum(len(change_records(c)) for c in changes)
        t4 = clock()
        spent["apply"] += t1 - t0
        spent["dump"] += t2 - t1
        spent["wake-up"] += t3 - t2
        spent["facts"] += t4 - t3
    per_event = {k: v / len(events) * 1e6 for k, v in spent.items()}
    print(
        f"track step: {sum(per_event.values()):.1f} µs CPU per event ({len(events):,} events, "
        f"{len(inputs):,} key inputs, {len(stored):,} keys, {records:,} fact records): "
        + ", ".join(f"{k} {v:.1f}" for k, v in per_event.items())
    )


if __name__ == "__main__":
    main()
