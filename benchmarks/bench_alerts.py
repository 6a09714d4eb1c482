"""Alert latency after the due time (issue 3): p50 / p99 / max over a burst of obligations.

N determination requests are published live, all received on the same day, so all fall due at
the same instant (23:59:59 of their 10th working day), which is how deadlines really arrive: a
burst at midnight. The worker runs with ``--clock-offset`` so that its clock reaches that instant
a few seconds after start. The latency of an alert is the broker append time of its record on the
alerts topic (shifted by the same offset) minus the instant the obligation became missed (due +
1 s). Usage: ``.venv/bin/python -m benchmarks.bench_alerts [--requests 1000]``; writes
``benchmarks/results/alerts-<N>.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer

from domain.departments import load_registry
from hzbus.config import load_settings
from hzbus.lag import wait_for_worker
from hzbus.processes import spawn_hzbus
from infra import manager
from producers.pipeline import RejectWriter, publish_records
from producers.publisher import KafkaPublisher
from producers.readers import read_records

RESULTS = Path(__file__).resolve().parent / "results"
DUE = datetime.fromisoformat("2026-10-26T23:59:59+08:00")  # 10 WD after Mon 2026-10-12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--lead", type=float, default=45.0, help="seconds between worker start and the due time"
    )
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    prefix = f"benchalert{tag}"
    base = load_settings()
    settings = load_settings(topic_prefix=prefix)
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    manager.ensure_topics(settings, prefix=prefix)
    work = Path(settings.state_dir) / "bench"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"alerts-{args.requests}.jsonl"
    with path.open("wb") as fh:
        for i in range(args.requests):
            fh.write(
                orjson.dumps(
                    {
                        "type": "DeterminationRequested",
                        "event_id": f"lat-{i}",
                        "source_dept": "HZ-ZFJ",
                        "occurred_at": "2026-10-12T10:00:00+08:00",
                        "recorded_at": "2026-10-12T10:01:00+08:00",
                        "request_id": f"RD-LAT-{i:05d}",
                        "case_id": f"C-LAT-{i:05d}",
                        "to_dept": "HZ-GTJ",
                        "question": None,
                    }
                )
                + b"\n"
            )
    offset = (DUE - timedelta(seconds=args.lead) - datetime.now(UTC)).total_seconds()
    worker = spawn_hzbus(
        "worker",
        "--name",
        "bench",
        "--no-console",
        "--loglevel",
        "error",
        "--clock-offset",
        str(offset),
        env={"HZBUS_TOPIC_PREFIX": prefix},
    )
    try:
        publish_records(
            read_records(path),
            publisher=KafkaPublisher(settings),
            registry=load_registry(),
            rejects=RejectWriter(work / "alerts.rejects.jsonl", str(path), console=io.StringIO()),
            publishing_dept=None,
            now=datetime.now(UTC),
        )
        wait_for_worker(settings, prefix, quiet=2.0, alive=lambda: worker.poll() is None)
        missed_at = DUE + timedelta(seconds=1)
        consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": f"{prefix}.bench",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([f"{prefix}.alerts"])
        latencies: list[float] = []
        deadline = time.monotonic() + args.lead + 120
        while len(latencies) < args.requests and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            alert = orjson.loads(msg.value())
            if alert["event"] != "raised" or alert["kind"] != "missed":
                continue
            _, ts_ms = msg.timestamp()
            worker_time = datetime.fromtimestamp(ts_ms / 1000, tz=UTC) + timedelta(seconds=offset)
            latencies.append((worker_time - missed_at).total_seconds())
        consumer.close()
    finally:
        worker.terminate()
        worker.wait(30)
        manager.delete_prefix(base, prefix)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    result = {
        "requests": args.requests,
        "alerts": len(latencies),
        "min_s": latencies[0] if latencies else None,
        "p50_s": pct(0.50),
        "p99_s": pct(0.99),
        "max_s": latencies[-1] if latencies else None,
        "target_p99_s": 1.0,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"alerts-{args.requests}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{len(latencies)} of {args.requests} missed alerts; latency after the due time: "
        f"min {result['min_s']:.3f} s, p50 {result['p50_s']:.3f} s, p99 {result['p99_s']:.3f} s, "
        f"max {result['max_s']:.3f} s (target p99 <= 1 s)"
    )


if __name__ == "__main__":
    main()
