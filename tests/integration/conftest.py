"""Fixtures of the integration tests beyond the shared services (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hzbus.config import Settings
from tests.integration.private_services import PrivateServices, private_services


@pytest.fixture(scope="session")
def private(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServices]:
    """A Kafka broker and a ClickHouse server of the fault tests' own, which they stop and
    restart: one for the session, started on first use, stopped at the end."""
    with private_services(services, tmp_path_factory.mktemp("private-services")) as started:
        yield started
