"""Load and memory of the worker (issue 5): a bounded run that leaves a million obligations open.

A synthetic, valid event stream (``--events``, half DeterminationRequested, half CaseTransferred,
each with its own request or case, so each opens exactly one obligation: determination_reply,
10 working days [协作机制 五(二)], or transfer_ack, 5 working days [协作机制 二(一)]) with
business times in the last ``--spread-hours`` hours, so that nothing falls due during the run,
is published with the project's publisher (``publish_file``, 2 worker processes) as a
historical import (``hzbus publish --historical``: the worker evaluates each record on its own
recorded_at). Then ONE ``hzbus worker`` process consumes it on a fresh prefix while this script
samples, every ``--interval`` seconds:

* the worker's resident memory (VmRSS of its process and any children, /proc/<pid>/status);
* the route group's committed offsets on the event topics (events routed: decoded, checked,
  re-keyed) and the end offsets of the obligations topic (obligation facts emitted so far; each
  event of this stream opens exactly one, so this counts the events evaluated: state folded,
  stored, fact emitted), hence throughput. (``by-key``'s offsets counted them until the worker
  wrote batch records there.)

The run stops when the worker's group has no lag left on any topic it consumes, or at
``--max-minutes`` (reported as such). Then the obligations topic is read back and every
obligation's last status counted: the peak number of open obligations is checked, not assumed.

Usage: ``.venv/bin/python -m benchmarks.bench_load [--events 1000000] [--max-minutes 60]``;
writes ``benchmarks/results/load.json`` and ``docs/load.svg`` (RSS, throughput and obligations
over time; ``load-TAG.*`` with ``--tag TAG``). ``--summarise FILE`` only recomputes the summary
and the plot of a stored results file. Method and figures: docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from domain.departments import load_registry
from domain.events import SHANGHAI
from hzbus.config import PROJECT_ROOT, load_settings
from hzbus.lag import worker_topics
from hzbus.processes import spawn_hzbus
from hzbus.topics import event_topics, topic_name
from infra import manager
from producers.pipeline import RejectWriter, publish_file
from producers.publisher import KafkaPublisher

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = PROJECT_ROOT / "docs"
GIB = 1024**3
ENFORCEMENT = ("HZ-ZFJ", "WX-ZFJ", "NX-ZFJ", "DQ-ZFJ", "CX-ZFJ", "AJ-ZFJ", "KFQ-ZFJ", "TH-ZFJ")
BUSINESS = ("HZ-GTJ", "HZ-HBJ", "HZ-JSJ", "HZ-GHJ", "HZ-SLJ", "HZ-NYJ", "HZ-LYJ", "HZ-SJJ", "HZ-LW")


def synthetic_events(
    n: int, *, now: datetime, spread_hours: float = 24.0, seed: int = 5
) -> Iterator[dict[str, Any]]:
    """``n`` canonical-JSON events, each opening one obligation of its own key: even ``i`` a
    DeterminationRequested (request ``LD-RD-i``, determination_reply), odd ``i`` a complete
    CaseTransferred (case ``LD-AJ-i``, transfer_ack, no finding). Business times fall in the
    ``spread_hours`` before ``now``, in file order, recorded 1-120 s after they occurred (and
    never after ``now``)."""
    rnd = random.Random(seed)
    span = spread_hours * 3600.0
    for i in range(n):
        occurred = now - timedelta(seconds=span * (1 - i / max(n, 1)) + 121)
        recorded = occurred + timedelta(seconds=rnd.randint(1, 120))
        base = {
            "event_id": f"load-{seed}-{i}",
            "occurred_at": occurred.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "recorded_at": recorded.astimezone(SHANGHAI).isoformat(timespec="seconds"),
        }
        if i % 2 == 0:
            yield {
                "type": "DeterminationRequested",
                **base,
                "source_dept": ENFORCEMENT[i % len(ENFORCEMENT)],
                "request_id": f"LD-RD-{i:08d}",
                "case_id": f"LD-AJ-{i:08d}",
                "to_dept": BUSINESS[i % len(BUSINESS)],
                "question": "污染物排放是否超标",
            }
        else:
            yield {
                "type": "CaseTransferred",
                **base,
                "source_dept": BUSINESS[i % len(BUSINESS)],
                "case_id": f"LD-AJ-{i:08d}",
                "to_dept": ENFORCEMENT[i % len(ENFORCEMENT)],
                "materials": ["transfer_letter", "source_material", "evidence"],
                "leader_approved": True,
                "cc_coordination_office": True,
                "complaint_id": None,
            }


def write_events(path: Path, n: int, now: datetime, spread_hours: float) -> None:
    with path.open("wb") as fh:
        for obj in synthetic_events(n, now=now, spread_hours=spread_hours):
            fh.write(orjson.dumps(obj) + b"\n")


def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS of ``pid`` and its descendants, VmHWM of ``pid``) in bytes; (0, 0) once gone."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total = hwm = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, ()))
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:") and p == pid:
                hwm = int(line.split()[1]) * 1024
    return total, hwm


class Offsets:
    """Committed offsets of the worker's group and end offsets, through one idle consumer."""

    def __init__(self, bootstrap: str, group: str) -> None:
        from confluent_kafka import Consumer

        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self.partitions: dict[str, list[int]] = {}

    def _parts(self, topics: list[str]) -> list[Any]:
        from confluent_kafka import TopicPartition

        missing = [t for t in topics if t not in self.partitions]
        if missing:
            md = self.consumer.list_topics(timeout=10)
            for t in missing:
                if t in md.topics:
                    self.partitions[t] = sorted(md.topics[t].partitions)
        return [TopicPartition(t, p) for t in topics for p in self.partitions.get(t, ())]

    def committed(self, topics: list[str]) -> tuple[int, int]:
        """(messages committed by the group, messages in the topics) over ``topics``."""
        from confluent_kafka import TopicPartition

        done = end = 0
        for tp in self.consumer.committed(self._parts(topics), timeout=10):
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=10
            )
            done += (tp.offset if tp.offset >= 0 else low) - low
            end += high - low
        return done, end

    def end(self, topics: list[str]) -> int:
        total = 0
        for tp in self._parts(topics):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
            total += high - low
        return total

    def close(self) -> None:
        self.consumer.close()


def count_obligations(bootstrap: str, topic: str, expected: int) -> dict[str, int]:
    """Read the obligations topic back: each obligation's last status, and the peak number open
    (running count in the order read)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"load-count-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    status: dict[bytes, str] = {}
    open_now = peak = records = 0
    idle = time.monotonic()
    while time.monotonic() - idle < 10 or (records < expected and time.monotonic() - idle < 60):
        msgs = consumer.consume(10_000, 1.0)
        if not msgs:
            continue
        idle = time.monotonic()
        for m in msgs:
            if m.error():
                continue
            records += 1
            key, value = m.key() or b"", m.value() or b"{}"
            new = orjson.loads(value)["obligation"]["status"]
            old = status.get(key)
            status[key] = new
            open_now += (new == "open") - (old == "open")
            peak = max(peak, open_now)
    consumer.close()
    counts: dict[str, int] = {"records": records, "obligations": len(status), "peak_open": peak}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    return counts


def nice_max(value: float, parts: int = 4) -> float:
    """The smallest axis maximum >= ``value`` whose ``parts`` ticks are round numbers."""
    raw = max(value, 1e-9) / parts
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * magnitude >= raw)
    return step * parts


def svg_plot(samples: list[dict[str, Any]], title: str) -> str:
    """Three stacked line charts over minutes since the worker started (RSS in MiB with the
    1 GiB target; events/s evaluated and routed; obligation facts emitted, each an opening
    here), as a self-contained SVG."""
    w, left, right, top, gap, ph = 760, 80, 20, 50, 50, 150
    h = top + 3 * (ph + gap) + 10
    xs = [s["t_s"] / 60 for s in samples]
    xmax = nice_max(xs[-1] if xs else 1, 5)

    def chart(
        y0: int, series: list[tuple[str, str, list[float]]], ymax: float, label: str, hline: float | None
    ) -> str:
        out = [
            f'<rect x="{left}" y="{y0}" width="{w - left - right}" height="{ph}" fill="none" stroke="#999"/>'
        ]
        px = lambda x: left + (w - left - right) * x / xmax  # noqa: E731
        py = lambda y: y0 + ph - ph * min(y, ymax) / ymax  # noqa: E731
        for k in range(5):
            v = ymax * k / 4
            out.append(
                f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11">{v:,.0f}</text>'
            )
            out.append(
                f'<line x1="{left}" x2="{w - right}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>'
            )
        for k in range(6):
            v = xmax * k / 5
            out.append(
                f'<text x="{px(v):.1f}" y="{y0 + ph + 14}" text-anchor="middle" font-size="11">{v:g}</text>'
            )
        out.append(
            f'<text x="14" y="{y0 + ph / 2}" font-size="12" transform="rotate(-90 14 {y0 + ph / 2})" '
            f'text-anchor="middle">{label}</text>'
        )
        if hline is not None:
            out.append(
                f'<line x1="{left}" x2="{w - right}" y1="{py(hline):.1f}" y2="{py(hline):.1f}" '
                'stroke="#c00" stroke-dasharray="6,4"/>'
                f'<text x="{w - right - 4}" y="{py(hline) - 4:.1f}" text-anchor="end" font-size="11" '
                'fill="#c00">target 1 GiB</text>'
            )
        lx = left
        for name, color, ys in series:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<text x="{lx}" y="{y0 - 6}" font-size="11" fill="{color}">{name}</text>')
            lx += 7 * len(name) + 24
        return "\n".join(out)

    rss = [s["rss_bytes"] / 2**20 for s in samples]
    evaluated = [s["evaluated_eps"] for s in samples]
    routed = [s["routed_eps"] for s in samples]
    facts = [s["obligation_facts"] for s in samples]
    y2, y3 = top + ph + gap, top + 2 * (ph + gap)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
            chart(
                top, [("worker RSS (MiB)", "#1f77b4", rss)], nice_max(max([1100.0, *rss])), "RSS, MiB", 1024.0
            ),
            chart(
                y2,
                [
                    ("events evaluated/s (obligation facts)", "#2ca02c", evaluated),
                    ("events routed/s (event topics consumed)", "#ff7f0e", routed),
                ],
                nice_max(max([100.0, *evaluated, *routed])),
                "events/s",
                None,
            ),
            chart(
                y3,
                [("obligation facts emitted (here each one opens an obligation)", "#9467bd", facts)],
                nice_max(max([100.0, *facts])),
                "obligations",
                None,
            ),
            f'<text x="{(left + w - right) / 2}" y="{y3 + ph + 32}" text-anchor="middle" font-size="12">'
            "minutes since the worker started</text>",
            "</svg>",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--max-minutes", type=float, default=60.0, help="time bound of the worker's run")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--spread-hours", type=float, default=24.0, help="business times span this many hours"
    )
    parser.add_argument("--tag", default="", help="results file load[-TAG].json and plot docs/load[-TAG].svg")
    parser.add_argument("--keep", action="store_true", help="keep the topics and the worker's state")
    parser.add_argument(
        "--summarise", type=Path, metavar="JSON", help="only recompute the summary and plot of a results file"
    )
    args = parser.parse_args()
    suffix = f"-{args.tag}" if args.tag else ""
    if args.summarise is not None:
        stored = json.loads(args.summarise.read_text())
        finish(stored, args.summarise.resolve(), DOCS / f"load{suffix}.svg")
        return
    prefix = f"benchload{uuid.uuid4().hex[:8]}"
    base = load_settings()
    settings = load_settings(topic_prefix=prefix)
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    manager.ensure_topics(settings, prefix=prefix)
    work = Path(settings.state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"load-{args.events}.jsonl"
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    write_events(path, args.events, now, args.spread_hours)
    generate_s = time.perf_counter() - t0
    print(
        f"generated {args.events:,} events in {generate_s:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)",
        flush=True,
    )
    datadir = Path(settings.state_dir) / "worker" / prefix
    log_path = work / f"load{suffix}.worker.log"
    samples: list[dict[str, Any]] = []
    worker = None
    try:
        t0 = time.perf_counter()
        summary = publish_file(
            path,
            "jsonl",
            publisher=KafkaPublisher(settings, historical=True),
            registry=load_registry(),
            rejects=RejectWriter(work / "load.rejects.jsonl", str(path), console=io.StringIO()),
            publishing_dept=None,
            now=datetime.now(UTC),
            workers=2,
        )
        publish_s = time.perf_counter() - t0
        print(
            f"published {summary.published:,} ({summary.rejected} rejected) in {publish_s:.1f} s "
            f"({summary.published / publish_s:,.0f} events/s)",
            flush=True,
        )
        if summary.rejected or summary.published != args.events:
            raise SystemExit(f"the synthetic stream must publish whole: {summary}")
        offsets = Offsets(settings.kafka_bootstrap, f"{prefix}-worker")
        route_offsets = Offsets(settings.kafka_bootstrap, f"{prefix}-worker-route")  # the source topics
        sources, by_key = event_topics(prefix), [topic_name(prefix, "by-key")]
        all_topics, obligations = worker_topics(prefix), [topic_name(prefix, "obligations")]
        with log_path.open("wb") as log:
            worker = spawn_hzbus(
                "worker",
                "--name",
                "load",
                "--no-console",
                "--loglevel",
                "warn",
                env={"HZBUS_TOPIC_PREFIX": prefix},
                stdout=log,
                stderr=log,
            )
            started = time.monotonic()
            prev: tuple[float, int, int] | None = None
            outcome = "time bound"
            while time.monotonic() - started < args.max_minutes * 60:
                if worker.poll() is not None:
                    outcome = f"worker exited with {worker.returncode} (see {log_path})"
                    break
                rss, hwm = rss_bytes(worker.pid)
                now_t = time.monotonic() - started
                routed, sources_end = route_offsets.committed(sources)
                _batches, by_key_end = offsets.committed(by_key)
                done_all, end_all = offsets.committed([t for t in all_topics if t not in sources])
                lag_all = end_all - done_all + sources_end - routed
                facts = offsets.end(obligations)
                # by-key holds batch records (up to ~1,000 events each) since the batched worker,
                # so its offsets no longer count events; each event of this stream opens exactly
                # one obligation, so the obligation facts emitted do
                evaluated = facts
                if prev is None:
                    r_eps = e_eps = 0.0
                else:
                    dt = now_t - prev[0]
                    r_eps, e_eps = (routed - prev[1]) / dt, (evaluated - prev[2]) / dt
                prev = (now_t, routed, evaluated)
                samples.append(
                    {
                        "t_s": round(now_t, 1),
                        "rss_bytes": rss,
                        "hwm_bytes": hwm,
                        "routed": routed,
                        "evaluated": evaluated,
                        "by_key_end": by_key_end,
                        "obligation_facts": facts,
                        "lag": lag_all,
                        "routed_eps": round(r_eps, 1),
                        "evaluated_eps": round(e_eps, 1),
                    }
                )
                print(
                    f"{now_t:7.0f} s  RSS {rss / 2**20:7.0f} MiB  routed {routed:>9,}  "
                    f"evaluated {evaluated:>9,} ({e_eps:6.0f}/s)  "
                    f"obligation facts {facts:>9,}  lag {lag_all:,}",
                    flush=True,
                )
                if lag_all == 0 and evaluated >= args.events:
                    outcome = "caught up (lag 0)"
                    break
                time.sleep(max(0.0, args.interval - (time.monotonic() - started - now_t)))
            duration = time.monotonic() - started
            worker.terminate()
            worker.wait(60)
        offsets.close()
        route_offsets.close()
        counts = count_obligations(settings.kafka_bootstrap, obligations[0], samples[-1]["obligation_facts"])
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        if not args.keep:
            manager.delete_prefix(base, prefix)
            shutil.rmtree(datadir, ignore_errors=True)
    result = {
        "events": args.events,
        "event_types": {
            "DeterminationRequested": (args.events + 1) // 2,
            "CaseTransferred": args.events // 2,
        },
        "outcome": outcome,
        "duration_s": round(duration, 1),
        "max_minutes": args.max_minutes,
        "generate_s": round(generate_s, 1),
        "publish_s": round(publish_s, 1),
        "publish_eps": round(summary.published / publish_s),
        "obligations": counts,
        "interval_s": args.interval,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "samples": samples,
    }
    finish(result, RESULTS / f"load{suffix}.json", DOCS / f"load{suffix}.svg")


def throughput(samples: list[dict[str, Any]], events: int) -> dict[str, Any]:
    """Events/s from the samples: end to end (worker start to the last sample), and per phase:
    routing (event topics consumed) and evaluating (obligation facts emitted), each from the first
    sample where 1% of the events were done to the first where all were (or the last sample),
    with the min / median / max of the rates between consecutive samples of that phase."""
    last = samples[-1]
    out: dict[str, Any] = {"end_to_end": round(last["evaluated"] / max(last["t_s"], 1e-9), 1)}
    for phase, field in (("routing", "routed"), ("evaluating", "evaluated")):
        start = next((s for s in samples if s[field] >= events / 100), last)
        end = next((s for s in samples if s[field] >= events), last)
        rates = sorted(s[f"{field}_eps"] for s in samples if start["t_s"] < s["t_s"] <= end["t_s"])
        span = end["t_s"] - start["t_s"]
        out[phase] = {
            "from_s": start["t_s"],
            "to_s": end["t_s"],
            "mean": round((end[field] - start[field]) / span, 1) if span > 0 else 0.0,
            "min": rates[0] if rates else 0.0,
            "median": rates[len(rates) // 2] if rates else 0.0,
            "max": rates[-1] if rates else 0.0,
        }
    return out


def finish(result: dict[str, Any], out: Path, plot: Path) -> None:
    """Summary of a run's samples into ``result``; results JSON, plot and a line printed."""
    samples, events, counts = result["samples"], result["events"], result["obligations"]
    last = samples[-1]
    peak_rss = max(max(s["rss_bytes"] for s in samples), max(s["hwm_bytes"] for s in samples))
    summary = {
        "events_routed": last["routed"],
        "events_evaluated": last["evaluated"],
        "peak_open_obligations": counts["peak_open"],
        "target_open_obligations": 1_000_000,
        "peak_rss_bytes": peak_rss,
        "peak_rss_mib": round(peak_rss / 2**20),
        "final_rss_mib": round(last["rss_bytes"] / 2**20),
        "target_rss_bytes": GIB,
        "throughput_eps": throughput(samples, events),
    }
    result = {k: v for k, v in result.items() if k not in summary and k != "samples"}
    result = {**result, **summary, "samples": samples}
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    title = (
        f"hzbus worker, {events:,} events ({counts['peak_open']:,} open obligations at peak): "
        f"peak RSS {peak_rss / 2**20:,.0f} MiB"
    )
    plot.write_text(svg_plot(samples, title) + "\n")
    tp = summary["throughput_eps"]
    ev = tp["evaluating"]
    print(
        f"{events:,} events, {result['outcome']} after {result['duration_s'] / 60:.1f} min: "
        f"{last['evaluated']:,} evaluated; open obligations at peak {counts['peak_open']:,} "
        f"(target >= 1,000,000); peak RSS {peak_rss / 2**20:,.0f} MiB (target <= 1,024 MiB); "
        f"end to end {tp['end_to_end']:,.0f} events/s, routing {tp['routing']['mean']:,.0f}/s, "
        f"evaluating {ev['mean']:,.0f}/s (per {result['interval_s']:g} s: min {ev['min']:,.0f}, "
        f"median {ev['median']:,.0f}, max {ev['max']:,.0f}); results {out.relative_to(PROJECT_ROOT)}, "
        f"plot {plot.relative_to(PROJECT_ROOT)}"
    )


if __name__ == "__main__":
    main()
