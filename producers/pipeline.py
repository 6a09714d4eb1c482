"""The publish pipeline: read an export, map, validate, encode, publish; keep every reject.

Each record ends either on the bus or in the reject file (JSON Lines: file, line, reason,
record), never silently dropped. Used by ``hzbus publish``, the demo and the benchmark.

Reading, validating and Avro-encoding a record costs about ten times what handing its bytes
to librdkafka costs, so a large export is prepared in chunks by a pool of worker processes
(:func:`publish_file`) while this process only produces; chunks come back in file order, so
the records of one key keep their order on the bus. Small exports and other record sources
go through the same :func:`prepare` in this process (:func:`publish_records`).
"""

from __future__ import annotations

import sys
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import IO, Any

import orjson

from domain.departments import DepartmentRegistry
from domain.events import Event
from producers.mapping import Mapping_, MappingError, apply_mapping
from producers.publisher import EventPublisher, encode_event
from producers.readers import SourceRecord, detect_format, jsonl_chunks, parse_jsonl_line, read_records
from producers.validate import RejectedRecord, validate_event
from schemas import admission, codec


@dataclass
class PublishSummary:
    read: int = 0
    published: int = 0
    rejected: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    reject_path: Path | None = None


class RejectWriter:
    """Appends rejected records to a JSON Lines file (created on the first reject) and
    names each one on the operator's console."""

    def __init__(self, path: Path, source: str, console: IO[str] | None = sys.stderr, show: int = 20):
        self.path = path
        self.source = source
        self.count = 0
        self._console = console
        self._show = show
        self._fh: IO[bytes] | None = None

    def reject(self, line: int, reason: str, record: Any) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("wb")
        self._fh.write(
            orjson.dumps({"file": self.source, "line": line, "reason": reason, "record": record}) + b"\n"
        )
        self.count += 1
        if self._console is not None and self.count <= self._show:
            print(f"{self.source}:{line}: rejected: {reason}", file=self._console)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._console is not None and self.count > self._show:
            print(f"... {self.count - self._show} more rejects, see {self.path}", file=self._console)


@dataclass(frozen=True)
class PrepareContext:
    """What turning a source record into an encoded event depends on (sent once to each worker)."""

    registry: DepartmentRegistry
    publishing_dept: str | None
    now: datetime
    mapping: Mapping_ | None = None


@dataclass
class Prepared:
    """A chunk of records, prepared: the encoded events (with the line of each) in input
    order, and the rejects (line, reason, raw record)."""

    lines: list[int] = field(default_factory=list)
    #: the encoded events as columns (cheaper to send back from a worker process than tuples)
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    rejects: list[tuple[int, str, Any]] = field(default_factory=list)
    read: int = 0


def prepare(records: Iterable[SourceRecord], ctx: PrepareContext) -> Prepared:
    """Map, validate and encode each record; a record that cannot become an event is a reject
    with its reason, never an exception."""
    out = Prepared()
    mapping = ctx.mapping
    key_fields = mapping.event_id_from if mapping else ()
    for rec in records:
        out.read += 1
        if rec.error is not None or rec.data is None:
            out.rejects.append((rec.line, rec.error or "empty record", rec.raw))
            continue
        try:
            obj = rec.data
            if mapping is not None:
                obj = apply_mapping(obj, mapping, ctx.publishing_dept or str(obj.get("source_dept", "")))
            event = validate_event(
                obj, ctx.registry, publishing_dept=ctx.publishing_dept, now=ctx.now, key_fields=key_fields
            )
            encoded = encode_event(event)
        except (MappingError, RejectedRecord, codec.EventError) as exc:
            out.rejects.append((rec.line, str(exc), rec.raw))
            continue
        oversized = admission.size_refusal(len(encoded.value))
        if oversized:  # consumers would refuse it (docs/reliability.md)
            out.rejects.append((rec.line, f"{event.type} {event.event_id}: {oversized}", rec.raw))
            continue
        out.lines.append(rec.line)
        out.ids.append(encoded.event_id)
        out.types.append(encoded.type)
        out.keys.append(encoded.key)
        out.values.append(encoded.value)
    return out


class _Sender:
    """Hands prepared chunks to the publisher and keeps the summary; a record the broker
    finally refuses becomes a reject with its line."""

    def __init__(self, publisher: EventPublisher, rejects: RejectWriter) -> None:
        self.publisher = publisher
        self.rejects = rejects
        self.summary = PublishSummary(reject_path=rejects.path)
        self._line_of: dict[str, int] = {}

    def failed(self, event: Event, reason: str) -> None:
        self.rejects.reject(self._line_of.get(event.event_id, 0), reason, codec.to_canonical(event))
        self.summary.published -= 1
        self.summary.rejected += 1
        self.summary.by_type[event.type] -= 1

    def send(self, chunk: Prepared) -> None:
        summary = self.summary
        summary.read += chunk.read
        for line, reason, raw in chunk.rejects:
            self.rejects.reject(line, reason, raw)
        summary.rejected += len(chunk.rejects)
        line_of = self._line_of
        line_of.update(zip(chunk.ids, chunk.lines, strict=True))
        self.publisher.publish_many(chunk.ids, chunk.types, chunk.keys, chunk.values, self.failed)
        summary.published += len(chunk.ids)
        summary.by_type.update(chunk.types)
        if len(line_of) > 200_000:  # bound the memory: everything before is confirmed
            self.publisher.flush()
            line_of.clear()

    def finish(self) -> PublishSummary:
        self.publisher.flush()
        self.rejects.close()
        return self.summary


def publish_records(
    records: Iterable[SourceRecord],
    *,
    publisher: EventPublisher,
    registry: DepartmentRegistry,
    rejects: RejectWriter,
    publishing_dept: str | None,
    now: datetime,
    mapping: Mapping_ | None = None,
    on_record: Callable[[SourceRecord], None] | None = None,
) -> PublishSummary:
    """Publish every valid record in this process; reject the others with their line and reason."""
    ctx = PrepareContext(registry, publishing_dept, now, mapping)
    sender = _Sender(publisher, rejects)
    for rec in records:
        if on_record is not None:
            on_record(rec)
        sender.send(prepare((rec,), ctx))
    return sender.finish()


#: records per chunk handed to a worker process
CHUNK = 2_000

_WORKER_CTX: PrepareContext | None = None


def _init_worker(ctx: PrepareContext) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx


def _prepare_jsonl(first: int, lines: list[bytes]) -> Prepared:
    assert _WORKER_CTX is not None
    records = (parse_jsonl_line(first + i, raw) for i, raw in enumerate(lines))
    return prepare((r for r in records if r is not None), _WORKER_CTX)


def _prepare_records(records: list[SourceRecord]) -> Prepared:
    assert _WORKER_CTX is not None
    return prepare(records, _WORKER_CTX)


def _record_chunks(records: Iterable[SourceRecord], size: int) -> Iterator[list[SourceRecord]]:
    chunk: list[SourceRecord] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def publish_file(
    path: Path,
    fmt: str | None,
    *,
    publisher: EventPublisher,
    registry: DepartmentRegistry,
    rejects: RejectWriter,
    publishing_dept: str | None,
    now: datetime,
    mapping: Mapping_ | None = None,
    workers: int = 2,
    on_records: Callable[[int], None] | None = None,
) -> PublishSummary:
    """Publish an export file; with ``workers`` > 0 its records are prepared by that many
    worker processes, chunk by chunk, while this process produces them in file order.
    ``on_records(n)`` is called as records are done (a progress bar)."""
    fmt = detect_format(path, fmt)
    ctx = PrepareContext(registry, publishing_dept, now, mapping)
    if workers <= 0:
        return publish_records(
            read_records(path, fmt),
            publisher=publisher,
            registry=registry,
            rejects=rejects,
            publishing_dept=publishing_dept,
            now=now,
            mapping=mapping,
            on_record=(lambda _r: on_records(1)) if on_records is not None else None,
        )
    sender = _Sender(publisher, rejects)
    # forkserver: the workers do not inherit librdkafka's threads from this process
    with ProcessPoolExecutor(workers, get_context("forkserver"), _init_worker, (ctx,)) as pool:
        pending: deque[Future[Prepared]] = deque()
        if fmt == "jsonl":
            jobs: Iterator[Future[Prepared]] = (
                pool.submit(_prepare_jsonl, first, lines) for first, lines in jsonl_chunks(path, CHUNK)
            )
        else:
            jobs = (pool.submit(_prepare_records, c) for c in _record_chunks(read_records(path, fmt), CHUNK))
        for job in jobs:
            pending.append(job)
            if len(pending) >= 4 * workers:  # a few chunks ahead, not the whole file in memory
                _send_next(pending, sender, on_records)
        while pending:
            _send_next(pending, sender, on_records)
    return sender.finish()


def _send_next(
    pending: deque[Future[Prepared]], sender: _Sender, on_records: Callable[[int], None] | None
) -> None:
    chunk = pending.popleft().result()
    sender.send(chunk)
    if on_records is not None:
        on_records(chunk.read)
