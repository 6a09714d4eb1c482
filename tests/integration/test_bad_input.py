"""Bad input on the real (shared) broker and ClickHouse server: every bad record ends as a named
reject (the publisher) or a dead letter with its reason (the sink; the worker skips it with the
same reason), and the processes keep running: the good events published after the bad ones land.
docs/reliability.md, "Bad input"."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from domain.events import SHANGHAI
from hzbus.config import PROJECT_ROOT
from hzbus.lag import wait_for_worker
from producers.simulate import write_simulation
from schemas import codec
from schemas.samples import sample_event
from tests.conftest import Bus
from tests.integration.faults import Crashing, Robot, ids_of, wait_until
from tests.integration.helpers import _env, publish_file, stored_event_ids

pytestmark = pytest.mark.integration


def _zigzag(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z >= 0x80:
        out.append(z & 0x7F | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def bad_records(now: datetime) -> list[tuple[str, bytes, str]]:
    """(topic family, value, the start of the reason it must be kept with)."""
    recent, ahead = now - timedelta(days=1), now + timedelta(days=2)
    epoch = datetime(1970, 1, 1, 8, tzinfo=SHANGHAI)

    def valid(
        event_type: str, n: int, *, at: datetime = recent, when: datetime = recent, **fields: str
    ) -> bytes:
        event = sample_event(event_type, n)
        source = fields.pop("source_dept", event.source_dept)
        event = replace(event, source_dept=source, occurred_at=at, recorded_at=when)
        return codec.encode(replace(event, fields={**event.fields, **fields}))

    case = valid("ViolationDiscovered", 1)
    times_at = _times_at(case)
    return [
        ("cases", valid("ViolationDiscovered", 2, domain="城" * 40_000), "oversized: 120,"),  # decodable
        ("cases", b"\x00" * 200_000, "oversized: 200,000 bytes"),  # undecodable
        ("cases", valid("ApprovalIssued", 3), "wrong topic: ApprovalIssued belongs on the approvals topic"),
        # the fingerprint of another type: StopOrdered's header on a ViolationDiscovered body
        ("cases", valid("StopOrdered", 4)[:10] + case[10:], "does not decode: "),
        ("cases", valid("StopOrdered", 5, source_dept="HZ-NOPE"), "unknown department: 'HZ-NOPE'"),
        ("cases", valid("CaseTransferred", 6, to_dept="XX-ZFJ"), "unknown department: 'XX-ZFJ'"),
        # a department clock two days ahead of the broker's; one reset to 1970
        ("cases", valid("StopOrdered", 7, at=ahead, when=ahead), "clock skew: occurred_at"),
        ("cases", valid("StopOrdered", 8, at=epoch), "clock skew: occurred_at 1970-01-01"),
        # a corrupt time, year 146 million: the sink reads times as numbers, a skew for it
        ("cases", case[:times_at] + _zigzag(2**62) + case[times_at + 6 :], "clock skew: occurred_at 461168"),
    ]


def _times_at(data: bytes) -> int:
    """Where occurred_at starts: after the 10-byte header and two strings (short ones)."""
    pos = 10
    for _ in range(2):
        pos += 1 + (data[pos] >> 1)
    return pos


def test_bad_records_end_as_dead_letters_with_their_reason_and_the_consumers_go_on(
    bus: Bus, tmp_path: Path
) -> None:
    good = tmp_path / "good.jsonl"
    write_simulation(good, days=10, seed=11)
    lines = good.read_bytes().splitlines(keepends=True)
    before, after = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    before.write_bytes(b"".join(lines[: len(lines) // 2]))
    after.write_bytes(b"".join(lines[len(lines) // 2 :]))
    with Robot() as robot:
        env = {**_env(bus), "HZBUS_SINK_BATCH_SECONDS": "0.2"}
        worker = Crashing(
            "worker",
            ("worker", "--loglevel", "warn", "--webhook", robot.url),
            env,
            tmp_path,
            stdout=tmp_path / "console.txt",
        ).start()
        sink = Crashing("sink", ("sink", "clickhouse"), env, tmp_path).start()
        try:
            publish_file(bus, before)
            bad = bad_records(datetime.now(UTC))
            producer = Producer({"bootstrap.servers": bus.settings.kafka_bootstrap})
            for family, value, _reason in bad:
                producer.produce(f"{bus.prefix}.{family}", value, b"bad-key")
            assert producer.flush(30) == 0
            publish_file(bus, after)  # good events after the bad ones still land
            published = ids_of(good)
            wait_until(
                lambda: sink.alive() and worker.alive() and stored_ids(bus) == published,
                90,
                "the good events published around the bad ones stored",
            )
            wait_for_worker(bus.settings, bus.prefix, quiet=3.0, timeout=120, alive=worker.alive)
            dead = bus.query(
                "SELECT kafka_topic, kafka_partition, kafka_offset, reason "
                "FROM {db}_restricted.dead_letters FINAL"
            )
            assert len(dead) == len(bad), dead
            reasons = [reason for *_where, reason in dead]
            for _family, _value, expected in bad:
                assert any(r.startswith(expected) for r in reasons), (expected, reasons)
            assert sink.alive() and worker.alive()
            # the worker skipped each one too, saying why (the checks of schemas/admission.py)
            log = worker.log.read_text(encoding="utf-8")
            for topic, partition, offset, reason in dead:
                assert f"skipping {topic}[{partition}]@{offset}: " in log, reason
        finally:
            worker.stop()
            sink.stop()


def stored_ids(bus: Bus) -> set[str]:
    try:
        return stored_event_ids(bus)
    except Exception:  # the sink has not created its tables yet
        return set()


def stored_after_sink(bus: Bus) -> set[str]:
    from tests.integration.helpers import run_sink

    run_sink(bus, idle=2.0)
    return stored_event_ids(bus)


def test_the_publisher_rejects_bad_lines_naming_each_and_publishes_the_rest(bus: Bus, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    write_simulation(good, days=3, seed=12)
    records = [orjson.loads(line) for line in good.read_bytes().splitlines()]
    first = next(r for r in records if r["type"] == "ViolationDiscovered")
    now = datetime.now(UTC)
    bad = [
        {**first, "event_id": "big-1", "domain": "城" * 30_000},  # 90 KB of Avro
        {**first, "event_id": "dept-1", "source_dept": "HZ-NOPE"},
        {**first, "event_id": "future-1", "recorded_at": (now + timedelta(days=1)).isoformat()},
        {**first, "event_id": "reset-1", "occurred_at": "1970-01-01T08:00:00+08:00"},
        {**first, "event_id": "wrong-1", "type": "ApprovalIssued"},  # a case's fields under another schema
    ]
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in [*records, *bad]))
    done = subprocess.run(
        [sys.executable, "-m", "hzbus.cli", "publish", str(path), "--each-dept", "--no-progress"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **_env(bus)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    kept = tmp_path / "export.jsonl.rejects.jsonl"
    rejected = [orjson.loads(line) for line in kept.read_bytes().splitlines()]
    assert [r["line"] for r in rejected] == list(range(len(records) + 1, len(records) + len(bad) + 1))
    for r in rejected:
        assert f"{path}:{r['line']}: rejected: " in done.stderr
    reasons = [r["reason"] for r in rejected]
    assert "oversized" in reasons[0] and "HZ-NOPE" in reasons[1]
    assert "in the future" in reasons[2] and "before 2000-01-01" in reasons[3]
    assert "ApprovalIssued" in reasons[4]
    assert f"{len(records)} published, {len(bad)} rejected" in done.stderr
    assert stored_after_sink(bus) == ids_of(good)
