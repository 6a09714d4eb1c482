"""The local Apache Kafka broker: jars from Maven Central, KRaft single node, run detached.

State under ``<state_dir>/kafka/``::

    libs/              broker + tools jars (stamp file .pom.sha256 = hash of infra/kafka/pom.xml)
    config/            server.properties, log4j2.xml (regenerated on every start)
    data/              KRaft metadata + topic logs (formatted once: data/meta.properties)
    logs/              server.log (log4j2), stdout.log (JVM output)
    kafka.pid
"""

from __future__ import annotations

import base64
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from hzbus.config import Settings
from hzbus.errors import UserError
from infra import maven, procs

HERE = Path(__file__).resolve().parent / "kafka"
POM = HERE / "pom.xml"
MAIN_CLASS = "kafka.Kafka"
JVM_OPTS = ("-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")
READY_BUDGET_S = 60.0
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class KafkaPaths:
    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def stamp(self) -> Path:
        return self.libs / ".pom.sha256"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def server_properties(self) -> Path:
        return self.config_dir / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.config_dir / "log4j2.xml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs / "stdout.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "kafka.pid"


def paths(settings: Settings) -> KafkaPaths:
    return KafkaPaths(Path(settings.state_dir).resolve() / "kafka")


def endpoint(settings: Settings) -> tuple[str, int]:
    """(host, port) of the first bootstrap server."""
    first = settings.kafka_bootstrap.split(",")[0].strip()
    first = first.split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"HZBUS_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r}: expected host:port")
    return host.strip("[]"), int(port)


def is_local(settings: Settings) -> bool:
    return endpoint(settings)[0] in LOCAL_HOSTS


def pom_version() -> str:
    return maven.pom_property(POM, "kafka.version")


def jars_ready(settings: Settings) -> bool:
    return maven.jars_ready(POM, paths(settings).libs, "kafka_2.13-*.jar")


def fetch_jars(settings: Settings) -> None:
    """Broker and tools jars into ``libs/`` (skipped when present for this pom)."""
    maven.fetch(
        POM,
        paths(settings).libs,
        marker="kafka_2.13-*.jar",
        what=f"Kafka {pom_version()}",
        hint="or point HZBUS_KAFKA_BOOTSTRAP at an existing broker.",
    )


def rendered_config(settings: Settings) -> dict[Path, str]:
    """The text of each generated config file, as ``write_config`` writes it."""
    from infra import kafka_security

    p = paths(settings)
    host, port = endpoint(settings)
    values = {
        "host": "127.0.0.1" if host == "localhost" else host,
        "port": port,
        "controller_port": settings.kafka_controller_port,
        "data_dir": str(p.data),
        "logs_dir": str(p.logs),
        **kafka_security.broker_values(settings),
    }
    return {
        target: Template((HERE / template).read_text(encoding="utf-8")).substitute(values)
        for template, target in (
            ("server.template.properties", p.server_properties),
            ("log4j2.template.xml", p.log4j),
        )
    }


def write_config(settings: Settings) -> None:
    p = paths(settings)
    for d in (p.config_dir, p.data, p.logs):
        d.mkdir(parents=True, exist_ok=True)
    for target, text in rendered_config(settings).items():
        target.touch(mode=0o600)  # server.properties holds the controller's password
        target.chmod(0o600)
        target.write_text(text, encoding="utf-8")


def config_is_current(settings: Settings) -> bool:
    """Whether the config files on disk (those the running broker read) are what this version and
    these settings would write; False: a restart (``hzbus infra restart``) applies the change."""
    return all(
        target.is_file() and target.read_text(encoding="utf-8") == text
        for target, text in rendered_config(settings).items()
    )


def _random_cluster_id() -> str:
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):
            return cid


def _java_base(settings: Settings) -> list[str]:
    p = paths(settings)
    return ["java", *JVM_OPTS, f"-Dlog4j2.configurationFile={p.log4j}", "-cp", f"{p.libs}/*"]


def is_formatted(settings: Settings) -> bool:
    return (paths(settings).data / "meta.properties").is_file()


def format_storage(settings: Settings) -> None:
    """KRaft storage, once: ``StorageTool format --standalone`` (Kafka 4.x dynamic quorum)."""
    if is_formatted(settings):
        return
    from infra import kafka_security

    p = paths(settings)
    procs.say("formatting KRaft storage… ", end="")
    started = time.monotonic()
    cmd = [
        "java",
        "-Xmx256m",
        f"-Dlog4j2.configurationFile={p.log4j}",
        "-cp",
        f"{p.libs}/*",
        "kafka.tools.StorageTool",
        "format",
        "-t",
        _random_cluster_id(),
        "-c",
        str(p.server_properties),
        "--standalone",
        *kafka_security.format_args(settings),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        procs.say("failed")
        out = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise UserError(f"formatting the KRaft storage in {p.data} failed:\n{out}")
    kafka_security.operator_marker(settings).touch()
    procs.say(f"ok ({time.monotonic() - started:.1f} s)")


def running_pid(settings: Settings) -> int | None:
    """Pid of the broker we started (pid file + command line check), if it runs."""
    p = paths(settings)
    return procs.our_pid(p.pidfile, [MAIN_CLASS, str(p.server_properties)])


def spawn(settings: Settings) -> int:
    p = paths(settings)
    argv = [*_java_base(settings), MAIN_CLASS, str(p.server_properties)]
    return procs.spawn(
        argv, cwd=p.root, output=p.stdout_log, pidfile=p.pidfile, tied=settings.services_die_with_parent
    )


def admin_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """AdminClient settings that keep librdkafka quiet while the broker is away (in the secured
    mode signed in as the operator, or as ``kafka_username``)."""
    from hzbus.kafka_auth import client_config

    return {
        **client_config(settings),
        "log_level": 0,
        "error_cb": lambda _err: None,
        "socket.connection.setup.timeout.ms": 3000,
        **extra,
    }


def answers(settings: Settings, timeout: float = 5.0) -> bool:
    """A metadata request succeeds (a TCP pre-check keeps the 'nothing there' case instant)."""
    from confluent_kafka.admin import AdminClient

    host, port = endpoint(settings)
    if not procs.port_open(host, port):
        return False
    try:
        md = AdminClient(admin_config(settings)).list_topics(timeout=timeout)
    except Exception:
        return False
    return bool(md.brokers)


def log_tail(settings: Settings, lines: int = 30) -> str:
    p = paths(settings)
    parts = []
    for path in (p.server_log, p.stdout_log):
        text = procs.tail(path, lines)
        if text.strip():
            parts.append(f"--- {path} (last {lines} lines)\n{text}")
    return "\n".join(parts) or f"(no log output in {p.logs})"


def wait_ready(settings: Settings, pid: int | None, budget: float = READY_BUDGET_S) -> float:
    """Wait for the broker to answer; fail fast with the log if our process died."""
    started = time.monotonic()
    procs.say("waiting for broker… ", end="")
    while True:
        if answers(settings, timeout=2.0):
            elapsed = time.monotonic() - started
            procs.say(f"ok ({elapsed:.1f} s)")
            return elapsed
        if pid is not None and not procs.is_alive(pid):
            procs.say("failed")
            raise UserError(f"the Kafka broker (pid {pid}) exited during start-up.\n{log_tail(settings)}")
        if time.monotonic() - started > budget:
            procs.say("timeout")
            raise UserError(
                f"the Kafka broker did not answer on {settings.kafka_bootstrap} within {budget:.0f} s "
                f"(pid {pid} still running; `hzbus infra down` stops it).\n{log_tail(settings)}"
            )
        time.sleep(0.25)
