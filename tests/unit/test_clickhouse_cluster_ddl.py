"""The cluster form of the migrations (sinks/clickhouse/cluster_ddl.py), statement by statement.

One source of DDL: the cluster statements are derived from the single-node files, so these
tests check the derivation; tests/integration/test_clickhouse_cluster.py runs the result on a
real 18.16 cluster (ZooKeeper + three servers), and the last test here parses it with a current
engine (chdb has no ZooKeeper nor clusters, so it can only parse it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hzbus.errors import UserError
from sinks.clickhouse.cluster_ddl import (
    ClusterDDLError,
    cluster_statements,
    sharding_key,
    zookeeper_path,
)
from sinks.clickhouse.migrate import SCHEMA_MIGRATIONS, load_migrations, planned_statements

DB, CLUSTER = "hzbus", "hz_cluster"
TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)(?: ON CLUSTER \w+)?\s*\(", re.S)


def single_node() -> list[str]:
    return [s for m in load_migrations() for s in m.statements(DB)]


def tables_of(statements: list[str]) -> dict[str, str]:
    """``table`` (of the bus's database) or ``database.table`` (of another one, e.g. the
    dead letters in ``<db>_restricted``) → its statement."""
    out = {}
    for s in statements:
        m = TABLE.match(s)
        if m:
            out[m.group(2) if m.group(1) == DB else f"{m.group(1)}.{m.group(2)}"] = s
    return out


def test_the_single_node_form_is_the_files_as_they_are() -> None:
    plan = planned_statements(DB)
    assert plan[0] == (None, [f"CREATE DATABASE IF NOT EXISTS {DB}", SCHEMA_MIGRATIONS.format(db=DB)])
    assert [s for _m, ss in plan[1:] for s in ss] == single_node()


def test_every_table_becomes_a_replicated_local_table_and_a_distributed_table_of_the_same_name() -> None:
    single = tables_of(single_node())
    clustered = tables_of([s for _m, ss in planned_statements(DB, CLUSTER)[1:] for s in ss])
    assert set(clustered) == set(single) | {f"{t}_local" for t in single}
    for table, ddl in single.items():
        columns = ddl[ddl.index("(") : ddl.index("ENGINE")].strip()
        engine = re.search(r"ENGINE = (\w*)MergeTree(?:\(([^)]*)\))?", ddl)
        assert engine is not None
        family, args = engine.group(1), engine.group(2) or ""
        local, dist = clustered[f"{table}_local"], clustered[table]
        assert f" ON CLUSTER {CLUSTER}\n" in local and f" ON CLUSTER {CLUSTER}\n" in dist
        assert columns in local and columns in dist  # the very same column block
        db, name = table.split(".") if "." in table else (DB, table)
        path = f"/clickhouse/tables/{{shard}}/{db}/{name}_local"
        expected_args = ", ".join(a for a in (f"'{path}'", "'{replica}'", args) if a)
        assert f"ENGINE = Replicated{family}MergeTree({expected_args})" in local
        for clause in re.findall(r"^(?:PARTITION BY|ORDER BY) .*$", ddl, re.M):
            assert clause in local  # partitioning and sorting key unchanged
        order_by = re.search(r"^ORDER BY (.*)$", ddl, re.M)
        assert order_by is not None
        assert dist.endswith(
            f"ENGINE = Distributed({CLUSTER}, {db}, {name}_local, {sharding_key(order_by.group(1))})"
        )


def test_every_version_of_a_row_goes_to_one_shard_the_sharding_key_is_the_sorting_key() -> None:
    clustered = tables_of([s for _m, ss in planned_statements(DB, CLUSTER)[1:] for s in ss])
    assert clustered["events"].endswith("cityHash64(type, event_id))")
    assert clustered["obligations"].endswith("cityHash64(obligation_id))")
    assert clustered["alerts"].endswith("cityHash64(dedup_key, event))")
    assert clustered["scorecard_published"].endswith("cityHash64(quarter, dept))")
    assert clustered["dead_letters"].endswith("cityHash64(kafka_topic, kafka_partition, kafka_offset))")
    assert clustered[f"{DB}_restricted.dead_letters"].endswith(
        "cityHash64(kafka_topic, kafka_partition, kafka_offset))"
    )


@pytest.mark.parametrize(
    ("order_by", "key"),
    [
        ("version", "cityHash64(version)"),
        ("(type, event_id)", "cityHash64(type, event_id)"),
        ("(dept, toStartOfDay(at), id)", "cityHash64(dept, toStartOfDay(at), id)"),
        ("tuple()", "rand()"),
    ],
)
def test_sharding_key_of_a_sorting_key(order_by: str, key: str) -> None:
    assert sharding_key(order_by) == key


def test_the_migrations_table_is_replicated_and_distributed_too() -> None:
    setup = planned_statements(DB, CLUSTER)[0][1]
    assert setup[0] == f"CREATE DATABASE IF NOT EXISTS {DB} ON CLUSTER {CLUSTER}"
    path = "/clickhouse/tables/{shard}/hzbus/schema_migrations_local"
    assert f"ReplicatedReplacingMergeTree('{path}', '{{replica}}')" in setup[1]
    assert setup[2].endswith(f"Distributed({CLUSTER}, {DB}, schema_migrations_local, cityHash64(version))")


def test_views_are_created_on_every_server_over_the_distributed_tables() -> None:
    views = [s for s in single_node() if s.startswith("CREATE VIEW")]
    assert views
    for view in views:
        (out,) = cluster_statements(view, CLUSTER)
        name = view.split()[5]
        assert out.startswith(f"CREATE VIEW IF NOT EXISTS {name} ON CLUSTER {CLUSTER} AS\n")
        assert out.split(" AS\n", 1)[1] == view.split(" AS\n", 1)[1]  # the same SELECT
        assert "_local" not in out  # they read the Distributed tables: the whole cluster


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        (
            "CREATE MATERIALIZED VIEW IF NOT EXISTS d.mv ENGINE = SummingMergeTree() ORDER BY k AS SELECT 1",
            "no cluster form",
        ),
        ("ALTER TABLE d.events ADD COLUMN x UInt8", "no cluster form"),
        ("CREATE TABLE IF NOT EXISTS d.t (x UInt8) ENGINE = Log", "only MergeTree-family"),
        (
            "CREATE TABLE IF NOT EXISTS d.t (x UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x",
            "only MergeTree-family",
        ),
        ("CREATE TABLE IF NOT EXISTS d.t (x UInt8) ENGINE = MergeTree() PARTITION BY x", "no ORDER BY"),
        ("CREATE TABLE IF NOT EXISTS d.t_local (x UInt8) ENGINE = MergeTree() ORDER BY x", "reserved"),
    ],
)
def test_a_statement_without_a_known_cluster_form_is_refused_by_name(statement: str, why: str) -> None:
    with pytest.raises(ClusterDDLError, match=why):
        cluster_statements(statement, CLUSTER)


def test_a_refused_statement_fails_the_plan_before_anything_runs(tmp_path: Path) -> None:
    directory = tmp_path
    (directory / "0001_t.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {db}.t (x UInt8) ENGINE = MergeTree() ORDER BY x;\n"
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.mv ENGINE = MergeTree() ORDER BY x\n"
        "AS SELECT x FROM {db}.t;\n",
        encoding="utf-8",
    )
    assert len(planned_statements(DB, "", directory)[1][1]) == 2
    with pytest.raises(ClusterDDLError, match=r"CREATE MATERIALIZED VIEW IF NOT EXISTS hzbus\.mv"):
        planned_statements(DB, CLUSTER, directory)


@pytest.mark.parametrize("name", ["", "a-b", "x;DROP", "1c"])
def test_a_bad_cluster_name_is_a_clear_error(name: str) -> None:
    with pytest.raises(UserError, match="cluster name"):
        planned_statements(DB, name) if name else cluster_statements("CREATE DATABASE x", name)


def test_zookeeper_path_has_the_shard_macro_and_the_real_names() -> None:
    assert zookeeper_path("hzbus", "events_local") == "/clickhouse/tables/{shard}/hzbus/events_local"


def test_a_current_engine_parses_every_cluster_statement() -> None:
    session = pytest.importorskip("chdb.session").Session()
    for _migration, statements in planned_statements(DB, CLUSTER):
        for statement in statements:
            literal = "'" + statement.replace("\\", "\\\\").replace("'", "\\'") + "'"
            formatted = str(session.query(f"SELECT formatQuery({literal})", "TabSeparatedRaw")).strip()
            assert f"ON CLUSTER {CLUSTER}" in formatted, statement


def test_the_ddl_can_be_printed_for_review_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    from sinks.clickhouse.migrate import main

    assert main(["--database", "hz_prod", "--cluster", "prod"]) == 0
    out = capsys.readouterr().out
    assert "-- 0001_events (checksum " in out
    assert "CREATE TABLE IF NOT EXISTS hz_prod.events ON CLUSTER prod" in out
    assert out.count(";\n") == sum(len(ss) for _m, ss in planned_statements("hz_prod", "prod"))
    assert main(["--cluster", "no such"]) == 2
    assert "invalid ClickHouse cluster name" in capsys.readouterr().err
