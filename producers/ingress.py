"""Publishing in the secured mode: a department to its ingress topic, the operator to the bus.

``make_publisher`` is what ``hzbus publish`` uses. In the open mode it is the plain
:class:`~producers.publisher.KafkaPublisher` (family topics, no identity). In the secured mode
(docs/security.md):

* ``--dept X`` publishes as ``User:dept-X`` to ``<prefix>.ingress.X``, the only topic that
  principal may write; ``hzbus gate`` forwards the records whose ``source_dept`` is X;
* ``--historical`` and ``--each-dept`` are the operator's imports: as ``User:hzbus-operator``,
  straight to the family topics (a department's login is refused there by the broker).

Before anything is sent, the topics are asked for by name: a topic the principal may not write
ends the command with a message naming the principal and the topic, not a traceback
[信息资源共享机制 五].
"""

from __future__ import annotations

from typing import Any

from hzbus import identity, kafka_auth
from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.topics import topic_name
from producers.publisher import KafkaPublisher
from schemas import codec


def check_writable(
    config: dict[str, Any], topics: list[str], why: str, create: str = "hzbus infra principals"
) -> None:
    """Ask the broker about ``topics`` as the client of ``config``; a refusal or a missing topic
    is a :class:`UserError` naming the principal."""
    from confluent_kafka import KafkaError, KafkaException, Producer

    principal = kafka_auth.principal_of(config)
    probe = Producer({**config, "log_level": 0, "error_cb": lambda _err: None})
    refused, missing = [], []
    for topic in topics:
        try:
            md = probe.list_topics(topic=topic, timeout=15)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
                raise UserError(
                    f"Kafka at {config['bootstrap.servers']} refused the login of {principal}: "
                    f"{err.str()} (check HZBUS_KAFKA_USERNAME / HZBUS_KAFKA_PASSWORD)"
                ) from None
            raise UserError(
                f"cannot reach Kafka at {config['bootstrap.servers']}: {err.str()} "
                "(start it with `hzbus infra up`, or set HZBUS_KAFKA_BOOTSTRAP)"
            ) from None
        err = md.topics[topic].error if topic in md.topics else None
        if err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            refused.append(topic)
        elif (err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART) or topic not in md.topics:
            missing.append(topic)
    if refused:
        raise UserError(
            f"Kafka refused {principal}: not authorized to write {', '.join(refused)} — {why} "
            "[信息资源共享机制 五]"
        )
    if missing:
        raise UserError(
            f"topic(s) {', '.join(missing)} do not exist on {config['bootstrap.servers']} "
            f"(create them with `{create}`)"
        )


class IngressPublisher(KafkaPublisher):
    """Every record of one department to its ingress topic, as its principal."""

    def __init__(self, settings: Settings, *, dept: str, prefix: str | None = None, **config: Any) -> None:
        self._ingress = identity.ingress_topic(prefix or settings.topic_prefix, dept)
        self._dept = dept
        self._auth = kafka_auth.client_config(settings, identity.dept_principal(dept))
        super().__init__(settings, prefix=prefix, **{**self._auth, **config})
        for event_type in codec.event_types():
            self._topics[event_type] = self._ingress

    def _check_topics(self, settings: Settings) -> None:
        check_writable(
            self._auth,
            [self._ingress],
            f"a department publishes only to its own ingress topic, as itself (--dept {self._dept})",
        )

    def _topic(self, event_type: str) -> str:
        return self._ingress


def make_publisher(
    settings: Settings, *, prefix: str | None, dept: str | None, historical: bool
) -> KafkaPublisher:
    """The publisher of ``hzbus publish``: ``dept`` None means ``--each-dept``."""
    families = sorted({codec.topic_family(t) for t in codec.event_types()})
    topics = [topic_name(prefix or settings.topic_prefix, f) for f in families]
    if not kafka_auth.secured(settings):
        check_writable(
            kafka_auth.client_config(settings),
            topics,
            "the broker runs in the secured mode: set HZBUS_KAFKA_SECURITY=scram (docs/security.md)",
            create=f"hzbus infra topics --prefix {prefix or settings.topic_prefix}",
        )
        return KafkaPublisher(settings, prefix=prefix, historical=historical)
    if dept is not None and not historical:
        return IngressPublisher(settings, dept=dept, prefix=prefix)
    auth = kafka_auth.client_config(settings, identity.OPERATOR)
    check_writable(
        auth,
        topics,
        "imports of past records (--historical) and --each-dept are the operator's, straight to the "
        "family topics",
    )
    return KafkaPublisher(settings, prefix=prefix, historical=historical, **auth)
