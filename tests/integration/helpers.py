"""Helpers for integration tests: publish files, run the sink, read ClickHouse."""

from __future__ import annotations

import io
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from domain.departments import load_registry
from domain.obligations import evaluate_events
from hzbus.calendar_source import load_calendar
from hzbus.processes import spawn_hzbus
from producers.pipeline import PublishSummary, RejectWriter, publish_records
from producers.publisher import KafkaPublisher
from producers.readers import read_records
from schemas import codec
from sinks.clickhouse.sink import EventSink, SinkStats
from tests.conftest import Bus

ROOT = Path(__file__).resolve().parents[2]


def publish_file(
    bus: Bus, path: Path, rejects: Path | None = None, historical: bool = False
) -> PublishSummary:
    writer = RejectWriter(rejects or path.with_suffix(".rejects.jsonl"), str(path), console=io.StringIO())
    return publish_records(
        read_records(path),
        publisher=KafkaPublisher(bus.settings, prefix=bus.prefix, historical=historical),
        registry=load_registry(),
        rejects=writer,
        publishing_dept=None,
        now=datetime.now(UTC),
    )


def run_sink(bus: Bus, idle: float = 3.0) -> SinkStats:
    sink = EventSink(bus.settings, prefix=bus.prefix, database=bus.database)
    sink.prepare()
    return sink.run(stop_when_idle=idle)


def _env(bus: Bus) -> dict[str, str]:
    return {
        "HZBUS_TOPIC_PREFIX": bus.prefix,
        "HZBUS_CLICKHOUSE_DATABASE": bus.database,
        "HZBUS_KAFKA_BOOTSTRAP": bus.settings.kafka_bootstrap,
        "HZBUS_CLICKHOUSE_PORT": str(bus.settings.clickhouse_port),
        "HZBUS_STATE_DIR": str(bus.settings.state_dir),
    }


def sink_process(bus: Bus, *extra: str, batch_size: int | None = None) -> subprocess.Popen[bytes]:
    env = _env(bus)
    if batch_size:
        env["HZBUS_SINK_BATCH_SIZE"] = str(batch_size)
        env["HZBUS_SINK_BATCH_SECONDS"] = "0.05"
    return spawn_hzbus(
        "sink", "clickhouse", *extra, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def stored_event_ids(bus: Bus) -> set[str]:
    return {r[0] for r in bus.query("SELECT event_id FROM {db}.events FINAL")}


def distinct_count(bus: Bus) -> int:
    return int(bus.query("SELECT count() FROM {db}.events FINAL")[0][0])


def worker_process(
    bus: Bus, name: str = "w1", *extra: str, output: Path | None = None
) -> subprocess.Popen[bytes]:
    """``hzbus worker`` for the test's prefix; alerts printed to ``output`` (or discarded)."""
    out = output.open("ab") if output is not None else subprocess.DEVNULL
    return spawn_hzbus("worker", "--name", name, "--loglevel", "error", *extra, env=_env(bus), stdout=out)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def stored_obligations(bus: Bus) -> dict[str, tuple[object, ...]]:
    """obligation id → (status, due_at, fulfilled_at, responsible_dept), as stored in ClickHouse."""
    rows = bus.query(
        "SELECT obligation_id, status, toUnixTimestamp(due_at), "
        "if(isNull(fulfilled_at), 0, toUnixTimestamp(assumeNotNull(fulfilled_at))), responsible_dept "
        "FROM {db}.obligations FINAL"
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def replayed(path: Path, as_of: datetime) -> dict[str, tuple[object, ...]]:
    """What ``hzbus replay`` computes for the same file (the same engine, offline), in the
    shape of :func:`stored_obligations`."""
    events = [codec.from_canonical(r.data) for r in read_records(path) if r.data is not None]
    evaluation = evaluate_events(events, as_of, load_calendar())
    return {
        o.obligation_id: (
            o.status,
            int(o.due_at.timestamp()),
            int(o.fulfilled_at.timestamp()) if o.fulfilled_at else 0,
            o.responsible_dept,
        )
        for o in evaluation.obligations
    }
