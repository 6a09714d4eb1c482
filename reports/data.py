"""What the HTML report shows, from ClickHouse (the analysts' views, through the example queries
of ``sinks/clickhouse/queries``) or offline from an evaluation of an event file. Counts only:
statuses and delays are the obligation engine's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.calendar import shanghai_date
from domain.obligations import KINDS, Obligation
from domain.scorecard import Quarter, Scorecard
from sinks.clickhouse.queries import load_query

STATUS_ORDER = ("met", "late", "missed", "open")


@dataclass(frozen=True)
class DeptRow:
    dept: str
    total: int
    met: int
    late: int
    missed: int
    open: int
    on_time_rate: float | None
    median_delay_wd: float
    p90_delay_wd: float


@dataclass(frozen=True)
class CountRow:
    """Counts by status for one label (an obligation kind or a month ``YYYY-MM``)."""

    label: str
    met: int
    late: int
    missed: int
    open: int


@dataclass(frozen=True)
class Offender:
    subject: str
    penalties: int
    quarter: str
    notify_dept: str
    became_true_at: str


@dataclass(frozen=True)
class ReportData:
    quarter: str
    generated_at: datetime
    source: str
    departments: list[DeptRow]
    kinds: list[CountRow]
    months: list[CountRow]
    offenders: list[Offender]
    scorecard: Scorecard
    names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _month(value: Any) -> str:
    text = str(value)
    return f"{text[:4]}-{text[4:6]}" if len(text) == 6 and text.isdigit() else text


def trend_months(quarter: Quarter, months: int = 12) -> list[str]:
    """The ``months`` months ending with the quarter's last month, ``YYYY-MM``."""
    y, m = quarter.year, 3 * quarter.number
    out = []
    for _ in range(months):
        out.append(f"{y}-{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def from_clickhouse(
    client: Any,
    database: str,
    quarter: Quarter,
    card: Scorecard,
    generated_at: datetime,
    names: dict[str, str],
) -> ReportData:
    """The report of ``quarter`` from the analysts' views (queries/*.sql, filtered here)."""
    q = str(quarter)

    def rows(name: str) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = client.execute(load_query(name, database))
        return result

    departments = [
        DeptRow(
            r[1],
            int(r[2]),
            int(r[3]),
            int(r[4]),
            int(r[5]),
            int(r[6]),
            None if r[8] is None else float(r[8]),
            float(r[9]),
            float(r[10]),
        )
        for r in rows("obligation_on_time_rate_by_department")
        if r[0] == q
    ]
    by_kind = {r[1]: r for r in rows("obligation_late_missed_by_kind") if r[0] == q}
    kinds = [CountRow(k, *(int(by_kind[k][i]) for i in (3, 4, 5, 6))) for k in KINDS if k in by_kind]
    wanted = trend_months(quarter)
    by_month = {_month(r[0]): r for r in rows("obligation_monthly_trend")}
    months = [
        CountRow(m, *(int(by_month[m][i]) for i in (2, 3, 4, 5)))
        if m in by_month
        else CountRow(m, 0, 0, 0, 0)
        for m in wanted
    ]
    offenders = [
        Offender(str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows("repeat_offenders_top")
    ]
    return ReportData(
        q, generated_at, f"ClickHouse database {database}", departments, kinds, months, offenders, card, names
    )


def _quantile(values: list[int], level: float) -> float:
    """ClickHouse's quantileExact: the element at floor(level * n) of the sorted values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(level * len(ordered)))])


def dept_rows(obligations: Iterable[Obligation]) -> list[DeptRow]:
    groups: dict[str, list[Obligation]] = {}
    for o in obligations:
        groups.setdefault(o.responsible_dept, []).append(o)
    out = []
    for dept in sorted(groups):
        os_ = groups[dept]
        c = Counter(o.status for o in os_)
        decided = [o.delay_working_days for o in os_ if o.status != "open"]
        rate = c["met"] / len(decided) if decided else None
        out.append(
            DeptRow(
                dept,
                len(os_),
                c["met"],
                c["late"],
                c["missed"],
                c["open"],
                rate,
                _quantile(decided, 0.5),
                _quantile(decided, 0.9),
            )
        )
    return out


def from_evaluation(
    obligations: list[Obligation],
    quarter: Quarter,
    card: Scorecard,
    generated_at: datetime,
    source: str,
    names: dict[str, str],
    offenders: list[Offender] | None = None,
) -> ReportData:
    """The report of ``quarter`` from obligations evaluated offline (same counts as the views)."""
    in_quarter = [o for o in obligations if Quarter.of(o.due_at) == quarter]
    kc = Counter((o.kind, o.status) for o in in_quarter)
    kinds = [
        CountRow(k, *(kc[(k, s)] for s in STATUS_ORDER))
        for k in KINDS
        if any(kc[(k, s)] for s in STATUS_ORDER)
    ]
    mc = Counter((shanghai_date(o.due_at).strftime("%Y-%m"), o.status) for o in obligations)
    months = [CountRow(m, *(mc[(m, s)] for s in STATUS_ORDER)) for m in trend_months(quarter)]
    return ReportData(
        str(quarter), generated_at, source, dept_rows(in_quarter), kinds, months, offenders or [], card, names
    )
