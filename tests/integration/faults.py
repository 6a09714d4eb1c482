"""Tools of the fault tests: processes killed and restarted as a service manager would, a
webhook robot on localhost, slow publishing, bounded waits, and the three checks made after
every fault (tests/integration/test_faults.py, docs/reliability.md)."""

from __future__ import annotations

import io
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain import correlation
from domain.departments import load_registry
from hzbus.errors import UserError
from hzbus.lag import group_lag, wait_for_worker, worker_groups
from hzbus.processes import spawn_hzbus
from hzbus.topics import event_topics
from infra.procs import tail
from producers.pipeline import PublishSummary, RejectWriter, publish_records
from producers.publisher import KafkaPublisher
from producers.readers import SourceRecord, read_records
from schemas import codec
from stream_processors.notifiers import alert_text
from tests.conftest import Bus
from tests.integration.helpers import _env, partition_records, replayed, stored_event_ids, stored_obligations

#: the broker's minimum: a process killed without leaving its group resumes 6 s after restart
SESSION_TIMEOUT = "6"
#: how long one planned life may take to reach its crash point
LIFE_TIMEOUT = 90.0
DIAGNOSTICS = Path(__file__).resolve().parents[2] / ".state" / "diagnostics"
#: frames worth quoting from a stalled worker's task dump (docs/reliability.md, the stall)
STALL_SUSPECTS = (
    "force_commit",
    "_commit_offsets",
    "producer.flush",
    "maybe_wait_for_commit",
    "wait_many",
    "hzbus offsets:",
)


def wait_until(check: Callable[[], bool], timeout: float, what: str, detail: Callable[[], str] = str) -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` s saying what did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s {detail()}".rstrip())
        time.sleep(0.5)


def ids_of(path: Path) -> set[str]:
    return {orjson.loads(line)["event_id"] for line in path.read_bytes().splitlines() if line.strip()}


class Robot:
    """A DingTalk-style group robot served on localhost: keeps the text of every message."""

    def __init__(self) -> None:
        texts: list[str] = []
        self.texts = texts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                texts.append(orjson.loads(body)["text"]["content"])
                answer = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/robot/send"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> Robot:
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Crashing:
    """An ``hzbus`` process killed with SIGKILL at each point of ``plan`` in turn and restarted
    at once, as a service manager would. A point is ``"<failpoint>:<n>"`` (the process kills
    itself the n-th time it gets there, hzbus/failpoints.py) or a number of seconds after its
    start (the test kills it). After the plan, the last life runs on; any other exit fails."""

    label: str
    args: tuple[str, ...]
    env: dict[str, str]
    logs: Path
    plan: list[str | float] = field(default_factory=list)
    stdout: Path | None = None
    life: int = 0
    kills: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def point(self) -> str | float | None:
        return self.plan[self.life] if self.life < len(self.plan) else None

    @property
    def log(self) -> Path:
        return self.logs / f"{self.label}-{self.life}.log"

    def start(self) -> Crashing:
        env = dict(self.env)
        if isinstance(self.point, str):
            env["HZBUS_FAILPOINT"] = self.point
        with self.log.open("wb") as err:
            out = self.stdout.open("ab") if self.stdout is not None else err
            self.proc = spawn_hzbus(*self.args, env=env, stdout=out, stderr=err)
            if out is not err:
                out.close()
        self.started = time.monotonic()
        return self

    def step(self) -> None:
        """Kill when the plan says so; restart after a planned death; fail on any other exit,
        or when a crash point is not reached in time."""
        assert self.proc is not None
        point, elapsed = self.point, time.monotonic() - self.started
        code = self.proc.poll()
        if code is None:
            if isinstance(point, float) and elapsed >= point:
                self.proc.send_signal(signal.SIGKILL)
                code = self.proc.wait(30)
            elif point is not None and elapsed > LIFE_TIMEOUT:
                raise AssertionError(
                    f"the {self.label} did not reach its crash point {point} within {LIFE_TIMEOUT:.0f} s "
                    f"(life {self.life}); its log ends:\n{tail(self.log, 30)}"
                )
            else:
                return
        if point is None or code != -signal.SIGKILL:
            raise AssertionError(
                f"the {self.label} exited with status {code} (life {self.life}, planned end: {point}); "
                f"its log ends:\n{tail(self.log, 40)}"
            )
        self.kills.append(f"{point}" if isinstance(point, str) else f"SIGKILL {point:.1f} s after start")
        self.life += 1
        self.start()

    @property
    def on_last_life(self) -> bool:
        return self.point is None

    def alive(self) -> bool:
        self.step()
        return True

    def dump_tasks(self, into: Path) -> str:
        """Ask the live worker for the stack of every asyncio task (Faust's worker prints them
        to stderr on SIGUSR1) and its consumer's offset bookkeeping (SIGUSR2), keep that part
        of its log in ``into``; a summary of the frames that commit or flush and of the
        offsets (where a silent worker is suspected to be stuck)."""
        if self.proc is None or self.proc.poll() is not None:
            return "not alive"
        before = self.log.stat().st_size
        self.proc.send_signal(signal.SIGUSR1)  # every task's stack (Faust's worker)
        self.proc.send_signal(signal.SIGUSR2)  # the consumer's offset bookkeeping (hzbus worker)
        size, deadline = before, time.monotonic() + 10
        while time.monotonic() < deadline:  # until the dump stops growing
            time.sleep(1.0)
            now = self.log.stat().st_size
            if now > before and now == size:
                break
            size = now
        with self.log.open("rb") as fh:
            fh.seek(before)
            dump = fh.read().decode("utf-8", errors="replace")
        into.parent.mkdir(parents=True, exist_ok=True)
        into.write_text(dump)
        waits = sorted({line.strip() for line in dump.splitlines() if any(w in line for w in STALL_SUSPECTS)})
        found = " | ".join(waits[:8]) or "no commit/flush frame"
        return f"{len(dump.splitlines())} lines in {into}; {found}"

    def restart(self) -> None:
        """Stop (SIGTERM) and start again, a new life outside the plan."""
        self.stop()
        self.life = max(self.life, len(self.plan)) + 1
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def worker(
    bus: Bus, logs: Path, console: Path, robot: Robot, plan: list[str | float] | None = None
) -> Crashing:
    """``hzbus worker`` alerting on stdout (``console``) and to ``robot``."""
    env = {**_env(bus), "HZBUS_KAFKA_SESSION_TIMEOUT": SESSION_TIMEOUT}
    args = ("worker", "--name", "w1", "--loglevel", "warn", "--webhook", robot.url)
    return Crashing("worker", args, env, logs, plan or [], stdout=console).start()


def sink(bus: Bus, logs: Path, plan: list[str | float] | None = None, batch: int = 200) -> Crashing:
    """``hzbus sink clickhouse`` in small batches (many batches: many points to die at)."""
    env = {
        **_env(bus),
        "HZBUS_KAFKA_SESSION_TIMEOUT": SESSION_TIMEOUT,
        "HZBUS_SINK_BATCH_SIZE": str(batch),
        "HZBUS_SINK_BATCH_SECONDS": "0.1",
    }
    return Crashing("sink", ("sink", "clickhouse"), env, logs, plan or []).start()


class Publishing(threading.Thread):
    """``path`` published as an import of past records by the publisher's own pipeline, at about
    ``rate`` records per second (a stream, not a burst), in a thread."""

    def __init__(self, bus: Bus, path: Path, rate: float) -> None:
        super().__init__(daemon=True)
        self.bus, self.path, self.rate = bus, path, rate
        self.read = 0
        self.summary: PublishSummary | None = None
        self.error: BaseException | None = None
        self.rejects = io.StringIO()

    def _records(self) -> Iterator[SourceRecord]:
        started = time.monotonic()
        for rec in read_records(self.path):
            self.read += 1
            ahead = self.read / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            yield rec

    def run(self) -> None:
        try:
            settings, prefix = self.bus.settings, self.bus.prefix
            publisher = KafkaPublisher(settings, prefix=prefix, historical=True, log_level=0)
            self.summary = publish_records(
                self._records(),
                publisher=publisher,
                registry=load_registry(),
                rejects=RejectWriter(
                    self.path.with_suffix(".rejects.jsonl"), str(self.path), console=self.rejects
                ),
                publishing_dept=None,
                now=datetime.now(UTC),
            )
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, timeout: float) -> PublishSummary:
        self.join(timeout)
        assert not self.is_alive(), f"publishing {self.path.name} did not finish within {timeout:.0f} s"
        assert self.error is None, f"publishing failed: {self.error!r}"
        assert self.summary is not None
        return self.summary


def read_topic(bus: Bus, family: str) -> list[tuple[bytes, bytes]]:
    """Every record of ``<prefix>.<family>`` up to its end now, partition by partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bus.settings.kafka_bootstrap, "group.id": f"{bus.prefix}.check", "log_level": 0}
    )
    topic = f"{bus.prefix}.{family}"
    try:
        return [
            (msg.key() or b"", msg.value() or b"")
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for msg in partition_records(consumer, TopicPartition(topic, p))
        ]
    finally:
        consumer.close()


def expected_deliveries(bus: Bus) -> tuple[Counter[str], set[str]]:
    """The alert texts the notifiers must have delivered once each, from the alerts topic: the
    first record of each raised/resolved alert (a repeat after a crash is the same alert),
    except a due-soon warning already superseded by the missed alert (the worker's rule); and
    the ``<dedup key>:<event>`` of every alert."""
    texts: Counter[str] = Counter()
    seen: set[str] = set()
    for _key, value in read_topic(bus, "alerts"):
        alert = orjson.loads(value)
        once = f"{alert['dedup_key']}:{alert['event']}"
        if once in seen:
            continue
        seen.add(once)
        if not (alert["kind"] == "due_soon" and alert["obligation"]["status"] == "missed"):
            texts[alert_text(alert)] += 1
    return texts, seen


def console_alerts(path: Path) -> Counter[str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return Counter(line for line in lines if line.startswith("【"))


def lag_report(bus: Bus, group: str, topics: list[str]) -> str:
    """Where ``group`` lags: topic[partition] committed/end, for a failure message."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bus.settings.kafka_bootstrap, "group.id": group, "log_level": 0}
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        found = [t for t in topics if t in metadata.topics]
        tps = [TopicPartition(t, p) for t in found for p in metadata.topics[t].partitions]
        parts = []
        for tp in consumer.committed(tps, timeout=10):
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            done = tp.offset if tp.offset >= 0 else low
            if done < high:
                parts.append(f"{tp.topic}[{tp.partition}] {done}/{high}")
        return ", ".join(parts) or "no lag now"
    finally:
        consumer.close()


def locate_events(bus: Bus, ids: set[str]) -> str:
    """Where the events ``ids`` are in Kafka (topic[partition]@offset, or "not in Kafka") and
    the sink group's committed offset of that partition: a failure message that tells a lost
    publication from a sink that committed past a record it never stored."""
    from confluent_kafka import Consumer, TopicPartition

    group = f"{bus.prefix}.sink.clickhouse"
    consumer = Consumer(
        {"bootstrap.servers": bus.settings.kafka_bootstrap, "group.id": group, "log_level": 0}
    )
    where: dict[str, str] = {}
    try:
        for topic in event_topics(bus.prefix):
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            for p in meta.partitions if meta is not None else ():
                tp = TopicPartition(topic, p)
                for offset, event_id in _event_ids(consumer, tp):
                    if event_id in ids:
                        (committed,) = consumer.committed([tp], timeout=10)
                        done = committed.offset if committed.offset >= 0 else "nothing"
                        where[event_id] = f"{event_id} at {topic}[{p}]@{offset} (sink committed {done})"
    finally:
        consumer.close()
    return "; ".join(where.get(i, f"{i} not in Kafka") for i in sorted(ids))


def _event_ids(consumer: Any, tp: Any) -> Iterator[tuple[int, str]]:
    """(offset, event_id) of every record of one partition up to its end now."""
    for msg in partition_records(consumer, tp):
        try:
            yield msg.offset(), codec.decode(msg.value() or b"").event_id
        except Exception:  # a record that does not decode (the corrupt ones of the test)
            continue


def keep_logs(processes: list[Crashing]) -> Path:
    """The processes' logs copied where a CI run leaves them (the checkout's .state)."""
    into = DIAGNOSTICS / f"crash-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    into.mkdir(parents=True, exist_ok=True)
    for proc in processes:
        for log in proc.logs.glob(f"{proc.label}-*.log"):
            shutil.copy(log, into / log.name)
    return into


def sink_lag(bus: Bus) -> int:
    facts = [f"{bus.prefix}.{f}" for f in ("obligations", "alerts", "findings", "correlations")]
    try:
        return group_lag(bus.settings, f"{bus.prefix}.sink.clickhouse", [*event_topics(bus.prefix), *facts])
    except Exception:  # a broker answer in between (coordinator moving): ask again
        return -1


#: seen in about one run of five of the crash test: after the last restart, the worker's notify
#: agent stops consuming the alerts topic (its committed offsets stay put, nothing is logged)
WORKER_STALL = "the worker stopped consuming after the crashes, alive and silent"


class NoProgress(Exception):
    pass


class Progress:
    """A ``wait_for_worker`` progress callback that gives up when the lag has stayed the same,
    above zero, for ``patience`` seconds (a stall shows sooner than the overall timeout)."""

    def __init__(self, patience: float) -> None:
        self.patience = patience
        self.last: int | None = None
        self.since = time.monotonic()

    def __call__(self, lag: int) -> None:
        if lag != self.last or lag == 0:
            self.last, self.since = lag, time.monotonic()
        elif time.monotonic() - self.since > self.patience:
            raise NoProgress(f"the worker's lag stayed at {lag} for {self.patience:.0f} s")


def assert_nothing_lost_nothing_twice(
    bus: Bus,
    published: set[str],
    sample: Path,
    robot: Robot,
    console: Path,
    processes: list[Crashing],
    *,
    restart_if_stalled: Crashing | None = None,
) -> None:
    """The three checks after a fault: the event ids in ClickHouse are the ids published; the
    stored obligations are those of a replay of the same events, every obligation missed in the
    replay has its alert and the active correlations are the replay's; each alert was delivered
    once to each notifier (console and robot).

    ``restart_if_stalled``: a worker that stops consuming, alive and silent (``WORKER_STALL``:
    seen in about 2 of 10 runs until Faust's skipped records were fixed, docs/reliability.md),
    is asked for its task stacks and offset bookkeeping and restarted once, as a liveness probe
    would; every check then runs, and the test fails with what stalled."""

    def alive() -> bool:
        return all(p.alive() for p in processes)

    stored: set[str] = set()

    def all_stored() -> bool:
        nonlocal stored
        alive()
        try:
            stored = stored_event_ids(bus)
        except Exception:  # ClickHouse restarting, or the sink has not created its tables yet
            return False
        return stored == published

    def not_stored() -> str:
        missing = published - stored
        found = f"({len(published & stored)} of {len(published)} stored, {len(stored - published)} unknown)"
        if not missing or len(missing) > 20:
            return found
        # where the lost ones are: a publisher that lost them, or a sink that committed past them
        return f"{found}; {locate_events(bus, missing)}; logs kept in {keep_logs(processes)}"

    wait_until(all_stored, 120, "every published event stored in ClickHouse", not_stored)
    stalled = None
    try:
        wait_for_worker(bus.settings, bus.prefix, quiet=6.0, timeout=120, alive=alive, progress=Progress(50))
    except (UserError, NoProgress) as exc:
        stalled = f"{exc}: " + "; ".join(
            f"{group}: {lag_report(bus, group, topics)}" for group, topics in worker_groups(bus.prefix)
        )
        if restart_if_stalled is None:
            raise AssertionError(stalled) from None
        # what the silent worker awaits, kept where a CI run leaves it (the checkout's .state)
        into = DIAGNOSTICS / f"worker-stall-{datetime.now(UTC):%Y%m%dT%H%M%S}.txt"
        stalled += f"; task stacks: {restart_if_stalled.dump_tasks(into)}"
        restart_if_stalled.restart()
        try:
            wait_for_worker(bus.settings, bus.prefix, quiet=6.0, timeout=120, alive=alive)
        except UserError as again:
            raise AssertionError(f"{stalled}; restarted, still: {again}") from None
    wait_until(lambda: alive() and sink_lag(bus) == 0, 60, "the sink to store every fact of the worker")

    texts, keys = expected_deliveries(bus)
    assert sum(texts.values()) > 20
    for name, got in (("console", console_alerts(console)), ("webhook robot", Counter(robot.texts))):
        twice = {t: n for t, n in got.items() if n > 1}
        assert not twice, f"{len(twice)} alert(s) delivered twice or more to the {name}: {next(iter(twice))}"
        missing = texts - got
        assert not missing, f"{sum(missing.values())} alert(s) of the alerts topic never reached the {name}"
        assert got == texts
    rows = bus.query("SELECT DISTINCT dedup_key, event FROM {db}.alerts FINAL")
    stored_alerts = {f"{k}:{e}" for k, e in rows}
    assert stored_alerts == keys

    obligations = stored_obligations(bus)
    expected = replayed(sample, datetime.now(UTC))
    assert len(expected) > 500
    differ = {k: (obligations.get(k), v) for k, v in expected.items() if obligations.get(k) != v}
    unalerted = {k for k, v in expected.items() if v[0] == "missed" and f"{k}:missed:raised" not in keys}
    problems = []
    if differ or set(obligations) != set(expected):
        problems.append(
            f"{len(differ)} obligations differ from the replay (stored, replayed), e.g. "
            f"{dict(list(differ.items())[:2])}; {len(set(obligations) - set(expected))} extra"
        )
    if unalerted:
        problems.append(f"{len(unalerted)} missed obligations without an alert, e.g. {sorted(unalerted)[:2]}")
    active = {
        c
        for c, status in bus.query("SELECT correlation_id, status FROM {db}.correlations FINAL")
        if status == "active"
    }
    correlations = replayed_correlations(sample, bus.settings.pseudonym_key)
    if active != correlations:
        problems.append(
            f"{len(correlations - active)} correlations of the replay not active in ClickHouse, "
            f"{len(active - correlations)} active there and not in the replay"
        )
    assert not problems, "; ".join(problems)
    if stalled:
        # Fixed in stream_processors/consumer.py (docs/reliability.md): a stall is a regression
        pytest.fail(f"{WORKER_STALL} ({stalled}); after a restart every check passed")


def replayed_correlations(sample: Path, pseudonym_key: str) -> set[str]:
    """The ids of the correlations that hold after the same events, offline (the same rules)."""
    events = [codec.from_canonical(r.data) for r in read_records(sample) if r.data is not None]
    states = correlation.fold(events, key=pseudonym_key.encode("utf-8"))
    return {c.correlation_id for state in states.values() for c in correlation.evaluate(state)}
