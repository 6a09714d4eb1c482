"""The stream processor on the real broker and ClickHouse: the same obligations as replay,
alerts raised once across a SIGKILL, and the same results from two workers as from one."""

from __future__ import annotations

import signal
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from hzbus.lag import wait_for_worker
from producers.simulate import write_simulation
from tests.conftest import Bus
from tests.integration.helpers import (
    assert_same_obligations,
    publish_file,
    replayed,
    run_sink,
    stop,
    stored_obligations,
    worker_process,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("worker") / "events.jsonl"
    write_simulation(path, days=30, seed=5, start=date(2026, 9, 21))
    return path


def run_workers(bus: Bus, sample: Path, names: tuple[str, ...]) -> dict[str, tuple[object, ...]]:
    publish_file(bus, sample, historical=True)
    workers = [worker_process(bus, name) for name in names]
    try:
        wait_for_worker(bus.settings, bus.prefix, alive=lambda: all(w.poll() is None for w in workers))
        run_sink(bus)
    finally:
        for w in workers:
            stop(w)
    return stored_obligations(bus)


def test_the_worker_stores_the_same_obligations_as_a_replay_of_the_same_events(
    bus: Bus, sample: Path
) -> None:
    stored = run_workers(bus, sample, ("w1",))
    expected = replayed(sample, datetime.now(UTC))
    assert len(expected) > 1000
    assert_same_obligations(bus, stored, expected)


def test_two_workers_on_eight_partitions_give_the_same_obligations_as_one(bus: Bus, sample: Path) -> None:
    stored = run_workers(bus, sample, ("w1", "w2"))
    assert_same_obligations(bus, stored, replayed(sample, datetime.now(UTC)))


def test_a_worker_killed_before_a_due_time_raises_the_alert_once_after_restart(
    bus: Bus, tmp_path: Path
) -> None:
    # A determination request received Mon 2026-10-12: due 10 working days later, 10-26 23:59:59.
    request = {
        "type": "DeterminationRequested",
        "event_id": "kill-test-1",
        "source_dept": "HZ-ZFJ",
        "occurred_at": "2026-10-12T10:00:00+08:00",
        "recorded_at": "2026-10-12T10:01:00+08:00",
        "request_id": "RD-KILL-1",
        "case_id": "HZ-ZFJ-AJ2026-KILL",
        "to_dept": "HZ-GTJ",
        "question": None,
    }
    due = datetime.fromisoformat("2026-10-26T23:59:59+08:00")
    path = tmp_path / "request.jsonl"
    path.write_bytes(orjson.dumps(request) + b"\n")
    # the worker's clocks run 40 s before the due time when it starts
    offset = (due - timedelta(seconds=40) - datetime.now(UTC)).total_seconds()
    alerts = tmp_path / "alerts.txt"
    first = worker_process(bus, "w1", "--clock-offset", str(offset), output=alerts)
    publish_file(bus, path, historical=True)
    wait_for_worker(bus.settings, bus.prefix, quiet=6.0, alive=lambda: first.poll() is None)
    stop(first, signal.SIGKILL)
    before = [line for line in alerts.read_text(encoding="utf-8").splitlines() if "RD-KILL-1" in line]
    assert len(before) == 1 and "临期提醒" in before[0]  # due today, not missed yet, when killed
    # restarted after the due time (the clock offset still holds: wall time has moved on)
    while datetime.now(UTC) + timedelta(seconds=offset) <= due + timedelta(seconds=1):
        time.sleep(0.5)
    second = worker_process(bus, "w1", "--clock-offset", str(offset), output=alerts)
    try:
        deadline = time.monotonic() + 120
        while "超期提醒" not in alerts.read_text(encoding="utf-8") and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(5)  # a duplicate would show up by now
    finally:
        stop(second)
    lines = [line for line in alerts.read_text(encoding="utf-8").splitlines() if "RD-KILL-1" in line]
    missed = [line for line in lines if "超期提醒" in line]
    assert len(missed) == 1 and len(lines) == 2, lines  # the due-soon warning, then one missed alert
    assert "超期提醒" in missed[0] and "2026-10-26 23:59:59" in missed[0] and "协作机制 五(二)" in missed[0]
    run_sink(bus)
    raised = bus.query(
        "SELECT kind, count() FROM {db}.alerts FINAL "
        "WHERE ref = 'RD-KILL-1' AND event = 'raised' GROUP BY kind"
    )
    assert dict(raised) == {"due_soon": 1, "missed": 1}
