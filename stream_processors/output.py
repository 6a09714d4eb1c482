"""The worker's output records through librdkafka (confluent-kafka), not aiokafka.

A profile of ``hzbus worker`` put most of its per-record cost outside the rules: it writes ~1.9
records per event (table changelogs and facts), and aiokafka's producer, in Python, spends
~15-20 µs on each (``benchmarks.bench_worker``: aiokafka alone writing what the worker wrote,
plus the bare read, reaches 20-31% of the bare read; librdkafka writing the same, 65-70%).
:class:`RecordWriter` hands the records of the track and correlate steps to librdkafka instead:
one C call each, batched, compressed and retried by librdkafka's own thread, idempotent (no
duplicate and no reordering from its retries), keyed records on Kafka's default partition
(``murmur2_random``, the partition aiokafka and the Java client give the key).

The guarantees of the worker stay those of docs/reliability.md:

* **Acknowledged before committed.** The worker's consumer (``stream_processors.consumer``)
  awaits :meth:`RecordWriter.flush` before every offset commit, as Faust awaits its own
  producer: no input offset is committed before the records its step wrote are acknowledged.
* **A record that cannot be written stops the worker.** librdkafka retries a record until
  ``message.timeout.ms``; a record it gives up on is logged at ERROR with its topic, partition
  and key, and the next :meth:`flush` raises, so that the commit does not happen and the worker
  stops (Faust crashes the app): after a restart the inputs are read again from the last
  commit. (aiokafka's producer logged such a record and the commit went ahead.)
* **Changelog offsets.** Faust keeps, per table partition, the offset of the last changelog
  record it knows written (its recovery reads the changelog from there): each acknowledged
  changelog record's offset is handed to ``on_persisted`` (the highest per partition, after
  each :meth:`poll`).
* **Waiting for records** (``send(..., ack=True)`` and :meth:`acknowledged`): for the correlate
  step, which must know its facts written before it stores a state.

Delivery reports are served by :meth:`poll`, which the worker calls after each step and from its
``output`` task every 50 ms; every call is made from the event loop's thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("hzbus.worker")


class DeliveryFailed(RuntimeError):
    """A record librdkafka gave up on (the worker stops rather than commit past it)."""


class RecordWriter:
    """Records to Kafka through a librdkafka producer (see the module's docstring)."""

    def __init__(
        self,
        config: dict[str, Any],
        changelogs: Callable[[str], bool],
        on_persisted: Callable[[str, int, int], None],
    ) -> None:
        from confluent_kafka import Producer

        self.changelogs = changelogs
        self.on_persisted = on_persisted
        self._persisted: dict[tuple[str, int], int] = {}
        self._failure: DeliveryFailed | None = None
        self._producer = Producer(
            {
                **config,
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",  # Kafka's default partition for a key (Java, aiokafka)
                "linger.ms": 10,
                "batch.size": 256 << 10,
                "compression.type": "lz4",
                "on_delivery": self._delivered,
            }
        )

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            failure = DeliveryFailed(
                f"a record to {msg.topic()}[{msg.partition()}] (key {msg.key()!r}) was not written: {err}"
            )
            log.error("%s", failure)
            if self._failure is None:
                self._failure = failure
            return
        topic = msg.topic()
        if self.changelogs(topic):
            tp = (topic, msg.partition())
            offset = msg.offset()
            if offset > self._persisted.get(tp, -1):
                self._persisted[tp] = offset

    def send(
        self,
        topic: str,
        key: bytes,
        value: bytes | None,
        partition: int | None = None,
        headers: Any = None,
        ack: bool = False,
    ) -> asyncio.Future[None] | None:
        """Hand one record to librdkafka (it waits for room when its queue is full; ``value``
        None: a tombstone, as a table's deleted key). With ``ack``, a future resolved once the
        record is written (or failed with the error)."""
        kwargs: dict[str, Any] = {}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
        future: asyncio.Future[None] | None = None
        if ack:
            future = asyncio.get_running_loop().create_future()
            kwargs["on_delivery"] = _settle(future, self._delivered)
        while True:
            try:
                self._producer.produce(topic, value, key, **kwargs)
                return future
            except BufferError:  # the local queue is full: serve the deliveries that free it
                self._producer.poll(0.05)

    def poll(self) -> None:
        """Serve the delivery reports that have arrived; hand on the changelog offsets."""
        self._producer.poll(0)
        if self._persisted:
            persisted, self._persisted = self._persisted, {}
            for (topic, partition), offset in persisted.items():
                self.on_persisted(topic, partition, offset)

    async def acknowledged(self, futures: list[asyncio.Future[None]]) -> None:
        """Return once the records of ``futures`` (``send(..., ack=True)``) are written, serving
        delivery reports meanwhile; raise the first failure."""
        while not all(f.done() for f in futures):
            self.poll()
            if not all(f.done() for f in futures):
                await asyncio.sleep(0.002)
        for f in futures:
            f.result()

    async def flush(self) -> None:
        """Return once every record handed over so far is written; raise if one was not."""
        while len(self._producer):
            self.poll()
            if len(self._producer):
                await asyncio.sleep(0.002)
        self.poll()
        if self._failure is not None:
            raise self._failure

    def close(self, timeout: float = 10.0) -> int:
        """Write what is left (at most ``timeout`` seconds); the number of records not written."""
        left = int(self._producer.flush(timeout))
        self.poll()
        return left


def _settle(future: asyncio.Future[None], report: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    def delivered(err: Any, msg: Any) -> None:
        report(err, msg)
        if future.done():
            return
        if err is None:
            future.set_result(None)
        else:
            future.set_exception(DeliveryFailed(f"a record to {msg.topic()} was not written: {err}"))

    return delivered
