"""The cluster form of the DDL on a real ClickHouse 18.16 cluster: one ZooKeeper and three
private servers (shard 1 on two replicas, shard 2 on one), started once for this module on free
ports (infra/clickhouse_cluster.py); the shared server is not touched. Kafka is the shared broker.

The migrations apply ON CLUSTER; the sink, pointed at the cluster by settings alone, stores
every event once across the shards (each event's versions on one shard, replicated within it);
the analysts' queries and the scorecard run against the cluster and count as the Python does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_driver import Client

from domain.obligations import evaluate_events
from domain.scorecard import Quarter
from hzbus.calendar_source import load_calendar
from hzbus.cli import main
from hzbus.config import Settings
from hzbus.errors import UserError
from infra import manager
from infra.clickhouse_cluster import LocalCluster
from producers.simulate import write_simulation
from reports.data import dept_rows
from sinks.clickhouse.migrate import load_migrations, migrate
from sinks.clickhouse.queries import load_query, query_names
from tests.conftest import Bus
from tests.integration.helpers import publish_file, run_sink
from tests.unit.test_analyst_sql_current_engine import load_crafted
from tests.unit.test_scorecard_engine import AS_OF, Q4, crafted_events, events_of

pytestmark = pytest.mark.integration
N = 3000
CLUSTER = "hzbus_test"


@pytest.fixture(scope="module")
def cluster(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(
        root=tmp_path_factory.mktemp("ch-cluster"),
        name=CLUSTER,
        replicas_per_shard=(2, 1),
        jars_root=Path(settings.state_dir),
    )
    c.start()
    try:
        yield c
    finally:
        stopped = c.stop()
        assert set(stopped.values()) <= {"stopped", "not running"}, stopped


@pytest.fixture
def cbus(services: Settings, cluster: LocalCluster) -> Iterator[Bus]:
    """Topics of our own on the shared broker, a database of our own on the cluster."""
    tag = uuid.uuid4().hex[:10]
    prefix, database = f"t{tag}", f"c_{tag}"
    settings = cluster.settings(
        kafka_bootstrap=services.kafka_bootstrap, topic_prefix=prefix, clickhouse_database=database
    )
    manager.ensure_topics(settings, prefix=prefix)
    yield Bus(settings, prefix, database)
    manager.delete_prefix(services, prefix)


def server(cluster: LocalCluster, i: int) -> Client:
    return Client(host="127.0.0.1", port=cluster.servers[i].tcp_port)


def one(client: Client, sql: str) -> Any:
    return client.execute(sql)[0][0]


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first N events of a simulated stream (every family, many departments)."""
    work = tmp_path_factory.mktemp("cluster-sample")
    full = work / "full.jsonl"
    write_simulation(full, days=40, seed=11, scale=2.0)
    lines = full.read_bytes().splitlines()[:N]
    assert len(lines) == N, "the simulation is too small for this test"
    path = work / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_the_migrations_apply_on_the_cluster_and_every_server_has_the_schema(
    cbus: Bus, cluster: LocalCluster
) -> None:
    client = cbus.clickhouse()
    applied = migrate(client, cbus.database, cluster=CLUSTER)
    assert [m.version for m in applied] == [m.version for m in load_migrations()]
    db = cbus.database
    expected: dict[str, str] | None = None
    for i in range(len(cluster.servers)):
        tables = dict(
            server(cluster, i).execute(f"SELECT name, engine FROM system.tables WHERE database = '{db}'")
        )
        assert tables["events"] == "Distributed" and tables["events_local"] == "ReplicatedReplacingMergeTree"
        assert tables["schema_migrations"] == "Distributed"
        assert tables["obligation_stats"] == "View"
        assert expected is None or tables == expected  # the same schema on every server
        expected = tables
    # recorded once, readable from any server; a second run (from another server) applies nothing
    other = cluster.settings(2, clickhouse_database=db)
    from sinks.clickhouse.sink import clickhouse_client

    assert migrate(clickhouse_client(other), db, cluster=CLUSTER) == []
    versions = server(cluster, 1).execute(f"SELECT version FROM {db}.schema_migrations FINAL")
    assert sorted(v for (v,) in versions) == [m.version for m in load_migrations()]
    # the shape is checked: this database cannot be migrated as a single-server one
    with pytest.raises(UserError, match="cluster database"):
        migrate(client, db)


def test_the_sink_stores_each_event_once_across_the_shards(
    cbus: Bus, cluster: LocalCluster, events_file: Path
) -> None:
    ids = [orjson.loads(line)["event_id"] for line in events_file.read_bytes().splitlines()]
    assert len(set(ids)) == N
    # published twice: the second copy is a re-publication of the same facts (same event ids)
    for _ in range(2):
        assert publish_file(cbus, events_file).published == N
    stats = run_sink(cbus)  # EventSink, pointed at the cluster by cbus.settings alone
    assert stats.events == 2 * N and stats.dead_letters == 0

    # through the Distributed table, read with FINAL as every query does: each event once
    assert int(cbus.query("SELECT count() FROM {db}.events FINAL")[0][0]) == N
    assert {r[0] for r in cbus.query("SELECT event_id FROM {db}.events FINAL")} == set(ids)
    assert int(cbus.query("SELECT count() FROM {db}.events")[0][0]) >= N  # copies, until merged

    # every copy of an event is on one shard (its replicas): the shards are disjoint, both used
    db = cbus.database
    shard_ids = [
        {r[0] for r in server(cluster, i).execute(f"SELECT event_id FROM {db}.events_local")} for i in (0, 2)
    ]
    assert not shard_ids[0] & shard_ids[1]
    assert shard_ids[0] | shard_ids[1] == set(ids)
    assert 0.3 < len(shard_ids[0]) / N < 0.7, [len(s) for s in shard_ids]
    # shard 1's second replica receives the same rows through ZooKeeper
    wanted = one(server(cluster, 0), f"SELECT count() FROM {db}.events_local")
    deadline = time.monotonic() + 30
    while one(server(cluster, 1), f"SELECT count() FROM {db}.events_local") != wanted:
        assert time.monotonic() < deadline, "the replica did not catch up within 30 s"
        time.sleep(0.2)
    replica = {r[0] for r in server(cluster, 1).execute(f"SELECT event_id FROM {db}.events_local")}
    assert replica == shard_ids[0]

    # the analysts' event queries see the whole cluster, once per event
    by_type = Counter(orjson.loads(line)["type"] for line in events_file.read_bytes().splitlines())
    rows = cbus.query(load_query("events_by_type", cbus.database))
    assert {r[0]: int(r[1]) for r in rows} == dict(by_type)


def test_the_analyst_queries_and_the_scorecard_run_on_the_cluster(
    cbus: Bus,
    cluster: LocalCluster,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = cbus.clickhouse()
    migrate(client, cbus.database, cluster=CLUSTER)
    load_crafted(client, cbus.database)  # two versions of every obligation (open, then as of AS_OF)
    for name in query_names():
        client.execute(load_query(name, cbus.database))
    # the views read FINAL through the Distributed tables: each obligation once, latest state
    rows = client.execute(load_query("obligation_on_time_rate_by_department", cbus.database))
    q4 = {r[1]: r for r in rows if r[0] == "2026Q4"}
    evaluation = evaluate_events(events_of(crafted_events()), AS_OF, load_calendar())
    in_q4 = [o for o in evaluation.obligations if Quarter.of(o.due_at) == Q4]
    expected = dept_rows(in_q4)
    assert set(q4) == {e.dept for e in expected}
    for e in expected:
        r = q4[e.dept]
        assert tuple(r[2:7]) == (e.total, e.met, e.late, e.missed, e.open), e.dept
        assert (r[9], r[10]) == (e.median_delay_wd, e.p90_delay_wd), e.dept

    # `hzbus scorecard close` against the cluster, configured by environment only
    s = cbus.settings
    for key, value in {
        "HZBUS_CLICKHOUSE_HOST": s.clickhouse_host,
        "HZBUS_CLICKHOUSE_PORT": str(s.clickhouse_port),
        "HZBUS_CLICKHOUSE_DATABASE": s.clickhouse_database,
        "HZBUS_CLICKHOUSE_CLUSTER": s.clickhouse_cluster,
        "HZBUS_STATE_DIR": str(tmp_path / "state"),
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HZBUS_CALENDAR_OVERRIDES", raising=False)
    assert main(["scorecard", "close", "2026Q4"]) == 0
    capsys.readouterr()
    assert main(["scorecard", "--quarter", "2026Q4", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    scores = {d["dept"]: d["score"] for d in shown["departments"]}
    official = {r[1]: r[2] for r in client.execute(load_query("scorecard_official_ranking", cbus.database))}
    assert official and official == {d: scores[d] for d in official}
    assert (scores["HZ-GHJ"], scores["HZ-RFB"], scores["HZ-ZFJ"]) == (96.0, 80.0, 98.0)
