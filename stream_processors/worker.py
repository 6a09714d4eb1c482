"""The Faust worker: thin agents around the pure core (obligations, correlation, alerts).

Topology (``P`` = topic prefix, 8 partitions unless said otherwise)::

    P.cases, P.approvals, ... ──route──▶ P.by-key      (re-keyed by correlation key: case:…, request:…)
                                   └───▶ P.by-subject  (approvals and penalties, keyed by the
                                                         pseudonymised subject)
    P.by-key ──track──▶ table obligation-state ──▶ P.obligations, P.alerts, P.findings
    P.by-subject ──correlate──▶ table subject-state ──▶ P.correlations
    P.alerts ──notify──▶ console, webhook (once per dedup key: table alerts-delivered)

``route`` is not a Faust agent but a task of the app with its own aiokafka consumer (consumer
group ``P-worker-route``; the agents' group is ``P-worker``): it reads the source topics in
batches of up to ``route_batch`` records and commits their offsets once the batch records it
wrote are acknowledged. On a source partition where it has no offset of its own it starts from
``P-worker``'s (where the route agent of earlier versions left it: an upgrade neither routes
again nor skips); if it fails, the worker exits with status 1 (``route stage failed: …``).

What ``track`` and ``correlate`` write (table changelog records, obligation, alert, finding and
correlation facts) goes to Kafka through librdkafka (``stream_processors/output.py``), whose
flush the consumer awaits before every offset commit; a record it cannot write stops the worker.

Imports of past records (``hzbus publish --historical``) are evaluated on their own time (each
record's recorded_at), and the sweep waits until the import has been quiet for
``import_quiet`` seconds: an obligation met in the past raises no alert on import, and what is
missed as of now is alerted once the import is done.

Deadlines: every key's next wake-up time is kept in the ``wakeups`` table (changelogged, so it
survives restarts and moves with its partition). Each worker keeps an in-memory heap of the
wake-ups of *its* active partitions, rebuilt from the table whenever its assignment changes, and
a sweep every ``sweep_interval`` seconds sends a tick for each key whose time has come. The tick
travels through ``P.by-key`` to the agent that owns the key, which calls ``engine.advance``: an
alert whose due time passed while no worker ran is raised on restart, once (the state records
what was raised). Agents run with concurrency 1 (offset commits skip in-flight messages with
more, faust-streaming#606).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from domain import correlation, obligations
from domain.calendar import WorkingDayCalendar, shanghai_date
from domain.events import Event
from domain.obligations import (
    Alert,
    AlertResolved,
    Change,
    FindingRaised,
    FindingWithdrawn,
    KeyState,
    ObligationChanged,
)
from hzbus import deadletters, identity, kafka_auth
from hzbus.config import Settings
from hzbus.failpoints import reached
from hzbus.topics import TopicSpec, event_families, event_topics, topic_name
from producers.publisher import HISTORICAL_HEADER
from schemas import admission, codec
from stream_processors.consumer import install as install_consumer
from stream_processors.envelope import (
    EVENT,
    TICKS,
    batch_entries,
    from_ms,
    pack_batch,
    pack_event,
    pack_tick,
    pack_ticks,
    tick_keys,
    to_ms,
    unpack,
)
from stream_processors.notifiers import Notifier, deliver_with_retry
from stream_processors.output import RecordWriter
from stream_processors.partitioning import DefaultPartitioner, partition_for

log = logging.getLogger("hzbus.worker")
LOG_APPEND_TIME = 1
#: the largest batch record the route agent writes (Kafka's default record limit is 1 MiB)
BATCH_BYTES = 512 << 10


def encode_event(event: Event) -> dict[str, Any]:
    """An event as its key's stored state holds it: the keys and values of its canonical
    object (``codec.to_canonical``) plus ``_published_at``, with the times left as datetimes
    for orjson to write (ISO-8601 with their offset, microseconds written out where nonzero),
    which :func:`decode_event` reads back to the same instants. Not formatted and checked one
    by one as ``to_canonical`` does: a state is written again at each event of its key, and
    its events were checked when they were read."""
    out: dict[str, Any] = {
        "type": event.type,
        "event_id": event.event_id,
        "source_dept": event.source_dept,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
    }
    out.update(event.fields)
    if event.published_at is not None:
        out["_published_at"] = event.published_at
    return out


def decode_event(obj: Any) -> Event:
    obj = dict(obj)
    published = obj.pop("_published_at", None)
    event = codec.from_canonical(obj)
    return event.with_published_at(datetime.fromisoformat(published)) if published else event


def dump_state(state: KeyState) -> bytes:
    """The state as stored: orjson writes its obligations and findings (dataclasses) itself."""
    return orjson.dumps(state.to_dict(encode_event, plain=False))


def load_state(key: str, raw: bytes | None) -> KeyState:
    if raw is None:
        return KeyState(key)
    return KeyState.from_dict(orjson.loads(raw), decode_event)


def change_records(change: Change) -> list[tuple[str, bytes, bytes]]:
    """(topic family, key, value) records of one change of the obligation engine."""
    # obligations, findings and times as they are: orjson writes the to_dict() of the first
    # two and the isoformat() of an aware datetime (the same text, in a tenth of the time)
    value: dict[str, Any]
    if isinstance(change, ObligationChanged):
        o = change.obligation
        value = {
            "obligation": o,
            "previous_status": change.previous.status if change.previous else None,
            "at": change.at,
        }
        return [("obligations", o.obligation_id.encode(), orjson.dumps(value))]
    if isinstance(change, Alert):
        value = {
            "event": "raised",
            "kind": change.kind,
            "dedup_key": change.dedup_key,
            "obligation": change.obligation,
            "at": change.raised_at,
        }
        return [("alerts", change.dedup_key.encode(), orjson.dumps(value))]
    if isinstance(change, AlertResolved):
        value = {
            "event": "resolved",
            "kind": change.alert_kind,
            "dedup_key": change.dedup_key,
            "obligation": change.obligation,
            "at": change.resolved_at,
        }
        return [("alerts", change.dedup_key.encode(), orjson.dumps(value))]
    if isinstance(change, FindingRaised | FindingWithdrawn):
        f = change.finding
        value = {
            "event": "raised" if isinstance(change, FindingRaised) else "withdrawn",
            "finding": f,
            "at": change.at,
        }
        return [("findings", f.finding_id.encode(), orjson.dumps(value))]
    raise TypeError(f"unknown change {change!r}")


@dataclass
class DeadlineHeap:
    """The in-memory view of this worker's share of the durable ``wakeups`` table."""

    entries: list[tuple[int, str]] = field(default_factory=list)
    current: dict[str, int] = field(default_factory=dict)
    partitions: dict[str, int] = field(default_factory=dict)

    def set(self, key: str, wake_ms: int | None, partition: int = -1) -> None:
        if wake_ms is None:
            self.current.pop(key, None)
            self.partitions.pop(key, None)
            return
        self.partitions[key] = partition
        if self.current.get(key) != wake_ms:
            self.current[key] = wake_ms
            heapq.heappush(self.entries, (wake_ms, key))

    def due(self, now_ms: int) -> list[tuple[str, int]]:
        """(key, partition) of every key whose latest wake-up time has come, once."""
        keys = []
        while self.entries and self.entries[0][0] <= now_ms:
            wake, key = heapq.heappop(self.entries)
            if self.current.get(key) == wake:
                del self.current[key]
                keys.append((key, self.partitions.pop(key, -1)))
        return keys

    def reset(self, items: Sequence[tuple[str, int, int]]) -> None:
        self.current = {k: w for k, w, _ in items}
        self.partitions = {k: p for k, _, p in items}
        self.entries = [(w, k) for k, w in self.current.items()]
        heapq.heapify(self.entries)


class FactTopic:
    """An output topic of the worker whose records go straight to the Kafka producer's batches
    (``app.producer.send``), not through Faust's producer buffer: that buffer is one FIFO
    drained one record per event-loop turn, whose per-record machinery cost more than the
    rules, and which makes every consumed message wait while it holds over 100 records. Faust
    flushes the producer itself, batches included, before it commits offsets, so a fact is
    still acknowledged before the offset of its input is committed."""

    def __init__(self, app: Any, topic: Any) -> None:
        self.app = app
        self.topic = topic
        self.name: str = topic.get_topic_name()

    async def send(
        self, *, key: bytes, value: bytes, headers: Any = None, partition: int | None = None
    ) -> Any:
        """Append the record to the producer's batch; the returned future is its acknowledgement."""
        fut = await self.app.producer.send(self.name, key, value, partition, None, headers)
        fut.add_done_callback(self._on_sent)
        return fut

    def send_soon(
        self, *, key: bytes, value: bytes, headers: Any = None, partition: int | None = None
    ) -> None:
        """From synchronous code: through Faust's buffer."""
        self.topic.send_soon(key=key, value=value, headers=headers, partition=partition)

    def _on_sent(self, fut: Any) -> None:
        if not fut.cancelled() and fut.exception() is not None:
            log.error("a record to %s was not delivered: %r", self.name, fut.exception())


class HeldRecord:
    """What a held changelog write gives back in place of Faust's FutureMessage: its partition
    (``.message.partition``, the one attribute Faust's table reads)."""

    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition

    @property
    def message(self) -> HeldRecord:
        return self


#: the worker's tables (Faust names their changelog topics ``<prefix>-worker-<table>-changelog``)
TABLES = ("obligation-state", "wakeups", "subject-state", "alerts-delivered")

#: RocksDB bounds of each table partition's database. Faust opens one database per table and
#: partition (4 x 8 = 32 here), each with defaults sized for one database alone: 64 MiB write
#: buffers (up to 3) and a 2 GiB block cache of its own, so the ~1 KB states of new keys piled
#: up in memtables: 1.4 KB of RSS per key (1.6 GiB projected for a million keys), 0.55 KB with
#: these bounds (docs/performance.md, "Load and memory").
ROCKSDB_OPTIONS = {"write_buffer_size": 4 << 20, "max_write_buffer_number": 2, "block_cache_size": 8 << 20}

#: the tables whose RocksDB databases are written without RocksDB's write-ahead log: their
#: changelog topics hold every write, and what the databases lose to a killed worker (the
#: writes since their last flush, persisted changelog offsets included, so always a prefix of
#: the writes) Faust restores from the changelogs at start; inputs not committed come again
#: and are applied or restated (docs/reliability.md, "RocksDB without its log"), as Kafka
#: Streams does. A put cost ~6 µs with the log, ~1.3 without (~1 a routed event). Not
#: ``alerts-delivered``: a delivery marker must outlive a kill that its changelog record may not.
WITHOUT_WAL = frozenset({"obligation-state", "wakeups", "subject-state"})


#: the cyclic garbage collector's thresholds in ``hzbus worker`` (Python's default: 700, 10, 10).
#: A py-spy profile of the worker (bench_worker, 50,000 events) put ~40% of its CPU in
#: collections triggered at allocation sites (aiokafka's ``partitions_for_topic`` set() alone
#: "took" 5.7%): the young generation filled every ~700 allocations and each third-generation
#: pass walked every live object, the decoded key states of the cache included. With these,
#: 229 -> 135 µs of CPU per event, 3,722 -> 5,445 events/s under the profiler. Cycles are still
#: collected; memory with bench_load: docs/performance.md ("The route stage outside Faust's stream").
GC_THRESHOLDS = (50_000, 50, 1000)


def without_wal(open_db: Callable[[int], Any]) -> Callable[[int], Any]:
    """``open_db`` (a Faust RocksDB store's ``_open_for_partition``, rocksdict) whose databases
    are then written without RocksDB's write-ahead log (``WITHOUT_WAL``). A clean close still
    flushes what they hold."""
    import rocksdict

    def open_partition(partition: int) -> Any:
        db = open_db(partition)
        options = rocksdict.WriteOptions()
        options.disable_wal = True  # type: ignore[method-assign,assignment]  # a property (the stubs say a method)
        db.set_write_options(options)
        return db

    return open_partition


def changelog_topics(prefix: str, partitions: int = 8) -> list[TopicSpec]:
    """The changelog topics of the worker's tables, to create before the worker starts: a table
    written before Faust has seen its changelog's metadata fails with PartitionsMismatch."""
    return [
        TopicSpec(
            family=f"changelog:{table}",
            name=f"{prefix}-worker-{table}-changelog",
            partitions=partitions,
            config={"cleanup.policy": "compact"},
            carries_events=False,
        )
        for table in TABLES
    ]


def build_app(
    settings: Settings,
    calendar: WorkingDayCalendar,
    *,
    prefix: str | None = None,
    datadir: Path | None = None,
    notifiers: Sequence[Notifier] = (),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sweep_interval: float = 0.25,
    partitions: int = 8,
    store: str = "rocksdb://",
    import_quiet: float = 3.0,
    cache_size: int = 50_000,
    route_batch: int = 1000,
    route_within: float = 0.05,
) -> Any:
    """The Faust app of ``hzbus worker`` (nothing connects until it is started).

    The route stage takes up to ``route_batch`` source records at a time (waiting at most
    ``route_within`` seconds when none is there) and writes one batch record per partition of
    ``by-key`` and ``by-subject``."""
    import faust
    from faust.types import TP

    prefix = prefix or settings.topic_prefix
    datadir = datadir or Path(settings.state_dir) / "worker" / prefix
    datadir.mkdir(parents=True, exist_ok=True)
    key = settings.pseudonym_key.encode("utf-8")
    app = faust.App(
        f"{prefix}-worker",
        **kafka_auth.faust_options(settings, identity.BUS),  # secured: signs in as the bus
        store=store,
        datadir=str(datadir),
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        web_enabled=False,
        producer_acks=-1,
        # Faust's default (0) sends a produce request per loop turn, a few records each, and a
        # profile of the worker showed ~0.3 ms of socket send per request. 10 ms makes fewer,
        # fuller requests (0% and +17% events/s in two paired runs of bench_worker on a busy
        # machine) for at most 10 ms more before an alert is appended.
        producer_linger=0.01,
        producer_max_batch_size=256 << 10,
        producer_partitioner=DefaultPartitioner(),  # Kafka's, compiled (stream_processors/partitioning.py)
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout / 3),
    )
    install_consumer(app)  # Faust's consumer without its read-offset race (stream_processors/consumer.py)
    families = {topic_name(prefix, family): family for family in event_families()}
    by_key = app.topic(topic_name(prefix, "by-key"), partitions=partitions, key_type=bytes, value_type=bytes)
    by_subject = app.topic(
        topic_name(prefix, "by-subject"), partitions=partitions, key_type=bytes, value_type=bytes
    )
    outputs = {
        family: app.topic(topic_name(prefix, family), key_type=bytes, value_type=bytes)
        for family in (
            "obligations",
            "alerts",
            "findings",
            "correlations",
            "alerts-undelivered",
            "deadletter",
        )
    }
    facts = {family: FactTopic(app, topic) for family, topic in outputs.items()}
    routes = {"by-key": FactTopic(app, by_key), "by-subject": FactTopic(app, by_subject)}
    #: changelog records of the table writes of a step being stored (see ``DirectChangelogTable``)
    held: list[tuple[Any, int, bytes, bytes | None]] = []
    holding = {"on": False}

    class DirectChangelogTable(faust.Table):
        """A table whose changelog records, written while an agent stores a record's states
        (``holding``), are produced straight to the producer's batches by ``send_changelogs``
        right after, instead of one by one through Faust's producer buffer (which cost more per
        record than the rules: docs/performance.md). The same records, the same partition, the
        same persisted offset once each is acknowledged; flushed, like the buffer, before any
        offset commit."""

        def send_changelog(
            self,
            partition: int | None,
            key: Any,
            value: Any,
            key_serializer: Any = None,
            value_serializer: Any = None,
        ) -> Any:
            if holding["on"] and partition is not None:
                held.append((self, partition, key, value))
                return HeldRecord(partition)  # Faust reads the partition from what it gets back
            return super().send_changelog(partition, key, value, key_serializer, value_serializer)

        def _new_store_by_url(self, url: Any) -> Any:
            store: Any = super()._new_store_by_url(url)
            if self.name in WITHOUT_WAL and getattr(store, "use_rocksdict", False):
                store._open_for_partition = without_wal(store._open_for_partition)
            return store

    async def send_changelogs() -> None:
        """Produce the held changelog records (no await may come between the table writes and
        this: the hold is the agent's alone only while it does not yield). Of the records of one
        table partition, only the last one's acknowledgement writes the table's persisted
        offset (a RocksDB write, which Faust makes for every record): on one partition they are
        acknowledged in order, so it is the highest, and a record that fails is logged."""
        records = list(held)
        held.clear()
        w = output_writer()
        if w is not None:  # librdkafka (stream_processors/output.py): it hands on the offsets itself
            for tbl, partition, key, value in records:
                w.send(tbl.changelog_topic.get_topic_name(), key, value, partition)
            w.poll()
            return
        last = {(id(tbl), partition): i for i, (tbl, partition, _, _) in enumerate(records)}
        for i, (tbl, partition, key, value) in enumerate(records):
            name = tbl.changelog_topic.get_topic_name()
            fut: Any = await app.producer.send(name, key, value, partition, None, None)
            persist = last[id(tbl), partition] == i
            fut.add_done_callback(functools.partial(changelog_sent, tbl, persist))

    def changelog_sent(tbl: Any, persist: bool, fut: Any) -> None:
        if fut.cancelled():
            return
        if fut.exception() is not None:
            log.error("a changelog record of %s was not delivered: %r", tbl.name, fut.exception())
            return
        if persist:  # what Faust's own callback keeps: recovery reads the changelog after it
            meta = fut.result()
            tbl.data.set_persisted_offset(TP(meta.topic, meta.partition), meta.offset)

    #: the librdkafka writer of the track and correlate steps' records (``output_writer``)
    writer: list[RecordWriter] = []

    def output_writer() -> RecordWriter | None:
        """The writer, made at the first record once Faust's producer runs (before any step
        writes: all of a worker's records of a partition go through the one producer, in
        order); None in Faust's test context, where the records go through Faust."""
        if writer:
            return writer[0]
        if not app.producer.started:
            return None
        w = RecordWriter(
            kafka_auth.client_config(settings, identity.BUS),
            changelogs=changelog_tables.__contains__,
            on_persisted=persisted,
        )
        writer.append(w)
        app.hzbus_flush = w.flush  # type: ignore[attr-defined]
        return w

    def persisted(topic: str, partition: int, offset: int) -> None:
        """A changelog record acknowledged: what Faust's own callback keeps (its recovery reads
        the table's changelog from there)."""
        tbl = changelog_tables.get(topic)
        if tbl is not None:
            tbl.data.set_persisted_offset(TP(topic, partition), offset)

    @app.task
    async def output() -> None:
        """Serve the librdkafka writer's delivery reports while the worker runs (every step
        polls too), and write what is left when it stops. The worker's consumer awaits its
        ``flush`` before each offset commit (``app.hzbus_flush``)."""
        try:
            while True:
                await asyncio.sleep(0.05)
                if writer:
                    writer[0].poll()
        finally:
            left = writer[0].close() if writer else 0
            if left:
                log.error("%d output record(s) not written at stop; their inputs are not committed", left)

    @contextlib.contextmanager
    def changelogs_held() -> Iterator[None]:
        """Hold the changelog records of the table writes within; only when the producer runs
        (in Faust's test context it does not, and the records go to Faust's buffer as usual)."""
        holding["on"] = bool(app.producer.started)
        try:
            yield
        finally:
            holding["on"] = False

    def table(name: str) -> Any:  # options copied: Faust's store pops keys from the dict it gets
        return app.tables.add(
            DirectChangelogTable(
                app,
                name=name,
                beacon=app.tables.beacon,
                partitions=partitions,
                key_type=bytes,
                value_type=bytes,
                options=dict(ROCKSDB_OPTIONS),
            )
        )

    def stored(tbl: Any, key: bytes) -> bytes | None:
        """``tbl.get(key)`` of a raw table, without the KeyError that Faust's table raises and
        catches for a key it does not hold (most keys of an import are new, and that path cost
        ~5% of the worker's CPU): the RocksDB store's own read, which gives None. (The
        in-memory store of the component tests has none: its ``get``.)"""
        store = tbl.data
        read = getattr(store, "_get", None)
        return read(key) if read is not None else store.get(key)

    states, wakeups = table("obligation-state"), table("wakeups")
    subjects, delivered = table("subject-state"), table("alerts-delivered")
    changelog_tables = {t.changelog_topic.get_topic_name(): t for t in (states, wakeups, subjects, delivered)}
    heap = DeadlineHeap()
    seen_years: set[int] = set()
    #: decoded states of this worker's keys, most recently used last (the table stays the truth)
    cache: dict[str, KeyState] = {}

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget(_app: Any, revoked: Any, **_: Any) -> None:
        cache.clear()  # another worker may change those keys before they come back

    #: monotonic time of the last imported past record (see ``sweep``)
    importing = {"last": -1e9}
    assigned: dict[str, frozenset[int]] = {"by-key": frozenset()}
    stats = {"events": 0, "undecodable": 0, "refused": 0, "dead_letters": 0, "alerts": 0}
    app.hzbus_stats = stats  # type: ignore[attr-defined]
    app.hzbus_topics = {**routes, **facts}  # type: ignore[attr-defined]
    app.hzbus_tables = {"states": states, "wakeups": wakeups, "subjects": subjects}  # type: ignore[attr-defined]

    def published_at(record: Any) -> datetime | None:
        """A source record's publication time (``record``: aiokafka's ConsumerRecord, time in ms)."""
        headers = dict(record.headers or ())
        if HISTORICAL_HEADER in headers:
            return None  # an import of past records: the core uses recorded_at
        if identity.PUBLISHED_HEADER in headers:  # forwarded by the gate: its ingress append time
            return from_ms(identity.gate_published_ms(record.headers, 0))
        if record.timestamp_type == LOG_APPEND_TIME and record.timestamp:
            return from_ms(record.timestamp)
        return None

    def dead_letter(ev: Any, reason: str, value: bytes | None = None) -> None:
        """Keep a record of the worker's own topics (or, with ``value``, one entry of a batch
        record) that it cannot use, with the reason (the agent goes on; uncaught, Faust would
        restart the agent and skip the record unkept)."""
        m = ev.message
        log.warning("dead letter %s[%d]@%d: %s", m.topic, m.partition, m.offset, reason)
        stats["dead_letters"] += 1
        headers: Any = deadletters.headers(m.topic, m.partition, m.offset, reason, "worker")
        kept = ev.value if value is None else value
        facts["deadletter"].send_soon(key=ev.key, value=kept, headers=headers)

    def partition_of(key: bytes) -> int:
        """The partition Kafka's default partitioner (Faust's) gives ``key``: the batch records
        carry many keys, each on the partition its own record would have had."""
        return partition_for(key, partitions)

    async def send_batches(topic: FactTopic, entries: dict[int, list[tuple[bytes, bytes]]]) -> list[Any]:
        """One batch record per partition (more when over ``BATCH_BYTES``), entries in order,
        straight into the producer's batches; their acknowledgements."""
        acks: list[Any] = []
        KEY = b"__batch__"
        for partition, items in entries.items():
            chunk: list[tuple[bytes, bytes]] = []
            size = 0
            for key, value in items:
                if chunk and size + len(key) + len(value) + 7 > BATCH_BYTES:
                    acks.append(await topic.send(key=KEY, partition=partition, value=pack_batch(chunk)))
                    chunk, size = [], 0
                chunk.append((key, value))
                size += len(key) + len(value) + 7
            if chunk:
                acks.append(await topic.send(key=KEY, partition=partition, value=pack_batch(chunk)))
        return acks

    def route_event(
        record: Any,
        keyed: dict[int, list[tuple[bytes, bytes]]],
        by_subj: dict[int, list[tuple[bytes, bytes]]],
        unroutable: list[tuple[Any, str]],
    ) -> bool:
        """Check one source record (aiokafka's ConsumerRecord: time in ms) and add its entries
        to the batches: one per correlation key of the rules that read it, one per subject for
        correlation. False if skipped. A record that decodes and is admitted but cannot be
        routed (an error of ours meeting it) goes to ``unroutable`` with the reason, whole:
        one record must not stop the bus (the route stage would fail on it at every restart)."""
        raw = record.value
        try:
            event = codec.decode(raw)
        except codec.DecodeError as exc:
            stats["undecodable"] += 1
            log.warning(
                "skipping %s[%d]@%d: does not decode (%s); the sink keeps it as a dead letter",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return False
        refused = admission.size_refusal(len(raw)) or admission.event_refusal(
            event,
            topic_family=families.get(record.topic),
            published_ms=int(
                record.timestamp if record.timestamp_type == LOG_APPEND_TIME else time.time() * 1000
            ),
        )
        if refused:
            stats["refused"] += 1
            log.warning(
                "skipping %s[%d]@%d: %s; the sink keeps it as a dead letter",
                record.topic,
                record.partition,
                record.offset,
                refused,
            )
            return False
        try:  # everything first, then the batches: a record is routed whole or not at all
            published = published_at(record)
            envelope = pack_event(raw, published)
            keys = [ckey.encode() for ckey in obligations.correlation_keys(event)]
            year = shanghai_date(event.occurred_at).year
            prepared = correlation.prepare(event, key)
            subject = None
            if prepared is not None:
                subject_key = str(prepared.fields["subject_id"]).encode()
                subject = (subject_key, pack_event(codec.encode(prepared), published))
        except Exception as exc:
            reason = f"cannot be routed: {type(exc).__name__}: {exc}"
            where = (record.topic, record.partition, record.offset)
            log.error("dead letter %s[%d]@%d: %s", *where, reason, exc_info=exc)
            unroutable.append((record, reason))
            return False
        stats["events"] += 1
        for k in keys:
            keyed.setdefault(partition_of(k), []).append((k, envelope))
        if year not in seen_years:  # the annual_joint_meeting clock of that year
            seen_years.add(year)
            k = obligations.year_key(year).encode()
            keyed.setdefault(partition_of(k), []).append((k, pack_tick(clock())))
        if subject is not None:
            by_subj.setdefault(partition_of(subject[0]), []).append(subject)
        return True

    async def route_records(records: Sequence[Any]) -> list[Any]:
        """Re-key a batch of source records by the correlation keys of the rules that read
        them: one record per partition of by-key and by-subject holds the batch's entries of
        that partition. Returns the acknowledgements of what it produced."""
        keyed: dict[int, list[tuple[bytes, bytes]]] = {}
        by_subj: dict[int, list[tuple[bytes, bytes]]] = {}
        unroutable: list[tuple[Any, str]] = []
        routed = sum(route_event(r, keyed, by_subj, unroutable) for r in records)
        acks = await send_batches(routes["by-key"], keyed)
        acks += await send_batches(routes["by-subject"], by_subj)
        for record, reason in unroutable:  # kept, acknowledged before the source offset is committed
            stats["dead_letters"] += 1
            headers = deadletters.headers(record.topic, record.partition, record.offset, reason, "worker")
            acks.append(await facts["deadletter"].send(key=record.key, value=record.value, headers=headers))
        for _ in range(routed):
            reached("worker.routed")  # re-keyed records produced, source offsets not committed
        return acks

    app.hzbus_route = route_records  # type: ignore[attr-defined]

    route_group = f"{prefix}-worker-route"
    source_topics = event_topics(prefix)

    async def upgrade_offsets() -> dict[Any, int]:
        """Where a worker of before the route task left the source topics: the committed offsets
        of the Faust group (``<prefix>-worker``), whose route agent read them. The route group
        starts there on every partition it has no offset of its own for, so a worker upgraded
        from it neither routes everything again nor skips what arrived while it was stopped;
        a partition neither group committed starts at the earliest offset (a new deployment)."""
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(**kafka_auth.aiokafka_options(settings, identity.BUS))
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(f"{prefix}-worker")
        finally:
            await admin.close()
        return {tp: om.offset for tp, om in committed.items() if tp.topic in source_topics and om.offset >= 0}

    async def route_loop(consumer: Any) -> None:
        """Fetch, route, and commit each batch once what it produced is acknowledged."""
        from aiokafka.errors import CommitFailedError, IllegalStateError

        pending: list[tuple[list[Any], dict[Any, int]]] = []
        within_ms = max(1, int(route_within * 1000))

        async def settle() -> None:
            """Wait for the acknowledgements of the batch in flight (a refused record raises
            here), then commit its offsets on the partitions still assigned to this worker."""
            while pending:
                acks, offsets = pending.pop(0)
                await asyncio.gather(*(a for a in acks if inspect.isawaitable(a)))
                assigned = consumer.assignment()
                mine = {tp: o for tp, o in offsets.items() if tp in assigned}
                try:
                    await consumer.commit(mine)
                except (CommitFailedError, IllegalStateError) as exc:  # a rebalance moved them
                    log.warning("route: offsets not committed (%r); those records will be read again", exc)

        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=within_ms, max_records=route_batch)
                if failed:  # the listener's seek to the upgrade offsets did not happen
                    raise failed[0]
                if not fetched:
                    await settle()
                    continue
                records = [r for rs in fetched.values() for r in rs]
                offsets = {tp: rs[-1].offset + 1 for tp, rs in fetched.items()}
                acks = await route_records(records)
                await settle()  # the batch before: acknowledged, then committed
                pending.append((acks, offsets))
        finally:
            if not failed:
                try:  # stopping (or failing after it was produced): commit what is acknowledged
                    await asyncio.wait_for(settle(), 10)
                except Exception as exc:  # what is not committed is read again
                    log.warning("route: stopped before its last batch was committed (%r)", exc)

    #: an error of the rebalance listener (aiokafka logs and swallows it): the loop raises it
    failed: list[BaseException] = []
    stopping: list[Any] = []  # the worker's stop, once the route stage failed

    @app.task
    async def route() -> None:
        """The route stage, outside Faust's per-message stream: its own aiokafka consumer (group
        ``<prefix>-worker-route``) in the app's event loop takes up to ``route_batch`` source
        records at a time (``getmany``), routes them (``route_records``), and commits their
        offsets only once every record they produced is acknowledged (at least once; track and
        correlate keep each event once, by event_id). Batch k's records are in flight while
        batch k+1 is fetched and routed; batch k is committed before batch k+1 is.

        If anything stops it (the broker refuses a record or a commit, an unexpected error in
        the loop), the worker does not go on without it: it logs ``route stage failed`` with the
        error at CRITICAL level and exits with status 1 (a service manager restarts it; the
        source records whose re-keyed records were not acknowledged are not committed and are
        routed again)."""
        from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener

        consumer: Any = None
        try:
            seeds = await upgrade_offsets()

            class StartWhereTheWorkerGroupWas(ConsumerRebalanceListener):
                async def on_partitions_revoked(self, revoked: Any) -> None:
                    pass

                async def on_partitions_assigned(self, assigned: Any) -> None:
                    try:
                        start = {
                            tp: seeds[tp]
                            for tp in sorted(assigned)
                            if tp in seeds and await consumer.committed(tp) is None
                        }
                        for tp, offset in start.items():
                            consumer.seek(tp, offset)
                        if start:  # committed at once: the group's lag counts from there
                            await consumer.commit(start)
                            log.warning(
                                "route: %d source partition(s) start where group %s-worker left them "
                                "(an upgrade: group %s had no offset there): %s",
                                len(start),
                                prefix,
                                route_group,
                                ", ".join(f"{tp.topic}[{tp.partition}]@{o}" for tp, o in start.items()),
                            )
                    except Exception as exc:
                        failed.append(exc)

            consumer = AIOKafkaConsumer(
                group_id=route_group,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                session_timeout_ms=int(settings.kafka_session_timeout * 1000),
                heartbeat_interval_ms=int(min(3.0, settings.kafka_session_timeout / 3) * 1000),
                **kafka_auth.aiokafka_options(settings, identity.BUS),
            )
            consumer.subscribe(source_topics, listener=StartWhereTheWorkerGroupWas())
            await consumer.start()
            await route_loop(consumer)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            route_failed(exc)
        finally:
            if consumer is not None:
                await consumer.stop()

    def route_failed(exc: BaseException) -> None:
        """Stop the worker, status 1: without its route stage it would look alive and route
        nothing (Faust only logs a crashed task)."""
        log.critical(
            "route stage failed: %s: %s. The worker stops (exit status 1); restart it: the source "
            "records not yet acknowledged downstream are not committed and will be routed again",
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        app.hzbus_exit_status = 1  # type: ignore[attr-defined]
        worker = getattr(app, "hzbus_worker", None)  # the faust.Worker of ``hzbus worker``
        if worker is None:
            stopping.append(asyncio.ensure_future(app.crash(exc)))
            return
        stopping.append(asyncio.ensure_future(worker.stop()))  # flushes, commits what agents acknowledged
        import os
        import threading

        # a stop that hangs (the broker away) must not leave a process that looks alive; a
        # daemon thread, so that a stop that ends in time does not wait for it
        cutoff = threading.Timer(60.0, os._exit, args=(1,))
        cutoff.daemon = True
        cutoff.start()

    async def step_all(inputs: Sequence[tuple[str, Event | None, datetime]], partition: int) -> None:
        """Apply a record's inputs (an event, or with None the passing of time, for a key at a
        moment), in order; then send the alerts of all of them, then store each key's state and
        wake-up once (one changelog record per key and record), then send the other facts."""
        work: dict[str, KeyState] = {}
        found: dict[str, list[Change]] = {}
        for ckey, event, now in inputs:
            state, changes = evaluate_key(ckey, work.get(ckey), event, now)
            work[ckey] = state
            found.setdefault(ckey, []).extend(changes)
        alerts: list[tuple[str, bytes, bytes]] = []
        others: list[tuple[str, bytes, bytes]] = []
        for changes in found.values():
            for change in changes:
                alert = isinstance(change, Alert | AlertResolved)
                (alerts if alert else others).extend(change_records(change))
        await send_records(alerts)
        with changelogs_held():
            for ckey, state in work.items():
                store_key(ckey, partition, state)
        await send_changelogs()
        await send_records(others)

    def evaluate_key(
        ckey: str, state: KeyState | None, event: Event | None, now: datetime
    ) -> tuple[KeyState, list[Change]]:
        """The key's new state and its changes. An input that changes nothing and may be a
        re-delivery (an event the state already holds, or a tick) gets the key restated
        instead: a worker killed after storing a state (RocksDB, at once) but before the step's
        facts left the producer buffer gets that input again, and its facts would be lost
        (docs/reliability.md). Readers keep each fact once, so saying them again is safe."""
        if state is None:
            state = cache.pop(ckey, None) or load_state(ckey, stored(states, ckey.encode()))
        if event is not None:
            again = any(e.event_id == event.event_id for e in state.events)
            state, changes = obligations.apply(state, event, calendar, now)
        else:
            again = True
            state, changes = obligations.advance(state, now, calendar)
        if again and not changes:
            changes = obligations.restate(state, calendar)
        return state, changes

    def store_key(ckey: str, partition: int, state: KeyState) -> None:
        """Store a key's new state and wake-up (the wake-up only when it moves)."""
        raw_key = ckey.encode()
        states[raw_key] = dump_state(state)
        cache[ckey] = state  # most recently used last
        if len(cache) > cache_size:
            del cache[next(iter(cache))]
        wake = obligations.next_wakeup(state, calendar)
        wake_ms = to_ms(wake) if wake is not None else None
        if wake_ms is None:
            if stored(wakeups, raw_key) is not None:
                del wakeups[raw_key]
        else:
            entry = f"{wake_ms}:{partition}".encode()
            if stored(wakeups, raw_key) != entry:  # a changelog record only when the wake-up moves
                wakeups[raw_key] = entry
        heap.set(ckey, wake_ms, partition)

    async def send_records(records: list[tuple[str, bytes, bytes]]) -> None:
        """Produce facts now, straight into the producer's batches (``FactTopic``), in order:
        ahead of the table changelogs, which queue in Faust's buffer (1,000 obligations due at
        midnight put 4,000 records there, and an alert waiting behind them missed its second).
        Each send only appends to a batch: it suspends only when the producer's memory is
        full, which is the back-pressure wanted. Through librdkafka once the app runs."""
        w = output_writer()
        if w is not None:
            for family, k, v in records:
                w.send(facts[family].name, k, v)
            w.poll()
            return
        for family, k, v in records:
            await facts[family].send(key=k, value=v)

    @app.agent(by_key, concurrency=1)
    async def track(stream: Any) -> None:
        """Keep each key's obligation state; emit obligation, alert and finding facts."""
        async for ev in stream.events():
            try:
                entries = batch_entries(ev.key or b"", ev.value)
            except ValueError as exc:  # not a record the route agent wrote
                dead_letter(ev, f"not a worker record: {exc}")
                continue
            inputs: list[tuple[str, Event | None, datetime]] = []
            for key, value in entries:
                try:
                    kind, moment, payload = unpack(value)
                    event = codec.decode(payload) if kind == EVENT else None
                except ValueError as exc:  # codec.DecodeError too: not a record the route agent wrote
                    dead_letter(ev, f"not a worker record: {exc}", value)
                    continue
                now = clock()
                if event is not None:
                    if moment is not None:
                        event = event.with_published_at(moment)
                    else:  # an import of past records runs on its own time, not the wall clock
                        now = min(now, event.recorded_at)
                        importing["last"] = time.monotonic()
                    inputs.append((key.decode(), event, now))
                elif kind == TICKS:  # the sweep's batch: keys of this record's partition
                    at = max(now, moment or now)
                    inputs.extend((k, None, at) for k in tick_keys(payload))
                else:
                    inputs.append((key.decode(), None, max(now, moment or now)))
            if inputs:
                await step_all(inputs, ev.message.partition)
            for _ in inputs:
                reached("worker.tracked")  # states stored, facts buffered, by-key offset not committed

    @app.agent(by_subject, concurrency=1)
    async def correlate(stream: Any) -> None:
        """Keep each subject's approvals and penalties; emit correlations."""
        async for ev in stream.events():
            try:
                entries = batch_entries(ev.key or b"", ev.value)
            except ValueError as exc:  # not a record the route agent wrote
                dead_letter(ev, f"not a worker record: {exc}")
                continue
            work: dict[bytes, correlation.SubjectState] = {}
            found: list[Any] = []
            applied = 0
            for key, value in entries:
                try:
                    _kind, moment, payload = unpack(value)
                    event = codec.decode(payload)
                except ValueError as exc:  # codec.DecodeError too: not a record the route agent wrote
                    dead_letter(ev, f"not a worker record: {exc}", value)
                    continue
                if key in work:
                    state: correlation.SubjectState | None = work[key]
                else:
                    raw = stored(subjects, key)
                    state = correlation.SubjectState.from_dict(orjson.loads(raw)) if raw else None
                if moment is not None:
                    event = event.with_published_at(moment)
                state, new = correlation.apply(state, event)
                work[key] = state
                found.extend(new)
                applied += 1
            if found:  # acknowledged before the states are stored (docs/reliability.md): a worker
                # killed in between gets the record again and finds the same correlations again
                records = [(c.correlation_id.encode(), orjson.dumps(c.to_dict())) for c in found]
                w = output_writer()
                if w is not None:
                    name = facts["correlations"].name
                    acks = [w.send(name, k, v, ack=True) for k, v in records]
                    await w.acknowledged([a for a in acks if a is not None])
                else:
                    sent = [await facts["correlations"].send(key=k, value=v) for k, v in records]
                    await asyncio.gather(*(s for s in sent if inspect.isawaitable(s)))  # (test fakes: None)
            with changelogs_held():
                for key, state in work.items():
                    subjects[key] = orjson.dumps(state.to_dict())
            await send_changelogs()
            for _ in range(applied):
                reached("worker.correlated")

    @app.agent(outputs["alerts"], concurrency=1)
    async def notify(stream: Any) -> None:
        """Deliver each alert fact once (dedup key: obligation id + alert kind + raised/resolved).

        The ``alerts-delivered`` table (RocksDB, written at once, changelogged) records each
        notifier's delivery (key ``<once>:n<i>``) right after it returns, before the next one: a
        worker killed between two notifiers delivers only the missing ones after restart. Each
        key is written once, with one value, so that a table recovery replaying its changelog
        cannot take a marker back to an earlier value. ``<once>``: all done."""
        async for ev in stream.events():
            alert = orjson.loads(ev.value)
            once = f"{alert['dedup_key']}:{alert['event']}"
            if delivered.get(once.encode()) is not None:
                continue
            failures = {}
            superseded = alert["kind"] == "due_soon" and alert["obligation"]["status"] == "missed"
            for i, notifier in enumerate(() if superseded else notifiers):  # the missed alert says it all
                mark = f"{once}:n{i}".encode()
                if delivered.get(mark) is not None:
                    continue
                error = await deliver_with_retry(notifier, alert)
                if error is not None:
                    failures[notifier.name] = error
                    continue
                delivered[mark] = b"1"
                reached("worker.notified")  # delivered and marked; offset and changelog not committed
            delivered[once.encode()] = b"1"
            stats["alerts"] += 1
            if failures:
                await facts["alerts-undelivered"].send(
                    key=once.encode(), value=orjson.dumps({"alert": alert, "failures": failures})
                )

    @app.task
    async def diagnostics() -> None:
        """``kill -USR2 <pid>``: log the consumer's offset bookkeeping of every partition with
        acknowledged offsets not yet committed (what a worker that stops committing holds:
        docs/reliability.md). Faust's own ``kill -USR1`` logs every task's stack."""
        import signal

        def offsets() -> None:
            consumer: Any = app.consumer
            pending = sorted((tp, acked) for tp, acked in getattr(consumer, "_acked", {}).items() if acked)
            log.warning("hzbus offsets: %d partition(s) with acknowledged, uncommitted offsets", len(pending))
            for tp, acked in pending:
                if acked:
                    log.warning(
                        "hzbus offsets: %s[%d]: committed %s, read %s, acked %d (%s..%s), gaps %s",
                        tp.topic,
                        tp.partition,
                        consumer._committed_offset.get(tp),
                        consumer._read_offset.get(tp),
                        len(acked),
                        min(acked),
                        max(acked),
                        sorted((i.begin, i.end) for i in consumer._gap.get(tp, ()))[:5],
                    )

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, offsets)

    @app.timer(sweep_interval)
    async def sweep() -> None:
        """Send a tick to every key of this worker whose wake-up time has come."""
        if time.monotonic() - importing["last"] < import_quiet:
            return  # an import of past records is under way: the clocks catch up once it is done
        if app.in_recovery or app.rebalancing:
            return  # the tables are being restored: the index is rebuilt once they are
        actives = frozenset(
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == by_key.get_topic_name()
        )
        if actives != assigned["by-key"]:
            assigned["by-key"] = actives
            entries = []
            for k, v in wakeups.items():
                wake, _, part = v.decode().partition(":")
                entries.append((k.decode(), int(wake), int(part or -1)))
            heap.reset(entries)
            log.info("deadline index rebuilt: %d keys on partitions %s", len(heap.current), sorted(actives))
        now = clock()
        by_partition: dict[int, list[str]] = {}
        for ckey, partition in heap.due(to_ms(now)):
            if partition < 0:  # no partition on record (older index entry): a tick of its own
                routes["by-key"].send_soon(key=ckey.encode(), value=pack_tick(now))
            else:
                by_partition.setdefault(partition, []).append(ckey)
        for partition, keys in by_partition.items():  # one record per partition, not per key
            for i in range(0, len(keys), 2000):
                routes["by-key"].send_soon(
                    key=b"__ticks__", partition=partition, value=pack_ticks(now, keys[i : i + 2000])
                )
        if by_partition:
            reached("worker.swept")  # due times passed, ticks buffered, nothing evaluated yet

    return app


__all__ = ["HISTORICAL_HEADER", "DeadlineHeap", "build_app", "change_records", "from_ms"]
