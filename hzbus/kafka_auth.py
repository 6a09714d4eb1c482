"""How this process signs in to Kafka: the client settings of the open and the secured mode.

``kafka_security = "none"`` (the default, the demo): the PLAINTEXT listener of
``kafka_bootstrap``, no identity. ``"scram"``: SASL/SCRAM-SHA-256 as a principal of
``hzbus.identity`` — on the local broker its second listener (``kafka_scram_port``), on any other
broker ``kafka_bootstrap`` itself. The principal is ``kafka_username`` / ``kafka_password``
when set (a department's adapter machine holds only its own), otherwise the one the command acts
as (``hzbus publish --dept X`` → ``dept-X``, the sink / worker / gate → ``hzbus-bus``, ``hzbus
infra`` → ``hzbus-operator``), with its password from the credential store that ``hzbus infra
principals`` keeps under the state dir (``<state>/kafka/credentials/<principal>``, mode 0600).
docs/security.md.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.identity import OPERATOR

MODES = ("none", "scram")
MECHANISM = "SCRAM-SHA-256"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def mode(settings: Settings) -> str:
    if settings.kafka_security not in MODES:
        raise UserError(
            f"HZBUS_KAFKA_SECURITY={settings.kafka_security!r}: expected one of {', '.join(MODES)}"
        )
    return settings.kafka_security


def secured(settings: Settings) -> bool:
    return mode(settings) == "scram"


def _first_endpoint(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip().split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"HZBUS_KAFKA_BOOTSTRAP={bootstrap!r}: expected host:port")
    return host.strip("[]"), int(port)


def scram_bootstrap(settings: Settings) -> str:
    """Where SCRAM clients connect: the local broker's SCRAM listener, or a remote bootstrap as is."""
    host, _ = _first_endpoint(settings.kafka_bootstrap)
    if host in LOCAL_HOSTS:
        return f"{'127.0.0.1' if host == 'localhost' else host}:{settings.kafka_scram_port}"
    return settings.kafka_bootstrap


def bootstrap(settings: Settings) -> str:
    """The bootstrap servers of this process's clients in the configured mode."""
    return scram_bootstrap(settings) if secured(settings) else settings.kafka_bootstrap


# ---------------------------------------------------------------------------------------------
# the credential store


def credentials_dir(settings: Settings) -> Path:
    return Path(settings.state_dir).resolve() / "kafka" / "credentials"


def password_path(settings: Settings, principal: str) -> Path:
    return credentials_dir(settings) / principal


def stored_password(settings: Settings, principal: str) -> str | None:
    try:
        return password_path(settings, principal).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def ensure_password(settings: Settings, principal: str) -> tuple[str, bool]:
    """The stored password of ``principal``, generated (and kept, mode 0600) when there is none;
    ``True`` when it was generated now. Two processes racing get the same password: the file is
    linked into place only if absent."""
    existing = stored_password(settings, principal)
    if existing:
        return existing, False
    folder = credentials_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    tmp = folder / f".{principal}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(24) + "\n")
    try:
        os.link(tmp, password_path(settings, principal))
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink()
    password = stored_password(settings, principal)
    assert password is not None
    return password, created


def identity(settings: Settings, principal: str) -> tuple[str, str]:
    """(user, password) this process signs in with when it acts as ``principal``."""
    if settings.kafka_username:
        if not settings.kafka_password:
            raise UserError("HZBUS_KAFKA_USERNAME is set but HZBUS_KAFKA_PASSWORD is empty")
        return settings.kafka_username, settings.kafka_password
    password = stored_password(settings, principal)
    if password is None:
        raise UserError(
            f"no Kafka password for principal {principal!r}: set HZBUS_KAFKA_USERNAME and "
            f"HZBUS_KAFKA_PASSWORD, or create the principals with `hzbus infra principals` "
            f"(credential store {credentials_dir(settings)})"
        )
    return principal, password


# ---------------------------------------------------------------------------------------------
# client settings


def client_config(settings: Settings, principal: str = OPERATOR) -> dict[str, Any]:
    """librdkafka (confluent-kafka) settings: bootstrap servers and, in the secured mode, the
    SASL/SCRAM login of ``principal`` (or of ``kafka_username``). Merge into a client's config."""
    if not secured(settings):
        return {"bootstrap.servers": settings.kafka_bootstrap}
    user, password = identity(settings, principal)
    return {
        "bootstrap.servers": scram_bootstrap(settings),
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }


def principal_of(config: dict[str, Any]) -> str:
    """``User:<name>`` of a client config (``User:ANONYMOUS`` on the open listener)."""
    return f"User:{config.get('sasl.username') or 'ANONYMOUS'}"


def faust_options(settings: Settings, principal: str) -> dict[str, Any]:
    """``faust.App`` keyword arguments: the broker URL and, secured, the SCRAM credentials."""
    if not secured(settings):
        return {"broker": f"kafka://{settings.kafka_bootstrap}"}
    import faust

    user, password = identity(settings, principal)
    servers = ";".join(f"kafka://{s.strip()}" for s in scram_bootstrap(settings).split(","))
    return {
        "broker": servers,
        "broker_credentials": faust.SASLCredentials(
            username=user, password=password, mechanism=MECHANISM, ssl_context=None
        ),
    }


def aiokafka_options(settings: Settings, principal: str) -> dict[str, Any]:
    """``AIOKafkaConsumer`` / ``AIOKafkaProducer`` keyword arguments: the bootstrap servers and,
    secured, the SCRAM login of ``principal`` (the worker's route consumer: docs/performance.md)."""
    if not secured(settings):
        return {"bootstrap_servers": settings.kafka_bootstrap}
    user, password = identity(settings, principal)
    return {
        "bootstrap_servers": scram_bootstrap(settings),
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }
