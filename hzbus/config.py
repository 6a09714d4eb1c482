"""Configuration: one place that reads the environment (and an optional TOML file).

Nothing connects at import time; processes build their adapters from a ``Settings`` value.
Every setting has an environment variable ``HZBUS_<NAME>`` and a key of the same name
(lower case) in the file named by ``HZBUS_CONFIG`` (default ``./hzbus.toml`` if present).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    #: Kafka bootstrap servers of the bus.
    kafka_bootstrap: str = "127.0.0.1:19092"
    #: KRaft controller port of the local broker (only used by ``hzbus infra``).
    kafka_controller_port: int = 19093
    #: "none": the open listener (the local default, the demo); "scram": every client signs in as
    #: its principal (SASL/SCRAM-SHA-256) and departments publish through the gate (docs/security.md).
    kafka_security: str = "none"
    #: SCRAM listener of the local broker (always open next to the PLAINTEXT one).
    kafka_scram_port: int = 19094
    #: This process's Kafka principal and password in scram mode (a department's adapter machine
    #: sets its own); empty: the credential store of ``hzbus infra principals`` under the state dir.
    kafka_username: str = ""
    kafka_password: str = ""
    #: Prefix of every topic name; tests isolate themselves with their own prefix.
    topic_prefix: str = "hzbus"
    #: ClickHouse native-protocol endpoint.
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 19000
    clickhouse_http_port: int = 18123
    clickhouse_user: str = "default"
    clickhouse_password: str = ""
    clickhouse_database: str = "hzbus"
    #: The read-only analyst user of the local server (docs/security.md); its password is
    #: generated into the state dir unless set here.
    clickhouse_analyst_user: str = "analyst"
    clickhouse_analyst_password: str = ""
    #: Name of a cluster in the servers' <remote_servers>: the migrations then create replicated
    #: tables ON CLUSTER behind Distributed tables (docs/clickhouse-cluster.md). Empty: one server.
    clickhouse_cluster: str = ""
    #: Where ``hzbus infra`` keeps downloads, data, logs and pid files.
    state_dir: Path = PROJECT_ROOT / ".state"
    #: Whether the broker and ClickHouse servers ``hzbus infra`` starts are killed when the
    #: process that started them dies. Off: the services outlive ``infra up`` (the usual case).
    #: On for throw-away services (the fault tests' private pair, a test cluster), so that an
    #: interrupted test run leaves none running.
    services_die_with_parent: bool = False
    #: Key of the keyed hash that pseudonymises personal ID numbers [信息资源共享机制 五].
    #: The default is for local demos only; set HZBUS_PSEUDONYM_KEY in any real deployment.
    pseudonym_key: str = "hzbus-local-development-key"
    #: Seconds a consumer (the sink, the worker) may go silent before the broker hands its
    #: partitions to others. A process killed without leaving its group holds them that long:
    #: its restart resumes after it (the fault tests use the broker's minimum, 6).
    kafka_session_timeout: float = 30.0
    #: Sink batching.
    sink_batch_size: int = 20000
    sink_batch_seconds: float = 1.0

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.deadletter"


def _coerce(value: Any, like: Any) -> Any:
    if isinstance(like, bool):
        return str(value).lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, Path):
        return Path(value)
    return str(value)


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, then the config file, then ``HZBUS_*`` variables, then overrides."""
    env = dict(os.environ) if env is None else env
    base = Settings()
    values: dict[str, Any] = {}
    config_path = Path(env.get("HZBUS_CONFIG", "hzbus.toml"))
    if config_path.is_file():
        with config_path.open("rb") as fh:
            values.update(tomllib.load(fh))
    for f in fields(Settings):
        key = f"HZBUS_{f.name.upper()}"
        if key in env:
            values[f.name] = env[key]
    values.update(overrides)
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown setting(s) in {config_path}: {', '.join(sorted(unknown))}")
    return replace(base, **{k: _coerce(v, getattr(base, k)) for k, v in values.items()})
