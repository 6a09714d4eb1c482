"""``hzbus scorecard`` offline (--events/--as-of): formats, quarter close with a restatement in the
JSON store under the state dir, the year, operator errors without traceback."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from hzbus.cli import main
from tests.unit.test_scorecard_engine import crafted_events, late_facts

AS_OF = "2027-01-08T12:00:00+08:00"
LATER = "2027-01-12T12:00:00+08:00"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HZBUS_CALENDAR_OVERRIDES", raising=False)
    monkeypatch.setenv("HZBUS_STATE_DIR", str(tmp_path / "state"))


def events_file(tmp_path: Path, raw: list[dict[str, Any]]) -> Path:
    path = tmp_path / "q4.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in raw))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_ranks_the_units_with_items_clauses_and_obligations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "scorecard",
        "--quarter",
        "2026Q4",
        "--events",
        str(events_file(tmp_path, crafted_events())),
        "--as-of",
        AS_OF,
    )
    assert code == 0
    assert "HZ-RFB" in out and "0*" in out and "二.7 -4 (2)" in out
    assert "determination_reply:R-1, determination_reply:R-2" in out and "考评细则 (二)7 协助制度" in out
    assert "DQ-ZD-WK" in out and "entered by HZ-SJJ, only HZ-LXB may" in out


def test_json_and_csv_carry_every_deduction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(events_file(tmp_path, crafted_events()))
    _, out, _ = run(
        capsys, "scorecard", "--quarter", "2026Q4", "--format", "json", "--events", path, "--as-of", AS_OF
    )
    doc = json.loads(out)
    assert doc["closed"] is False and len(doc["departments"]) == 17
    ghj = next(d for d in doc["departments"] if d["dept"] == "HZ-GHJ")
    assert sorted(x["ref"] for x in ghj["deductions"]) == [
        "determination_reply:R-1",
        "determination_reply:R-2",
    ]
    _, out, _ = run(
        capsys, "scorecard", "--quarter", "2026Q4", "--format", "csv", "--events", path, "--as-of", AS_OF
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    sjj = [r for r in rows if r["dept"] == "HZ-SJJ"]
    assert {r["obligation_ids"] for r in sjj} == {"case_transfer:C-1", "approval_share:A-1"}
    assert all(r["clause"] for r in sjj) and len({r["dept"] for r in rows}) == 17


def test_close_publishes_then_a_later_fact_is_a_restatement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = events_file(tmp_path, crafted_events())
    code, _, err = run(
        capsys, "scorecard", "close", "2026Q4", "--events", str(path), "--as-of", "2026-12-20T12:00:00+08:00"
    )
    assert code == 2 and "cannot close it" in err and "Traceback" not in err
    code, _, err = run(capsys, "scorecard", "close", "2026Q4", "--events", str(path), "--as-of", AS_OF)
    assert code == 0 and "published 2026Q4" in err
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in crafted_events() + late_facts()))
    _, out, _ = run(capsys, "scorecard", "--quarter", "2026Q4", "--events", str(path), "--as-of", LATER)
    assert "later facts change 1 unit(s)" in out
    code, out, err = run(capsys, "scorecard", "close", "2026Q4", "--events", str(path), "--as-of", LATER)
    assert code == 0 and "revision 1" in err and "case_transfer:C-5" in out
    stored = json.loads(next((tmp_path / "state" / "scorecards").glob("q4-*/2026Q4.json")).read_text())
    assert next(d["score"] for d in stored["published"]["departments"] if d["dept"] == "HZ-TYJ") == 100.0
    assert stored["restatements"][0]["changes"][0]["new_score"] == 99.0
    _, out, _ = run(capsys, "scorecard", "year", "2026", "--events", str(path), "--as-of", LATER)
    assert "2026Q4 " in out and "2026Q3~" in out


def test_operator_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(events_file(tmp_path, crafted_events()))
    code, _, err = run(capsys, "scorecard", "--quarter", "2026Q4", "--events", path)
    assert code == 2 and "--events needs --as-of" in err
    code, _, err = run(capsys, "scorecard", "--quarter", "2026Q5", "--events", path, "--as-of", AS_OF)
    assert code == 2 and "not a quarter" in err and "Traceback" not in err
