"""Department identity on the broker: listeners, SCRAM principals, ingress topics and ACLs.

The local broker always has three listeners (infra/kafka/server.template.properties): the open
PLAINTEXT one, a SASL_PLAINTEXT one with SCRAM-SHA-256 (``kafka_scram_port``) and the KRaft
controller listener with SASL/PLAIN (the broker's own static login ``hzbus-controller``). The
StandardAuthorizer is always on; the security mode only decides whether ``User:ANONYMOUS`` (the
PLAINTEXT listener) is a super user. SCRAM credentials live in the KRaft metadata: the operator's
is added when the storage is formatted (``--add-scram``), every other one — and the operator's on a
broker formatted before — by ``ensure_principals`` through the Admin API
(AlterUserScramCredentials). docs/security.md.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from hzbus import identity, kafka_auth
from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.topics import ingress_spec

SCRAM_ITERATIONS = 4096
OP_TIMEOUT_S = 30.0


def broker_values(settings: Settings) -> dict[str, Any]:
    """The security part of ``server.properties`` (template values)."""
    controller_password, _ = kafka_auth.ensure_password(settings, identity.CONTROLLER)
    security = kafka_auth.mode(settings)
    return {
        "scram_port": settings.kafka_scram_port,
        "controller_user": identity.CONTROLLER,
        "controller_password": controller_password,
        "super_users": ";".join(identity.super_users(security)),
        "security": security,
    }


def operator_marker(settings: Settings) -> Path:
    """Present once the broker of this state dir knows the operator's SCRAM credential."""
    return kafka_auth.credentials_dir(settings) / ".operator-on-broker"


def format_args(settings: Settings) -> list[str]:
    """``StorageTool format`` arguments that put the operator's SCRAM credential into the
    metadata from the start (a secured broker is then administrable at once)."""
    password, _ = kafka_auth.ensure_password(settings, identity.OPERATOR)
    return ["--add-scram", f"{kafka_auth.MECHANISM}=[name={identity.OPERATOR},password={password}]"]


# ---------------------------------------------------------------------------------------------
# principals


def _existing_scram_users(admin: Any, users: list[str]) -> set[str]:
    from confluent_kafka import KafkaError, KafkaException

    found: set[str] = set()
    futures = admin.describe_user_scram_credentials(users, request_timeout=OP_TIMEOUT_S)
    for user, fut in futures.items():
        try:
            desc = fut.result()
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.RESOURCE_NOT_FOUND:
                continue
            raise UserError(
                f"describing the SCRAM credentials of {user} failed: {exc.args[0].str()}"
            ) from None
        if any(info.mechanism.name == "SCRAM_SHA_256" for info in desc.scram_credential_infos):
            found.add(user)
    return found


def ensure_scram_users(settings: Settings, admin: Any, users: list[str]) -> list[str]:
    """A SCRAM-SHA-256 credential on the broker for each of ``users``, with the password of the
    credential store (generated if absent). Returns the users the broker did not know.

    Every credential is written again, known or not: the broker may hold another password for
    a principal (a second checkout's ``infra principals`` on the same broker re-keyed it, and
    this checkout's departments were then refused as "invalid credentials")."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    existing = _existing_scram_users(admin, users)
    upserts = []
    for user in users:
        password, _generated = kafka_auth.ensure_password(settings, user)
        upserts.append(
            UserScramCredentialUpsertion(
                user,
                ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, SCRAM_ITERATIONS),
                password.encode("utf-8"),
            )
        )
    if upserts:
        futures = admin.alter_user_scram_credentials(upserts, request_timeout=OP_TIMEOUT_S)
        for user, fut in futures.items():
            try:
                fut.result()
            except Exception as exc:
                raise UserError(f"creating the SCRAM credential of {user} failed: {exc}") from None
    if identity.OPERATOR in users:
        operator_marker(settings).touch()
    return sorted(set(users) - existing)


def register_operator_if_open(settings: Settings) -> bool:
    """Before a broker is restarted into the secured mode: give the operator a SCRAM credential
    through the open listener while it still lets us (a broker formatted before the secured mode
    has none). False when the open listener refuses (the broker is secured already)."""
    from infra import manager

    open_settings = replace(settings, kafka_security="none")
    try:
        admin = manager._admin(open_settings)
        ensure_scram_users(open_settings, admin, [identity.OPERATOR])
    except UserError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# ACLs


def _binding(entry: identity.AclEntry) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclBinding(
        ResourceType[entry.resource.upper()],
        entry.name,
        ResourcePatternType[entry.pattern.upper()],
        f"User:{entry.principal}",
        "*",
        AclOperation[entry.operation.upper()],
        AclPermissionType.ALLOW,
    )


def ensure_acls(admin: Any, plan: list[identity.AclEntry]) -> None:
    """Create every ACL of ``plan`` (creating an existing ACL is a no-op on the broker)."""
    if not plan:
        return
    from confluent_kafka import KafkaError, KafkaException

    futures = admin.create_acls([_binding(e) for e in plan], request_timeout=OP_TIMEOUT_S)
    for binding, fut in futures.items():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.SECURITY_DISABLED:
                raise UserError(
                    "the broker has no authorizer, so it cannot enforce who writes where: it was "
                    "started with a configuration older than the secured mode; `hzbus infra restart` "
                    "restarts it with the current one (docs/security.md)"
                ) from None
            raise UserError(f"creating the ACL {binding} failed: {exc.args[0].str()}") from None


def prefix_acls(admin: Any, prefix: str) -> list[Any]:
    """The ACL bindings whose resource belongs to ``prefix`` (its topics and groups)."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    anything: Any = None  # None matches any name, principal and host (the stub says str)
    everything = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    from confluent_kafka import KafkaError, KafkaException

    try:
        bindings = admin.describe_acls(everything, request_timeout=OP_TIMEOUT_S).result()
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.SECURITY_DISABLED:
            return []  # a broker without an authorizer has no ACLs
        raise UserError(f"listing the ACLs failed: {exc.args[0].str()}") from None
    return [b for b in bindings if b.name.startswith((f"{prefix}.", f"{prefix}-worker"))]


def delete_prefix_acls(admin: Any, prefix: str) -> int:
    """Drop the ACLs of a (test) prefix; the principals stay (they are per department)."""
    from confluent_kafka.admin import AclBindingFilter

    bindings = prefix_acls(admin, prefix)
    if not bindings:
        return 0
    filters = [
        AclBindingFilter(
            b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
        )
        for b in bindings
    ]
    for flt, fut in admin.delete_acls(filters, request_timeout=OP_TIMEOUT_S).items():
        try:
            fut.result()
        except Exception as exc:
            raise UserError(f"deleting the ACL {flt} failed: {exc}") from None
    return len(bindings)


def wait_for_acls(admin: Any, prefix: str, count: int, budget: float = 15.0) -> None:
    """Until the broker's authorizer shows ``count`` ACLs of ``prefix`` (they take effect when the
    broker has replayed the metadata record; a client right after would still be refused)."""
    deadline = time.monotonic() + budget
    while len(prefix_acls(admin, prefix)) < count:
        if time.monotonic() > deadline:
            raise UserError(f"the ACLs of prefix {prefix} are not visible on the broker after {budget:.0f} s")
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# everything of one prefix


def ensure_principals(
    settings: Settings, prefix: str | None = None, codes: list[str] | None = None
) -> dict[str, Any]:
    """The secured mode's identities for ``prefix``, idempotently: SCRAM credentials for the
    operator, the bus and each department of ``codes`` (default: the whole registry), each
    department's ingress topic, and the ACL plan (``hzbus.identity.acl_plan``).

    Runs as the operator (``hzbus infra``): in the open mode through the PLAINTEXT listener, whose
    ``User:ANONYMOUS`` is a super user there; in the secured mode with the operator's SCRAM login.
    """
    from domain.departments import load_registry
    from infra import kafka_local, manager

    prefix = prefix or settings.topic_prefix
    if codes is None:
        codes = load_registry().codes()
    for code in codes:
        identity.check_code(code)
    admin = manager._admin(settings)
    manager._metadata(admin, settings)  # a clear error when the broker is away
    created = ensure_scram_users(settings, admin, identity.principals(codes))
    topics = manager.ensure_topics(
        settings, prefix=prefix, extra=[ingress_spec(prefix, code) for code in codes]
    )
    plan = identity.acl_plan(prefix, codes)
    ensure_acls(admin, plan)
    wait_for_acls(admin, prefix, len(plan))
    return {
        "principals": identity.principals(codes),
        "created": created,
        "ingress_topics": [identity.ingress_topic(prefix, c) for c in codes],
        "topics_created": topics["created"],
        "acls": plan,
        "credentials": str(kafka_auth.credentials_dir(settings)),
        "scram_bootstrap": kafka_auth.scram_bootstrap(settings),
        "broker": kafka_local.paths(settings).root,
    }
