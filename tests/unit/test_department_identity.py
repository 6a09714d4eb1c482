"""The pure parts of department identity [信息资源共享机制 五]: principal names, the ACL plan, the
gate's decision, the client settings of both modes, the broker's and ClickHouse's generated
configuration (docs/security.md). The real broker and server: tests/integration/test_department_identity.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from domain.departments import load_registry
from hzbus import deadletters, identity, kafka_auth
from hzbus.config import load_settings
from hzbus.errors import UserError
from hzbus.identity import AclEntry
from hzbus.topics import event_topics, topic_name
from producers.publisher import HISTORICAL_HEADER
from schemas import codec
from schemas.samples import sample_event
from stream_processors.gate import Forward, Refuse, decide

P = "hzbus"
SJJ, ZFJ = "HZ-SJJ", "HZ-ZFJ"


# ---------------------------------------------------------------------------------------------
# principals and topics


def test_a_department_signs_in_as_dept_and_its_code() -> None:
    assert identity.dept_principal(SJJ) == "dept-HZ-SJJ"
    assert identity.dept_of_principal("User:dept-HZ-SJJ") == SJJ
    assert identity.dept_of_principal("dept-DQ-ZD-WK") == "DQ-ZD-WK"
    assert identity.dept_of_principal(identity.BUS) is None
    assert identity.dept_of_principal(identity.OPERATOR) is None


def test_every_registered_department_has_a_principal_and_an_ingress_topic_that_names_it_back() -> None:
    codes = load_registry().codes()
    topics = {identity.ingress_topic(P, c) for c in codes}
    assert len(topics) == len(codes)
    for code in codes:
        assert identity.owner_of_ingress_topic(P, identity.ingress_topic(P, code)) == code
        assert identity.dept_of_principal(identity.dept_principal(code)) == code


@pytest.mark.parametrize("code", ["HZ.SJJ", "", "-HZ", "HZ SJJ", "市局"])
def test_a_code_that_cannot_name_a_principal_or_topic_is_refused(code: str) -> None:
    with pytest.raises(identity.IdentityError):
        identity.dept_principal(code)


def test_only_ingress_topics_of_the_prefix_have_an_owner() -> None:
    assert identity.owner_of_ingress_topic(P, "hzbus.approvals") is None
    assert identity.owner_of_ingress_topic(P, "other.ingress.HZ-SJJ") is None
    assert identity.owner_of_ingress_topic(P, "hzbus.ingress.HZ.SJJ") is None


# ---------------------------------------------------------------------------------------------
# the ACL plan


def allows(plan: list[AclEntry], principal: str, resource: str, name: str, operation: str) -> bool:
    """What the broker's StandardAuthorizer decides for these ALLOW rules (no DENY rules,
    allow.everyone.if.no.acl.found=false; ALL covers every operation, WRITE implies DESCRIBE)."""
    for e in plan:
        if e.principal != principal or e.resource != resource:
            continue
        matches = name == e.name if e.pattern == "literal" else name.startswith(e.name)
        implied = {e.operation} | ({"describe"} if e.operation in ("write", "read") else set())
        if matches and (e.operation == "all" or operation in implied):
            return True
    return False


def test_each_department_may_write_its_own_ingress_topic_and_nothing_else() -> None:
    codes = load_registry().codes()
    plan = identity.acl_plan(P, codes)
    every_topic = [
        *event_topics(P),
        topic_name(P, "deadletter"),
        topic_name(P, "obligations"),
        *(identity.ingress_topic(P, c) for c in codes),
    ]
    for code in codes:
        me = identity.dept_principal(code)
        mine = identity.ingress_topic(P, code)
        assert allows(plan, me, "topic", mine, "write")
        for topic in every_topic:
            if topic != mine:
                assert not allows(plan, me, "topic", topic, "write"), (me, topic)
            assert not allows(plan, me, "topic", topic, "read"), (me, topic)
        assert not any(e.principal == me and e.resource == "group" for e in plan)


def test_a_department_whose_code_prefixes_anothers_gets_no_access_to_it() -> None:
    plan = identity.acl_plan(P, ["DQ-ZFJ", "DQ-ZFJ-X"])
    assert not allows(plan, "dept-DQ-ZFJ", "topic", "hzbus.ingress.DQ-ZFJ-X", "write")


def test_the_bus_may_use_everything_of_its_prefix_and_nothing_of_another() -> None:
    plan = identity.acl_plan(P, [SJJ])
    ours = (*event_topics(P), "hzbus.deadletter", "hzbus.ingress.HZ-SJJ", "hzbus-worker-wakeups-changelog")
    for topic in ours:
        assert allows(plan, identity.BUS, "topic", topic, "write")
        assert allows(plan, identity.BUS, "topic", topic, "read")
    for group in ("hzbus.sink.clickhouse", "hzbus.gate", "hzbus-worker"):
        assert allows(plan, identity.BUS, "group", group, "read")
    assert not allows(plan, identity.BUS, "topic", "demo.approvals", "write")
    assert not allows(plan, identity.BUS, "group", "demo.sink.clickhouse", "read")


def test_the_anonymous_open_listener_is_a_super_user_only_in_the_open_mode() -> None:
    assert "User:ANONYMOUS" in identity.super_users("none")
    assert "User:ANONYMOUS" not in identity.super_users("scram")
    for mode in ("none", "scram"):
        assert {"User:hzbus-operator", "User:hzbus-controller"} <= set(identity.super_users(mode))
        assert "User:hzbus-bus" not in identity.super_users(mode)


# ---------------------------------------------------------------------------------------------
# the gate


def _event(source: str = SJJ) -> bytes:
    return codec.encode(replace(sample_event("ApprovalIssued", 0), source_dept=source))


def test_an_honest_record_is_forwarded_to_its_family_with_the_ingress_time_and_principal() -> None:
    value = _event()
    out = decide(P, "hzbus.ingress.HZ-SJJ", value, [("x-custom", b"1")], 1_790_000_000_123)
    assert isinstance(out, Forward)
    assert out.topic == "hzbus.approvals" and out.value == value
    assert out.key == codec.key_of(codec.decode(value)).encode()
    assert out.headers == [
        (identity.PUBLISHED_HEADER, b"1790000000123"),
        (identity.PRINCIPAL_HEADER, b"User:dept-HZ-SJJ"),
    ]  # the adapter's own headers are dropped


def test_a_record_claiming_another_department_is_refused_naming_both_and_the_clause() -> None:
    out = decide(P, "hzbus.ingress.HZ-SJJ", _event(source=ZFJ), None, 1)
    assert isinstance(out, Refuse)
    assert out.reason.startswith(
        "source_dept HZ-ZFJ does not match the producing principal User:dept-HZ-SJJ "
        "(topic hzbus.ingress.HZ-SJJ)"
    )
    assert out.reason.endswith("[信息资源共享机制 五]")


def test_a_departments_historical_header_is_refused() -> None:
    out = decide(P, "hzbus.ingress.HZ-SJJ", _event(), [(HISTORICAL_HEADER, b"1")], 1)
    assert isinstance(out, Refuse)
    assert "User:dept-HZ-SJJ" in out.reason and "[协作机制 三(二)1]" in out.reason


def test_a_forged_publication_time_header_does_not_pass_the_gate() -> None:
    out = decide(P, "hzbus.ingress.HZ-SJJ", _event(), [(identity.PUBLISHED_HEADER, b"0")], 42)
    assert isinstance(out, Forward)
    assert identity.gate_published_ms(out.headers, -1) == 42


@pytest.mark.parametrize("value", [b"", b"not avro", None])
def test_an_undecodable_record_is_refused(value: bytes | None) -> None:
    out = decide(P, "hzbus.ingress.HZ-SJJ", value, None, 1)
    assert isinstance(out, Refuse) and out.reason.startswith("does not decode")


def test_a_record_without_append_time_is_forwarded_without_a_publication_header() -> None:
    out = decide(P, "hzbus.ingress.HZ-SJJ", _event(), None, None)
    assert isinstance(out, Forward)
    assert [h for h, _ in out.headers] == [identity.PRINCIPAL_HEADER]


def test_gate_published_ms_falls_back_on_a_missing_or_bad_header() -> None:
    assert identity.gate_published_ms(None, 7) == 7
    assert identity.gate_published_ms([(identity.PUBLISHED_HEADER, b"x")], 7) == 7
    assert identity.gate_published_ms([(identity.PUBLISHED_HEADER, b"9")], 7) == 9


def test_a_dead_letter_says_who_refused_what_where() -> None:
    hs = deadletters.headers("hzbus.ingress.HZ-SJJ", 0, 5, "because", "gate")
    found = deadletters.origin(hs)
    assert found == deadletters.DeadLetterOrigin("gate", "because", "hzbus.ingress.HZ-SJJ", 0, 5)
    assert deadletters.origin([(deadletters.REASON, b"x")]) is None


# ---------------------------------------------------------------------------------------------
# client settings


def test_the_open_mode_is_the_plain_bootstrap_without_identity(tmp_path: Path) -> None:
    s = load_settings(env={}, state_dir=tmp_path)
    assert kafka_auth.client_config(s) == {"bootstrap.servers": "127.0.0.1:19092"}


def test_the_secured_mode_signs_in_with_scram_on_the_local_scram_listener(tmp_path: Path) -> None:
    s = load_settings(env={}, state_dir=tmp_path, kafka_security="scram", kafka_scram_port=29094)
    password, created = kafka_auth.ensure_password(s, "dept-HZ-SJJ")
    assert created and kafka_auth.ensure_password(s, "dept-HZ-SJJ") == (password, False)
    assert (kafka_auth.password_path(s, "dept-HZ-SJJ").stat().st_mode & 0o777) == 0o600
    config = kafka_auth.client_config(s, "dept-HZ-SJJ")
    assert config == {
        "bootstrap.servers": "127.0.0.1:29094",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "dept-HZ-SJJ",
        "sasl.password": password,
    }
    assert kafka_auth.principal_of(config) == "User:dept-HZ-SJJ"


def test_a_remote_bootstrap_is_used_as_is_and_an_explicit_login_wins(tmp_path: Path) -> None:
    s = load_settings(
        env={},
        state_dir=tmp_path,
        kafka_security="scram",
        kafka_bootstrap="kafka.hz.gov:9094",
        kafka_username="dept-HZ-SJJ",
        kafka_password="secret",
    )
    config = kafka_auth.client_config(s, identity.OPERATOR)  # the machine has only its own login
    assert config["bootstrap.servers"] == "kafka.hz.gov:9094"
    assert (config["sasl.username"], config["sasl.password"]) == ("dept-HZ-SJJ", "secret")


def test_a_missing_password_or_mode_is_a_clear_error(tmp_path: Path) -> None:
    s = load_settings(env={}, state_dir=tmp_path, kafka_security="scram")
    with pytest.raises(UserError, match=r"no Kafka password for principal 'hzbus-bus'.*infra principals"):
        kafka_auth.client_config(s, identity.BUS)
    with pytest.raises(UserError, match="HZBUS_KAFKA_PASSWORD is empty"):
        kafka_auth.client_config(replace(s, kafka_username="x"))
    with pytest.raises(UserError, match="expected one of none, scram"):
        kafka_auth.client_config(replace(s, kafka_security="tls"))


# ---------------------------------------------------------------------------------------------
# generated configuration


def test_the_broker_always_has_the_scram_listener_and_the_authorizer(tmp_path: Path) -> None:
    from infra import kafka_local

    for mode, anonymous in (("none", True), ("scram", False)):
        s = load_settings(env={}, state_dir=tmp_path, kafka_security=mode)
        text = kafka_local.rendered_config(s)[kafka_local.paths(s).server_properties]
        lines = [ln for ln in text.splitlines() if "=" in ln and not ln.startswith("#")]
        props = dict(ln.split("=", 1) for ln in lines)
        assert props["listeners"] == (
            "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19093"
        )
        assert props["listener.name.sasl_plaintext.sasl.enabled.mechanisms"] == "SCRAM-SHA-256"
        assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert ("User:ANONYMOUS" in props["super.users"].split(";")) is anonymous
        controller = kafka_auth.stored_password(s, identity.CONTROLLER)
        jaas = props["listener.name.controller.plain.sasl.jaas.config"]
        assert controller and f'password="{controller}"' in jaas


def test_the_analyst_user_is_read_only_and_limited_to_its_databases() -> None:
    from infra import clickhouse_local

    xml = clickhouse_local.analyst_user_xml("analyst", "pw", ["hzbus", "hzbus_demo"])
    assert "<profile>readonly</profile>" in xml
    assert "<database>hzbus</database>" in xml and "<database>hzbus_demo</database>" in xml
    assert "_restricted" not in xml.split("-->", 1)[1]
    assert "pw" not in xml.split("<password_sha256_hex>", 1)[1].split("<", 1)[0]
    with pytest.raises(UserError):
        clickhouse_local.analyst_user_xml("analyst", "pw", ["hzbus</database><database>x"])


def test_a_stale_broker_configuration_is_noticed(tmp_path: Path) -> None:
    from infra import kafka_local

    s = load_settings(env={}, state_dir=tmp_path)
    assert not kafka_local.config_is_current(s)
    kafka_local.write_config(s)
    assert kafka_local.config_is_current(s)
    assert not kafka_local.config_is_current(replace(s, kafka_security="scram"))
    assert (kafka_local.paths(s).server_properties.stat().st_mode & 0o777) == 0o600
