"""Shared fixtures.

Integration tests share one Kafka broker and one ClickHouse server per session (started by
``infra`` if they are not running) and isolate themselves by topic prefix and database
name. A test that needs them fails, never skips, when they cannot be started.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hzbus.config import Settings, load_settings
from hzbus.errors import UserError


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def services(settings: Settings) -> Settings:
    """The real Kafka broker and ClickHouse server, started once per session."""
    from infra import manager

    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    return settings


@dataclass
class Bus:
    """An isolated corner of the shared services: own topics, own database."""

    settings: Settings
    prefix: str
    database: str

    def clickhouse(self) -> Any:
        from sinks.clickhouse.sink import clickhouse_client

        return clickhouse_client(self.settings)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        client = self.clickhouse()
        try:
            rows: list[tuple[Any, ...]] = client.execute(sql.format(db=self.database))
            return rows
        finally:
            client.disconnect()


@pytest.fixture
def bus(services: Settings) -> Iterator[Bus]:
    from infra import manager

    tag = uuid.uuid4().hex[:10]
    prefix, database = f"t{tag}", f"t_{tag}"
    settings = load_settings(topic_prefix=prefix, clickhouse_database=database)
    manager.ensure_topics(settings, prefix=prefix)
    b = Bus(settings, prefix, database)
    yield b
    b.query("DROP DATABASE IF EXISTS {db}")
    b.query("DROP DATABASE IF EXISTS {db}_restricted")  # its dead letters (docs/security.md)
    try:
        manager.delete_prefix(services, prefix)
    except UserError as exc:  # leftovers of a random prefix are harmless; say so
        warnings.warn(f"cleaning up test prefix {prefix}: {exc}", stacklevel=1)
