"""The worker's pure parts: the envelope, the deadline heap, the alert text."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from domain.events import SHANGHAI
from domain.obligations import (
    Alert,
    AlertResolved,
    FindingRaised,
    FindingWithdrawn,
    ObligationChanged,
    evaluate_events,
)
from hzbus.calendar_source import load_calendar
from producers.readers import read_records
from producers.simulate import write_simulation
from schemas import codec
from stream_processors.envelope import (
    EVENT,
    TICK,
    TICKS,
    batch_entries,
    pack_batch,
    pack_event,
    pack_tick,
    pack_ticks,
    tick_keys,
    unpack,
)
from stream_processors.notifiers import alert_text
from stream_processors.worker import DeadlineHeap, change_records, dump_state, encode_event, load_state

T = datetime(2026, 10, 10, 15, 59, 59, tzinfo=UTC)


def test_an_event_envelope_keeps_the_publication_time_and_the_avro_bytes() -> None:
    assert unpack(pack_event(b"\xc3\x01avro", T)) == (EVENT, T, b"\xc3\x01avro")
    assert unpack(pack_event(b"x", None)) == (EVENT, None, b"x")
    assert unpack(pack_tick(T)) == (TICK, T, b"")
    kind, at, payload = unpack(pack_ticks(T, ["case:A", "request:R-1"]))
    assert (kind, at, tick_keys(payload)) == (TICKS, T, ["case:A", "request:R-1"])


def test_a_batch_record_gives_back_its_entries_in_order_and_a_single_record_is_its_own_entry() -> None:
    entries = [
        (b"case:A", pack_event(b"a", T)),
        (b"year:2026", pack_tick(T)),
        (b"case:A", pack_event(b"b", None)),
    ]
    assert batch_entries(b"__batch__", pack_batch(entries)) == entries
    assert batch_entries(b"case:A", pack_event(b"a", T)) == [(b"case:A", pack_event(b"a", T))]
    assert batch_entries(b"k", b"") == [(b"k", b"")]


def test_a_batch_cut_short_is_refused() -> None:
    whole = pack_batch([(b"case:A", pack_event(b"avro", T)), (b"case:B", pack_event(b"avro", T))])
    for cut in (len(whole) - 1, len(whole) - 20, 3):
        with pytest.raises(ValueError, match="cut short"):
            batch_entries(b"__batch__", whole[:cut])


def test_a_value_that_is_no_envelope_is_refused() -> None:
    with pytest.raises(ValueError, match="not a worker envelope"):
        unpack(b"garbage!!")


def test_the_heap_gives_each_key_once_when_its_latest_wake_up_time_comes() -> None:
    heap = DeadlineHeap()
    heap.set("case:A", 100, 3)
    heap.set("case:B", 50, 1)
    heap.set("case:A", 200, 3)  # moved later: the old entry is stale
    heap.set("case:C", 10, 0)
    heap.set("case:C", None)  # nothing left to wait for
    assert heap.due(99) == [("case:B", 1)]
    assert heap.due(150) == []
    assert heap.due(200) == [("case:A", 3)]
    assert heap.due(10_000) == []


def test_a_reset_replaces_the_heap_with_the_tables_view() -> None:
    heap = DeadlineHeap()
    heap.set("case:gone", 5, 0)
    heap.reset([("case:A", 30, 2), ("case:B", 20, 5)])
    assert heap.due(100) == [("case:B", 5), ("case:A", 2)]


def test_the_alert_text_names_department_reference_due_time_and_clause_in_chinese() -> None:
    alert = {
        "event": "raised",
        "kind": "missed",
        "at": "2026-10-11T00:00:00+08:00",
        "obligation": {
            "kind": "case_transfer",
            "ref": "HZ-JSJ-AJ2026-000007",
            "responsible_dept": "HZ-JSJ",
            "due_at": "2026-10-10T23:59:59+08:00",
            "clause": "协作机制 二(一)",
            "status": "missed",
            "provisional": False,
        },
    }
    text = alert_text(alert)
    assert text.startswith("【执法协作超期提醒】案件移送")
    for part in ("HZ-JSJ-AJ2026-000007", "市建设局", "2026-10-10 23:59:59", "协作机制 二(一)"):
        assert part in text
    resolved = alert_text(
        {
            **alert,
            "event": "resolved",
            "obligation": {
                **alert["obligation"],
                "status": "late",
                "fulfilled_at": "2026-10-12T09:00:00+08:00",
            },
        }
    )
    assert resolved.startswith("【执法协作提醒已解除】") and "2026-10-12 09:00:00" in resolved


def test_the_worker_writes_obligations_and_findings_as_the_bytes_of_their_to_dict(tmp_path: Path) -> None:
    """The worker leaves obligations and findings to orjson (a dataclass as its fields in order,
    times in ISO-8601): the stored states and the facts must stay byte for byte what their
    ``to_dict`` gives, for every kind and status, UTC times and microseconds included."""
    path = tmp_path / "events.jsonl"
    write_simulation(path, days=20, seed=3, start=date(2026, 9, 1))
    events = [codec.from_canonical(r.data) for r in read_records(path) if r.data is not None]
    evaluation = evaluate_events(events, datetime(2026, 10, 15, tzinfo=SHANGHAI), load_calendar())
    obligations = list(evaluation.obligations)
    assert {o.status for o in obligations} == {"open", "met", "late", "missed"}
    first = obligations[0]
    odd = replace(
        first,
        fulfilled_at=datetime(2026, 9, 3, 1, 2, 3, 456789, tzinfo=UTC),
        clock_stopped_since=datetime(2026, 9, 2, 8, 0, tzinfo=SHANGHAI),
        extension_reason="材料收集",
    )
    for o in [*obligations, odd]:
        assert orjson.dumps(o) == orjson.dumps(o.to_dict()), o.obligation_id
    assert evaluation.findings
    for f in evaluation.findings:
        assert orjson.dumps(f) == orjson.dumps(f.to_dict()), f.finding_id
    states = [s for s in evaluation.states.values() if s.obligations or s.findings]
    # a published event (the broker's time, UTC, in milliseconds) and times with milliseconds:
    # stored with their microseconds written out, read back to the same instants
    e = states[0].events[0]
    odd_event = replace(
        e,
        occurred_at=e.occurred_at.replace(microsecond=120_000),
        published_at=datetime(2026, 9, 3, 1, 2, 3, 457_000, tzinfo=UTC),
    )
    states.append(replace(states[0], events=(odd_event, *states[0].events[1:])))
    for state in states:
        assert dump_state(state) == orjson.dumps(state.to_dict(encode_event)), state.key
        assert load_state(state.key, dump_state(state)) == state
    stored = dump_state(states[-1])
    assert b'.120000+08:00"' in stored and b'"_published_at":"2026-09-03T01:02:03.457000+00:00"' in stored
    (_family, _key, fact) = change_records(ObligationChanged(odd, None, odd.due_at))[0]
    assert orjson.loads(fact)["obligation"] == odd.to_dict()
    # each fact's time is written as isoformat() writes it: UTC or +08:00, with or without
    # microseconds, for every kind of change
    moments = [
        datetime(2026, 9, 3, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(2026, 9, 3, 8, 0, tzinfo=SHANGHAI),
        datetime(2026, 9, 3, 8, 0, 0, 120000, tzinfo=SHANGHAI),
    ]
    finding = evaluation.findings[0]
    for moment in moments:
        for change in (
            ObligationChanged(odd, first, moment),
            Alert("missed", odd, moment),
            AlertResolved("missed", odd, moment),
            FindingRaised(finding, moment),
            FindingWithdrawn(finding, moment),
        ):
            ((_family, _key, fact),) = change_records(change)
            assert orjson.loads(fact)["at"] == moment.isoformat(), change
