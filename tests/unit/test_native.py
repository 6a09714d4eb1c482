"""The compiled hot paths (hzbus/native.py): built from the sources beside them, and giving
exactly what the same code gives as plain Python (rows, dead letters, errors)."""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, Message

from domain.events import SHANGHAI
from hzbus import native
from schemas import canonical_fast, codec
from schemas.samples import sample_event, sample_events
from sinks.clickhouse import take
from tests.unit.test_codec_fast import EDGES, SAMPLES


def plain(path: str) -> ModuleType:
    """The module's ``.py`` source as a module of its own (the extension shadows it)."""
    name = "plain_" + path.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, native.ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc).__name__)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler: the hot paths run as plain Python")
def test_the_hot_paths_run_compiled_from_the_sources_in_the_tree() -> None:
    status = native.status()
    assert status.current, status.reason
    assert native.describe() == "compiled (mypyc)"
    for path in native.MODULES:
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert module.__file__ is not None and module.__file__.endswith(native.SUFFIX), path


def test_an_extension_built_from_other_sources_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = tmp_path / "stamp"
    stamp.write_text("tools-digest\nsources-of-another-day\n")
    monkeypatch.setattr(native, "STAMP", stamp)
    monkeypatch.setattr(native, "extension_of", lambda module: native.ROOT / module)  # "present"
    with pytest.raises(ImportError, match=r"hzbus\.native build"):
        native.guard()
    stamp.write_text(f"tools-digest\n{native.sources_digest()}\n")
    native.guard()  # the same sources: imported


def test_the_decoder_reads_the_same_records_compiled_and_plain() -> None:
    fast = plain("schemas/avro_fast.py")
    for event in SAMPLES + EDGES:
        data = codec.encode(event)
        built = codec.record_decoders()[data[:10]]
        again = fast.RecordDecoder(
            built.event_type,
            built.header_size,
            [fast.Op(o.name, o.kind, o.null_index, o.symbols, o.item_kind) for o in built.ops],
            built.epoch,
            built.epoch_date,
        )
        assert outcome(built.decode, data) == outcome(again.decode, data) == ("ok", codec.decode_record(data))
        for bad in (
            data[:-1],
            data + b"\x00",
            data[:12],
            data[:10] + b"\x01" + data[11:],
            data[:10] + b"\xff" * 12,
        ):
            assert outcome(built.decode, bad)[0] == outcome(again.decode, bad)[0] == "error"


def test_the_sink_loop_takes_the_same_rows_and_dead_letters_compiled_and_plain() -> None:
    prefix = "t"
    now_ms = int(datetime(2026, 11, 27, 12, tzinfo=SHANGHAI).timestamp() * 1000)
    topics = take.Topics(
        {f"{prefix}.{codec.topic_family(t)}": codec.topic_family(t) for t in codec.event_types()},
        {f"{prefix}.obligations": "obligations"},
        f"{prefix}.deadletter",
        b"pseudonym-key",
    )
    messages = []
    for i, event in enumerate(sample_events(300)):
        data = codec.encode(event)
        family = codec.topic_family(event.type)
        if i % 50 == 7:  # on another family's topic
            family = "complaints" if family != "complaints" else "cases"
        messages.append(
            Message(topic=f"{prefix}.{family}", partition=i % 3, offset=i, value=data, timestamp=(2, now_ms))
        )
    odd = [
        Message(topic="t.cases", partition=0, offset=1000, value=b"", timestamp=(2, now_ms)),
        Message(
            topic="t.cases", partition=0, offset=1001, value=b"\xc3\x01" + b"\x00" * 30, timestamp=(2, now_ms)
        ),
        Message(topic="t.cases", partition=0, offset=1002, value=b"x" * 70_000, timestamp=(2, now_ms)),
        Message(topic="t.obligations", partition=1, offset=5, value=b"{}", timestamp=(1, now_ms)),
        Message(topic="t.deadletter", partition=2, offset=9, value=b"raw", timestamp=(1, now_ms)),
        Message(error=KafkaError(KafkaError._PARTITION_EOF)),
        Message(
            topic="t.cases",
            partition=0,
            offset=1003,
            value=codec.encode(sample_event("CaseTransferred", 1)),
            headers=[("hzbus-published-ms", str(now_ms).encode())],
            timestamp=(1, now_ms),
        ),
    ]
    messages[100:100] = odd
    results = []
    for module in (take, plain("sinks/clickhouse/take.py")):
        rows: list[tuple[Any, ...]] = []
        offsets: dict[tuple[str, int], int] = {}
        by_type: dict[str, int] = {}
        others = module.take_events(messages, topics, now_ms // 1000, rows, offsets, by_type)
        results.append((rows, offsets, by_type, [(what, id(m), reason) for what, m, reason in others]))
    assert results[0] == results[1]
    rows, offsets, by_type, others = results[0]
    assert len(rows) == sum(by_type.values()) > 250
    reasons = [reason for what, _, reason in others if what == take.DEAD]
    assert any(r.startswith("wrong topic") for r in reasons)
    assert "does not decode: empty message" in reasons
    assert any(r.startswith("oversized") for r in reasons)
    assert [what for what, _, _ in others].count(take.ERROR) == 1
    assert offsets[("t.deadletter", 2)] == 10 and offsets[("t.obligations", 1)] == 6


def canonical_variants(event: Any) -> list[Any]:
    """The canonical object of ``event`` and unusual variants of it (each field in turn given
    the wrong kind of value, null, or removed; an unknown field; other ways of writing times)."""
    obj = codec.to_canonical(event)
    out = [obj]
    for name in obj:
        for value in (None, 1, 1.5, True, "x", [], ["x"], {"a": 1}):
            out.append({**obj, name: value})
        out.append({k: v for k, v in obj.items() if k != name})
    out.append({**obj, "unknown": 1})
    for moment in ("2026-09-30T10:00:00Z", "2026-09-30T10:00:00.123+08:00", "2026-09-30T10:00:00"):
        out.append({**obj, "occurred_at": moment})
    # the hour of recorded_at is known once read: its minutes and seconds, read from their
    # digits, in and out of range, and other characters where they stand
    hour = str(obj["recorded_at"])[:14]
    for mm_ss in ("00:00", "59:59", "07:30", "60:00", "00:60", "5x:00", "0\u0663:00", "00.00", "0:000"):
        out.append({**obj, "recorded_at": f"{hour}{mm_ss}+08:00"})
    return out


def test_the_canonical_reader_reads_the_same_events_compiled_and_plain() -> None:
    fast = plain("schemas/canonical_fast.py")
    times = fast.TimeReader(SHANGHAI)
    maker = fast.EventMaker(type(SAMPLES[0]))
    for event in SAMPLES + EDGES:
        built = codec.object_readers()[event.type]
        again = fast.ObjectReader(
            built.event_type,
            built.allowed,
            [
                fast.FieldSpec(f.name, f.kind, f.optional, f.symbols, f.item_kind, f.item_symbols, f.pattern)
                for f in built.fields
            ],
            times,
            maker,
        )
        for obj in canonical_variants(event):
            compiled, interpreted = outcome(built.read, obj), outcome(again.read, obj)
            assert compiled == interpreted
            if compiled[0] == "ok" and obj.get("type") == event.type:  # (the type chose the reader)
                general = codec.from_canonical(obj)
                assert compiled == ("ok", general)
                assert list(compiled[1].fields) == list(interpreted[1].fields) == list(general.fields)


def test_a_time_with_microseconds_does_not_shift_the_later_times_of_its_hour() -> None:
    # the reader remembers an hour from the first time of it that it parses in full; a time
    # written with its microseconds (as orjson writes a datetime) must leave them out of it
    for module in (canonical_fast, plain("schemas/canonical_fast.py")):
        times = module.TimeReader(SHANGHAI)
        for value in (
            "2026-09-01T08:34:18.120000+08:00",
            "2026-09-01T08:51:02+08:00",
            "2026-09-01T08:00:00+08:00",
        ):
            assert times.read(value) == datetime.fromisoformat(value), (module, value)


def test_the_replay_line_loop_reads_the_same_lines_compiled_and_plain() -> None:

    lines = [codec.encode_json(e) + b"\n" for e in SAMPLES]
    lines[5:5] = [b"\n", b"{not json\n", b"[1]\n", b'{"type": "Nope"}\n', b"\xff\n"]
    lines[20:20] = [orjson.dumps(v) + b"\n" for v in canonical_variants(SAMPLES[3])]
    results = []
    for module in (canonical_fast, plain("schemas/canonical_fast.py")):
        calls: list[tuple[int, bytes, Any]] = []

        def general(number: int, raw: bytes, value: Any, calls: list[tuple[int, bytes, Any]] = calls) -> Any:
            calls.append((number, raw, value))
            return ("general", number)

        results.append((module.read_lines(lines, codec.object_readers(), general), calls))
    assert results[0] == results[1]
    events, calls = results[0]
    assert len(events) == len(lines)
    assert [c[0] for c in calls][:5] == [6, 7, 8, 9, 10]


#: run in a fresh interpreter that imports each compiled module from its ``.py`` source
_PLAIN_PYTHON = """
import importlib.util, sys
from hzbus import native
class Plain:
    @staticmethod
    def find_spec(name, path=None, target=None):
        source = name.replace(".", "/") + ".py"
        if source in native.MODULES:
            return importlib.util.spec_from_file_location(name, native.ROOT / source)
        return None
sys.meta_path.insert(0, Plain)
from tests.unit.test_native import engine_results
import domain.obligations.engine as engine, domain.obligations.rules.cases as cases
assert engine.__file__.endswith(".py") and cases.__file__.endswith(".py"), engine.__file__
sys.stdout.write(engine_results())
"""


def engine_results() -> str:
    """What the obligation engine gives for the sample events, in batch and streaming, as text."""
    from domain.obligations import engine
    from hzbus.calendar_source import load_calendar

    calendar = load_calendar()
    events = sample_events(400)
    events = events + events[::7]  # duplicates, out of order
    out: list[Any] = []
    for as_of in ("2026-10-05T12:00:00+08:00", "2026-11-20T00:00:00+08:00", "2027-02-01T00:00:00+00:00"):
        moment = datetime.fromisoformat(as_of)
        result = engine.evaluate_events(events, moment, calendar)
        out.append([o.to_dict() for o in result.obligations])
        out.append([f.to_dict() for f in result.findings])
        out.append(
            [(k, [e.event_id for e in s.events], len(s.obligations)) for k, s in result.states.items()]
        )
    states: dict[str, Any] = {}
    now = datetime.fromisoformat("2026-09-21T00:00:00+08:00")
    for event in events:
        for key in engine.correlation_keys(event):
            state, changes = engine.apply(states.get(key) or engine.KeyState(key), event, calendar, now)
            states[key] = state
            out.append([repr(c) for c in changes])
    for key, state in states.items():
        state, changes = engine.advance(state, datetime.fromisoformat("2027-01-05T00:00:00+08:00"), calendar)
        out.append(
            [key, [repr(c) for c in changes], engine.next_wakeup(state, calendar), engine.due_times(state)]
        )
        out.append([repr(c) for c in engine.restate(state, calendar)])
    return repr(out)


def test_the_obligation_engine_gives_the_same_results_compiled_and_plain() -> None:
    """The engine, state, keys and rules as built (compiled) and from their sources (plain
    Python, in an interpreter that imports only ``.py`` files): the same obligations,
    findings, states and streaming changes."""
    plain_run = subprocess.run(
        [sys.executable, "-c", _PLAIN_PYTHON], cwd=native.ROOT, capture_output=True, text=True, check=True
    )
    assert engine_results() == plain_run.stdout


def test_the_replay_lines_are_the_same_compiled_and_plain_and_those_of_to_dict() -> None:
    from domain.obligations import Finding, evaluate_events, lines
    from hzbus.calendar_source import load_calendar

    result = evaluate_events(sample_events(400), datetime(2026, 11, 20, tzinfo=SHANGHAI), load_calendar())
    odd = datetime(2026, 10, 1, 1, 2, 3, 4000, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    obligations = [
        *result.obligations,
        replace(result.obligations[0], started_at=odd, extension_reason="情况复杂"),
    ]
    findings = [
        Finding(
            "incomplete_transfer:C1:e1",
            "incomplete_transfer",
            "C1",
            "HZ-ZFJ",
            odd,
            "协作机制 二(二)",
            "r",
            ("evidence",),
        ),
        Finding(
            "urgent_transfer_without_stop:C1:e1", "urgent_transfer_without_stop", "C1", "X", odd, "c", "r"
        ),
    ]
    written = []
    for module in (lines, plain("domain/obligations/lines.py")):
        out: list[bytes] = []
        module.write_lines(obligations, findings, orjson.dumps, orjson.OPT_APPEND_NEWLINE, out.append)
        written.append(out)
    expected = [orjson.dumps(o.to_dict()) + b"\n" for o in obligations]
    expected += [orjson.dumps(f.to_dict()) + b"\n" for f in findings]
    assert written[0] == written[1] == expected
