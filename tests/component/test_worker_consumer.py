"""The worker's consumer: Faust's read-offset race during a rebalance, undone
(stream_processors/consumer.py; docs/reliability.md, the alerts-commit stall).

The fetcher task's steps are played here in the order the race takes: a record is handed over,
a rebalance seeks the partition back to its committed offset meanwhile, and the hand-over's
pending write of the read offset comes after the seek. No broker: the consumer object is the
worker's own, its parent's fetch and seek replaced by the records and offsets of the scenario.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import Consumer as FaustConsumer
from faust.types import TP

from hzbus.calendar_source import load_calendar
from hzbus.config import load_settings
from stream_processors.consumer import HzConsumer
from stream_processors.worker import build_app

ALERTS = TP("comp.alerts", 3)
OTHER = TP("comp.alerts", 5)
CHANGELOG = TP("comp-worker-obligation-state-changelog", 3)  # a table's: the recovery's business


def record(offset: int, tp: TP = ALERTS) -> Any:
    return SimpleNamespace(offset=offset, tp=tp)


@pytest.fixture
def consumer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    app = build_app(load_settings(), load_calendar(), prefix="comp", datadir=tmp_path, store="memory://")
    consumer = app.consumer
    app.consumer_generation_id = 1

    async def fetched(self: Any, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        for tp, offset in consumer.test_fetch:  # one fetch
            yield tp, record(offset, tp)

    async def committed(self: Any) -> dict[TP, int | None]:
        await asyncio.sleep(consumer.test_seek_time)
        return {ALERTS: consumer.test_committed, OTHER: 9}  # what aiokafka's seek_to_committed returns

    async def seek_wait(self: Any, partitions: dict[TP, int]) -> None:  # the fetch position too
        self.seeks.append(dict(partitions))
        for tp, offset in partitions.items():
            self._read_offset[tp] = offset

    monkeypatch.setattr(FaustConsumer, "getmany", fetched)
    monkeypatch.setattr(FaustConsumer, "seek_to_committed", committed)
    monkeypatch.setattr(FaustConsumer, "seek_wait", seek_wait)
    monkeypatch.setattr(FaustConsumer, "assignment", lambda self: {ALERTS, OTHER})
    consumer.seeks = []
    consumer.test_fetch = [(ALERTS, 15), (ALERTS, 16), (CHANGELOG, 7), (OTHER, 30), (ALERTS, 17)]
    consumer.test_committed = 4
    consumer.test_seek_time = 0.0
    return consumer


def drain(
    consumer: Any, rebalance_during: int | None, seek: bool | str, new_generation: bool = True
) -> list[int]:
    """What Faust's fetcher does with each record (hand over, then mark as read), with a
    rebalance (and, with ``seek``, its seek to the committed offsets) during one hand-over;
    without ``new_generation``, a seek alone (the end of a table recovery: Faust resumes the
    partitions, then seeks them)."""

    async def run() -> list[int]:
        handed = []
        async for tp, message in consumer.getmany(timeout=1.0):
            handed.append(message.offset)
            if message.offset == rebalance_during:
                consumer.app.consumer_generation_id += new_generation
                if seek == "under way":  # started, not over when the hand-over returns
                    consumer.test_seek_time = 0.05
                    asyncio.get_running_loop().create_task(consumer.perform_seek())
                    await asyncio.sleep(0)
                elif seek:
                    await consumer.perform_seek()
            if tp != CHANGELOG:
                consumer._read_offset[tp] = message.offset  # the hand-over returned: marked as read
        return handed

    return asyncio.run(run())


def test_the_worker_app_uses_the_fixed_consumer(consumer: Any) -> None:
    assert isinstance(consumer, HzConsumer)


def test_a_read_offset_written_after_the_rebalance_seek_makes_the_partition_read_again_from_its_commit(
    consumer: Any,
) -> None:
    handed = drain(consumer, rebalance_during=16, seek=True)
    assert handed == [15, 16, 7]  # the rest of the old fetch is not handed over, but a changelog's
    # the records 4..16 are fetched again (not dropped as already read) and acknowledged anew
    assert consumer.seeks == [{ALERTS: 4, OTHER: 9}]  # and the partition whose record was left out
    assert consumer._read_offset[ALERTS] == 4


def test_a_seek_in_the_same_generation_during_a_hand_over_makes_the_partition_read_again(
    consumer: Any,
) -> None:
    handed = drain(consumer, rebalance_during=16, seek=True, new_generation=False)
    assert handed == [15, 16, 7]
    assert consumer.seeks == [{ALERTS: 4, OTHER: 9}]
    assert consumer._read_offset[ALERTS] == 4


def test_a_hand_over_that_returns_while_a_seek_is_under_way_reads_the_partitions_again_after_it(
    consumer: Any,
) -> None:
    """Records fetched after aiokafka's seek but left out here would be lost if they were not
    read again: the seek is waited for, then the partitions are seeked again."""
    handed = drain(consumer, rebalance_during=16, seek="under way", new_generation=False)
    assert handed == [15, 16, 7]
    assert consumer.seeks == [{ALERTS: 4, OTHER: 9}]


@pytest.mark.parametrize("committed", [None, 0])
def test_a_partition_without_a_committed_offset_is_rewound_by_the_seek(consumer: Any, committed: Any) -> None:
    """aiokafka's seek_to_committed leaves such a partition where its last fetch ended: the
    records fetched there and not handed over before a rebalance would be skipped."""
    consumer.test_committed = committed
    asyncio.run(consumer.perform_seek())
    assert consumer.seeks == [{ALERTS: 0}]


def test_a_partition_with_a_committed_offset_is_left_to_aiokafka_s_seek(consumer: Any) -> None:
    asyncio.run(consumer.perform_seek())
    assert consumer.seeks == []
    assert consumer._read_offset[ALERTS] == 4


def test_a_read_offset_written_before_the_new_generation_s_seek_is_removed(consumer: Any) -> None:
    handed = drain(consumer, rebalance_during=16, seek=False)
    assert handed == [15, 16, 7]
    assert ALERTS not in consumer._read_offset  # the seek to come sets it
    assert consumer.seeks == []


def test_without_a_rebalance_every_record_is_handed_over_and_marked_read(consumer: Any) -> None:
    assert drain(consumer, rebalance_during=None, seek=False) == [15, 16, 7, 30, 17]
    assert consumer._read_offset[ALERTS] == 17
    assert consumer.seeks == []


def test_records_skipped_without_a_seek_are_named_in_the_log(
    consumer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    consumer.test_fetch = [(ALERTS, 15), (ALERTS, 16), (OTHER, 30), (ALERTS, 19), (OTHER, 31)]
    assert drain(consumer, rebalance_during=None, seek=False) == [15, 16, 30, 19, 31]
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == ["comp.alerts[3]: offsets 17-18 skipped (handed over 16, then 19; no seek in between)"]


def test_a_jump_across_a_seek_is_not_called_a_skip(consumer: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert drain(consumer, rebalance_during=None, seek=False) == [15, 16, 7, 30, 17]
    asyncio.run(consumer.perform_seek())  # another worker committed meanwhile: the next fetch is ahead
    consumer.test_fetch = [(ALERTS, 40), (ALERTS, 41)]
    assert drain(consumer, rebalance_during=None, seek=False) == [40, 41]
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]
