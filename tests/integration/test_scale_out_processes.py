"""``hzbus publish`` with its worker pool and ``hzbus sink clickhouse --processes 2``: the
scaled-out paths store exactly what the single-process ones store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from hzbus.processes import spawn_hzbus
from producers.simulate import write_simulation
from tests.conftest import Bus
from tests.integration.helpers import _env, distinct_count, sink_process, stored_event_ids

pytestmark = pytest.mark.integration


def test_a_pooled_publish_and_two_sink_processes_store_every_event_once(bus: Bus, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_simulation(path, days=30, seed=5, scale=1.5)
    lines = path.read_bytes().splitlines()
    bad = tmp_path / "with-bad-lines.jsonl"
    # two bad lines among the good ones: the pool must name them by their line in the file
    mixed = [*lines[:1500], b"{not json", *lines[1500:3000], b'{"type": "Nope"}', *lines[3000:]]
    bad.write_bytes(b"\n".join(mixed))
    published = spawn_hzbus(
        "publish", str(bad), "--each-dept", "--workers", "2", "--no-progress",
        env=_env(bus), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = published.communicate(timeout=300)
    assert published.returncode == 1, out.decode()  # rejects make the exit status 1
    assert f"{bad}:1501: rejected: malformed JSON" in out.decode()
    assert f"{bad}:3002: rejected:" in out.decode()
    rejects = [orjson.loads(x) for x in bad.with_name(bad.name + ".rejects.jsonl").read_bytes().splitlines()]
    assert [r["line"] for r in rejects] == [1501, 3002]

    sink = sink_process(bus, "--processes", "2", "--stop-when-idle", "5")
    out, _ = sink.communicate(timeout=300)
    assert sink.returncode == 0, out.decode()
    assert distinct_count(bus) == len(lines)
    assert stored_event_ids(bus) == {orjson.loads(x)["event_id"] for x in lines}
    # the same order per key as the file: each case's last stored event is the file's last for that case
    last_in_file: dict[str, str] = {}
    for x in lines:
        obj = orjson.loads(x)
        if obj["type"] in ("CaseTransferred", "TransferAcknowledged") and "case_id" in obj:
            last_in_file[obj["case_id"]] = obj["event_id"]
    stored = dict(
        bus.query(
            "SELECT ref_id, argMax(event_id, tuple(kafka_partition, kafka_offset)) FROM {db}.events FINAL "
            "WHERE type IN ('CaseTransferred', 'TransferAcknowledged') GROUP BY ref_id"
        )
    )
    assert stored == last_in_file


def test_a_record_the_broker_refuses_is_a_reject_with_its_line(bus: Bus, tmp_path: Path) -> None:
    """Only failed deliveries are reported by librdkafka (a callback per record would cost
    more than the produce): a refusal must still reach the reject file, named by line."""
    import random
    import string
    import time

    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    topic = f"{bus.prefix}.cases"
    admin = AdminClient({"bootstrap.servers": bus.settings.kafka_bootstrap})
    entry = ConfigEntry("max.message.bytes", "20000", incremental_operation=AlterConfigOpType.SET)
    for future in admin.incremental_alter_configs(
        [ConfigResource("topic", topic, incremental_configs=[entry])]
    ).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the broker applies a topic config change asynchronously
        res = ConfigResource("topic", topic)
        if admin.describe_configs([res])[res].result(30)["max.message.bytes"].value == "20000":
            break
        time.sleep(0.2)
    time.sleep(1.0)
    path = tmp_path / "events.jsonl"
    write_simulation(path, days=3, seed=2)
    lines = path.read_bytes().splitlines()
    line = next(i for i, x in enumerate(lines) if orjson.loads(x)["type"] == "ViolationDiscovered")
    huge = orjson.loads(lines[line])
    huge["matter_code"] = "".join(random.Random(1).choices(string.ascii_letters, k=40000))  # incompressible
    lines[line] = orjson.dumps(huge)
    path.write_bytes(b"\n".join(lines) + b"\n")
    published = spawn_hzbus(
        "publish", str(path), "--each-dept", "--no-progress",
        env=_env(bus), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = published.communicate(timeout=300)
    assert published.returncode == 1, out.decode()
    text = out.decode()
    assert f"{path}:{line + 1}: rejected: not delivered: Broker: Message size too large" in text
    # the broker refuses a whole record batch: records batched with the huge one fail too, and
    # each of them is kept as well (nothing lost; re-publishing the rejects delivers them)
    kept = [orjson.loads(x) for x in path.with_name(path.name + ".rejects.jsonl").read_bytes().splitlines()]
    assert (line + 1, huge["event_id"]) in [(k["line"], k["record"]["event_id"]) for k in kept]
    assert {k["reason"] for k in kept} == {"not delivered: Broker: Message size too large"}
    assert f"{len(lines)} records read, {len(lines) - len(kept)} published, {len(kept)} rejected" in text
