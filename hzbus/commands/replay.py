"""``hzbus replay``: evaluate the obligations of a file of canonical-JSON events at a moment.

Thin shell over :func:`domain.obligations.evaluate_events`: read (``producers.readers``), decode
(``schemas.codec``), load the real calendar, evaluate, print. A bad line is named on stderr and
skipped; the command then ends with exit status 1.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import io
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from domain.calendar import WorkingDayCalendar, shanghai_date
from domain.events import Event
from domain.obligations import KINDS, STATUSES, Evaluation, evaluate_events
from domain.obligations.lines import write_lines
from hzbus.calendar_source import load_calendar
from hzbus.errors import UserError
from hzbus.pipes import silence_stdout
from hzbus.tables import render
from producers.readers import parse_jsonl_line
from schemas.canonical_fast import read_lines
from schemas.codec import EventError, from_canonical, object_readers

FORMATS = ("jsonl", "table")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay",
        help="evaluate the obligations of an event file at a moment (--as-of)",
        description=(
            "Read canonical-JSON events (one a line), fold them per correlation key and print every "
            "obligation as known at --as-of: due time, status (open/met/late/missed), clause. Facts "
            "dated after --as-of do not count; decisions count as shared at their recorded_at. Bad "
            "lines are reported on stderr by line number and skipped (exit status 1)."
        ),
    )
    p.add_argument("file", type=Path, metavar="FILE.jsonl", help="canonical-JSON events, one a line")
    p.add_argument(
        "--as-of",
        required=True,
        metavar="ISO-TIME",
        help="the moment of evaluation, with its offset, e.g. 2026-11-20T00:00:00+08:00",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="jsonl",
        help="jsonl: one obligation a line (default); table: counts by kind and status, then the missed",
    )
    p.add_argument(
        "--findings",
        action="store_true",
        help="jsonl: also print the findings, one a line, after the obligations",
    )
    p.set_defaults(handler=run)


def parse_as_of(value: str) -> datetime:
    """``--as-of``: an ISO-8601 time with an offset (a time without one is ambiguous)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--as-of {value!r}: not an ISO-8601 time (e.g. 2026-11-20T00:00:00+08:00)") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UserError(
            f"--as-of {value!r} has no UTC offset: say which zone, "
            f"e.g. {moment.isoformat()}+08:00 (Asia/Shanghai)"
        )
    return moment


@contextmanager
def batch_memory() -> Iterator[None]:
    """Replay without the cyclic garbage collector: the batch builds one large graph without
    cycles (events, per-key states, obligations), alive until the output is written and then
    freed by reference counting. The collector would only walk it again and again as it grows
    (its full passes scale with the heap): ~40% of the CPU of a 200,000-event replay.

    Free the batch inside the block (return from a function holding it): the collector, once
    back, walks every object made meanwhile that is still alive (~0.25 CPU s for 200,000
    events if the batch still is)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_events(path: Path) -> tuple[list[Event], list[str]]:
    """The events of ``path`` and one message per bad line (``FILE:LINE: problem``).

    The line loop is compiled (``schemas.canonical_fast.read_lines``): each line orjson reads
    as an ordinary object is read there; any other line comes back here, to the reader's and
    the codec's general code, which decides and explains exactly as ``read_jsonl`` and
    ``from_canonical`` do."""
    errors: list[str] = []
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UserError(f"{path}: {exc.strerror or exc}") from None

    def general(line: int, raw: bytes, value: object) -> Event | None:
        data: Any = value
        if type(value) is not dict:
            record = parse_jsonl_line(line, raw)
            if record is None:  # a blank line
                return None
            if record.data is None:
                errors.append(f"{path}:{line}: {record.error}")
                return None
            data = record.data
        try:
            return from_canonical(data)
        except (EventError, ValueError, TypeError) as exc:
            errors.append(f"{path}:{line}: {exc}")
            return None

    with fh:
        events: list[Event] = read_lines(fh, object_readers(), general)
    return events, errors


def run(args: argparse.Namespace) -> int:
    as_of = parse_as_of(args.as_of)
    if args.file.is_dir():
        raise UserError(f"{args.file}: is a directory, expected a .jsonl file")
    calendar = load_calendar()
    warning = calendar.coverage_warning(shanghai_date(as_of))
    if warning:
        print(f"hzbus replay: warning: {warning}", file=sys.stderr)
    with batch_memory():
        return _replay(
            args.file, as_of, calendar, args.format, args.findings, exit_when_done=args.own_process
        )


def _replay(
    path: Path,
    as_of: datetime,
    calendar: WorkingDayCalendar,
    fmt: str,
    with_findings: bool,
    *,
    exit_when_done: bool = False,
) -> int:
    """``exit_when_done``: the process ends here once its output is flushed, with the batch
    still alive: the system takes the memory back at once, where freeing the events, keys and
    obligations one by one would cost ~8% of the replay's CPU (mypy ends the same way)."""
    events, errors = read_events(path)
    for message in errors:
        print(message, file=sys.stderr)
    result = evaluate_events(events, as_of, calendar, keep_states=False)  # prints obligations only
    try:
        _print(result, fmt, with_findings)
    except BrokenPipeError:  # the reader stopped reading (``| head``): no traceback, status 1
        silence_stdout()
        if exit_when_done:
            _exit_now(1)
        return 1
    code = 0
    if errors:
        print(
            f"hzbus replay: {len(errors)} bad line(s) in {path} skipped; {len(events)} event(s) read",
            file=sys.stderr,
        )
        code = 1
    if exit_when_done:
        _exit_now(code)
    return code


def _print(result: Evaluation, fmt: str, with_findings: bool) -> None:
    if fmt == "table":
        sys.stdout.write(render_table(result) + "\n")
        sys.stdout.flush()
    elif (stdout := _utf8_stdout()) is not None:
        write_jsonl(result, stdout, with_findings=with_findings)
    else:  # a stdout that is not UTF-8 underneath (a test's StringIO, PYTHONIOENCODING)
        text = io.BytesIO()
        write_jsonl(result, text, with_findings=with_findings)
        sys.stdout.write(text.getvalue().decode())


def _exit_now(code: int) -> None:
    """End the process with ``code`` at once, its output flushed (no teardown after this)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (``| head``): nothing to flush to
            code = code or 1
    os._exit(code)


#: one object a line
_LINE = orjson.OPT_APPEND_NEWLINE


def write_jsonl(result: Evaluation, out: IO[bytes], with_findings: bool = False) -> None:
    """Each obligation (then, ``with_findings``, each finding) as one line of JSON: its
    ``to_dict()``. orjson serialises the values of each (``domain.obligations.lines``, compiled:
    the fields in their declared order, ``to_dict``'s, times as datetimes, which orjson writes as
    ``isoformat()`` does for offsets in whole minutes, as every time of the engine is: +08:00);
    tests/unit/test_replay.py checks the lines against ``to_dict``. One line per write: a
    buffered writer, no big string."""
    write_lines(result.obligations, result.findings if with_findings else (), orjson.dumps, _LINE, out.write)
    out.flush()


def _utf8_stdout() -> IO[bytes] | None:
    """The binary buffer under ``sys.stdout`` when it writes UTF-8 (the usual case), else None."""
    buffer = getattr(sys.stdout, "buffer", None)
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    if buffer is None or codecs.lookup(encoding).name != "utf-8":
        return None
    sys.stdout.flush()  # anything already written as text goes first
    return buffer


def render_table(result: Evaluation) -> str:
    counts = Counter((o.kind, o.status) for o in result.obligations)
    rows: list[list[Any]] = []
    for kind in KINDS:
        row = [counts[(kind, s)] for s in STATUSES]
        rows.append([kind, *row, sum(row)])
    totals = [sum(counts[(k, s)] for k in KINDS) for s in STATUSES]
    rows.append(["total", *totals, sum(totals)])
    parts = [
        render(
            ["kind", *STATUSES, "all"],
            rows,
            title=f"Obligations as of {result.as_of.isoformat()}",
        )
    ]
    missed = [o for o in result.obligations if o.status == "missed"]
    if missed:
        parts.append(
            render(
                ["kind", "ref", "responsible", "due_at", "delay WD", "clause"],
                [
                    [o.kind, o.ref, o.responsible_dept, o.due_at.isoformat(), o.delay_working_days, o.clause]
                    for o in missed
                ],
                title=f"\nMissed ({len(missed)})",
            )
        )
    by_finding = Counter((f.kind, f.clause) for f in result.findings)
    if by_finding:
        parts.append(
            render(
                ["finding", "clause", "count"],
                [[k, c, n] for (k, c), n in sorted(by_finding.items())],
                title="\nFindings",
            )
        )
    return "\n".join(parts)
