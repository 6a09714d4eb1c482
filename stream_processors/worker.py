"""The Faust worker: thin agents around the pure core (obligations, correlation, alerts).

Topology (``P`` = topic prefix, 8 partitions unless said otherwise)::

    P.cases, P.approvals, ... ──route──▶ P.by-key      (re-keyed by correlation key: case:…, request:…)
                                   └───▶ P.by-subject  (approvals and penalties, keyed by the
                                                         pseudonymised subject)
    P.by-key ──track──▶ table obligation-state ──▶ P.obligations, P.alerts, P.findings
    P.by-subject ──correlate──▶ table subject-state ──▶ P.correlations
    P.alerts ──notify──▶ console, webhook (once per dedup key: table alerts-delivered)

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
import heapq
import inspect
import logging
import time
from collections.abc import Callable, Sequence
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
    from_ms,
    pack_event,
    pack_tick,
    pack_ticks,
    tick_keys,
    to_ms,
    unpack,
)
from stream_processors.notifiers import Notifier, deliver_with_retry

log = logging.getLogger("hzbus.worker")
LOG_APPEND_TIME = 1


def encode_event(event: Event) -> dict[str, Any]:
    out = codec.to_canonical(event)
    if event.published_at is not None:
        out["_published_at"] = event.published_at.isoformat()
    return out


def decode_event(obj: Any) -> Event:
    obj = dict(obj)
    published = obj.pop("_published_at", None)
    event = codec.from_canonical(obj)
    return event.with_published_at(datetime.fromisoformat(published)) if published else event


def dump_state(state: KeyState) -> bytes:
    return orjson.dumps(state.to_dict(encode_event))


def load_state(key: str, raw: bytes | None) -> KeyState:
    if raw is None:
        return KeyState(key)
    return KeyState.from_dict(orjson.loads(raw), decode_event)


def change_records(change: Change) -> list[tuple[str, bytes, bytes]]:
    """(topic family, key, value) records of one change of the obligation engine."""
    if isinstance(change, ObligationChanged):
        o = change.obligation
        value = {
            "obligation": o.to_dict(),
            "previous_status": change.previous.status if change.previous else None,
            "at": change.at.isoformat(),
        }
        return [("obligations", o.obligation_id.encode(), orjson.dumps(value))]
    if isinstance(change, Alert):
        value = {
            "event": "raised",
            "kind": change.kind,
            "dedup_key": change.dedup_key,
            "obligation": change.obligation.to_dict(),
            "at": change.raised_at.isoformat(),
        }
        return [("alerts", change.dedup_key.encode(), orjson.dumps(value))]
    if isinstance(change, AlertResolved):
        value = {
            "event": "resolved",
            "kind": change.alert_kind,
            "dedup_key": change.dedup_key,
            "obligation": change.obligation.to_dict(),
            "at": change.resolved_at.isoformat(),
        }
        return [("alerts", change.dedup_key.encode(), orjson.dumps(value))]
    if isinstance(change, FindingRaised | FindingWithdrawn):
        f = change.finding
        value = {
            "event": "raised" if isinstance(change, FindingRaised) else "withdrawn",
            "finding": f.to_dict(),
            "at": change.at.isoformat(),
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


#: the worker's tables (Faust names their changelog topics ``<prefix>-worker-<table>-changelog``)
TABLES = ("obligation-state", "wakeups", "subject-state", "alerts-delivered")

#: RocksDB bounds of each table partition's database. Faust opens one database per table and
#: partition (4 x 8 = 32 here), each with defaults sized for one database alone: 64 MiB write
#: buffers (up to 3) and a 2 GiB block cache of its own, so the ~1 KB states of new keys piled
#: up in memtables: 1.4 KB of RSS per key (1.6 GiB projected for a million keys), 0.55 KB with
#: these bounds (docs/performance.md, "Load and memory").
ROCKSDB_OPTIONS = {"write_buffer_size": 4 << 20, "max_write_buffer_number": 2, "block_cache_size": 8 << 20}


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
) -> Any:
    """The Faust app of ``hzbus worker`` (nothing connects until it is started)."""
    import faust

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
    sources = app.topic(*event_topics(prefix), key_type=bytes, value_type=bytes)
    families = {topic_name(prefix, family): family for family in event_families()}
    by_key = app.topic(topic_name(prefix, "by-key"), partitions=partitions, key_type=bytes, value_type=bytes)
    by_subject = app.topic(
        topic_name(prefix, "by-subject"), partitions=partitions, key_type=bytes, value_type=bytes
    )
    outputs = {
        family: app.topic(topic_name(prefix, family), key_type=bytes, value_type=bytes)
        for family in (
            "obligations", "alerts", "findings", "correlations", "alerts-undelivered", "deadletter"
        )
    }
    def table(name: str) -> Any:  # options copied: Faust's store pops keys from the dict it gets
        return app.Table(
            name, partitions=partitions, key_type=bytes, value_type=bytes, options=dict(ROCKSDB_OPTIONS)
        )

    states, wakeups = table("obligation-state"), table("wakeups")
    subjects, delivered = table("subject-state"), table("alerts-delivered")
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
    app.hzbus_topics = {"by-key": by_key, "by-subject": by_subject, **outputs}  # type: ignore[attr-defined]
    app.hzbus_tables = {"states": states, "wakeups": wakeups, "subjects": subjects}  # type: ignore[attr-defined]

    def published_at(message: Any) -> datetime | None:
        headers = dict(message.headers or ())
        if HISTORICAL_HEADER in headers:
            return None  # an import of past records: the core uses recorded_at
        if identity.PUBLISHED_HEADER in headers:  # forwarded by the gate: its ingress append time
            return from_ms(identity.gate_published_ms(message.headers, 0))
        if message.timestamp_type == LOG_APPEND_TIME and message.timestamp:
            return datetime.fromtimestamp(message.timestamp, tz=UTC)
        return None

    def dead_letter(ev: Any, reason: str) -> None:
        """Keep a record of the worker's own topics that it cannot use, with the reason (the
        agent goes on; uncaught, Faust would restart the agent and skip the record unkept)."""
        m = ev.message
        log.warning("dead letter %s[%d]@%d: %s", m.topic, m.partition, m.offset, reason)
        stats["dead_letters"] += 1
        headers: Any = deadletters.headers(m.topic, m.partition, m.offset, reason, "worker")
        outputs["deadletter"].send_soon(key=ev.key, value=ev.value, headers=headers)

    @app.agent(sources, concurrency=1)
    async def route(stream: Any) -> None:
        """Re-key each event by the correlation keys of the rules that read it."""
        async for ev in stream.events():
            raw = ev.value
            try:
                event = codec.decode(raw)
            except codec.DecodeError as exc:
                stats["undecodable"] += 1
                log.warning(
                    "skipping %s[%d]@%d: does not decode (%s); the sink keeps it as a dead letter",
                    ev.message.topic,
                    ev.message.partition,
                    ev.message.offset,
                    exc,
                )
                continue
            message = ev.message
            refused = admission.size_refusal(len(raw)) or admission.event_refusal(
                event,
                topic_family=families.get(message.topic),
                published_ms=int(
                    (message.timestamp if message.timestamp_type == LOG_APPEND_TIME else time.time()) * 1000
                ),
            )
            if refused:
                stats["refused"] += 1
                log.warning(
                    "skipping %s[%d]@%d: %s; the sink keeps it as a dead letter",
                    message.topic,
                    message.partition,
                    message.offset,
                    refused,
                )
                continue
            stats["events"] += 1
            published = published_at(ev.message)
            envelope = pack_event(raw, published)
            for ckey in obligations.correlation_keys(event):
                by_key.send_soon(key=ckey.encode(), value=envelope)
            year = shanghai_date(event.occurred_at).year
            if year not in seen_years:  # the annual_joint_meeting clock of that year
                seen_years.add(year)
                by_key.send_soon(key=obligations.year_key(year).encode(), value=pack_tick(clock()))
            prepared = correlation.prepare(event, key)
            if prepared is not None:
                subject = str(prepared.fields["subject_id"])
                by_subject.send_soon(
                    key=subject.encode(), value=pack_event(codec.encode(prepared), published)
                )
            reached("worker.routed")  # re-keyed records buffered, source offset not committed

    async def step(ckey: str, partition: int, event: Event | None, now: datetime) -> None:
        """Apply one event (or, with None, the passing of time) to one key; emit; store."""
        state, changes = evaluate_key(ckey, event, now)
        await send_alerts(alert_records(changes))
        store_key(ckey, partition, state, changes, alerts_sent=True)

    def evaluate_key(ckey: str, event: Event | None, now: datetime) -> tuple[KeyState, list[Change]]:
        """The key's new state and its changes. An input that changes nothing and may be a
        re-delivery (an event the state already holds, or a tick) gets the key restated
        instead: a worker killed after storing a state (RocksDB, at once) but before the step's
        facts left the producer buffer gets that input again, and its facts would be lost
        (docs/reliability.md). Readers keep each fact once, so saying them again is safe."""
        state = cache.pop(ckey, None) or load_state(ckey, states.get(ckey.encode()))
        if event is not None:
            again = any(e.event_id == event.event_id for e in state.events)
            state, changes = obligations.apply(state, event, calendar, now)
        else:
            again = True
            state, changes = obligations.advance(state, now, calendar)
        if again and not changes:
            changes = obligations.restate(state, calendar)
        return state, changes

    def store_key(
        ckey: str, partition: int, state: KeyState, changes: list[Change], *, alerts_sent: bool = False
    ) -> None:
        """Store a key's new state and wake-up, and emit its changes (but its alerts, when
        ``alerts_sent``)."""
        raw_key = ckey.encode()
        states[raw_key] = dump_state(state)
        cache[ckey] = state  # most recently used last
        if len(cache) > cache_size:
            del cache[next(iter(cache))]
        wake = obligations.next_wakeup(state, calendar)
        wake_ms = to_ms(wake) if wake is not None else None
        if wake_ms is None:
            if raw_key in wakeups:
                del wakeups[raw_key]
        else:
            entry = f"{wake_ms}:{partition}".encode()
            if wakeups.get(raw_key) != entry:  # a changelog record only when the wake-up moves
                wakeups[raw_key] = entry
        heap.set(ckey, wake_ms, partition)
        for change in changes:
            if alerts_sent and isinstance(change, Alert | AlertResolved):
                continue
            for family, k, v in change_records(change):
                outputs[family].send_soon(key=k, value=v)

    def alert_records(changes: list[Change]) -> list[tuple[str, bytes, bytes]]:
        return [r for c in changes if isinstance(c, Alert | AlertResolved) for r in change_records(c)]

    async def send_alerts(records: list[tuple[str, bytes, bytes]]) -> None:
        """Produce alert facts now, ahead of the producer buffer: table changelogs and other
        facts queue in one FIFO buffer that Faust drains one record per loop turn, and 1,000
        obligations due at midnight put 4,000 records there. Every alert record of this agent
        takes this path. The sends are started together (each only appends to the producer's
        batch), not awaited one by one: each await would yield to the drain task and the
        other agents, ~2 ms a record under load."""
        if records:
            await asyncio.gather(*(outputs[f].send(key=k, value=v) for f, k, v in records))

    async def sweep_keys(keys: Sequence[str], partition: int, at: datetime) -> None:
        """The passing of time for a sweep's batch of keys: the alerts of all of them first,
        then the states, wake-ups and other facts."""
        evaluated = [(ckey, *evaluate_key(ckey, None, at)) for ckey in keys]
        await send_alerts([r for _, _, changes in evaluated for r in alert_records(changes)])
        for ckey, state, changes in evaluated:
            store_key(ckey, partition, state, changes, alerts_sent=True)

    @app.agent(by_key, concurrency=1)
    async def track(stream: Any) -> None:
        """Keep each key's obligation state; emit obligation, alert and finding facts."""
        async for ev in stream.events():
            try:
                kind, moment, payload = unpack(ev.value)
                event = codec.decode(payload) if kind == EVENT else None
            except ValueError as exc:  # codec.DecodeError too: not a record the route agent wrote
                dead_letter(ev, f"not a worker record: {exc}")
                continue
            partition = ev.message.partition
            now = clock()
            if event is not None:
                if moment is not None:
                    event = event.with_published_at(moment)
                else:  # an import of past records runs on its own time, not the wall clock
                    now = min(now, event.recorded_at)
                    importing["last"] = time.monotonic()
                await step(ev.key.decode(), partition, event, now)
            elif kind == TICKS:  # the sweep's batch: keys of this record's partition
                await sweep_keys(tick_keys(payload), partition, max(now, moment or now))
            else:
                await step(ev.key.decode(), partition, None, max(now, moment or now))
            reached("worker.tracked")  # state stored, facts buffered, by-key offset not committed

    @app.agent(by_subject, concurrency=1)
    async def correlate(stream: Any) -> None:
        """Keep each subject's approvals and penalties; emit correlations."""
        async for ev in stream.events():
            try:
                _kind, moment, payload = unpack(ev.value)
                event = codec.decode(payload)
            except ValueError as exc:  # codec.DecodeError too: not a record the route agent wrote
                dead_letter(ev, f"not a worker record: {exc}")
                continue
            raw = subjects.get(ev.key)
            state = correlation.SubjectState.from_dict(orjson.loads(raw)) if raw else None
            if moment is not None:
                event = event.with_published_at(moment)
            state, found = correlation.apply(state, event)
            if found:  # acknowledged before the state is stored (docs/reliability.md): a worker
                # killed in between gets the input again and finds the same correlations again
                sent = [
                    await outputs["correlations"].send(
                        key=c.correlation_id.encode(), value=orjson.dumps(c.to_dict())
                    )
                    for c in found
                ]
                await asyncio.gather(*(s for s in sent if inspect.isawaitable(s)))  # (test fakes: None)
            subjects[ev.key] = orjson.dumps(state.to_dict())
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
                await outputs["alerts-undelivered"].send(
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
                by_key.send_soon(key=ckey.encode(), value=pack_tick(now))
            else:
                by_partition.setdefault(partition, []).append(ckey)
        for partition, keys in by_partition.items():  # one record per partition, not per key
            for i in range(0, len(keys), 2000):
                by_key.send_soon(
                    key=b"__ticks__", partition=partition, value=pack_ticks(now, keys[i : i + 2000])
                )
        if by_partition:
            reached("worker.swept")  # due times passed, ticks buffered, nothing evaluated yet

    return app


__all__ = ["HISTORICAL_HEADER", "DeadlineHeap", "build_app", "change_records", "from_ms"]
