"""What bench_bus times for the sink: its sustained rate over full batches."""

from __future__ import annotations

import pytest

from benchmarks.bench_bus import steady_rate


def test_the_sink_is_timed_from_its_first_batch_to_its_last_full_one() -> None:
    # 20,000-event batches every 0.1 s, then a partial batch that waited 1.8 s for the batch timer
    marks = [(0.0, 0), (1.0, 20_000), (1.1, 40_000), (1.2, 60_000), (3.0, 70_000)]
    assert steady_rate(marks, 20_000) == pytest.approx(40_000 / 0.2)


def test_without_two_full_batches_the_whole_run_counts() -> None:
    assert steady_rate([(0.0, 0), (2.0, 200_000)], 20_000) == pytest.approx(100_000)
    assert steady_rate([(0.0, 0), (1.0, 5_000), (2.0, 9_000)], 20_000) == pytest.approx(4_500)


def test_with_two_processes_the_clock_starts_once_each_has_written_a_batch() -> None:
    marks = [(0.0, 0), (1.0, 20_000), (1.05, 40_000), (1.25, 60_000), (1.45, 80_000), (3.0, 81_000)]
    assert steady_rate(marks, 20_000, processes=2) == pytest.approx(40_000 / 0.4)
