"""The scorecard and the analysts' model on the real ClickHouse 18.16 server: the crafted 2026Q4
stored through the sink's row builders gives the same scorecard from ClickHouse as offline from
the event file; close and restatement in ClickHouse; every analyst query runs; the report renders."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain.departments import load_registry
from domain.obligations import evaluate_events
from domain.scorecard import Quarter, load_policy
from hzbus.calendar_source import load_calendar
from hzbus.cli import main
from reports.data import dept_rows
from reports.sources import ClickHouseFacts
from reports.stores import ClickHouseStore
from sinks.clickhouse.fact_rows import FACT_COLUMNS
from sinks.clickhouse.migrate import migrate
from sinks.clickhouse.queries import load_query
from tests.conftest import Bus
from tests.unit.test_analyst_sql_current_engine import ANALYST_QUERIES, load_crafted, obligation_fact_rows
from tests.unit.test_scorecard_engine import AS_OF, Q4, card_at, crafted_events, events_of, late_facts

pytestmark = pytest.mark.integration


@pytest.fixture
def stored(bus: Bus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.delenv("HZBUS_CALENDAR_OVERRIDES", raising=False)
    monkeypatch.setenv("HZBUS_CLICKHOUSE_DATABASE", bus.database)
    monkeypatch.setenv("HZBUS_STATE_DIR", str(tmp_path / "state"))
    client = bus.clickhouse()
    migrate(client, bus.database)
    load_crafted(client, bus.database)
    yield client
    client.disconnect()


def write_events(path: Path, raw: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in raw))
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_clickhouse_and_offline_paths_give_the_same_scorecard(
    stored: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_events(tmp_path / "q4.jsonl", crafted_events())
    from_ch = run_json(capsys, "scorecard", "--quarter", "2026Q4", "--format", "json")
    offline = run_json(
        capsys,
        "scorecard",
        "--quarter",
        "2026Q4",
        "--format",
        "json",
        "--events",
        str(events),
        "--as-of",
        AS_OF.isoformat(),
    )
    assert from_ch["source"].startswith("clickhouse:") and offline["source"].startswith("events:")
    for part in ("departments", "unassessed", "rejected_adjustments"):
        assert from_ch[part] == offline[part], part
    scores = {d["dept"]: d["score"] for d in from_ch["departments"]}
    assert (scores["HZ-GHJ"], scores["HZ-RFB"], scores["HZ-ZFJ"], scores["HZ-FGW"]) == (
        96.0,
        80.0,
        98.0,
        100.0,
    )


def test_the_views_on_18_16_count_what_the_python_counts(stored: Any, bus: Bus) -> None:
    for name in ANALYST_QUERIES:
        stored.execute(load_query(name, bus.database))
    rows = stored.execute(load_query("obligation_on_time_rate_by_department", bus.database))
    q4 = {r[1]: r for r in rows if r[0] == "2026Q4"}
    evaluation = evaluate_events(events_of(crafted_events()), AS_OF, load_calendar())
    in_q4 = [o for o in evaluation.obligations if Quarter.of(o.due_at) == Q4]
    for expected in dept_rows(in_q4):
        r = q4[expected.dept]
        assert tuple(r[2:7]) == (expected.total, expected.met, expected.late, expected.missed, expected.open)
        assert (r[9], r[10]) == (expected.median_delay_wd, expected.p90_delay_wd)
    assert q4["HZ-GHJ"][8] == 0.0 and q4["HZ-ZFJ"][8] is not None


def test_a_fact_after_the_close_is_a_restatement_in_clickhouse(
    stored: Any, bus: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    # the stored facts are as of 2027-01-08 (the worker's watermark), after the quarter's end
    assert main(["scorecard", "close", "2026Q4"]) == 0
    capsys.readouterr()
    store = ClickHouseStore(stored, bus.database)
    published = store.published("2026Q4")
    assert published is not None and published[0].department("HZ-TYJ").score == 100.0

    later = datetime.fromisoformat("2027-01-12T12:00:00+08:00")
    newer = evaluate_events(events_of(crafted_events() + late_facts()), later, load_calendar()).obligations
    cols = ", ".join(FACT_COLUMNS["obligations"])
    stored.execute(
        f"INSERT INTO {bus.database}.obligations ({cols}) VALUES", obligation_fact_rows(newer, later, 3)
    )

    shown = run_json(capsys, "scorecard", "--quarter", "2026Q4", "--format", "json")
    assert shown["closed"] and shown["pending_restatement"]["changes"][0]["dept"] == "HZ-TYJ"
    assert {d["dept"]: d["score"] for d in shown["departments"]}["HZ-TYJ"] == 100.0  # published stays

    assert main(["scorecard", "close", "2026Q4"]) == 0
    out = capsys.readouterr().out
    assert "case_transfer:C-5" in out and "HZ-TYJ" in out
    log = stored.execute(load_query("scorecard_restatements_log", bus.database))
    assert [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in log] == [
        ("2026Q4", 1, "HZ-TYJ", 100.0, 99.0, ["case_transfer:C-5"])
    ]
    official = {
        r[1]: (r[2], r[3]) for r in stored.execute(load_query("scorecard_official_ranking", bus.database))
    }
    assert official["HZ-TYJ"] == (99.0, 1) and official["HZ-GHJ"] == (96.0, 0)
    # the store reads back what the core computed
    expected = card_at(crafted_events() + late_facts(), as_of=later)
    card = store.official("2026Q4")
    assert card is not None and card.scores() == expected.scores()
    assert main(["scorecard", "close", "2026Q4"]) == 0  # nothing new: no second revision
    assert len(store.restatements("2026Q4")) == 1
    live = ClickHouseFacts(stored, bus.database).scorecard(Q4, load_policy(), load_registry(), later)
    assert live.scores() == expected.scores()


def test_the_report_is_written_from_clickhouse(
    stored: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--quarter", "2026Q4", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    for marker in (
        'data-chart="on-time-rate"',
        'data-chart="late-missed-by-kind"',
        'data-chart="monthly-trend"',
        'data-chart="repeat-offenders"',
        'class="scorecard"',
        'data-dept="HZ-RFB" data-score="80"',
    ):
        assert marker in html, marker
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
