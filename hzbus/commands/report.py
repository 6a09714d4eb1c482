"""``hzbus report --quarter Q --out report.html``: one self-contained HTML file (inline CSS,
server-side SVG; opens with no network): on-time rate per department, late and missed by
obligation kind, monthly trend, top repeat offenders, the scorecard.

From ClickHouse (the analysts' views) by default, or offline from ``--events FILE --as-of T``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hzbus.commands.scorecard import build_context, parse_quarter


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write the quarter's self-contained HTML report (charts and scorecard)",
        description=(
            "Write one HTML file that opens without network: on-time rate per department, late and missed "
            "by obligation kind, monthly trend, top repeat offenders and the scorecard of the quarter. "
            "From ClickHouse, or offline with --events FILE --as-of T."
        ),
    )
    p.add_argument("--quarter", help="e.g. 2026Q4 (default: the quarter of now / --as-of)")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="output file (default report.html)")
    p.add_argument("--events", type=Path, metavar="FILE.jsonl", help="offline: canonical-JSON events")
    p.add_argument("--as-of", metavar="ISO-TIME", help="offline: the moment of evaluation, with its offset")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from domain.departments import load_registry
    from reports.data import from_clickhouse, from_evaluation
    from reports.html import render_report
    from reports.sources import OfflineQuarter

    ctx = build_context(args, command="report")
    try:
        quarter = parse_quarter(args.quarter, ctx.as_of)
        official = ctx.store.official(str(quarter))
        card = official or ctx.card(quarter)
        names = {d.code: d.name_zh for d in load_registry()}
        if isinstance(ctx.source, OfflineQuarter):
            data = from_evaluation(
                ctx.source.evaluation.obligations,
                quarter,
                card,
                ctx.now,
                f"events {ctx.source.path} as of {ctx.as_of.isoformat()}",
                names,
            )
            data.notes.append(
                "Offline: repeat offenders come from ClickHouse's correlations and are not shown."
            )
        else:
            data = from_clickhouse(ctx.client, ctx.database, quarter, card, ctx.now, names)
        if official is not None:
            data.notes.append(
                f"{quarter} is closed: the scorecard is the published one with its restatements."
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_report(data), encoding="utf-8")
    finally:
        ctx.close()
    print(f"hzbus report: wrote {args.out.resolve()}", file=sys.stderr)
    print(args.out.resolve())
    return 0
