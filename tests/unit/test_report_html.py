"""The HTML report, rendered in headless Chromium (Debian's chromium; install it with
reports/ensure_chromium.sh): the charts and the scorecard are in the DOM, and nothing is fetched."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from domain.departments import load_registry
from domain.events import SHANGHAI
from domain.obligations import evaluate_events
from hzbus.calendar_source import load_calendar
from reports.data import Offender, from_evaluation
from reports.html import render_report
from tests.unit.test_scorecard_engine import AS_OF, Q4, card_at, crafted_events, events_of

ROOT = Path(__file__).resolve().parents[2]
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run reports/ensure_chromium.sh (apt-get install -y chromium)")
    return path


def run_chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="hzbus-chromium-") as profile:
        done = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def crafted_report_html() -> str:
    events = events_of(crafted_events())
    obligations = evaluate_events(events, AS_OF, load_calendar()).obligations
    offenders = [Offender("91330502MA2B3C4D5E", 4, "2026Q4", "HZ-ZFJ", "2026-11-10 10:00:00")]
    data = from_evaluation(
        obligations,
        Q4,
        card_at(crafted_events()),
        datetime(2027, 1, 8, 12, tzinfo=SHANGHAI),
        "crafted 2026Q4",
        {d.code: d.name_zh for d in load_registry()},
        offenders,
    )
    return render_report(data)


def test_the_report_renders_in_chromium_with_its_charts_and_the_scorecard(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(crafted_report_html(), encoding="utf-8")
    dom = run_chromium("--dump-dom", page.as_uri())
    for chart in ("on-time-rate", "late-missed-by-kind", "monthly-trend", "repeat-offenders"):
        assert f'data-chart="{chart}"' in dom, chart
    assert dom.count('class="bar"') >= 10
    assert 'class="scorecard"' in dom and dom.count("data-dept=") == 17
    assert 'data-dept="HZ-RFB" data-score="80"' in dom and "case_transfer:C-1" in dom
    assert "DQ-ZD-WK" in dom  # the squadron, reported apart


def test_the_report_needs_no_network() -> None:
    html = crafted_report_html()
    assert "<script" not in html and "<link" not in html
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_a_screenshot_of_the_report(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(crafted_report_html(), encoding="utf-8")
    shot = tmp_path / "report.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1200,2400", "--hide-scrollbars", page.as_uri())
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
