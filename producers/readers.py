"""Readers for department exports: JSON Lines and CSV, record by record with line numbers.

A reader never raises on a bad record: it yields a ``SourceRecord`` whose ``error`` says
what is wrong, so the publisher can name the line and keep it in the reject file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record of an export: where it stands, its text, and its parsed value or error."""

    line: int
    raw: str
    data: dict[str, Any] | None
    error: str | None = None


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"unknown format {explicit!r}; expected one of {', '.join(FORMATS)}")
        return explicit
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; pass --format jsonl|csv")


def _decode(raw: bytes) -> tuple[str, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", errors="replace"), f"not valid UTF-8 (byte {exc.start})"


def read_jsonl(stream: BinaryIO) -> Iterator[SourceRecord]:
    """One JSON object per line; blank lines are skipped, anything else is a record."""
    for number, raw in enumerate(stream, start=1):
        record = parse_jsonl_line(number, raw)
        if record is not None:
            yield record


def read_jsonl_objects(stream: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """:func:`read_jsonl` for a reader that keeps only the values (``hzbus replay``):
    ``(line, object, None)`` for a JSON object, ``(line, None, error)`` for a bad line, the
    same errors; blank lines skipped. orjson parses the raw bytes (checking UTF-8 itself) and
    no text is kept; a line it does not take as an object goes through
    :func:`parse_jsonl_line`, which decides (a BOM, a blank line) and explains."""
    loads, error = orjson.loads, orjson.JSONDecodeError
    for number, raw in enumerate(stream, start=1):
        try:
            value = loads(raw)
        except error:
            value = None
        if type(value) is dict:
            yield number, value, None
            continue
        record = parse_jsonl_line(number, raw)
        if record is not None:
            yield number, record.data, record.error


def parse_jsonl_line(number: int, raw: bytes) -> SourceRecord | None:
    """The record of line ``number`` of a JSON Lines export (``None`` for a blank line)."""
    text, error = _decode(raw.rstrip(b"\r\n"))
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None
    if error:
        return SourceRecord(number, text, None, error)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return SourceRecord(number, text, None, f"malformed JSON: {exc}")
    if not isinstance(value, dict):
        return SourceRecord(number, text, None, f"expected a JSON object, got {type(value).__name__}")
    return SourceRecord(number, text, value)


def jsonl_chunks(path: Path, size: int) -> Iterator[tuple[int, list[bytes]]]:
    """The raw lines of a JSON Lines export in chunks of ``size``, each with the number of its
    first line (for parsing elsewhere, e.g. in a worker process)."""
    with path.open("rb") as fh:
        first, chunk = 1, []
        for raw in fh:
            chunk.append(raw)
            if len(chunk) >= size:
                yield first, chunk
                first, chunk = first + len(chunk), []
        if chunk:
            yield first, chunk


def read_csv(stream: BinaryIO, delimiter: str = ",") -> Iterator[SourceRecord]:
    """A CSV export with a header row; the line number is the row's first physical line."""
    text_stream = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text_stream, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield SourceRecord(1, "", None, f"malformed CSV header: {exc}")
        return
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        yield SourceRecord(1, ",".join(header), None, "CSV header repeats a column name")
        return
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield SourceRecord(start, "", None, f"malformed CSV: {exc}")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        if not row or all(not cell.strip() for cell in row):
            continue
        raw = _csv_line(row, delimiter)
        bad = next((c for c in row if any("\udc80" <= ch <= "\udcff" for ch in c)), None)
        if bad is not None:
            yield SourceRecord(line, raw.encode("utf-8", "replace").decode("utf-8"), None, "not valid UTF-8")
            continue
        if len(row) != len(header):
            yield SourceRecord(line, raw, None, f"expected {len(header)} columns, found {len(row)}")
            continue
        yield SourceRecord(line, raw, dict(zip(header, row, strict=True)))


def _csv_line(row: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(row)
    return out.getvalue()


def read_records(path: Path, fmt: str | None = None) -> Iterator[SourceRecord]:
    """Records of ``path`` in the given (or detected) format."""
    fmt = detect_format(path, fmt)
    with path.open("rb") as fh:
        if fmt == "jsonl":
            yield from read_jsonl(fh)
        else:
            yield from read_csv(fh, "\t" if path.suffix.lower() == ".tsv" else ",")
