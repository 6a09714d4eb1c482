"""The publish pipeline: read an export, map, validate, publish; keep every reject.

Each record ends either on the bus or in the reject file (JSON Lines: file, line, reason,
record), never silently dropped. Used by ``hzbus publish`` and by the benchmark.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from domain.departments import DepartmentRegistry
from domain.events import Event
from producers.mapping import Mapping_, MappingError, apply_mapping
from producers.publisher import EventPublisher
from producers.readers import SourceRecord
from producers.validate import RejectedRecord, validate_event


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
    """Publish every valid record; reject the others with their line and reason."""
    summary = PublishSummary(reject_path=rejects.path)
    line_of: dict[str, SourceRecord] = {}

    def failed(event: Event, reason: str) -> None:
        rec = line_of.get(event.event_id)
        rejects.reject(rec.line if rec else 0, reason, rec.raw if rec else event.event_id)
        summary.published -= 1
        summary.rejected += 1
        summary.by_type[event.type] -= 1

    key_fields = mapping.event_id_from if mapping else ()
    for rec in records:
        summary.read += 1
        if on_record is not None:
            on_record(rec)
        if rec.error is not None or rec.data is None:
            rejects.reject(rec.line, rec.error or "empty record", rec.raw)
            summary.rejected += 1
            continue
        try:
            obj = rec.data
            if mapping is not None:
                obj = apply_mapping(obj, mapping, publishing_dept or str(obj.get("source_dept", "")))
            event = validate_event(
                obj, registry, publishing_dept=publishing_dept, now=now, key_fields=key_fields
            )
        except (MappingError, RejectedRecord) as exc:
            rejects.reject(rec.line, str(exc), rec.raw)
            summary.rejected += 1
            continue
        line_of[event.event_id] = rec
        summary.published += 1
        summary.by_type[event.type] += 1
        publisher.publish(event, failed)
        if len(line_of) > 200_000:
            publisher.flush()
            line_of.clear()
    publisher.flush()
    rejects.close()
    return summary
