"""Who may write where on the bus: principal names, ingress topics and the ACL plan (pure).

[信息资源共享机制 五]: each department's adapter may publish only as itself — its authenticated
identity must match ``source_dept``. In the secured mode (``kafka_security = "scram"``,
docs/security.md) every department signs in as ``User:dept-<code>`` and may write exactly one
topic, its ingress topic ``<prefix>.ingress.<code>``. The broker enforces that with an ACL, so the
topic a record arrives on *is* the authenticated identity of its producer: the gate
(``stream_processors/gate.py``) compares it with the record's ``source_dept`` and forwards only
records that match to the family topics, which only the bus and the operator may write.

Principals (SASL/SCRAM user names; Kafka's principal is ``User:<name>``):

``dept-<code>``      a department adapter: WRITE on its ingress topic, nothing else
``hzbus-bus``        the gate, the sink and the worker: everything under the bus's prefix
``hzbus-operator``   imports of past records and ``hzbus infra``: a super user
``hzbus-controller`` the broker's own login on its controller listener (SASL/PLAIN): a super user
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

OPERATOR = "hzbus-operator"
BUS = "hzbus-bus"
CONTROLLER = "hzbus-controller"
DEPT_PREFIX = "dept-"
INGRESS = "ingress"

#: headers the gate sets on the records it forwards (family topics are written only by the bus and
#: the operator in the secured mode, so consumers may trust them there): the broker's append time
#: of the record on the ingress topic — the publication time [协作机制 三(二)1] — and the principal
#: that wrote it
PUBLISHED_HEADER = "hzbus-published-ms"
PRINCIPAL_HEADER = "hzbus-principal"

#: department codes that can be part of a principal and a topic name (Kafka topic names allow
#: letters, digits, '.', '_' and '-'; '.' would make the owner of an ingress topic ambiguous)
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


class IdentityError(ValueError):
    """A department code or principal name that cannot be used as a Kafka identity."""


def check_code(code: str) -> str:
    if not _CODE.match(code):
        raise IdentityError(
            f"department code {code!r} cannot name a Kafka principal or topic (letters, digits and '-')"
        )
    return code


def dept_principal(code: str) -> str:
    """``HZ-SJJ`` → ``dept-HZ-SJJ``: the SCRAM user of a department's adapter."""
    return DEPT_PREFIX + check_code(code)


def dept_of_principal(name: str) -> str | None:
    """``dept-HZ-SJJ`` (or ``User:dept-HZ-SJJ``) → ``HZ-SJJ``; None for the bus's own principals."""
    name = name.removeprefix("User:")
    if not name.startswith(DEPT_PREFIX):
        return None
    code = name[len(DEPT_PREFIX) :]
    return code if _CODE.match(code) else None


def ingress_topic(prefix: str, code: str) -> str:
    """The one topic a department may write: ``<prefix>.ingress.<code>``."""
    return f"{prefix}.{INGRESS}.{check_code(code)}"


def ingress_prefix(prefix: str) -> str:
    return f"{prefix}.{INGRESS}."


def owner_of_ingress_topic(prefix: str, topic: str) -> str | None:
    """The department whose principal alone may write ``topic`` (None: not an ingress topic)."""
    head = ingress_prefix(prefix)
    if not topic.startswith(head):
        return None
    code = topic[len(head) :]
    return code if _CODE.match(code) else None


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ALLOW rule: ``principal`` may ``operation`` on the resource ``resource:name``
    (``pattern``: ``literal`` = exactly that name, ``prefixed`` = every name starting with it)."""

    principal: str
    resource: str  # "topic" | "group" | "cluster"
    name: str
    pattern: str  # "literal" | "prefixed"
    operation: str  # "write" | "all" | ...

    def describe(self) -> str:
        target = f"{self.resource} {self.name}" + ("*" if self.pattern == "prefixed" else "")
        return f"User:{self.principal} may {self.operation.upper()} {target}"


def bus_acl_plan(prefix: str) -> list[AclEntry]:
    """The bus principal (gate, sink, worker) on one prefix: every topic and consumer group of the
    prefix (``<prefix>.*``: catalogue, ingress and dead-letter topics; ``<prefix>-worker*``: the
    worker's table changelogs and its group), nothing of other prefixes."""
    return [
        AclEntry(BUS, "topic", f"{prefix}.", "prefixed", "all"),
        AclEntry(BUS, "topic", f"{prefix}-worker", "prefixed", "all"),
        AclEntry(BUS, "group", f"{prefix}.", "prefixed", "all"),
        AclEntry(BUS, "group", f"{prefix}-worker", "prefixed", "all"),
    ]


def dept_acl_plan(prefix: str, codes: Iterable[str]) -> list[AclEntry]:
    """Each department: WRITE (which implies DESCRIBE) on its own ingress topic, literally — no
    prefix pattern, so ``dept-HZ`` could never match ``…ingress.HZ-SJJ``. No READ anywhere."""
    return [
        AclEntry(dept_principal(code), "topic", ingress_topic(prefix, code), "literal", "write")
        for code in codes
    ]


def acl_plan(prefix: str, codes: Iterable[str]) -> list[AclEntry]:
    """Every ACL of a prefix in the secured mode; the operator and the controller are super users
    and need none. Sorted, so that two plans compare equal."""
    return sorted({*bus_acl_plan(prefix), *dept_acl_plan(prefix, codes)})


def principals(codes: Iterable[str]) -> list[str]:
    """Every SCRAM user of the secured mode: the operator, the bus, one per department."""
    return [OPERATOR, BUS, *(dept_principal(c) for c in codes)]


def super_users(security: str) -> list[str]:
    """``super.users`` of the local broker: in the open mode (``none``) whoever uses the PLAINTEXT
    listener (``User:ANONYMOUS``) is one too, so the demo runs unchanged."""
    users = [f"User:{CONTROLLER}", f"User:{OPERATOR}"]
    if security == "none":
        users.append("User:ANONYMOUS")
    return users


def gate_published_ms(headers: list[tuple[str, bytes | None]] | None, default: int) -> int:
    """The publication time (epoch ms) the gate carried over from the ingress topic, if any."""
    for name, value in headers or ():
        if name == PUBLISHED_HEADER and value:
            try:
                return int(value)
            except ValueError:
                return default
    return default
