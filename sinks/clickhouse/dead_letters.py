"""Dead letters in ClickHouse, kept where analysts cannot read them [信息资源共享机制 五].

A dead letter keeps the original bytes of a record that could not be used — a personal ID
number in it is in clear. The read-only analyst user may open the bus's database (``<db>``:
pseudonymised ids only), never ``<db>_restricted``, where ``dead_letters`` lives (migration 0005;
ClickHouse 18.16 restricts users by database, not by table). docs/security.md.

The table mirrors the ``<prefix>.deadletter`` topic: the sink stores its own dead letters as it
writes them, and everybody else's (the gate's: records refused in the secured mode) when it reads
them back from the topic, keyed by the refused record's own topic, partition and offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hzbus import deadletters
from sinks.clickhouse.migrate import check_database_name
from sinks.clickhouse.rows import DEAD_LETTER_COLUMNS, dead_letter_row

RESTRICTED_SUFFIX = "_restricted"


def restricted_database(database: str) -> str:
    """``hzbus`` → ``hzbus_restricted``: the database of what analysts must not read."""
    return check_database_name(database + RESTRICTED_SUFFIX)


def relayed_row(msg: Any, dead_at: datetime) -> tuple[Any, ...] | None:
    """The ``dead_letters`` row of a record of the dead-letter topic that the sink did not write
    itself (the gate's); None for the sink's own (stored when it wrote them) and for records that
    do not say where they come from."""
    found = deadletters.origin(msg.headers())
    if found is None or found.written_by == "sink":
        return None
    return dead_letter_row(
        topic=found.topic,
        partition=found.partition,
        offset=found.offset,
        reason=found.reason,
        key=msg.key(),
        value=msg.value(),
        dead_at=dead_at,
    )


def retire_legacy_table(client: Any, database: str) -> int:
    """Move the rows of ``<db>.dead_letters`` (where versions before 0005 kept dead letters, in
    the analysts' database) to ``<db>_restricted.dead_letters`` and drop it; the number moved.
    A Distributed ``dead_letters`` (the cluster form) is left alone: nothing writes to it now."""
    check_database_name(database)
    engine = client.execute(
        f"SELECT engine FROM system.tables WHERE database = '{database}' AND name = 'dead_letters'"
    )
    if not engine or not str(engine[0][0]).endswith("MergeTree"):
        return 0
    moved = int(client.execute(f"SELECT count() FROM {database}.dead_letters")[0][0])
    if moved:
        columns = ", ".join(DEAD_LETTER_COLUMNS)
        client.execute(
            f"INSERT INTO {restricted_database(database)}.dead_letters ({columns}) "
            f"SELECT {columns} FROM {database}.dead_letters"
        )
    client.execute(f"DROP TABLE IF EXISTS {database}.dead_letters")
    return moved
