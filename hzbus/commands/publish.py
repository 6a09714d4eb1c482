"""``hzbus publish FILE --dept CODE``: a department adapter publishing an export."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from hzbus.errors import UserError

#: below this many lines an export is prepared in this process (a worker pool takes ~0.3 s to start)
POOL_THRESHOLD = 20_000
#: worker processes for a large export: enough to keep one producing process busy
DEFAULT_WORKERS = 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "publish",
        help="validate a department export (JSON Lines or CSV) and publish it as Avro events",
        description=(
            "Reads canonical-JSON lines, or a CSV/JSON export through a column mapping, validates "
            "every record against its Avro schema and the department registry, and publishes it. "
            "Rejected records are named on stderr and kept in a reject file; the exit status is 1 "
            "if any record was rejected."
        ),
    )
    p.add_argument("file", type=Path, help="export file (.jsonl/.json or .csv/.tsv)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--dept", help="code of the publishing department (the adapter's identity)")
    who.add_argument(
        "--each-dept",
        action="store_true",
        help="act as the adapter of each record's source_dept (simulation and migration only)",
    )
    p.add_argument(
        "--mapping", help="mapping file, or the name of a shipped one (approval_register, case_register)"
    )
    p.add_argument(
        "--historical",
        action="store_true",
        help="an import of past records: the processors take each record's recorded_at as its "
        "publication time instead of the broker's append time (operator imports only)",
    )
    p.add_argument("--format", choices=("jsonl", "csv"), help="input format (default: from the suffix)")
    p.add_argument("--rejects", type=Path, help="reject file (default: FILE.rejects.jsonl beside the input)")
    p.add_argument("--prefix", help="topic prefix (default: HZBUS_TOPIC_PREFIX or 'hzbus')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--workers",
        type=int,
        help="processes that validate and encode records while this one produces "
        f"(default: {DEFAULT_WORKERS} for an export of {POOL_THRESHOLD:,} lines or more, else 0)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from domain.departments import load_registry
    from hzbus.config import load_settings
    from producers.ingress import make_publisher
    from producers.mapping import MappingError, load_mapping
    from producers.pipeline import RejectWriter, publish_file
    from producers.readers import detect_format

    settings = load_settings()
    path: Path = args.file
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        fmt = detect_format(path, args.format)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    registry = load_registry()
    if args.dept and args.dept not in registry:
        try:
            registry.get(args.dept)
        except KeyError as exc:
            raise UserError(f"--dept: {exc.args[0]}") from None
    mapping = None
    if args.mapping:
        try:
            mapping = load_mapping(args.mapping)
        except MappingError as exc:
            raise UserError(str(exc)) from None
    elif fmt == "csv":
        raise UserError("a CSV export needs --mapping (its columns are the department's own)")
    rejects = RejectWriter(args.rejects or path.with_name(path.name + ".rejects.jsonl"), str(path))
    publisher = make_publisher(
        settings, prefix=args.prefix, dept=None if args.each_dept else args.dept, historical=args.historical
    )
    lines = _count_lines(path)
    workers = (
        args.workers if args.workers is not None else (DEFAULT_WORKERS if lines >= POOL_THRESHOLD else 0)
    )
    if workers < 0:
        raise UserError("--workers: expected 0 or more")
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(
            total=lines, unit="rec", desc=f"publish {path.name}", file=sys.stderr, mininterval=0.5
        )
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and done >= 1000:
            progress.update(done)
            done = 0

    summary = publish_file(
        path,
        fmt,
        publisher=publisher,
        registry=registry,
        rejects=rejects,
        publishing_dept=None if args.each_dept else args.dept,
        now=datetime.now(UTC),
        mapping=mapping,
        workers=workers,
        on_records=advance,
    )
    if progress is not None:
        progress.update(done)
        progress.close()
    print(
        f"{path}: {summary.read} records read, {summary.published} published, {summary.rejected} rejected",
        file=sys.stderr,
    )
    if summary.rejected:
        print(f"rejected records kept in {summary.reject_path}", file=sys.stderr)
        return 1
    return 0


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            count += block.count(b"\n")
    return count
