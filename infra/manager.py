"""Local Kafka + ClickHouse for development, tests and the demo (``hzbus infra …``).

Public API (used by the CLI, the test suite and the demo)::

    ensure_installed(settings)                 Kafka jars (Maven Central), clickhouse-server (apt-get)
    ensure_up(settings) -> None                start whatever does not answer; instant when all answer
    down(settings) -> dict                     stop only the processes we started
    restart(settings) -> dict                  down + up: applies a changed configuration
    status(settings) -> dict                   both services: running?, pid, ports, version, topics
    ensure_topics(settings, prefix=None)       every topic of infra/topics.json, idempotent
    delete_topics(settings, prefix)            drop a (test) prefix's topics

A service that already answers on its configured address is used as is, whoever started it, so
``HZBUS_KAFKA_BOOTSTRAP`` / ``HZBUS_CLICKHOUSE_HOST`` can point at an existing installation.
Nothing is started for a non-local address.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hzbus import kafka_auth
from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.topics import TopicSpec, all_topics
from infra import clickhouse_local, kafka_local, kafka_security, procs

__all__ = [
    "delete_prefix",
    "delete_topics",
    "down",
    "ensure_installed",
    "ensure_topics",
    "ensure_up",
    "restart",
    "status",
]

REPLICATION_FACTOR = 1
KAFKA_STOP_TIMEOUT_S = 30.0
CLICKHOUSE_STOP_TIMEOUT_S = 20.0
TOPIC_OP_TIMEOUT_S = 30.0


def _lock_path(settings: Settings) -> Path:
    return Path(settings.state_dir).resolve() / "infra.lock"


# ---------------------------------------------------------------------------------------------
# install


def ensure_installed(settings: Settings) -> None:
    """Everything ``ensure_up`` needs on disk: Kafka jars and the ClickHouse package."""
    if kafka_local.is_local(settings):
        kafka_local.fetch_jars(settings)
    if clickhouse_local.is_local(settings):
        clickhouse_local.ensure_package()


# ---------------------------------------------------------------------------------------------
# up


def _clickhouse_answers(settings: Settings) -> bool:
    return clickhouse_local.version(settings, timeout=2.0) is not None


def _port_taken_error(service: str, host: str, port: int, env_var: str) -> UserError:
    owner = procs.port_owner(port)
    who = f"\n  {owner}" if owner else ""
    return UserError(
        f"port {port} on {host} is taken by a process that hzbus infra did not start and that does not "
        f"answer as {service}:{who}\nStop it, or set {env_var} (and the port settings) to free ports."
    )


def _start_kafka(settings: Settings) -> int | None:
    """Start the broker unless it runs; returns the pid to wait for."""
    host, port = kafka_local.endpoint(settings)
    if not kafka_local.is_local(settings):
        raise UserError(
            f"the Kafka broker at {settings.kafka_bootstrap} does not answer; hzbus infra starts a broker "
            "only on this machine (HZBUS_KAFKA_BOOTSTRAP=127.0.0.1:<port>)"
        )
    pid = kafka_local.running_pid(settings)
    if pid is not None:
        procs.say(f"Kafka broker already started (pid {pid})")
        return pid
    for p, env_var in (
        (port, "HZBUS_KAFKA_BOOTSTRAP"),
        (settings.kafka_scram_port, "HZBUS_KAFKA_SCRAM_PORT"),
        (settings.kafka_controller_port, "HZBUS_KAFKA_CONTROLLER_PORT"),
    ):
        if procs.port_open(host, p):
            raise _port_taken_error("a Kafka broker", host, p, env_var)
    kafka_local.fetch_jars(settings)
    kafka_local.write_config(settings)
    if (
        kafka_auth.secured(settings)
        and kafka_local.is_formatted(settings)
        and not kafka_security.operator_marker(settings).exists()
    ):
        raise UserError(
            "this broker's storage was formatted before the secured mode, so the operator has no "
            "SCRAM credential on it yet: start it once in the open mode (`hzbus infra up` without "
            "HZBUS_KAFKA_SECURITY), then `HZBUS_KAFKA_SECURITY=scram hzbus infra restart` "
            "(docs/security.md)"
        )
    kafka_local.format_storage(settings)
    pid = kafka_local.spawn(settings)
    procs.say(f"starting Kafka {kafka_local.pom_version()} broker on {host}:{port} (pid {pid})")
    return pid


def _start_clickhouse(settings: Settings) -> int | None:
    host = settings.clickhouse_host
    if not clickhouse_local.is_local(settings):
        raise UserError(
            f"ClickHouse at {host}:{settings.clickhouse_port} does not answer; hzbus infra starts "
            "ClickHouse only on this machine (HZBUS_CLICKHOUSE_HOST=127.0.0.1)"
        )
    pid = clickhouse_local.running_pid(settings)
    if pid is not None:
        procs.say(f"ClickHouse already started (pid {pid})")
        return pid
    for p, env_var in (
        (settings.clickhouse_port, "HZBUS_CLICKHOUSE_PORT"),
        (settings.clickhouse_http_port, "HZBUS_CLICKHOUSE_HTTP_PORT"),
    ):
        if procs.port_open(host, p):
            raise _port_taken_error("ClickHouse", host, p, env_var)
    binary = clickhouse_local.ensure_package()
    clickhouse_local.write_config(settings)
    pid = clickhouse_local.spawn(settings, binary)
    procs.say(f"starting ClickHouse on {host}:{settings.clickhouse_port} (pid {pid})")
    return pid


def ensure_up(settings: Settings) -> None:
    """Kafka and ClickHouse answer when this returns (started here if needed).

    Idempotent: when both already answer it only asks them (a few milliseconds). It never stops
    or restarts anything: a broker started with an older configuration is reported (``restart``
    applies it), and the analyst user of the local ClickHouse is (re)written, which the server
    reloads by itself.
    """
    if not (kafka_local.answers(settings) and _clickhouse_answers(settings)):
        _start_missing(settings)
    _refresh_live_config(settings)
    _note_foreign_services(settings)


_noted: set[tuple[str, str]] = set()


def foreign_services(settings: Settings) -> list[str]:
    """The services that answer on this checkout's ports but were not started from it (another
    checkout's, a docker compose, anything else): ``["Kafka on 127.0.0.1:19092", ...]``."""
    foreign = []
    if kafka_local.running_pid(settings) is None:
        foreign.append(f"Kafka on {settings.kafka_bootstrap}")
    if clickhouse_local.running_pid(settings) is None:
        foreign.append(f"ClickHouse on 127.0.0.1:{settings.clickhouse_port}")
    return foreign


def _note_foreign_services(settings: Settings) -> None:
    """Say once per process when the services in use were not started from this checkout: their
    configuration (ClickHouse users such as the analysts', the broker's SCRAM logins) is whoever
    started them, not this checkout's ``state_dir``, so the secured mode and the analyst user
    may not be what this checkout expects."""
    foreign = foreign_services(settings)
    key = (str(settings.state_dir), ",".join(foreign))
    if not foreign or key in _noted:
        return
    _noted.add(key)
    procs.say(
        f"hzbus infra: {' and '.join(foreign)} answer but were not started from this checkout "
        f"({settings.state_dir}); using them as they are. Their configuration (ClickHouse users "
        "such as the analyst's, the broker's SCRAM logins) is that of whoever started them. To run "
        "this checkout's own, stop those (`hzbus infra down` where they were started) or give this "
        "one other ports (docs/infra.md)."
    )


def _refresh_live_config(settings: Settings) -> None:
    if clickhouse_local.running_pid(settings) is not None:
        clickhouse_local.write_analyst_user(settings)
    if kafka_local.running_pid(settings) is not None and not kafka_local.config_is_current(settings):
        procs.say(
            "kafka: the broker runs with an older configuration than this version writes (e.g. no "
            "SCRAM listener yet, or another HZBUS_KAFKA_SECURITY); `hzbus infra restart` applies it"
        )


def _start_missing(settings: Settings) -> None:
    with procs.file_lock(_lock_path(settings)):
        # re-check under the lock: another process may just have started them
        kafka_ok = kafka_local.answers(settings)
        ch_ok = _clickhouse_answers(settings)
        # start both (the JVM is the slow one, so it goes first), then wait for both
        kafka_pid = None if kafka_ok else _start_kafka(settings)
        ch_pid = None if ch_ok else _start_clickhouse(settings)
        if not ch_ok:
            clickhouse_local.wait_ready(settings, ch_pid)
        if not kafka_ok:
            kafka_local.wait_ready(settings, kafka_pid)


# ---------------------------------------------------------------------------------------------
# down


def down(settings: Settings) -> dict[str, str]:
    """Stop the broker and the server that we started (pid file + command line check)."""
    result: dict[str, str] = {}
    services: list[tuple[str, int | None, Path, float, bool]] = [
        (
            "kafka",
            kafka_local.running_pid(settings),
            kafka_local.paths(settings).pidfile,
            KAFKA_STOP_TIMEOUT_S,
            kafka_local.answers(settings, timeout=2.0),
        ),
        (
            "clickhouse",
            clickhouse_local.running_pid(settings),
            clickhouse_local.paths(settings).pidfile,
            CLICKHOUSE_STOP_TIMEOUT_S,
            _clickhouse_answers(settings),
        ),
    ]
    for name, pid, pidfile, timeout, answering in services:
        if pid is None:
            pidfile.unlink(missing_ok=True)
            outcome = "not ours (something else answers; left alone)" if answering else "not running"
            procs.say(f"{name}: {outcome}")
        else:
            procs.say(f"stopping {name} (pid {pid})… ", end="")
            started = time.monotonic()
            outcome = procs.stop(pid, timeout)
            pidfile.unlink(missing_ok=True)
            procs.say(f"{outcome} ({time.monotonic() - started:.1f} s)")
        result[name] = outcome
    return result


# ---------------------------------------------------------------------------------------------
# restart


def restart(settings: Settings) -> dict[str, str]:
    """Stop the services we started and start them again with the current configuration (a new
    version's listeners, another ``kafka_security``). A broker about to become secured first gives
    the operator a SCRAM credential through its open listener, if it has none yet."""
    if kafka_local.running_pid(settings) is not None and kafka_auth.secured(settings):
        kafka_security.register_operator_if_open(settings)
    stopped = down(settings)
    ensure_up(settings)
    return stopped


# ---------------------------------------------------------------------------------------------
# status


def _kafka_topics(settings: Settings) -> list[str] | None:
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient(kafka_local.admin_config(settings)).list_topics(timeout=5.0)
    except Exception:
        return None
    return sorted(t for t in md.topics if not t.startswith("__"))


def status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Both services: ``state`` (running / starting / stopped), ``managed`` (started by us), pid, …"""
    _, port = kafka_local.endpoint(settings)
    kpid = kafka_local.running_pid(settings)
    kafka_up = kafka_local.answers(settings, timeout=3.0)
    topics = _kafka_topics(settings) if kafka_up else None
    prefix = settings.topic_prefix + "."
    kafka: dict[str, Any] = {
        "state": "running" if kafka_up else ("starting" if kpid else "stopped"),
        "managed": kpid is not None,
        "pid": kpid,
        "bootstrap": settings.kafka_bootstrap,
        "port": port,
        "controller_port": settings.kafka_controller_port if kafka_local.is_local(settings) else None,
        "version": kafka_local.pom_version() if kpid else None,
        "topics": len(topics) if topics is not None else None,
        "bus_topics": len([t for t in topics if t.startswith(prefix)]) if topics is not None else None,
        "state_dir": str(kafka_local.paths(settings).root),
    }
    cpid = clickhouse_local.running_pid(settings)
    ch_version = clickhouse_local.version(settings, timeout=3.0)
    clickhouse: dict[str, Any] = {
        "state": "running" if ch_version else ("starting" if cpid else "stopped"),
        "managed": cpid is not None,
        "pid": cpid,
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "http_port": settings.clickhouse_http_port,
        "version": ch_version,
        "state_dir": str(clickhouse_local.paths(settings).root),
    }
    return {"kafka": kafka, "clickhouse": clickhouse}


# ---------------------------------------------------------------------------------------------
# topics


def _admin(settings: Settings) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(kafka_local.admin_config(settings))


def _metadata(admin: Any, settings: Settings) -> Any:
    try:
        return admin.list_topics(timeout=10.0)
    except Exception as exc:
        raise UserError(
            f"the Kafka broker at {settings.kafka_bootstrap} does not answer ({exc}); "
            "start it with `hzbus infra up`"
        ) from exc


def _refused(settings: Settings, what: str) -> UserError:
    principal = kafka_auth.principal_of(kafka_auth.client_config(settings))
    hint = (
        "the broker runs in the secured mode: set HZBUS_KAFKA_SECURITY=scram (docs/security.md)"
        if not kafka_auth.secured(settings)
        else "infra commands need the operator's login (or HZBUS_KAFKA_USERNAME of a principal allowed to)"
    )
    return UserError(f"{what}: Kafka refused {principal}: {hint}")


def _error_code(exc: BaseException) -> Any:
    err: Any = exc.args[0] if exc.args else None
    return err.code() if hasattr(err, "code") else None


def ensure_topics(
    settings: Settings, prefix: str | None = None, extra: list[TopicSpec] | None = None
) -> dict[str, list[str]]:
    """Create every catalogue topic for ``prefix`` (default ``settings.topic_prefix``).

    Idempotent. Existing topics are checked: a wrong partition count is an error (changing it would
    move keys to other partitions); a config that differs from the catalogue (e.g. a topic without
    ``message.timestamp.type=LogAppendTime``) is set to the catalogue's value.
    ``extra`` adds topics outside the catalogue (the worker's table changelogs).
    Returns the names ``created``, ``existing`` and ``fixed``.
    """
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    specs = [*all_topics(prefix or settings.topic_prefix), *(extra or [])]
    admin = _admin(settings)
    md = _metadata(admin, settings)
    missing = [s for s in specs if s.name not in md.topics]
    created: list[str] = []
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=REPLICATION_FACTOR,
                    config=dict(s.config),
                )
                for s in missing
            ],
            operation_timeout=TOPIC_OP_TIMEOUT_S,
            request_timeout=TOPIC_OP_TIMEOUT_S,
        )
        for name, fut in futures.items():
            try:
                fut.result()
                created.append(name)
            except Exception as exc:
                if _error_code(exc) == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    raise _refused(settings, f"creating topic {name}") from None
                if _error_code(exc) != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise UserError(f"creating topic {name} failed: {exc}") from exc
    existing = [s for s in specs if s.name not in created]
    fixed = _verify_existing(admin, settings, existing) if existing else []
    _wait_for_leaders(admin, settings, [s.name for s in specs])
    if created:
        _wait_for_logs(admin, settings, created)
    return {"created": sorted(created), "existing": sorted(s.name for s in existing), "fixed": fixed}


def _verify_existing(admin: Any, settings: Settings, specs: list[TopicSpec]) -> list[str]:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    md = _metadata(admin, settings)
    wrong = [
        f"{s.name}: {len(md.topics[s.name].partitions)} partitions, catalogue says {s.partitions}"
        for s in specs
        if s.name in md.topics and len(md.topics[s.name].partitions) != s.partitions
    ]
    if wrong:
        raise UserError(
            "existing topics do not match infra/topics.json (partition counts are not changed "
            "automatically: that would move keys to other partitions):\n  " + "\n  ".join(wrong)
        )
    to_check = [s for s in specs if s.config]
    if not to_check:
        return []
    actual = _describe(admin, [s.name for s in to_check])
    alters = []
    fixed = []
    for s in to_check:
        diffs = {k: v for k, v in s.config.items() if actual.get(s.name, {}).get(k) != v}
        if not diffs:
            continue
        desc = ", ".join(f"{k}: {actual.get(s.name, {}).get(k)} → {v}" for k, v in diffs.items())
        procs.say(f"topic {s.name}: setting {desc}")
        fixed.append(s.name)
        alters.append(
            ConfigResource(
                ResourceType.TOPIC,
                s.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in diffs.items()
                ],
            )
        )
    if alters:
        for res, fut in admin.incremental_alter_configs(alters, request_timeout=TOPIC_OP_TIMEOUT_S).items():
            try:
                fut.result()
            except Exception as exc:
                raise UserError(f"changing the config of topic {res.name} failed: {exc}") from exc
        # the broker applies the change when it replays the metadata log: wait until it shows,
        # so that a record produced right after gets the right timestamp type
        deadline = time.monotonic() + 15.0
        while True:
            actual = _describe(admin, fixed)
            stale = [
                s.name
                for s in to_check
                if s.name in fixed and any(actual[s.name].get(k) != v for k, v in s.config.items())
            ]
            if not stale:
                break
            if time.monotonic() > deadline:
                raise UserError(f"config change not visible on the broker after 15 s: {', '.join(stale)}")
            time.sleep(0.1)
    return sorted(fixed)


def _describe(admin: Any, names: list[str]) -> dict[str, dict[str, str | None]]:
    from confluent_kafka.admin import ConfigResource, ResourceType

    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, n) for n in names], request_timeout=TOPIC_OP_TIMEOUT_S
    )
    actual: dict[str, dict[str, str | None]] = {}
    for res, fut in futures.items():
        try:
            entries = fut.result()
        except Exception as exc:
            raise UserError(f"describing the config of topic {res.name} failed: {exc}") from exc
        actual[res.name] = {k: e.value for k, e in entries.items()}
    return actual


def _wait_for_leaders(admin: Any, settings: Settings, names: list[str], budget: float = 15.0) -> None:
    """Until every partition of ``names`` has a leader (producers right after creation succeed)."""
    deadline = time.monotonic() + budget
    pending = names
    while True:
        md = _metadata(admin, settings)
        pending = [
            n
            for n in names
            if n not in md.topics
            or md.topics[n].error is not None
            or any(p.leader < 0 for p in md.topics[n].partitions.values())
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise UserError(f"topics without a partition leader after {budget:.0f} s: {', '.join(pending)}")
        time.sleep(0.1)


def _wait_for_logs(admin: Any, settings: Settings, names: list[str], budget: float = 30.0) -> None:
    """Until the broker serves every partition of the topics just created: their offsets can be
    listed, so their logs exist. Metadata names a leader before the broker has created the
    partition's log (up to ~0.5 s later for 16 new topics here), and an idempotent producer that
    starts meanwhile can see the topic come and go: librdkafka then renumbers its sequence on that
    partition and the broker takes the first batch again as a duplicate of one it never wrote,
    acknowledged and lost (librdkafka#3712; seen as 3 events missing of 2,878 in the two-worker
    test, and 1 in the crash test, both right after their topics were created)."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    md = _metadata(admin, settings)
    wanted = [TopicPartition(n, p) for n in names if n in md.topics for p in md.topics[n].partitions]
    deadline = time.monotonic() + budget
    while wanted:
        futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in wanted}, request_timeout=10)
        not_yet = []
        for tp, fut in futures.items():
            try:
                fut.result()
            except Exception:  # not served yet (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PART)
                not_yet.append(TopicPartition(tp.topic, tp.partition))
        wanted = not_yet
        if wanted and time.monotonic() > deadline:
            names_left = sorted({tp.topic for tp in wanted})
            raise UserError(f"topics created but not served after {budget:.0f} s: {', '.join(names_left)}")
        if wanted:
            time.sleep(0.1)


def delete_topics(settings: Settings, prefix: str) -> list[str]:
    """Delete the catalogue topics of ``prefix`` (tests clean up their ``t_<random>`` prefix).

    Refuses the configured bus prefix: that is the bus's data.
    """
    if prefix == settings.topic_prefix:
        raise UserError(f"refusing to delete the bus's own topics (prefix {prefix!r})")
    admin = _admin(settings)
    md = _metadata(admin, settings)
    names = [s.name for s in all_topics(prefix) if s.name in md.topics]
    if not names:
        return []
    for name, fut in admin.delete_topics(names, operation_timeout=TOPIC_OP_TIMEOUT_S).items():
        try:
            fut.result()
        except Exception as exc:
            raise UserError(f"deleting topic {name} failed: {exc}") from exc
    return sorted(names)


def delete_prefix(settings: Settings, prefix: str, wait_groups: float = 60.0) -> list[str]:
    """Everything of a (test or demo) prefix on the broker: its catalogue topics, the worker's
    internal topics (``<prefix>-worker-*``: table changelogs, assignor) and the consumer groups
    of the prefix, so that a prefix used again starts from nothing. Refuses the bus prefix."""
    deleted = delete_topics(settings, prefix)
    admin = _admin(settings)
    md = _metadata(admin, settings)
    internal = [name for name in md.topics if name.startswith((f"{prefix}-worker-", f"{prefix}.ingress."))]
    if internal:
        for name, fut in admin.delete_topics(internal, operation_timeout=TOPIC_OP_TIMEOUT_S).items():
            try:
                fut.result()
            except Exception as exc:
                raise UserError(f"deleting topic {name} failed: {exc}") from exc
    groups = [
        g.group_id
        for g in admin.list_consumer_groups().result(timeout=TOPIC_OP_TIMEOUT_S).valid
        if g.group_id.startswith((f"{prefix}-worker", f"{prefix}."))
    ]
    deadline = time.monotonic() + wait_groups
    while groups:
        busy = []
        for group, fut in admin.delete_consumer_groups(groups, request_timeout=TOPIC_OP_TIMEOUT_S).items():
            try:
                fut.result()
            except Exception as exc:  # a member still leaving: wait for it, within reason
                if "NON_EMPTY_GROUP" not in str(exc) or time.monotonic() > deadline:
                    raise UserError(f"deleting consumer group {group!r} failed: {exc}") from exc
                busy.append(group)
        groups = busy
        if groups:
            time.sleep(1.0)
    kafka_security.delete_prefix_acls(admin, prefix)
    gone = {*deleted, *internal}
    until = time.monotonic() + TOPIC_OP_TIMEOUT_S
    while gone & set(_metadata(admin, settings).topics) and time.monotonic() < until:
        time.sleep(0.2)  # deletion is asynchronous: a topic re-created too early would vanish
    return sorted(gone)
