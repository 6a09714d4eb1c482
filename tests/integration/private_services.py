"""A private Kafka broker and ClickHouse server for the fault tests, which stop and restart them.

The shared services (``.state/``, ports 19092/19000) serve every other test and engineer: they
are never stopped. The fault tests get their own pair, started by the same ``infra`` code from
a ``Settings`` of their own: a state directory under pytest's tmp dir and free ports. The
broker reuses the jars already fetched for the shared broker (``<state>/kafka/libs`` is a
symlink to the shared ``libs/``): nothing is downloaded again.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from hzbus.config import Settings, load_settings
from infra import clickhouse_local, kafka_local, manager, procs
from tests.conftest import Bus


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


@dataclass
class PrivateServices:
    """One broker + one server of our own: stop, start, and isolated corners (``Bus``) on them."""

    settings: Settings

    def kafka_pid(self) -> int | None:
        return kafka_local.running_pid(self.settings)

    def clickhouse_pid(self) -> int | None:
        return clickhouse_local.running_pid(self.settings)

    def stop_kafka(self) -> None:
        pid = self.kafka_pid()
        assert pid is not None, "the private broker is not running"
        procs.stop(pid, manager.KAFKA_STOP_TIMEOUT_S)
        assert not kafka_local.answers(self.settings, timeout=2.0), "the private broker still answers"

    def stop_clickhouse(self) -> None:
        pid = self.clickhouse_pid()
        assert pid is not None, "the private ClickHouse is not running"
        procs.stop(pid, manager.CLICKHOUSE_STOP_TIMEOUT_S)
        assert clickhouse_local.version(self.settings, timeout=2.0) is None, "ClickHouse still answers"

    def start(self) -> float:
        """Start whatever is stopped; seconds until both answer (``ensure_up`` waits, 60 s budget each)."""
        started = time.monotonic()
        manager.ensure_up(self.settings)
        return time.monotonic() - started

    @contextmanager
    def bus(self) -> Iterator[Bus]:
        """Own topic prefix and database on the private services (started again if a test left
        one stopped), dropped afterwards."""
        self.start()
        tag = uuid.uuid4().hex[:10]
        prefix, database = f"f{tag}", f"f_{tag}"
        settings = load_settings(
            topic_prefix=prefix,
            clickhouse_database=database,
            kafka_bootstrap=self.settings.kafka_bootstrap,
            clickhouse_port=self.settings.clickhouse_port,
            clickhouse_http_port=self.settings.clickhouse_http_port,
            state_dir=self.settings.state_dir,
        )
        manager.ensure_topics(settings, prefix=prefix)
        b = Bus(settings, prefix, database)
        try:
            yield b
        finally:  # the services are ours: leftovers go with them, a failed cleanup is no error
            try:
                b.query("DROP DATABASE IF EXISTS {db}")
                b.query("DROP DATABASE IF EXISTS {db}_restricted")
                manager.delete_prefix(self.settings, prefix, wait_groups=10.0)
            except Exception as exc:
                print(f"cleaning up {prefix} on the private services: {exc}")


@contextmanager
def private_services(shared: Settings, root: Path) -> Iterator[PrivateServices]:
    """Start a private broker and ClickHouse under ``root``; stop them (only them) afterwards."""
    kafka_port, controller_port, scram_port, ch_port, ch_http_port = free_ports(5)
    settings = load_settings(
        state_dir=root,
        kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        kafka_controller_port=controller_port,
        kafka_scram_port=scram_port,
        clickhouse_port=ch_port,
        clickhouse_http_port=ch_http_port,
        services_die_with_parent=True,  # an interrupted test run leaves no broker behind
    )
    shared_libs = kafka_local.paths(shared).libs
    assert kafka_local.jars_ready(shared), f"no Kafka jars in {shared_libs} (run `hzbus infra install`)"
    private_libs = kafka_local.paths(settings).libs
    private_libs.parent.mkdir(parents=True, exist_ok=True)
    private_libs.symlink_to(shared_libs, target_is_directory=True)
    services = PrivateServices(settings)
    try:
        services.start()
        yield services
    finally:
        manager.down(settings)
