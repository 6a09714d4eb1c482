"""Department identity on the real broker and server [信息资源共享机制 五] (docs/security.md).

Two departments, 市市场监管局 (HZ-SJJ) and 市综合行政执法局 (HZ-ZFJ), sign in with their own SCRAM
principals on the broker's SCRAM listener and each tries to publish as the other: the broker
refuses a write to the other's ingress topic; a record with a forged ``source_dept`` on its own
topic, and one with the operator's historical header, end in the dead-letter topic and table
with the reason, while the honest records reach ClickHouse. The read-only analyst user reads the
analysts' database, where personal ID numbers are pseudonymised, and nothing else.
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from domain.events import Event
from hzbus import identity, kafka_auth
from hzbus.config import Settings, load_settings
from hzbus.errors import UserError
from hzbus.processes import spawn_hzbus
from infra import clickhouse_local, kafka_security, manager
from producers.ingress import make_publisher
from producers.publisher import HISTORICAL_HEADER
from schemas import codec
from schemas.samples import sample_event
from sinks.clickhouse.sink import EventSink, clickhouse_client
from stream_processors.gate import Gate

pytestmark = pytest.mark.integration

SJJ, ZFJ = "HZ-SJJ", "HZ-ZFJ"
#: a well-formed 居民身份证号码 (check digit 6): personal data that analysts must never read
PERSON = "330502199001011236"
ORG = "91330502MA2B3C4D5E"


def _event(dept: str, n: int, subject: str = PERSON, source: str | None = None) -> Event:
    base = sample_event("ApprovalIssued", 2 * n)
    return replace(
        base,
        event_id=f"id-{dept}-{n}-{uuid.uuid4().hex[:6]}",
        source_dept=source or dept,
        occurred_at=base.occurred_at + timedelta(days=30),
        recorded_at=base.recorded_at + timedelta(days=30),
        fields={**base.fields, "approval_id": f"A-{dept}-{n}", "subject_id": subject},
    )


@dataclass
class Secured:
    """An isolated prefix and database on the shared services, with its principals and ACLs."""

    open: Settings  # the operator's settings (the shared broker's open listener)
    scram: Settings  # the bus's clients in the secured mode
    prefix: str
    database: str

    def as_dept(self, code: str) -> Settings:
        """What a department's adapter machine has: its own login only."""
        principal = identity.dept_principal(code)
        password = kafka_auth.stored_password(self.open, principal)
        assert password
        return replace(self.scram, kafka_username=principal, kafka_password=password)

    def env_of(self, code: str) -> dict[str, str]:
        s = self.as_dept(code)
        return {
            "HZBUS_KAFKA_SECURITY": "scram",
            "HZBUS_KAFKA_USERNAME": s.kafka_username,
            "HZBUS_KAFKA_PASSWORD": s.kafka_password,
            "HZBUS_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "HZBUS_KAFKA_SCRAM_PORT": str(s.kafka_scram_port),
            "HZBUS_TOPIC_PREFIX": self.prefix,
        }

    def as_analyst(self, user: str, password: str) -> Settings:
        return replace(self.open, clickhouse_user=user, clickhouse_password=password)

    def query(self, sql: str, user: str | None = None, password: str = "") -> list[tuple[Any, ...]]:
        settings = self.open if user is None else self.as_analyst(user, password)
        client = clickhouse_client(settings, database=self.database if user else None)
        try:
            rows: list[tuple[Any, ...]] = client.execute(sql.format(db=self.database))
            return rows
        finally:
            client.disconnect()


@pytest.fixture(scope="module")
def secured(settings: Settings) -> Iterator[Secured]:
    manager.ensure_installed(settings)
    manager.ensure_up(settings)
    tag = uuid.uuid4().hex[:10]
    prefix, database = f"s{tag}", f"s_{tag}"
    base = load_settings(topic_prefix=prefix, clickhouse_database=database)
    kafka_security.ensure_principals(base, prefix=prefix, codes=[SJJ, ZFJ])
    s = Secured(base, replace(base, kafka_security="scram"), prefix, database)
    yield s
    s.query("DROP DATABASE IF EXISTS {db}")
    s.query("DROP DATABASE IF EXISTS {db}_restricted")
    manager.delete_prefix(settings, prefix)


def _produce_raw(settings: Settings, topic: str, value: bytes, key: bytes, headers: Any = None) -> Any:
    """A hand-written adapter: a plain producer with a department's login, no client-side checks."""
    producer = Producer(
        {
            **kafka_auth.client_config(settings),
            "message.timeout.ms": 15000,
            "log_level": 0,
            "error_cb": lambda _e: None,
        }
    )
    errors: list[Any] = []
    producer.produce(topic, value, key, headers=headers, on_delivery=lambda err, _m: errors.append(err))
    producer.flush(20)
    return errors[0] if errors else "not delivered"


def test_the_broker_refuses_a_department_writing_another_departments_topic(secured: Secured) -> None:
    as_sjj, as_zfj = secured.as_dept(SJJ), secured.as_dept(ZFJ)
    value = codec.encode(_event(ZFJ, 0))
    for settings, other in ((as_sjj, ZFJ), (as_zfj, SJJ)):
        err = _produce_raw(settings, identity.ingress_topic(secured.prefix, other), value, b"k")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # nor may it skip the gate and write a family topic
        err = _produce_raw(settings, f"{secured.prefix}.approvals", value, b"k")
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_publishing_as_the_other_department_is_an_error_naming_both_not_a_traceback(
    secured: Secured, tmp_path: Path
) -> None:
    runs = {}
    for me, other in ((SJJ, ZFJ), (ZFJ, SJJ)):
        export = tmp_path / f"{other}.jsonl"
        export.write_bytes(orjson.dumps(codec.to_canonical(_event(other, 1))) + b"\n")
        runs[me, other] = spawn_hzbus(
            "publish",
            str(export),
            "--dept",
            other,
            "--no-progress",
            env=secured.env_of(me),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    for (me, other), proc in runs.items():
        _out, err = proc.communicate(timeout=120)
        text = err.decode()
        assert proc.returncode == 2, text
        assert "Traceback" not in text
        assert (
            f"Kafka refused User:dept-{me}: not authorized to write {secured.prefix}.ingress.{other}" in text
        )
        assert "[信息资源共享机制 五]" in text


def test_a_departments_login_cannot_import_history_past_the_gate(secured: Secured) -> None:
    refused = r"Kafka refused User:dept-HZ-SJJ: not authorized to write .*approvals"
    with pytest.raises(UserError, match=refused):
        make_publisher(secured.as_dept(SJJ), prefix=secured.prefix, dept=SJJ, historical=True)


@dataclass
class GateRun:
    honest: set[str]
    forged: dict[str, str]  # event id -> what it claims
    historical: str
    stats: Any
    ingress_ms: dict[str, int]  # event id -> broker append time on the ingress topic


@pytest.fixture(scope="module")
def gate_run(secured: Secured) -> GateRun:
    """Both departments publish honestly through ``hzbus publish``'s publisher, each also forges
    one record as the other on its own topic, and SJJ sets the historical header on one; then the
    gate and the sink run once."""
    honest: set[str] = set()
    forged: dict[str, str] = {}
    for me, other in ((SJJ, ZFJ), (ZFJ, SJJ)):
        settings = secured.as_dept(me)
        publisher = make_publisher(settings, prefix=secured.prefix, dept=me, historical=False)
        events = [_event(me, n, subject=PERSON if n % 2 else ORG) for n in range(5)]
        for event in events:
            publisher.publish(event, lambda e, why: pytest.fail(f"{e.event_id} not delivered: {why}"))
        publisher.flush()
        honest |= {e.event_id for e in events}
        lie = _event(me, 9, source=other)  # valid, but claims to be the other department
        err = _produce_raw(settings, identity.ingress_topic(secured.prefix, me), codec.encode(lie), b"A-x")
        assert err is None
        forged[lie.event_id] = other
    backdated = _event(SJJ, 7)
    err = _produce_raw(
        secured.as_dept(SJJ),
        identity.ingress_topic(secured.prefix, SJJ),
        codec.encode(backdated),
        b"A-y",
        headers=[(HISTORICAL_HEADER, b"1")],
    )
    assert err is None

    stats = Gate(secured.scram, prefix=secured.prefix).run(stop_when_idle=1.0)
    sink = EventSink(secured.scram, prefix=secured.prefix, database=secured.database)
    sink.prepare()
    sink.run(stop_when_idle=1.5)
    return GateRun(honest, forged, backdated.event_id, stats, _ingress_times(secured))


def _ingress_times(secured: Secured) -> dict[str, int]:
    consumer = Consumer(
        {
            **kafka_auth.client_config(secured.open),
            "group.id": f"{secured.prefix}.check",
            "auto.offset.reset": "earliest",
            "log_level": 0,
        }
    )
    consumer.subscribe([identity.ingress_topic(secured.prefix, c) for c in (SJJ, ZFJ)])
    times: dict[str, int] = {}
    deadline = time.monotonic() + 20
    while len(times) < 13 and time.monotonic() < deadline:
        for msg in consumer.consume(100, timeout=0.5):
            if msg.error() is None:
                times[codec.decode(msg.value()).event_id] = msg.timestamp()[1]
    consumer.close()
    return times


def test_honest_records_pass_the_gate_and_land_in_clickhouse(secured: Secured, gate_run: GateRun) -> None:
    assert (gate_run.stats.forwarded, gate_run.stats.refused) == (10, 3)
    stored = {r[0] for r in secured.query("SELECT event_id FROM {db}.events FINAL")}
    assert stored == gate_run.honest
    # the publication time is the ingress append time, not the time the gate forwarded it
    published = dict(secured.query("SELECT event_id, toUnixTimestamp(published_at) FROM {db}.events FINAL"))
    assert all(published[i] == gate_run.ingress_ms[i] // 1000 for i in gate_run.honest)


def test_forged_and_backdated_records_end_in_the_dead_letters_with_the_reason(
    secured: Secured, gate_run: GateRun
) -> None:
    rows = secured.query("SELECT kafka_topic, reason, value_base64 FROM {db}_restricted.dead_letters FINAL")
    by_id = {codec.decode(base64.b64decode(v)).event_id: (t, r) for t, r, v in rows}
    assert set(by_id) == {*gate_run.forged, gate_run.historical}
    for event_id, claimed in gate_run.forged.items():
        topic, reason = by_id[event_id]
        owner = identity.owner_of_ingress_topic(secured.prefix, topic)
        assert owner is not None and owner != claimed
        assert reason.startswith(
            f"source_dept {claimed} does not match the producing principal User:dept-{owner}"
        )
        assert reason.endswith("[信息资源共享机制 五]")
    topic, reason = by_id[gate_run.historical]
    assert topic == identity.ingress_topic(secured.prefix, SJJ)
    assert reason.startswith(f"header {HISTORICAL_HEADER} set by User:dept-{SJJ}")
    assert "[协作机制 三(二)1]" in reason


# ---------------------------------------------------------------------------------------------
# the analyst


@pytest.fixture(scope="module")
def analyst(secured: Secured, gate_run: GateRun) -> Iterator[tuple[str, str]]:
    user, password = f"analyst_{secured.database}", uuid.uuid4().hex
    clickhouse_local.write_analyst_user(
        secured.open, user=user, password=password, databases=[secured.database]
    )
    deadline = time.monotonic() + 20  # the server reloads users files every few seconds
    while True:
        try:
            secured.query("SELECT 1", user, password)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
    yield user, password
    clickhouse_local.remove_user(secured.open, user)


def test_the_analyst_reads_the_analyst_views_with_pseudonymised_ids(
    secured: Secured, analyst: tuple[str, str]
) -> None:
    for view in (
        "obligations_latest",
        "obligation_stats",
        "department_stats",
        "correlations_active",
        "repeat_offenders",
        "assessment_adjustments",
        "scorecard_official",
    ):
        secured.query(f"SELECT * FROM {{db}}.{view}", *analyst)
    subjects = {r[0] for r in secured.query("SELECT DISTINCT subject_id FROM {db}.events FINAL", *analyst)}
    assert ORG in subjects and PERSON not in subjects
    assert any(s.startswith("P-") for s in subjects)


def test_no_raw_personal_id_is_anywhere_the_analyst_can_read(
    secured: Secured, analyst: tuple[str, str]
) -> None:
    tables = [r[0] for r in secured.query("SELECT name FROM system.tables WHERE database = '{db}'", *analyst)]
    assert "events" in tables and "dead_letters" not in tables
    for table in tables:
        for row in secured.query(f"SELECT * FROM {{db}}.{table}", *analyst):
            assert PERSON not in repr(row), f"{table}: {row}"
    # ...while the restricted dead letters do hold it (so the check above could fail)...
    raw = secured.query("SELECT value_base64 FROM {db}_restricted.dead_letters")
    assert any(PERSON.encode() in base64.b64decode(v) for (v,) in raw)
    # ...and the analyst cannot open them
    with pytest.raises(Exception, match="Access denied"):
        secured.query("SELECT * FROM {db}_restricted.dead_letters", *analyst)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO {db}.events (event_id) VALUES",
        "ALTER TABLE {db}.events DELETE WHERE 1",
        "DROP TABLE {db}.events",
        "CREATE TABLE {db}.mine (x UInt8) ENGINE = Memory",
        "SET readonly = 0",
    ],
)
def test_the_analyst_cannot_change_anything(
    secured: Secured, analyst: tuple[str, str], statement: str
) -> None:
    with pytest.raises(Exception, match=r"readonly|Cannot modify|Cannot insert|Cannot drop|Cannot create"):
        if statement.startswith("INSERT"):
            client = clickhouse_client(secured.as_analyst(*analyst), database=secured.database)
            try:
                client.execute(statement.format(db=secured.database), [("x",)])
            finally:
                client.disconnect()
        else:
            secured.query(statement, *analyst)
    still = secured.query("SELECT count() FROM system.tables WHERE database = '{db}' AND name = 'events'")
    assert still == [(1,)]


def test_a_login_another_checkout_re_keyed_on_the_broker_is_restored_by_principals(
    secured: Secured, tmp_path: Path
) -> None:
    """Two checkouts on one broker each keep their own credential store: the second one's
    ``infra principals`` gave the broker its passwords, and this checkout's departments were
    refused ("invalid credentials") until it wrote its own again."""
    other = replace(secured.open, state_dir=tmp_path / "other-checkout")
    sjj = identity.dept_principal(SJJ)
    admin = manager._admin(secured.open)
    kafka_security.ensure_scram_users(other, admin, [sjj])  # the other store's new password
    value = codec.encode(_event(SJJ, 90))
    topic = identity.ingress_topic(secured.prefix, SJJ)
    assert _produce_raw(secured.as_dept(SJJ), topic, value, b"k") is not None  # signed in no more
    kafka_security.ensure_principals(secured.open, prefix=secured.prefix, codes=[SJJ, ZFJ])
    assert _produce_raw(secured.as_dept(SJJ), topic, value, b"k") is None
