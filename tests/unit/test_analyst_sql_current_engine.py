"""The analysts' model (migrations 0003/0004 and the scorecard/statistics queries) on a current
ClickHouse engine (chdb, in process), fed with the crafted 2026Q4 through the sink's row builders.
The same data runs against the Debian 18.16 server in tests/integration/test_scorecard_clickhouse.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
import pytest

from domain.obligations import Obligation, evaluate_events
from domain.privacy import pseudonymise
from domain.scorecard import Quarter
from hzbus.calendar_source import load_calendar
from reports.data import dept_rows
from sinks.clickhouse.fact_rows import FACT_COLUMNS, ROW_BUILDERS
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.queries import load_query
from sinks.clickhouse.rows import EVENT_COLUMNS, event_row
from tests.unit.test_scorecard_engine import AS_OF, Q4, crafted_events, events_of

chdb_session = pytest.importorskip("chdb.session")

ANALYST_QUERIES = (
    "obligation_on_time_rate_by_department",
    "obligation_late_missed_by_kind",
    "obligation_stats_by_department_and_kind",
    "obligation_monthly_trend",
    "repeat_offenders_top",
    "approval_penalty_correlations_by_kind",
    "scorecard_official_ranking",
    "scorecard_restatements_log",
    "scorecard_manual_entries",
)


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, datetime):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S") + "'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)


class ChdbClient:
    """The slice of clickhouse-driver's client the migrations and these tests use, over chdb.
    Values come back as text (TabSeparated)."""

    def __init__(self) -> None:
        self.session = chdb_session.Session()

    def execute(self, sql: str, rows: Sequence[Sequence[object]] | None = None) -> list[tuple[str, ...]]:
        if rows is not None:
            sql = f"{sql} " + ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
        text = str(self.session.query(sql, "TabSeparated"))
        return [tuple(line.split("\t")) for line in text.splitlines() if line]


def crafted_obligations() -> list[Obligation]:
    return evaluate_events(events_of(crafted_events()), AS_OF, load_calendar()).obligations


def obligation_fact_rows(
    obligations: Sequence[Obligation], at: datetime, version: int
) -> list[tuple[Any, ...]]:
    """Rows of the ``obligations`` table, through the sink's own row builder."""
    build = ROW_BUILDERS["obligations"]
    return [
        build(
            orjson.dumps({"obligation": o.to_dict(), "previous_status": None, "at": at.isoformat()}), version
        )
        for o in obligations
    ]


def adjustment_event_rows() -> list[tuple[Any, ...]]:
    """``events`` rows of the crafted AssessmentAdjusted entries, through the sink's row builder."""
    return [
        event_row(
            e,
            topic="hzbus.assessments",
            partition=0,
            offset=i,
            published_ms=int(e.recorded_at.timestamp() * 1000),
            ingested_at=e.recorded_at,
            pseudonym_key=b"test",
        )
        for i, e in enumerate(events_of(crafted_events()))
        if e.type == "AssessmentAdjusted"
    ]


def correlation_rows() -> list[tuple[Any, ...]]:
    build = ROW_BUILDERS["correlations"]
    out = []
    for i, (subject, penalties) in enumerate(
        (("91330502MA2B3C4D5E", 4), (pseudonymise("330502199001011234", b"k"), 3))
    ):
        corr = {
            "kind": "repeat_offender",
            "correlation_id": f"repeat_offender:{subject}",
            "subject": subject,
            "domain": None,
            "approval_ids": [],
            "penalty_ids": [f"P-{i}-{n}" for n in range(penalties)],
            "case_ids": [],
            "notify_dept": "HZ-ZFJ",
            "responsible_dept": "HZ-ZFJ",
            "clause": "协作机制 三(二)3",
            "rule_version": "1",
            "became_true_at": "2026-11-10T10:00:00+08:00",
            "due_at": None,
            "status": "active",
        }
        out.append(build(orjson.dumps(corr), 1))
    return out


def load_crafted(client: Any, db: str) -> list[Obligation]:
    """The crafted quarter as the sink would have stored it: an older 'open' version of every
    obligation first (version 1), then the evaluation at AS_OF (version 2)."""
    obligations = crafted_obligations()
    early = [
        Obligation.from_dict({**o.to_dict(), "status": "open", "delay_working_days": 0}) for o in obligations
    ]
    cols = ", ".join(FACT_COLUMNS["obligations"])
    client.execute(f"INSERT INTO {db}.obligations ({cols}) VALUES", obligation_fact_rows(early, AS_OF, 1))
    client.execute(
        f"INSERT INTO {db}.obligations ({cols}) VALUES", obligation_fact_rows(obligations, AS_OF, 2)
    )
    client.execute(f"INSERT INTO {db}.events ({', '.join(EVENT_COLUMNS)}) VALUES", adjustment_event_rows())
    client.execute(
        f"INSERT INTO {db}.correlations ({', '.join(FACT_COLUMNS['correlations'])}) VALUES",
        correlation_rows(),
    )
    return obligations


@pytest.fixture(scope="module")
def current() -> Iterator[ChdbClient]:
    client = ChdbClient()
    migrate(client, "hz_analyst")
    load_crafted(client, "hz_analyst")
    yield client


@pytest.mark.parametrize("name", ANALYST_QUERIES)
def test_each_analyst_query_opens_with_its_question_and_runs_on_a_current_engine(
    current: ChdbClient, name: str
) -> None:
    sql = load_query(name, "hz_analyst")
    assert sql.startswith("-- ") and sql.splitlines()[0].rstrip().endswith("?")
    current.execute(sql)


def test_department_stats_count_the_latest_state_as_the_python_counts_do(current: ChdbClient) -> None:
    rows = current.execute(load_query("obligation_on_time_rate_by_department", "hz_analyst"))
    q4 = {r[1]: r for r in rows if r[0] == "2026Q4"}
    in_q4 = [o for o in crafted_obligations() if Quarter.of(o.due_at) == Q4]
    for expected in dept_rows(in_q4):
        r = q4[expected.dept]
        assert (int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) == (
            expected.total,
            expected.met,
            expected.late,
            expected.missed,
            expected.open,
        ), expected.dept
        assert float(r[9]) == expected.median_delay_wd and float(r[10]) == expected.p90_delay_wd
    ghj = q4["HZ-GHJ"]
    assert (ghj[4], ghj[5], float(ghj[8])) == ("1", "1", 0.0)  # one late, one missed, on-time 0


def test_manual_entries_are_read_from_the_raw_events(current: ChdbClient) -> None:
    rows = current.execute(load_query("scorecard_manual_entries", "hz_analyst"))
    got = {(r[1], r[2], float(r[3]), r[5]) for r in rows}
    assert ("HZ-SLJ", "二.4", -2.0, "HZ-LXB") in got and ("HZ-SJJ", "二.2", 5.0, "HZ-SJJ") in got
    assert {r[4] for r in rows if r[1] == "HZ-SLJ"} == {"未参加全市河道违建联合整治行动"}


def test_repeat_offenders_are_ranked_by_penalties(current: ChdbClient) -> None:
    rows = current.execute(load_query("repeat_offenders_top", "hz_analyst"))
    assert rows[0][:3] == ("91330502MA2B3C4D5E", "4", "2026Q4")
    assert len(rows) == 2


def test_the_official_score_is_the_last_restatement_or_the_published_one(current: ChdbClient) -> None:
    at = datetime.fromisoformat("2027-01-08T13:00:00+08:00")
    published = [
        ("2026Q4", d, d, 1, 1, 100.0, 20.0, 50.0, 30.0, 0.0, [], [], "{}", at, at, "2026.1", "t", 5)
        for d in ("HZ-TYJ", "HZ-FGW")
    ]
    current.execute(
        "INSERT INTO hz_analyst.scorecard_published (quarter, dept, dept_name, assessed, rank, score, "
        "organisation, cooperation, supervision, deducted, obligation_ids, adjustment_ids, department, "
        "as_of, published_at, policy_version, source, version) VALUES",
        published,
    )
    current.execute(
        "INSERT INTO hz_analyst.scorecard_restatements (quarter, revision, dept, old_score, new_score, "
        "obligation_ids, event_ids, why, change, as_of, restated_at) VALUES",
        [("2026Q4", 1, "HZ-TYJ", 100.0, 99.0, ["case_transfer:C-5"], [], "+1 二.2", "{}", at, at)],
    )
    rows = current.execute(load_query("scorecard_official_ranking", "hz_analyst"))
    assert [(r[1], float(r[2]), r[3]) for r in rows] == [("HZ-FGW", 100.0, "0"), ("HZ-TYJ", 99.0, "1")]


def test_every_grafana_panel_query_runs_on_a_current_engine(current: ChdbClient) -> None:
    from pathlib import Path

    dashboard = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "dashboards" / "hzbus.json"
    doc = orjson.loads(dashboard.read_bytes())
    sqls = [t["rawSql"] for p in doc["panels"] for t in p["targets"]]
    sqls += [v["query"] for v in doc["templating"]["list"]]
    assert len(sqls) == 9
    for sql in sqls:
        current.execute(sql.replace("hzbus.", "hz_analyst.").replace("${quarter}", "2026Q4"))
