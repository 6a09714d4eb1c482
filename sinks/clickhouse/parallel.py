"""Several sink processes in one consumer group: the sink scaled out on one machine.

Decoding, pseudonymising and the driver's serialisation of each row cost Python time under
one GIL; a second process doubles what the machine can spend on them. Each process is an
ordinary :class:`~sinks.clickhouse.sink.EventSink` in the same consumer group, so Kafka
splits the partitions between them and every guarantee of the single sink holds per
partition: rows are written before their offsets are committed, and storage is idempotent
on ``event_id`` (a partition handed over in a rebalance is re-read from its last commit).

The parent applies the migrations once, starts the children, adds up their progress, and
asks them to stop (they finish and commit their batch in flight). A child that fails stops
the others and the parent reports which one and why.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from multiprocessing import get_context
from typing import Any

from hzbus.config import Settings
from hzbus.errors import UserError
from sinks.clickhouse.sink import EventSink, SinkStats, tune_gc_for_sink_process

log = logging.getLogger(__name__)
#: how long the sinks wait, paused, for the group to give each of them partitions
GROUP_FORMING_S = 30


def _child(
    index: int,
    settings: Settings,
    prefix: str | None,
    database: str | None,
    group: str | None,
    stop_when_idle: float | None,
    progress: Any,
    stop: Any,
    join: Any,
    go: Any,
) -> None:
    from infra.procs import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sink = EventSink(settings, prefix=prefix, database=database, group=group)
        tune_gc_for_sink_process()
        progress.put((index, None, "ready"))
        while not join.wait(0.2):  # all join the group together: one rebalance at the start, not N
            if stop.is_set():
                progress.put((index, asdict(SinkStats()), "done"))
                return
        stats = sink.run(
            stop_when_idle=stop_when_idle,
            should_stop=stop.is_set,
            on_batch=lambda s: progress.put((index, asdict(s), None)),
            hold=lambda: not go.is_set(),  # read nothing before every sink has its share
            on_assigned=lambda n: progress.put((index, None, f"assigned {n}")),
        )
        progress.put((index, asdict(stats), "done"))
    except BaseException as exc:  # tell the parent; it stops the others and reports
        progress.put((index, None, f"{type(exc).__name__}: {exc}"))
        raise


def total(parts: dict[int, SinkStats]) -> SinkStats:
    out = SinkStats()
    by_type: Counter[str] = Counter()
    for s in parts.values():
        out.events += s.events
        out.dead_letters += s.dead_letters
        out.facts += s.facts
        out.batches += s.batches
        by_type.update(s.by_type)
    out.by_type = dict(by_type)
    return out


def run_processes(
    settings: Settings,
    processes: int,
    *,
    prefix: str | None = None,
    database: str | None = None,
    group: str | None = None,
    stop_when_idle: float | None = None,
    on_batch: Callable[[SinkStats], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> SinkStats:
    """Run ``processes`` sinks in one group until ``should_stop()`` or, with
    ``stop_when_idle``, until each has been idle that long; their stats added up."""
    if processes < 1:
        raise UserError("--processes: expected 1 or more")
    EventSink(settings, prefix=prefix, database=database, group=group).prepare()
    ctx = get_context("spawn")  # a clean interpreter: no librdkafka threads inherited
    progress = ctx.Queue()
    stop = ctx.Event()
    join, go = ctx.Event(), ctx.Event()
    children = [
        ctx.Process(
            target=_child,
            args=(i, settings, prefix, database, group, stop_when_idle, progress, stop, join, go),
            name=f"hzbus-sink-{i}",
        )
        for i in range(processes)
    ]
    for child in children:
        child.start()
    parts: dict[int, SinkStats] = {}
    ready: set[int] = set()
    assigned: dict[int, int] = {}  # each child's latest assignment size
    joined_at = 0.0
    done: set[int] = set()
    failure: str | None = None
    try:
        while len(done) < processes:
            if should_stop():
                stop.set()
            if join.is_set() and not go.is_set() and time.monotonic() - joined_at > GROUP_FORMING_S:
                log.warning("no share for every sink within %d s; starting anyway", GROUP_FORMING_S)
                go.set()
            try:
                index, stats, status = progress.get(timeout=0.2)
            except queue.Empty:
                dead = [c for i, c in enumerate(children) if i not in done and not c.is_alive()]
                for c in dead:  # gone without a word (SIGKILL, OOM)
                    failure = failure or f"{c.name} exited with status {c.exitcode}"
                    done.add(children.index(c))
                if failure:
                    stop.set()
                continue
            if status == "ready":
                ready.add(index)
                if len(ready) == processes:
                    join.set()
                    joined_at = time.monotonic()
                continue
            if status is not None and status.startswith("assigned "):
                assigned[index] = int(status.split()[1])
                if len(assigned) == processes and all(assigned.values()):
                    go.set()  # every sink has partitions: they start reading together
                continue
            if stats is not None:
                parts[index] = SinkStats(**stats)
            if status is None:
                if on_batch is not None:
                    on_batch(total(parts))
            else:
                done.add(index)
                if status != "done":
                    failure = failure or f"hzbus-sink-{index}: {status}"
                    stop.set()
    finally:
        stop.set()
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                log.warning("%s did not stop within 60 s; terminating it", child.name)
                with contextlib.suppress(Exception):
                    child.terminate()
                child.join(timeout=10)
    if failure:
        raise UserError(f"sink process failed: {failure} (uncommitted batches are re-read on restart)")
    return total(parts)
