"""Consumer-group lag: how far a group is behind the end of its topics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from hzbus.config import Settings
from hzbus.errors import UserError

log = logging.getLogger("hzbus.lag")


def group_lag(
    settings: Settings,
    group: str,
    topics: Iterable[str],
    timeout: float = 10.0,
    upto: dict[tuple[str, int], int] | None = None,
) -> int:
    """Messages of ``topics`` not yet committed by ``group`` (a partition never committed counts
    from its low watermark); with ``upto``, only those before these offsets (``end_offsets``
    taken earlier), not those written since."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        partitions = [
            TopicPartition(t, p)
            for t in topics
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        committed = consumer.committed(partitions, timeout=timeout)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=timeout
            )
            start = tp.offset if tp.offset >= 0 else low
            if upto is not None:
                high = min(high, upto.get((tp.topic, tp.partition), 0))
            lag += max(0, high - start)
        return lag
    finally:
        consumer.close()


def end_offsets(
    settings: Settings, topics: Iterable[str], timeout: float = 10.0
) -> dict[tuple[str, int], int]:
    """The end offset (high watermark) of each partition of ``topics``, now."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "hzbus-lag-ends"})
    try:
        metadata = consumer.list_topics(timeout=timeout)
        ends = {}
        for t in topics:
            if t in metadata.topics:
                for p in metadata.topics[t].partitions:
                    ends[(t, p)] = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=timeout)[1]
        return ends
    finally:
        consumer.close()


def worker_topics(prefix: str) -> list[str]:
    """The topics the worker consumes: the event families, its repartition topics and alerts."""
    return [topic for _group, topics in worker_groups(prefix) for topic in topics]


def worker_groups(prefix: str) -> list[tuple[str, list[str]]]:
    """The worker's consumer groups and the topics each reads: its route stage reads the event
    families (``<prefix>-worker-route``), its Faust agents the repartition topics and alerts
    (``<prefix>-worker``)."""
    from hzbus.topics import all_topics

    specs = all_topics(prefix)
    sources = [s.name for s in specs if s.carries_events]
    repartitioned = [s.name for s in specs if s.family.startswith("by-") and not s.carries_events]
    return [(f"{prefix}-worker-route", sources), (f"{prefix}-worker", [*repartitioned, f"{prefix}.alerts"])]


def worker_lag(settings: Settings, prefix: str) -> int:
    """Messages the worker of ``prefix`` has not yet committed, over all its groups."""
    return sum(group_lag(settings, group, topics) for group, topics in worker_groups(prefix))


def wait_for_worker(
    settings: Settings,
    prefix: str,
    *,
    quiet: float = 6.0,
    timeout: float = 600.0,
    alive: Callable[[], bool] = lambda: True,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Until the worker group of ``prefix`` has consumed everything and stayed so for ``quiet``
    seconds (long enough for its deadline sweep to catch up after an import)."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while True:
        if not alive():
            raise UserError("the worker stopped; run `hzbus worker` to see why")
        try:
            lag = worker_lag(settings, prefix)
        except Exception as exc:  # a broker hiccup (leader moving, topic just created): ask again
            log.debug("lag of the %s worker unknown for now: %s", prefix, exc)
            lag = -1
        if progress is not None and lag >= 0:
            progress(lag)
        if lag == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet:
                return
        else:
            quiet_since = None
        if time.monotonic() > deadline:
            raise UserError(f"the worker did not catch up within {timeout:.0f} s ({lag} messages to go)")
        time.sleep(1.0)
