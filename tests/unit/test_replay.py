"""``hzbus replay``: obligations on stdout, bad lines named on stderr, exit 1, no traceback."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from domain.obligations import evaluate_events
from hzbus.calendar_source import load_calendar
from hzbus.cli import main
from hzbus.commands.replay import write_jsonl
from producers.simulate import write_simulation
from schemas.codec import from_canonical

VIOLATION = {
    "type": "ViolationDiscovered",
    "event_id": "e1",
    "source_dept": "DQ-ZD-WK",
    "occurred_at": "2026-09-30T10:00:00+08:00",
    "recorded_at": "2026-09-30T10:05:00+08:00",
    "case_id": "C1",
    "subject_id": "91330521MA2B3C4D5E",
    "domain": "market",
    "matter_code": "MK-P01",
    "jurisdiction_dept": "HZ-SJJ",
    "urgent": False,
    "origin": "inspection",
}
APPROVAL = {
    "type": "ApprovalIssued",
    "event_id": "e2",
    "source_dept": "HZ-SJJ",
    "occurred_at": "2026-10-08T10:00:00+08:00",
    "recorded_at": "2026-10-08T11:00:00+08:00",
    "approval_id": "A1",
    "subject_id": "91330521MA2B3C4D5E",
    "domain": "market",
    "matter_code": "MK-L01",
    "approval_kind": "license",
    "decision": "granted",
    "valid_until": None,
}


@pytest.fixture(autouse=True)
def _no_calendar_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HZBUS_CALENDAR_OVERRIDES", raising=False)


def write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_prints_obligations_names_bad_lines_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = dict(VIOLATION, type="ViolationImagined", event_id="e9")
    path = write(
        tmp_path,
        [
            orjson.dumps(VIOLATION),
            b'{"type": "ViolationDiscovered",',
            orjson.dumps(unknown),
            orjson.dumps(APPROVAL),
        ],
    )
    code = main(["replay", str(path), "--as-of", "2026-10-12T00:00:00+08:00"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{path}:2: malformed JSON" in err
    assert f"{path}:3: " in err and "ViolationImagined" in err
    assert "Traceback" not in err
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [(r["kind"], r["ref"], r["status"]) for r in rows] == [
        ("case_transfer", "C1", "missed"),  # due Sat 10-10 (make-up day)
        ("approval_share", "A1", "met"),
        ("annual_joint_meeting", "2026", "open"),
    ]
    first = rows[0]
    assert first["due_at"] == "2026-10-10T23:59:59+08:00" and first["responsible_dept"] == "DQ-ZD-WK"
    assert (
        first["clause"] == "协作机制 二(一)"
        and first["provisional"] is False
        and first["fulfilled_at"] is None
    )
    assert first["started_at"] == "2026-09-30T10:00:00+08:00"


def test_replay_of_a_clean_file_exits_0_and_the_table_counts_by_kind_and_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, [orjson.dumps(VIOLATION), orjson.dumps(APPROVAL)])
    code = main(["replay", str(path), "--as-of", "2026-10-12T00:00:00+08:00", "--format", "table"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "case_transfer" in out and "Missed (1)" in out and "C1" in out


def test_as_of_without_an_offset_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, [orjson.dumps(VIOLATION)])
    code = main(["replay", str(path), "--as-of", "2026-10-12T00:00:00"])
    _, err = capsys.readouterr()
    assert code == 2 and "no UTC offset" in err and "Traceback" not in err


def test_a_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", str(tmp_path / "nope.jsonl"), "--as-of", "2026-10-12T00:00:00+08:00"])
    _, err = capsys.readouterr()
    assert code == 2 and "nope.jsonl" in err


def test_replay_warns_when_the_official_calendar_is_about_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, [orjson.dumps(VIOLATION)])
    assert main(["replay", str(path), "--as-of", "2026-12-01T00:00:00+08:00"]) == 0
    _, err = capsys.readouterr()
    assert "provisional" in err


def test_each_jsonl_line_is_the_obligation_or_finding_as_its_to_dict() -> None:
    # write_jsonl lets orjson serialise the dataclasses; the lines must stay to_dict's
    urgent_incomplete = dict(
        VIOLATION, event_id="e3", case_id="C2", urgent=True, occurred_at="2026-09-29T10:00:00.250+08:00"
    )
    transfer = {
        "type": "CaseTransferred",
        "event_id": "e4",
        "source_dept": "DQ-ZD-WK",
        "occurred_at": "2026-10-09T02:00:00.5Z",
        "recorded_at": "2026-10-09T10:05:00+08:00",
        "case_id": "C2",
        "to_dept": "HZ-SJJ",
        "materials": ["transfer_letter"],
        "leader_approved": False,
        "cc_coordination_office": True,
        "complaint_id": None,
    }
    events = [from_canonical(e) for e in (VIOLATION, APPROVAL, urgent_incomplete, transfer)]
    result = evaluate_events(events, datetime.fromisoformat("2026-10-20T00:00:00+08:00"), load_calendar())
    # and times in other zones (an engine fed with events built in code)
    other = replace(
        result.obligations[0],
        started_at=datetime(2026, 10, 1, 1, 2, 3, 4000, tzinfo=UTC),
        fulfilled_at=datetime(2026, 10, 2, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        extension_reason="情况复杂",
    )
    evaluation = replace(result, obligations=[*result.obligations, other])
    assert len(evaluation.findings) == 2
    out = io.BytesIO()
    write_jsonl(evaluation, out, with_findings=True)
    expected = [orjson.dumps(o.to_dict()) for o in evaluation.obligations]
    expected += [orjson.dumps(f.to_dict()) for f in evaluation.findings]
    assert out.getvalue() == b"".join(line + b"\n" for line in expected)


AS_OF = "2026-11-20T00:00:00+08:00"


def _replay_process(path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``hzbus replay`` as its own process (it then ends itself once its output is flushed)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hzbus.cli",
            "replay",
            str(path),
            "--as-of",
            "2026-11-20T00:00:00+08:00",
            *extra,
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_replay_as_a_process_prints_what_the_in_process_call_does_and_names_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    write_simulation(path, days=10, seed=2, start=date(2026, 9, 21))
    with path.open("ab") as fh:
        fh.write(b'{"type": "ViolationDiscovered",\n')
    for fmt in ("jsonl", "table"):
        done = _replay_process(path, "--format", fmt)
        out, err = done.communicate(timeout=120)
        code = main(["replay", str(path), "--as-of", AS_OF, "--format", fmt])
        expected_out, expected_err = capsys.readouterr()
        assert (done.returncode, code) == (1, 1)
        assert out.decode() == expected_out and len(out.splitlines()) > 10
        assert err.decode() == expected_err and "malformed JSON" in err.decode()


def test_replay_into_a_reader_that_stops_early_ends_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_simulation(
        path, days=30, seed=2, start=date(2026, 9, 21)
    )  # ~1 MB of output: more than a pipe holds
    done = _replay_process(path)
    assert done.stdout is not None and done.stderr is not None
    first = done.stdout.readline()
    done.stdout.close()  # as `| head -1` does
    err = done.stderr.read().decode()
    assert done.wait(60) == 1
    assert orjson.loads(first)["obligation_id"]
    assert "Traceback" not in err and "BrokenPipe" not in err
