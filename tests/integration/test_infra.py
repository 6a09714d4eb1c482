"""``infra.manager`` against the real local Kafka broker and ClickHouse server.

The services are shared with the rest of the suite: this module starts them if needed
(``ensure_up`` is idempotent) and never stops them. Topics live under a random prefix and are
deleted afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hzbus.config import Settings, load_settings
from hzbus.errors import UserError
from hzbus.topics import all_topics, event_families
from infra import manager, procs
from infra.kafka_local import admin_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live() -> Settings:
    s = load_settings()
    manager.ensure_up(s)
    return s


@pytest.fixture
def prefix(live: Settings) -> Iterator[str]:
    p = f"t_{uuid.uuid4().hex[:10]}"
    yield p
    manager.delete_topics(live, p)


def _admin(settings: Settings) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(admin_config(settings))


def _configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    from confluent_kafka.admin import ConfigResource, ResourceType

    admin = _admin(settings)  # keep the handle alive until the futures resolve
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names])
    return {res.name: {k: e.value for k, e in fut.result().items()} for res, fut in futures.items()}


def test_topics_created_with_partitions_and_log_append_time(live: Settings, prefix: str) -> None:
    result = manager.ensure_topics(live, prefix=prefix)
    specs = all_topics(prefix)
    assert sorted(result["created"]) == sorted(s.name for s in specs)

    md = _admin(live).list_topics(timeout=10)
    for spec in specs:
        assert spec.name in md.topics
        partitions = md.topics[spec.name].partitions
        assert len(partitions) == spec.partitions, spec.name
        assert all(len(p.replicas) == 1 for p in partitions.values())

    configs = _configs(live, [s.name for s in specs])
    event_names = {f"{prefix}.{f}" for f in event_families()}
    assert event_names, "the catalogue has event families"
    for spec in specs:
        cfg = configs[spec.name]
        if spec.name in event_names:
            assert cfg["message.timestamp.type"] == "LogAppendTime", spec.name
        for key, value in spec.config.items():
            assert cfg[key] == value, (spec.name, key)


def test_every_partition_of_new_topics_is_served_when_ensure_topics_returns(
    live: Settings, prefix: str
) -> None:
    """Publishers start right after (the demo, every test): a partition whose log the broker has
    not created yet made the idempotent producer lose its first batch there, acknowledged."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    manager.ensure_topics(live, prefix=prefix)
    admin = _admin(live)
    md = admin.list_topics(timeout=10)
    wanted = {
        TopicPartition(s.name, p): OffsetSpec.latest()
        for s in all_topics(prefix)
        for p in md.topics[s.name].partitions
    }
    assert len(wanted) >= 100
    for tp, fut in admin.list_offsets(wanted, request_timeout=10).items():
        assert fut.result().offset == 0, (tp.topic, tp.partition)  # answered at once, not an error


def test_ensure_topics_is_idempotent(live: Settings, prefix: str) -> None:
    first = manager.ensure_topics(live, prefix=prefix)
    second = manager.ensure_topics(live, prefix=prefix)
    assert first["created"]
    assert second["created"] == []
    assert second["fixed"] == []
    assert sorted(second["existing"]) == sorted(s.name for s in all_topics(prefix))


def test_broker_stamps_append_time(live: Settings, prefix: str) -> None:
    """A record's timestamp on an event topic is the broker's, not the one the sender typed."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer

    manager.ensure_topics(live, prefix=prefix)
    topic = f"{prefix}.{event_families()[0]}"
    typed_ms = 978_307_200_000  # 2001-01-01: a sender's claim
    producer = Producer({"bootstrap.servers": live.kafka_bootstrap})
    producer.produce(topic, key=b"k", value=b"v", timestamp=typed_ms)
    assert producer.flush(15) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": live.kafka_bootstrap,
            "group.id": f"{prefix}-check",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        msg = None
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None
        ts_type, ts = msg.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME
        assert ts > typed_ms
    finally:
        consumer.close()


def test_existing_topic_config_is_corrected(live: Settings, prefix: str) -> None:
    from confluent_kafka.admin import NewTopic

    spec = next(s for s in all_topics(prefix) if s.config.get("message.timestamp.type"))
    admin = _admin(live)
    futures = admin.create_topics(
        [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=1,
                config={"message.timestamp.type": "CreateTime"},
            )
        ]
    )
    futures[spec.name].result()

    result = manager.ensure_topics(live, prefix=prefix)
    assert spec.name in result["fixed"]
    assert spec.name not in result["created"]
    assert _configs(live, [spec.name])[spec.name]["message.timestamp.type"] == "LogAppendTime"


def test_wrong_partition_count_is_a_user_error(live: Settings, prefix: str) -> None:
    from confluent_kafka.admin import NewTopic

    spec = next(s for s in all_topics(prefix) if s.partitions > 1)
    admin = _admin(live)
    admin.create_topics(
        [NewTopic(spec.name, num_partitions=1, replication_factor=1, config=dict(spec.config))]
    )[spec.name].result()
    with pytest.raises(UserError, match="partition"):
        manager.ensure_topics(live, prefix=prefix)


def test_second_ensure_up_starts_nothing(live: Settings) -> None:
    before = manager.status(live)
    manager.ensure_up(live)
    after = manager.status(live)
    assert after["kafka"]["pid"] == before["kafka"]["pid"]
    assert after["clickhouse"]["pid"] == before["clickhouse"]["pid"]
    assert after["kafka"]["state"] == "running"
    assert after["clickhouse"]["state"] == "running"


def test_services_started_from_another_checkout_are_used_and_named_once(
    live: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A second checkout (its own state dir, the same ports) uses the running services and says,
    once, that their configuration is not its own (its analyst user would not reach them)."""
    assert manager.foreign_services(live) == []  # the suite's services: this checkout's own
    pids = {name: manager.status(live)[name]["pid"] for name in ("kafka", "clickhouse")}
    other = replace(live, state_dir=tmp_path / "other-checkout")
    capfd.readouterr()
    manager.ensure_up(other)
    manager.ensure_up(other)
    err = capfd.readouterr().err
    assert err.count("were not started from this checkout") == 1, err
    assert f"Kafka on {live.kafka_bootstrap} and ClickHouse on 127.0.0.1:{live.clickhouse_port}" in err
    assert str(other.state_dir) in err
    assert {name: manager.status(live)[name]["pid"] for name in ("kafka", "clickhouse")} == pids


def test_status_reports_both_running(live: Settings) -> None:
    st = manager.status(live)
    kafka, ch = st["kafka"], st["clickhouse"]
    assert kafka["state"] == "running"
    assert kafka["bootstrap"] == live.kafka_bootstrap
    assert isinstance(kafka["topics"], int)
    assert ch["state"] == "running"
    assert ch["port"] == live.clickhouse_port
    assert ch["version"]
    if kafka["managed"]:
        assert isinstance(kafka["pid"], int)
        assert kafka["version"]
    if ch["managed"]:
        assert isinstance(ch["pid"], int)


def test_delete_topics_refuses_the_bus_prefix(live: Settings) -> None:
    with pytest.raises(UserError):
        manager.delete_topics(live, live.topic_prefix)


@pytest.mark.parametrize("tied", [True, False])
def test_a_tied_service_dies_with_the_process_that_started_it(tmp_path: Path, tied: bool) -> None:
    """Throw-away services (``services_die_with_parent``) go when an interrupted run dies;
    the usual ones outlive ``infra up``."""
    pidfile = tmp_path / "service.pid"
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from infra import procs; "
            "procs.spawn(['sleep', '300'], cwd=Path('.'), output=Path(sys.argv[1]), "
            "pidfile=Path(sys.argv[2]), tied=sys.argv[3] == '1'); time.sleep(300)",
            str(tmp_path / "service.log"),
            str(pidfile),
            "1" if tied else "0",
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pidfile.read_text().split()[0])
    starter.send_signal(signal.SIGKILL)
    starter.wait(10)
    deadline = time.monotonic() + 10
    while procs.is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert procs.is_alive(pid) is not tied
    finally:
        if procs.is_alive(pid):
            os.kill(pid, signal.SIGKILL)
