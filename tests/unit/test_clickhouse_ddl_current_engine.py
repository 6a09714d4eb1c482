"""The DDL migrations and the analysts' queries on a current ClickHouse engine (chdb, in process).

The same files run against the Debian ClickHouse 18.16 server in the integration tests; this
proves the other side of the promise: users on ClickHouse 2x.x can run them unchanged.
"""

from __future__ import annotations

import pytest

from sinks.clickhouse.migrate import load_migrations
from sinks.clickhouse.queries import load_query, query_names
from sinks.clickhouse.rows import EVENT_COLUMNS

chdb_session = pytest.importorskip("chdb.session")


class ChdbClient:
    """The slice of clickhouse-driver's client that ``migrate`` uses, over chdb."""

    def __init__(self) -> None:
        self.session = chdb_session.Session()

    def execute(self, sql: str, rows: list[tuple[object, ...]] | None = None) -> list[tuple[object, ...]]:
        if rows is not None:
            values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
            sql = f"{sql} {values}"
        text = str(self.session.query(sql, "TabSeparated"))
        return [tuple(line.split("\t")) for line in text.splitlines() if line]


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if hasattr(value, "strftime"):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S") + "'"  # type: ignore[attr-defined]
    return str(value)


@pytest.fixture(scope="module")
def current() -> ChdbClient:
    from sinks.clickhouse.migrate import migrate

    client = ChdbClient()
    applied = migrate(client, "hz_current")
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    row = (
        "'e1', 'ApprovalIssued', 'HZ-SJJ', '2026-10-09 09:30:00', '2026-10-09 09:31:00', "
        "'2026-10-09 09:31:01', 'A-1', '91330502MA2B3C4D5E', '{}', 'hzbus.approvals', 0"
    )
    client.execute(
        f"INSERT INTO hz_current.events ({', '.join(EVENT_COLUMNS)}) VALUES "
        f"({row}, 1, '2026-10-09 09:31:02', 5), ({row}, 2, '2026-10-09 09:40:00', 4)"
    )
    return client


def test_every_migration_applies_on_a_current_engine_and_is_recorded(current: ChdbClient) -> None:
    from sinks.clickhouse.migrate import migrate

    assert migrate(current, "hz_current") == []  # a second run applies nothing
    recorded = current.execute("SELECT version FROM hz_current.schema_migrations FINAL ORDER BY version")
    assert [int(r[0]) for r in recorded] == [m.version for m in load_migrations()]


@pytest.mark.parametrize("name", query_names())
def test_each_example_query_runs_on_a_current_engine(current: ChdbClient, name: str) -> None:
    current.execute(load_query(name, "hz_current"))


def test_a_redelivered_event_is_one_row_on_a_current_engine(current: ChdbClient) -> None:
    rows = current.execute(load_query("events_by_type", "hz_current"))
    assert rows == [("ApprovalIssued", "1", "1")]
