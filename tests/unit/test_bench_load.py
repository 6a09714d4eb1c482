"""The load benchmark's synthetic stream: valid events, each opening one obligation of its own
key, none of them due by the end of a run (benchmarks/bench_load.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from benchmarks.bench_load import nice_max, synthetic_events, throughput
from domain.departments import load_registry
from domain.obligations import correlation_keys, evaluate_events
from producers.validate import validate_event
from schemas import admission, codec
from tests.unit.test_obligations_rules import CAL

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_each_synthetic_event_is_valid_and_opens_one_obligation_not_due_within_hours() -> None:
    registry = load_registry()
    events = [
        validate_event(obj, registry, publishing_dept=None, now=NOW)
        for obj in synthetic_events(2_000, now=NOW, spread_hours=24)
    ]
    for e in events:
        assert codec.decode(codec.encode(e)) == e
        assert e.recorded_at <= NOW
        refused = admission.event_refusal(
            e, topic_family=codec.topic_family(e.type), published_ms=int(NOW.timestamp() * 1000)
        )
        assert refused is None
    assert Counter(e.type for e in events) == {"DeterminationRequested": 1_000, "CaseTransferred": 1_000}
    keys = [k for e in events for k in correlation_keys(e)]
    assert len(keys) == len(set(keys)) == 2_000  # one key per event

    # an hour after the last event, as the worker sees it once the import is done
    result = evaluate_events(events, NOW + timedelta(hours=1), CAL)
    by_kind = Counter(o.kind for o in result.obligations if o.status == "open")
    assert by_kind == {"determination_reply": 1_000, "transfer_ack": 1_000, "annual_joint_meeting": 1}
    assert all(o.status == "open" for o in result.obligations)
    assert result.findings == []  # complete transfers: no incomplete_transfer finding


def test_throughput_is_measured_per_phase_from_the_samples() -> None:
    def sample(t: float, routed: int, evaluated: int, r_eps: float, e_eps: float) -> dict[str, float]:
        return {
            "t_s": t,
            "routed": routed,
            "evaluated": evaluated,
            "routed_eps": r_eps,
            "evaluated_eps": e_eps,
        }

    samples = [
        sample(0, 0, 0, 0, 0),
        sample(10, 500, 0, 50, 0),  # 1% routed: the routing phase starts here
        sample(20, 1000, 0, 50, 0),
        sample(30, 1000, 100, 0, 10),
        sample(40, 1000, 600, 0, 50),
        sample(50, 1000, 1000, 0, 40),
    ]
    tp = throughput(samples, 1000)
    assert tp["end_to_end"] == 20.0
    assert tp["routing"] == {"from_s": 10, "to_s": 20, "mean": 50.0, "min": 50, "median": 50, "max": 50}
    assert tp["evaluating"] == {"from_s": 30, "to_s": 50, "mean": 45.0, "min": 40, "median": 50, "max": 50}
    assert [nice_max(v) for v in (1100, 3816, 1_000_001)] == [1200, 4000, 1_200_000]
