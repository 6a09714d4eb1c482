"""``hzbus scorecard``: the quarterly department scorecard (考评), quarter close, the yearly ranking.

Thin shell over :mod:`domain.scorecard`: the facts come from ClickHouse (default: the obligations
the worker computed, the AssessmentAdjusted events the sink stored) or offline from an event file
evaluated at ``--as-of`` by the same engine as ``hzbus replay``. Published scorecards live in
ClickHouse (``scorecard_published`` / ``scorecard_restatements``) or, offline, in
``<state dir>/scorecards/<quarter>.json``.

    hzbus scorecard --quarter 2026Q4 [--format table|json|csv|html] [--events FILE --as-of T]
    hzbus scorecard close 2026Q4 [--events FILE --as-of T]
    hzbus scorecard year 2026 [--events FILE --as-of T]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.events import SHANGHAI
from domain.scorecard import (
    Quarter,
    Restatement,
    Scorecard,
    ScorecardStore,
    YearRanking,
    close_quarter,
    pending_restatement,
    points_text,
    rank_year,
)
from hzbus.errors import UserError
from hzbus.tables import render

FORMATS = ("table", "json", "csv", "html")
ACTIONS = ("show", "close", "year")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "scorecard",
        help="quarterly department scorecard (考评): show, close a quarter, yearly ranking",
        description=(
            "Score the 17 assessed units for a quarter (quarter = calendar quarter of each obligation's due "
            "time): 100 points, organisation 20 / cooperation 50 / supervision 30, deductions per "
            "domain/data/scorecard_policy.toml, each naming its clause and the obligations behind it. "
            "'close QUARTER' publishes (freezes) a quarter; closing it again records a restatement when "
            "later facts changed it. 'year YEAR' ranks the year (年评) from its quarters. Facts come from "
            "ClickHouse, or with --events FILE --as-of T from an event file (same engine as hzbus replay)."
        ),
    )
    p.add_argument("action", nargs="?", choices=ACTIONS, default="show", help="show (default), close or year")
    p.add_argument("period", nargs="?", help="close: the quarter (2026Q4); year: the year (2026)")
    p.add_argument("--quarter", help="show: the quarter, e.g. 2026Q4 (default: the quarter of now / --as-of)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    p.add_argument("--out", type=Path, help="write the output to this file instead of stdout")
    p.add_argument("--events", type=Path, metavar="FILE.jsonl", help="offline: canonical-JSON events")
    p.add_argument("--as-of", metavar="ISO-TIME", help="offline: the moment of evaluation, with its offset")
    p.add_argument("--force", action="store_true", help="close: also a quarter that has not ended yet")
    p.set_defaults(handler=run)


@dataclass
class Context:
    """The pieces a scorecard command needs, built once from the arguments."""

    as_of: datetime
    now: datetime
    store: ScorecardStore
    source: Any  # reports.sources.ClickHouseFacts or reports.sources.OfflineQuarter
    client: Any = None
    database: str = ""

    def card(self, quarter: Quarter) -> Scorecard:
        from domain.departments import load_registry
        from domain.scorecard import load_policy
        from reports.sources import OfflineQuarter, offline_scorecard

        policy, registry = load_policy(), load_registry()
        if isinstance(self.source, OfflineQuarter):
            return offline_scorecard(self.source, quarter, policy, registry)
        card: Scorecard = self.source.scorecard(quarter, policy, registry, self.as_of)
        return card

    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()


def parse_quarter(text: str | None, default: datetime) -> Quarter:
    if text is None:
        return Quarter.of(default)
    try:
        return Quarter.parse(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def offline_store_dir(state_dir: Path, events: Path) -> Path:
    """``<state dir>/scorecards/<file stem>-<hash of its absolute path>``: each event file has its
    own published quarters (closing one file's quarter says nothing about another file)."""
    import hashlib

    digest = hashlib.sha256(str(events.resolve()).encode("utf-8")).hexdigest()[:8]
    return state_dir / "scorecards" / f"{events.stem}-{digest}"


def build_context(args: argparse.Namespace, command: str = "scorecard") -> Context:
    """Offline (``--events`` + ``--as-of``) or ClickHouse; the matching store of published cards."""
    from hzbus.config import load_settings

    settings = load_settings()
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    if args.events is not None:
        from domain.calendar import shanghai_date
        from hzbus.calendar_source import load_calendar
        from hzbus.commands.replay import parse_as_of
        from reports.sources import evaluate_file
        from reports.stores import JsonFileStore

        if args.as_of is None:
            raise UserError(
                "--events needs --as-of (the moment of evaluation, e.g. 2027-01-08T12:00:00+08:00)"
            )
        if args.events.is_dir() or not args.events.exists():
            raise UserError(f"{args.events}: no such event file")
        as_of = parse_as_of(args.as_of)
        calendar = load_calendar()
        warning = calendar.coverage_warning(shanghai_date(as_of))
        if warning:
            print(f"hzbus {command}: warning: {warning}", file=sys.stderr)
        data = evaluate_file(args.events, as_of, calendar)
        for message in data.errors:
            print(message, file=sys.stderr)
        if data.errors:
            print(
                f"hzbus {command}: {len(data.errors)} bad line(s) in {args.events} skipped", file=sys.stderr
            )
        store = JsonFileStore(offline_store_dir(Path(settings.state_dir), args.events))
        return Context(as_of, now, store, data)
    if args.as_of is not None:
        raise UserError(
            "--as-of goes with --events: from ClickHouse the obligations are as the worker last "
            "evaluated them"
        )
    from reports.sources import ClickHouseFacts
    from reports.stores import ClickHouseStore
    from sinks.clickhouse.migrate import migrate
    from sinks.clickhouse.sink import clickhouse_client

    client = clickhouse_client(settings)
    try:
        migrate(client, settings.clickhouse_database, cluster=settings.clickhouse_cluster)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port} is not reachable ({exc}); "
            "start it with `hzbus infra up`, or score an event file with --events FILE --as-of T"
        ) from None
    db = settings.clickhouse_database
    facts = ClickHouseFacts(client, db)
    # the stored facts are as of the worker's watermark, which a drill (--clock-offset) may put ahead
    as_of = max(now, facts.latest_evaluation() or now)
    return Context(as_of, now, ClickHouseStore(client, db), facts, client, db)


def run(args: argparse.Namespace) -> int:
    ctx = build_context(args)
    try:
        if args.action == "close":
            return run_close(args, ctx)
        if args.action == "year":
            return run_year(args, ctx)
        if args.period is not None:
            raise UserError(f"unexpected {args.period!r}: use --quarter {args.period}")
        return run_show(args, ctx)
    finally:
        ctx.close()


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(f"hzbus scorecard: wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def run_show(args: argparse.Namespace, ctx: Context) -> int:
    quarter = parse_quarter(args.quarter, ctx.as_of)
    live = ctx.card(quarter)
    official = ctx.store.official(str(quarter))
    restatements = ctx.store.restatements(str(quarter)) if official else []
    pending = pending_restatement(ctx.store, live, ctx.now) if official else None
    card = official or live
    note = ""
    if official:
        note = f"{quarter} is closed: the published scorecard" + (
            f" with {len(restatements)} restatement(s)" if restatements else ""
        )
        if pending:
            note += (
                f"; later facts change {len(pending.changes)} unit(s): run `hzbus scorecard close {quarter}` "
                "to record a restatement"
            )
    if args.format == "json":
        doc = card.to_dict()
        doc["closed"] = official is not None
        doc["restatements"] = [r.to_dict() for r in restatements]
        doc["pending_restatement"] = pending.to_dict() if pending else None
        _emit(args, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    elif args.format == "csv":
        _emit(args, render_csv(card))
    elif args.format == "html":
        from reports.html import render_scorecard

        _emit(args, render_scorecard(card, note))
    else:
        text = render_card(card, restatements)
        if note:
            text += f"\nnote: {note}\n"
        _emit(args, text)
    return 0


def run_close(args: argparse.Namespace, ctx: Context) -> int:
    quarter = parse_quarter(args.period or args.quarter, ctx.as_of)
    if args.period is None and args.quarter is None:
        raise UserError("which quarter? e.g. hzbus scorecard close 2026Q4")
    if ctx.as_of <= quarter.end and not args.force:
        raise UserError(
            f"{quarter} ends {quarter.end.isoformat()}; the facts known at {ctx.as_of.isoformat()} "
            "cannot close it (use --force to publish it anyway)"
        )
    outcome = close_quarter(ctx.store, ctx.card(quarter), ctx.now)
    if outcome.action == "published":
        print(
            f"hzbus scorecard: published {quarter} (as of {outcome.card.as_of.isoformat()})", file=sys.stderr
        )
    elif outcome.action == "unchanged":
        print(f"hzbus scorecard: {quarter} is closed and no later fact changes it", file=sys.stderr)
    else:
        assert outcome.restatement is not None
        print(
            f"hzbus scorecard: {quarter} restated (revision {outcome.restatement.revision}): "
            f"{len(outcome.restatement.changes)} unit(s) changed",
            file=sys.stderr,
        )
        sys.stdout.write(render_restatement(outcome.restatement) + "\n")
    if args.format == "json":
        sys.stdout.write(json.dumps(outcome.card.to_dict(), ensure_ascii=False, indent=1) + "\n")
    elif outcome.action != "restated":
        sys.stdout.write(render_card(outcome.card, []))
    return 0


def run_year(args: argparse.Namespace, ctx: Context) -> int:
    try:
        year = int(args.period) if args.period else ctx.as_of.astimezone(SHANGHAI).year
    except ValueError:
        raise UserError(f"{args.period!r} is not a year") from None
    cards: dict[str, Scorecard] = {}
    official: set[str] = set()
    for n in (1, 2, 3, 4):
        q = Quarter(year, n)
        if q.start > ctx.as_of:
            continue
        card = ctx.store.official(str(q))
        if card is not None:
            official.add(str(q))
        else:
            card = ctx.card(q)
        cards[str(q)] = card
    if not cards:
        raise UserError(f"{year} has not begun at {ctx.as_of.isoformat()}")
    ranking = rank_year(year, cards, official)
    if args.format == "json":
        doc = {
            "year": ranking.year,
            "quarters": ranking.quarters,
            "official": ranking.official,
            "provisional": ranking.provisional,
            "rows": [r.__dict__ | {"quarter_scores": list(r.quarter_scores)} for r in ranking.rows],
        }
        _emit(args, json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    elif args.format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["rank", "dept", "name", *ranking.quarters, "total", "average"])
        for r in ranking.rows:
            w.writerow([r.rank, r.dept, r.name, *r.quarter_scores, r.total, r.average])
        _emit(args, buf.getvalue())
    else:
        _emit(args, render_year(ranking) + "\n")
    return 0


# ----------------------------------------------------------------------------- rendering


def _deduction_summary(items: list[tuple[str, str, float, list[Any]]]) -> str:
    per_item: dict[str, tuple[float, int]] = {}
    for item, _clause, points, ds in items:
        before = per_item.get(item, (0.0, 0))
        per_item[item] = (before[0] + points, before[1] + len(ds))
    return "; ".join(f"{item} -{points_text(p)} ({n})" for item, (p, n) in per_item.items()) or "-"


def _refs(refs: list[str], limit: int = 6) -> str:
    return ", ".join(refs[:limit]) + (f" … (+{len(refs) - limit})" if len(refs) > limit else "")


def render_card(card: Scorecard, restatements: list[Restatement]) -> str:
    """Ranked table, then one line per (unit, item): points, clause, the obligations behind."""
    rows = [
        [d.rank, d.dept, d.name, f"{d.score:g}"]
        + [f"{s.score:g}" + ("*" if s.capped else "") for s in d.sections]
        + [_deduction_summary(d.by_item())]
        for d in card.departments
    ]
    parts = [
        render(
            [
                "rank",
                "dept",
                "unit",
                "score",
                "一 org/20",
                "二 coop/50",
                "三 sup/30",
                "deductions: item -points (n)",
            ],
            rows,
            title=f"Scorecard {card.quarter} (as of {card.as_of.isoformat()}, {card.source}, policy "
            f"{card.policy_version})",
        )
    ]
    detail = []
    for d in (*card.departments, *card.unassessed):
        for item, clause, points, ds in d.by_item():
            refs = [x.ref if x.source == "obligation" else f"{x.ref} ({x.basis})" for x in ds]
            detail.append([d.dept, item, f"-{points_text(points)}", clause.split(":")[0], _refs(refs)])
    if detail:
        parts.append(
            render(
                ["dept", "item", "points", "clause", "obligations / entries"],
                detail,
                title="\nDeductions (clause of the 考评细则; obligations behind each)",
            )
        )
    if card.unassessed:
        parts.append(
            render(
                ["dept", "unit", "would score"],
                [[d.dept, d.name, f"{d.score:g}"] for d in card.unassessed],
                title="\nNot assessed units, not ranked [考评办法 六(二): 本办法适用于市级; 县区参照执行]",
            )
        )
    if card.rejected:
        parts.append(
            render(
                ["event", "dept", "item", "points", "not counted because"],
                [[r.event_id, r.dept, r.item, f"{r.points:g}", r.reason] for r in card.rejected],
                title="\nManual entries not counted",
            )
        )
    for r in restatements:
        parts.append("\n" + render_restatement(r))
    parts.append("* the section's deductions reached its points and stop there [考评办法 四]")
    return "\n".join(parts) + "\n"


def render_restatement(r: Restatement) -> str:
    return render(
        ["dept", "old", "new", "obligations", "why"],
        [[c.dept, f"{c.old_score:g}", f"{c.new_score:g}", _refs(c.obligation_ids), c.why] for c in r.changes],
        title=f"Restatement {r.quarter} revision {r.revision} ({r.restated_at.isoformat()}, facts as of "
        f"{r.as_of.isoformat()})",
    )


def render_csv(card: Scorecard) -> str:
    """One row per unit and item (a unit without deductions has one row with an empty item)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "quarter",
            "rank",
            "dept",
            "name",
            "score",
            "organisation",
            "cooperation",
            "supervision",
            "item",
            "points",
            "clause",
            "deductions",
            "obligation_ids",
            "entries",
        ]
    )
    for d in card.departments:
        head = [
            card.quarter,
            d.rank,
            d.dept,
            d.name,
            f"{d.score:g}",
            *(f"{d.section(k).score:g}" for k in ("organisation", "cooperation", "supervision")),
        ]
        items = d.by_item()
        if not items:
            w.writerow([*head, "", "", "", 0, "", ""])
        for item, clause, points, ds in items:
            w.writerow(
                [
                    *head,
                    item,
                    points_text(points),
                    clause,
                    len(ds),
                    " ".join(x.ref for x in ds if x.source == "obligation"),
                    " ".join(x.ref for x in ds if x.source == "adjustment"),
                ]
            )
    return buf.getvalue()


def render_year(ranking: YearRanking) -> str:
    marks = [q + ("" if q in ranking.official else "~") for q in ranking.quarters]
    rows = [
        [
            r.rank,
            r.dept,
            r.name,
            *("" if s is None else f"{s:g}" for s in r.quarter_scores),
            f"{r.total:g}",
            f"{r.average:g}",
        ]
        for r in ranking.rows
    ]
    return render(
        ["rank", "dept", "unit", *marks, "total", "average"],
        rows,
        title=f"年评 {ranking.year}: ranked by the average of its quarters (~ = not closed, computed live)",
    )
