"""The ClickHouse sink: every event topic → ``events``; undecodable messages → dead letters;
the worker's fact topics (obligations, alerts, findings, correlations) → their fact tables; the
dead letters of the gate (secured mode, docs/security.md) and the worker too. Dead letters keep raw
bytes, so their table is in ``<db>_restricted``, out of the analysts' reach.

Delivery guarantee: at least once from Kafka, exactly once in query results. Each batch is
written to ClickHouse (and its dead letters to the dead-letter topic) *before* the consumer
commits its offsets; a crash between the two re-delivers the batch, and the
ReplacingMergeTree on ``event_id`` collapses the repeats (queries read ``FINAL``).

Throughput: batch *k*'s rows are sent to ClickHouse (clickhouse-driver's insert in two halves:
send, then wait for the answer) and the server writes them while this process decodes batch
*k+1*; batch *k*'s own offsets are committed only once the server has answered. One thread: a
writer thread serialising under the same GIL as the decoding made both wait for each other.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.events import SHANGHAI
from hzbus import deadletters, identity, kafka_auth, native
from hzbus.config import Settings
from hzbus.errors import UserError
from hzbus.failpoints import reached
from hzbus.topics import event_families, event_topics, topic_name
from sinks.clickhouse import take
from sinks.clickhouse.dead_letters import relayed_row, restricted_database, retire_legacy_table
from sinks.clickhouse.fact_rows import FACT_COLUMNS, ROW_BUILDERS
from sinks.clickhouse.migrate import check_database_name, migrate
from sinks.clickhouse.rows import DEAD_LETTER_COLUMNS, EVENT_COLUMNS, dead_letter_row
from sinks.clickhouse.take import take_events

log = logging.getLogger("hzbus.sink")


def clickhouse_client(settings: Settings, database: str | None = None) -> Any:
    from clickhouse_driver import Client

    return Client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password,
        database=database or "default",
        connect_timeout=5,
        send_receive_timeout=120,
        # on a cluster (docs/clickhouse-cluster.md) an insert into a Distributed table returns once
        # every shard has its rows: the sink commits its offsets only after that
        settings={
            "insert_block_size": 1_048_576,
            **({"insert_distributed_sync": 1} if settings.clickhouse_cluster else {}),
        },
    )


class ClickHouseWriter:
    """The sink's only ClickHouse I/O: ``write(events, dead_letters)``, retried until it lands."""

    def __init__(self, client: Any, database: str, retry_for: float = float("inf")) -> None:
        self.client = client
        self.database = check_database_name(database)
        self.retry_for = retry_for
        self._events_sql = f"INSERT INTO {database}.events ({', '.join(EVENT_COLUMNS)}) VALUES"
        restricted = restricted_database(database)  # raw bytes: not where analysts read (docs/security.md)
        self._dead_sql = f"INSERT INTO {restricted}.dead_letters ({', '.join(DEAD_LETTER_COLUMNS)}) VALUES"
        self._fact_sql = {
            table: f"INSERT INTO {database}.{table} ({', '.join(columns)}) VALUES"
            for table, columns in FACT_COLUMNS.items()
        }

    def start(
        self,
        events: list[tuple[Any, ...]],
        dead: list[tuple[Any, ...]],
        facts: dict[str, list[tuple[Any, ...]]] | None = None,
    ) -> PendingWrite:
        """Begin writing a batch: its events are sent now, and the server writes them while
        the caller decodes the next batch; :meth:`PendingWrite.result` waits for the server's
        answer (or writes the whole batch again, retried, if anything failed on the way)."""
        return PendingWrite(self, events, dead, facts or {}, self._begin(events))

    def _begin(self, events: list[tuple[Any, ...]]) -> bool:
        """Send the events' INSERT and data, not waiting for the answer (clickhouse-driver's
        ``process_insert_query`` in two halves); False if there is nothing to send or it failed."""
        if not events:
            return False
        client = self.client
        try:
            with client.disconnect_on_error(self._events_sql, None):
                client.connection.send_query(self._events_sql)
                client.connection.send_external_tables(None)
                sample = client.receive_sample_block()
                client.send_data(sample, list(zip(*events, strict=True)), columnar=True)
            return True
        except Exception as exc:  # the whole batch is written again when its result is asked for
            log.warning("ClickHouse insert not sent (%s); the batch is kept and retried", exc)
            return False

    def _end(self, pending: PendingWrite) -> None:
        """Wait for the server's answer to a begun insert, then write the rest (dead letters,
        facts); anything failed is written again, retried until it lands."""
        events = pending.events
        if pending.begun:
            try:
                self.client.receive_end_of_insert_query()
                reached("sink.mid_write")  # events in, dead letters and facts not yet
                events = []
            except Exception as exc:
                log.warning("ClickHouse insert failed (%s); writing the batch again", exc)
                with contextlib.suppress(Exception):
                    self.client.disconnect()
        self.write(events, pending.dead, pending.facts)

    def abandon(self) -> None:
        """Leave a begun insert unanswered (on the way out after an error): drop the connection."""
        with contextlib.suppress(Exception):
            self.client.disconnect()

    def write(
        self,
        events: list[tuple[Any, ...]],
        dead: list[tuple[Any, ...]],
        facts: dict[str, list[tuple[Any, ...]]] | None = None,
    ) -> None:
        deadline = time.monotonic() + self.retry_for
        delay = 0.5
        while True:
            try:
                if events:  # columnar: the driver skips its own row-to-column transposition
                    self.client.execute(self._events_sql, list(zip(*events, strict=True)), columnar=True)
                    reached("sink.mid_write")  # events in, dead letters and facts not yet
                if dead:
                    self.client.execute(self._dead_sql, dead)
                for table, rows in (facts or {}).items():
                    if rows:
                        self.client.execute(self._fact_sql[table], rows)
                return
            except Exception as exc:  # network, server down: keep the batch and retry
                if time.monotonic() + delay > deadline:
                    raise UserError(f"ClickHouse write failed: {exc}") from None
                log.warning("ClickHouse write failed (%s); retrying in %.1f s, batch kept", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                with contextlib.suppress(Exception):  # it reconnects on the next execute
                    self.client.disconnect()


class PendingWrite:
    """A batch being written (:meth:`ClickHouseWriter.start`): ``result()`` returns once it is
    all in ClickHouse, or raises if it cannot be written; the caller commits only then."""

    def __init__(
        self,
        writer: ClickHouseWriter,
        events: list[tuple[Any, ...]],
        dead: list[tuple[Any, ...]],
        facts: dict[str, list[tuple[Any, ...]]],
        begun: bool,
    ) -> None:
        self.writer, self.events, self.dead, self.facts, self.begun = writer, events, dead, facts, begun
        self._written = False

    def result(self) -> None:
        if not self._written:
            self.writer._end(self)
            self._written = True


#: (topic, partition) -> next offset to consume: what a batch commits
Offsets = dict[tuple[str, int], int]


@dataclass
class _Batch:
    events: list[tuple[Any, ...]] = field(default_factory=list)
    dead: list[tuple[Any, ...]] = field(default_factory=list)
    facts: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    offsets: Offsets = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.dead or self.facts)

    def __len__(self) -> int:
        return len(self.events) + len(self.dead) + sum(len(rows) for rows in self.facts.values())


@dataclass
class _Run:
    """One :meth:`EventSink.run`: the batch being read, the one being written (at most one),
    and where committed batches are counted; what a revocation must flush."""

    stats: SinkStats
    on_batch: Callable[[SinkStats], None] | None
    batch: _Batch = field(default_factory=_Batch)
    in_flight: tuple[PendingWrite, _Batch] | None = None
    open: bool = True  # False once run() is leaving: a revocation then writes nothing


@dataclass
class SinkStats:
    events: int = 0
    dead_letters: int = 0
    facts: int = 0
    batches: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def tune_gc_for_sink_process() -> None:
    """For a process that is a sink and nothing else (the command, each ``--processes``
    child): everything loaded so far is kept out of the cyclic collector's passes
    (``gc.freeze``), and young collections run every 10,000 allocations instead of 700. A
    batch's rows (up to ~40,000 tuples alive at once) hold no cycles; the collector walking
    them and the loaded modules cost ~0.5 µs of each event's ~6.5 µs of decoding."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def consumer_config(settings: Settings, group: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        **kafka_auth.client_config(settings, identity.BUS),  # secured: signs in as the bus
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": True,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": 900_000,
        "session.timeout.ms": int(settings.kafka_session_timeout * 1000),
        "heartbeat.interval.ms": int(min(3.0, settings.kafka_session_timeout / 3) * 1000),
        "fetch.max.bytes": 52_428_800,
        "client.id": "hzbus-sink-clickhouse",
    }
    config.update(overrides)
    return config


class EventSink:
    """Consume, decode, batch, write, then commit."""

    def __init__(
        self,
        settings: Settings,
        *,
        prefix: str | None = None,
        database: str | None = None,
        group: str | None = None,
        writer: ClickHouseWriter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(SHANGHAI),
    ) -> None:
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        self.prefix = prefix or settings.topic_prefix
        self.database = check_database_name(database or settings.clickhouse_database)
        self.group = group or f"{self.prefix}.sink.clickhouse"
        self.clock = clock
        self.key = settings.pseudonym_key.encode("utf-8")
        self.writer = writer or ClickHouseWriter(clickhouse_client(settings), self.database)
        self.consumer = Consumer(consumer_config(settings, self.group))
        self.dead_topic = f"{self.prefix}.deadletter"
        self.dead_producer = Producer(
            {**kafka_auth.client_config(settings, identity.BUS), "enable.idempotence": True, "acks": "all"}
        )
        self.assigned = False
        self._run: _Run | None = None
        self._hold: Callable[[], bool] | None = None
        self._on_assigned: Callable[[int], None] | None = None
        self._held = False
        #: fact topic → its table (the worker's outputs)
        self.fact_topics = {topic_name(self.prefix, table): table for table in FACT_COLUMNS}
        self.families = {topic_name(self.prefix, family): family for family in event_families()}
        self._topics = take.Topics(self.families, self.fact_topics, self.dead_topic, self.key)

    def topics(self) -> list[str]:
        return [*event_topics(self.prefix), *self.fact_topics, self.dead_topic]

    def prepare(self) -> None:
        """Apply the ClickHouse migrations; check the topics exist."""
        log.info("decoding with the hot paths %s", native.describe())
        try:
            migrate(self.writer.client, self.database, cluster=self.settings.clickhouse_cluster)
            retire_legacy_table(self.writer.client, self.database)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"cannot prepare ClickHouse database {self.database} at "
                f"{self.settings.clickhouse_host}:{self.settings.clickhouse_port}: {exc}"
            ) from None
        from confluent_kafka import KafkaException

        try:
            topics = set(self.consumer.list_topics(timeout=15).topics)
        except KafkaException as exc:
            raise UserError(f"cannot reach Kafka at {self.settings.kafka_bootstrap}: {exc.args[0]}") from None
        missing = sorted({*self.topics(), self.dead_topic} - topics)
        if missing:
            raise UserError(
                f"topic(s) {', '.join(missing)} do not exist (create them with "
                f"`hzbus infra topics --prefix {self.prefix}`)"
            )

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        self.assigned = True
        log.info("assigned %d partition(s)", len(partitions))
        if self._on_assigned is not None:
            self._on_assigned(len(partitions))
        if self._hold is not None and self._hold():  # not yet: the group is still forming
            consumer.assign(partitions)
            consumer.pause(partitions)
            self._held = True

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        """Before partitions move to another sink of the group (another ``--processes`` child,
        a sink started or stopped elsewhere): write and commit everything read so far, so the
        new owner starts where this one stopped instead of reading a batch again."""
        run = self._run
        if run is None or not run.open or not (run.batch or run.in_flight):
            return
        log.info("%d partition(s) revoked: writing and committing what was read of them", len(partitions))
        self._flush(run)

    def _flush(self, run: _Run) -> None:
        """Commit the batch in flight once written, then write and commit the open one."""
        if run.in_flight is not None:
            in_flight, run.in_flight = run.in_flight, None
            self._commit(*in_flight, run.stats, run.on_batch)
        if run.batch:
            batch, run.batch = run.batch, _Batch()
            written = self.writer.start(batch.events, batch.dead, batch.facts)
            self._commit(written, batch, run.stats, run.on_batch)

    def run(
        self,
        *,
        stop_when_idle: float | None = None,
        max_batch: int | None = None,
        max_wait: float | None = None,
        on_batch: Callable[[SinkStats], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        hold: Callable[[], bool] | None = None,
        on_assigned: Callable[[int], None] | None = None,
    ) -> SinkStats:
        """Consume until ``should_stop()`` or, with ``stop_when_idle``, until nothing has
        arrived for that many seconds since the last message (or since assignment).

        ``on_assigned(n)`` is told the size of each assignment; partitions assigned while
        ``hold()`` is true stay paused until it is not (``--processes N``: no sink starts
        reading before the group has given each its share)."""
        self._hold, self._on_assigned = hold, on_assigned
        max_batch = max_batch or self.settings.sink_batch_size
        max_wait = max_wait if max_wait is not None else self.settings.sink_batch_seconds
        run = self._run = _Run(SinkStats(), on_batch)
        stats = run.stats
        self.consumer.subscribe(self.topics(), on_assign=self._on_assign, on_revoke=self._on_revoke)
        batch_started = time.monotonic()
        last_message = None
        try:
            while not should_stop():
                if self._held and hold is not None and not hold():
                    self._held = False
                    self.consumer.resume(self.consumer.assignment())
                messages = self.consumer.consume(num_messages=min(max_batch, 5000), timeout=0.2)
                now_mono = time.monotonic()  # (a revocation inside consume() may have flushed)
                if messages:
                    last_message = now_mono
                    self._take_all(messages, self.clock(), run.batch, stats)
                if run.in_flight is not None and not messages:  # nothing to decode meanwhile
                    in_flight, run.in_flight = run.in_flight, None
                    self._commit(*in_flight, stats, on_batch)
                if run.batch:
                    full = len(run.batch) >= max_batch
                    if full or now_mono - batch_started >= max_wait:
                        reached("sink.consumed")  # a batch decoded, nothing of it written
                        if run.in_flight is not None:  # at most one batch in flight
                            in_flight, run.in_flight = run.in_flight, None
                            self._commit(*in_flight, stats, on_batch)
                        batch, run.batch = run.batch, _Batch()
                        # sent now; the server writes it while the next batch is decoded
                        run.in_flight = (self.writer.start(batch.events, batch.dead, batch.facts), batch)
                        batch_started = time.monotonic()
                else:
                    batch_started = now_mono
                if stop_when_idle is not None and self.assigned and not run.batch and run.in_flight is None:
                    if last_message is None:
                        last_message = now_mono
                    idle = now_mono - last_message
                    # idle and caught up; a partition that never answers holds the stop a minute at most
                    if idle >= stop_when_idle and (self._caught_up() or idle >= stop_when_idle + 60):
                        break
            self._flush(run)
        finally:
            run.open = False  # closing revokes the partitions: nothing more is written on the way out
            if run.in_flight is not None:  # leaving on an error: that batch is not committed
                self.writer.abandon()
            self.consumer.close()
            self._run = None
        return stats

    def _caught_up(self) -> bool:
        """Whether every assigned partition has been read to the end its last fetch reported
        (``--stop-when-idle`` means idle *and* caught up: a partition whose fetch is slow to
        start, e.g. under load, must not be left behind; seen as 4 of 10,000 events left)."""
        parts = self.consumer.assignment()
        positions = {(p.topic, p.partition): p.offset for p in self.consumer.position(parts)}
        for p in parts:
            _low, high = self.consumer.get_watermark_offsets(p, cached=True) or (-1, -1)
            if high < 0:  # no fetch answered for this partition yet
                log.info("idle, but %s[%d] not fetched yet", p.topic, p.partition)
                return False
            at = positions.get((p.topic, p.partition), -1)
            if 0 <= at < high:
                log.info("idle, but %s[%d] has %d record(s) left", p.topic, p.partition, high - at)
                return False
        return True

    def _take_all(self, messages: list[Any], ingested: datetime, batch: _Batch, stats: SinkStats) -> None:
        """Decode a fetch of messages into the batch: events as rows (:mod:`take`), the
        worker's facts as rows of their tables, anything unreadable as a dead letter with the
        reason."""
        others = take_events(
            messages, self._topics, int(ingested.timestamp()), batch.events, batch.offsets, stats.by_type
        )
        for what, msg, detail in others:
            if what == take.ERROR:
                self._consume_error(msg)
            elif what == take.FACT:
                self._take_fact(msg, detail, msg.value(), msg.offset(), ingested, batch, stats)
            elif what == take.RELAY:
                relayed = relayed_row(msg, ingested)
                if relayed is not None:
                    batch.dead.append(relayed)
            else:
                self._dead(msg, detail, ingested, batch.dead, stats)

    @staticmethod
    def _consume_error(msg: Any) -> None:
        from confluent_kafka import KafkaError

        err = msg.error()
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consume error: %s", err)

    def _take_fact(
        self,
        msg: Any,
        table: str,
        value: bytes,
        offset: int,
        ingested: datetime,
        batch: _Batch,
        stats: SinkStats,
    ) -> None:
        try:
            batch.facts.setdefault(table, []).append(ROW_BUILDERS[table](value, offset))
        except Exception as exc:  # a fact the worker wrote is unreadable: keep it, say why
            self._dead(
                msg, f"unreadable {table} fact: {type(exc).__name__}: {exc}", ingested, batch.dead, stats
            )

    def _dead(
        self, msg: Any, reason: str, ingested: datetime, dead: list[tuple[Any, ...]], stats: SinkStats
    ) -> None:
        log.warning("dead letter %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), reason)
        headers = deadletters.headers(msg.topic(), msg.partition(), msg.offset(), reason, "sink")
        self.dead_producer.produce(self.dead_topic, msg.value(), msg.key(), headers=headers)
        reached("sink.dead_letter")  # produced, neither flushed nor stored nor committed
        dead.append(
            dead_letter_row(
                topic=msg.topic(),
                partition=msg.partition(),
                offset=msg.offset(),
                reason=reason,
                key=msg.key(),
                value=msg.value(),
                dead_at=ingested,
            )
        )

    def _commit(
        self,
        written: PendingWrite,
        batch: _Batch,
        stats: SinkStats,
        on_batch: Callable[[SinkStats], None] | None,
    ) -> None:
        """Once ``batch`` is in ClickHouse (``written`` re-raises a failed write: no commit),
        flush its dead letters, then commit exactly its offsets."""
        written.result()
        reached("sink.written")  # in ClickHouse, offsets not committed
        events, dead = batch.events, batch.dead
        if dead:
            remaining = self.dead_producer.flush(60)
            if remaining:
                raise UserError(f"{remaining} dead letter(s) not acknowledged by Kafka; not committing")
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in batch.offsets.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # e.g. a rebalance took the partitions: they are re-delivered
            log.warning("offset commit failed (%s); the batch will be re-delivered, stored once", exc)
        reached("sink.committed")
        stats.events += len(events)
        stats.dead_letters += len(dead)
        stats.facts += sum(len(rows) for rows in batch.facts.values())
        stats.batches += 1
        log.debug("batch %d: %d events, %d dead letters committed", stats.batches, len(events), len(dead))
        if on_batch is not None:
            on_batch(stats)
