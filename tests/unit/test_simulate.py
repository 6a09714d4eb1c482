"""The simulator: a deterministic, plausible stream of canonical-JSON events."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

import orjson
import pytest

from domain.departments import load_registry
from domain.events import SHANGHAI
from hzbus.calendar_source import build_calendar
from hzbus.cli import main
from producers.simulate import (
    id_number_check_char,
    org_code_check_char,
    simulate,
    uscc_check_char,
)
from schemas import codec

START = date(2026, 9, 21)
DAYS = 60


@pytest.fixture(scope="module")
def calendar():
    return build_calendar()


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def run(calendar, registry, seed=1, days=DAYS, scale=1.0, start=START):
    return list(
        simulate(days=days, seed=seed, start=start, scale=scale, calendar=calendar, registry=registry)
    )


def as_bytes(events):
    return b"\n".join(orjson.dumps(e) for e in events)


@pytest.fixture(scope="module")
def events(calendar, registry):
    return run(calendar, registry)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_the_same_seed_gives_the_same_bytes(calendar, registry, events):
    assert as_bytes(run(calendar, registry)) == as_bytes(events)


def test_another_seed_gives_another_stream(calendar, registry, events):
    assert as_bytes(run(calendar, registry, seed=2)) != as_bytes(events)


def test_sixty_days_give_several_thousand_events_and_scale_multiplies(calendar, registry, events):
    assert 3000 <= len(events) <= 15000
    small = run(calendar, registry, days=10, scale=1.0)
    big = run(calendar, registry, days=10, scale=3.0)
    assert 2.4 < len(big) / len(small) < 3.6


def test_every_event_is_valid_for_the_codec(events):
    for obj in events:
        event = codec.from_canonical(obj)
        assert event.type == obj["type"]


def test_every_department_is_registered(events, registry):
    for obj in events:
        codes = [obj["source_dept"], *(obj[k] for k in ("to_dept", "jurisdiction_dept", "dept") if k in obj)]
        codes += obj.get("participants", [])
        for code in codes:
            assert code in registry, (code, obj)


def test_events_are_sorted_by_occurred_at_and_inside_the_window(events):
    times = [ts(e["occurred_at"]) for e in events]
    assert times == sorted(times)
    begin = datetime(2026, 9, 21, tzinfo=SHANGHAI)
    end = begin + timedelta(days=DAYS)
    for e in events:
        occurred, recorded = ts(e["occurred_at"]), ts(e["recorded_at"])
        assert begin <= occurred <= recorded < end
        assert e["occurred_at"].endswith("+08:00") and e["recorded_at"].endswith("+08:00")


def test_event_ids_are_unique_uuids(events):
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 36 for i in ids)


def test_national_day_is_quiet_and_the_makeup_saturday_is_active(events, calendar):
    per_day = Counter(e["occurred_at"][:10] for e in events)
    working = [d for d in per_day if calendar.is_working_day(date.fromisoformat(d))]
    average = sum(per_day[d] for d in working) / len(working)
    national_day = sum(per_day.get(f"2026-10-0{i}", 0) for i in range(1, 8))
    assert national_day <= 0.05 * average
    assert per_day["2026-10-10"] >= 0.6 * average
    assert per_day.get("2026-09-25", 0) <= 0.05 * average  # Mid-Autumn


def test_most_events_happen_in_office_hours_on_working_days(events, calendar):
    inside = sum(
        1
        for e in events
        if calendar.is_working_day(ts(e["occurred_at"]).date()) and 8 <= ts(e["occurred_at"]).hour < 21
    )
    assert inside / len(events) > 0.97


def test_late_or_missing_transfers_are_a_plausible_share(events, calendar):
    end = ts(events[-1]["occurred_at"])
    extended = {e["case_id"] for e in events if e["type"] == "TransferExtensionNotified"}
    transferred = {e["case_id"]: ts(e["occurred_at"]) for e in events if e["type"] == "CaseTransferred"}
    outcome = Counter()
    for e in events:
        if e["type"] != "ViolationDiscovered" or e["jurisdiction_dept"] == e["source_dept"]:
            continue
        due = calendar.add_working_days(ts(e["occurred_at"]), 15 if e["case_id"] in extended else 3)
        if due.due_at > end:
            continue
        at = transferred.get(e["case_id"])
        outcome["missing" if at is None else "late" if at > due.due_at else "met"] += 1
    total = sum(outcome.values())
    assert total > 200
    assert 0.05 <= (outcome["late"] + outcome["missing"]) / total <= 0.30
    assert outcome["late"] and outcome["missing"]


def test_each_fact_is_reported_by_the_department_it_belongs_to(events, registry):
    receivers: dict[str, set[str]] = {}  # a rejected case may be transferred again, elsewhere
    for e in events:
        if e["type"] == "CaseTransferred":
            receivers.setdefault(e["case_id"], set()).add(e["to_dept"])
    requests = {e["request_id"]: e for e in events if e["type"] == "DeterminationRequested"}
    for e in events:
        kind = registry.get(e["source_dept"]).kind
        if e["type"] == "TransferAcknowledged":
            assert e["source_dept"] in receivers[e["case_id"]]
        elif e["type"] in ("DeterminationReplied", "DeterminationExtended", "DeterminationReferred"):
            assert e["source_dept"] == requests[e["request_id"]]["to_dept"]
        elif e["type"] == "ApprovalIssued":
            assert kind == "business"
        elif e["type"] in ("PenaltyDecided", "CoerciveMeasureDecided"):
            assert kind == "enforcement" and registry.get(e["source_dept"]).level in ("city", "county")
        elif e["type"] == "AssessmentAdjusted":
            assert e["source_dept"] == "HZ-LXB"
        elif e["type"] == "CaseTransferred":
            assert e["to_dept"] != e["source_dept"]


def test_the_story_variety_is_there(events):
    types = Counter(e["type"] for e in events)
    for name in (t for t in codec.event_types() if t != "AssessmentAdjusted"):
        assert types[name] > 0, name
    assert types["AssessmentAdjusted"] == 2
    joint = [e for e in events if e["type"] == "ConsultationMeetingHeld" and e["kind"] == "joint"]
    assert len(joint) == 1 and "HZ-TCB" in joint[0]["participants"]
    channels = {e["channel"] for e in events if e["type"] == "ComplaintReceived"}
    assert "12345" in channels
    assert any(e["type"] == "CaseTransferred" and e["complaint_id"] for e in events)
    assert any(e["type"] == "TransferAcknowledged" and e["decision"] == "rejected" for e in events)
    transfers = Counter(e["case_id"] for e in events if e["type"] == "CaseTransferred")
    assert any(n > 1 for n in transfers.values())  # rejected, then sent again
    assert any(e["type"] == "CaseTransferred" and "evidence" not in e["materials"] for e in events)


def test_correlation_cases_occur(events):
    penalties = [e for e in events if e["type"] == "PenaltyDecided"]
    granted = {
        (e["subject_id"], e["domain"])
        for e in events
        if e["type"] == "ApprovalIssued" and e["decision"] == "granted"
    }
    assert any((p["subject_id"], p["domain"]) in granted for p in penalties)
    assert any(p["unlicensed_operation"] for p in penalties)
    assert any(p["requires_permit_suspension"] for p in penalties)
    per_subject = Counter(p["subject_id"] for p in penalties)
    assert max(per_subject.values()) >= 3


def test_subject_ids_are_well_formed(events):
    subjects = {e["subject_id"] for e in events if e.get("subject_id")}
    organisations = {s for s in subjects if not s.startswith("33")}
    individuals = subjects - organisations
    assert organisations and individuals
    for s in organisations:  # unified social credit code, GB 32100-2015
        assert len(s) == 18 and s[2:6] == "3305", s
        assert uscc_check_char(s[:17]) == s[17], s
        assert org_code_check_char(s[8:16]) == s[16], s
    for s in individuals:  # citizen ID number, GB 11643-1999, born 1955-2000 in Huzhou
        assert len(s) == 18 and s[:4] == "3305" and s[:17].isdigit(), s
        assert id_number_check_char(s[:17]) == s[17], s
        assert 1955 <= int(s[6:10]) <= 2000


def test_known_check_characters():
    # the GB 11643 example ID number; a real USCC (Alibaba (China) Co., Ltd.)
    assert id_number_check_char("11010519491231002") == "X"
    assert uscc_check_char("91330100799655058") == "B"
    assert org_code_check_char("79965505") == "8"


def test_the_cli_writes_jsonl_and_a_summary(tmp_path, capsys):
    out = tmp_path / "events.jsonl"
    assert main(["simulate", "--days", "7", "--seed", "5", "--out", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    assert lines and all(orjson.loads(line)["type"] for line in lines)
    err = capsys.readouterr().err
    assert f"{len(lines)} events" in err and "ViolationDiscovered=" in err


def test_the_cli_writes_to_stdout_by_default(capsysbinary):
    assert main(["simulate", "--days", "2", "--seed", "5", "--start", "2026-09-22"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b'{"type":')


@pytest.mark.parametrize("argv", [["--days", "0"], ["--scale", "0"]])
def test_the_cli_rejects_bad_numbers(argv, capsys):
    assert main(["simulate", *argv]) == 2
    assert "error" in capsys.readouterr().err


def test_write_simulation_writes_the_same_stream_and_returns_its_length(tmp_path, calendar, registry):
    from producers.simulate import write_simulation

    path = tmp_path / "sim.jsonl"
    count = write_simulation(path, days=5, seed=9, start="2026-09-28")
    expected = run(calendar, registry, seed=9, days=5, start=date(2026, 9, 28))
    assert count == len(expected)
    assert path.read_bytes() == as_bytes(expected) + b"\n"
