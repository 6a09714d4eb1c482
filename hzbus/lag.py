"""Consumer-group lag: how far a group is behind the end of its topics."""

from __future__ import annotations

from collections.abc import Iterable

from hzbus.config import Settings


def group_lag(settings: Settings, group: str, topics: Iterable[str], timeout: float = 10.0) -> int:
    """Messages of ``topics`` not yet committed by ``group`` (a partition never committed counts
    from its low watermark)."""
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
            lag += max(0, high - start)
        return lag
    finally:
        consumer.close()
