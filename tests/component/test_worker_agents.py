"""The worker's agents through Faust's test_context: in-memory channels and tables, no broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from hzbus.calendar_source import load_calendar
from hzbus.config import load_settings
from schemas import codec
from stream_processors.envelope import batch_entries, pack_batch, pack_event, pack_tick
from stream_processors.notifiers import Notifier
from stream_processors.worker import build_app

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Recorder(Notifier):
    name = "recorder"

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []

    async def deliver(self, alert: Any) -> None:
        self.delivered.append(dict(alert))


def event(type_: str, **fields: Any) -> Any:
    common = {
        "event_id": f"{type_}-{fields.get('request_id', fields.get('case_id', 'x'))}",
        "occurred_at": "2026-10-12T10:00:00+08:00",
        "recorded_at": "2026-10-12T10:05:00+08:00",
    }
    return codec.from_canonical({"type": type_, **common, **fields})


@pytest.fixture
def worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, dict[str, list[tuple[bytes, bytes]]]]]:
    yield agent_app(tmp_path, monkeypatch, [Recorder()])


def agent_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, notifiers: list[Notifier]
) -> tuple[Any, dict[str, list[tuple[bytes, bytes]]]]:
    """The worker's app with in-memory tables; what its agents send, by topic family."""
    clock = {"now": NOW}
    app = build_app(
        load_settings(),
        load_calendar(),
        prefix="comp",
        datadir=tmp_path,
        store="memory://",
        notifiers=notifiers,
        clock=lambda: clock["now"],
    )
    sent: dict[str, list[tuple[bytes, bytes]]] = {}
    for family, topic in app.hzbus_topics.items():

        def send_soon(*, key: bytes, value: bytes, _family: str = family, **_: Any) -> None:
            sent.setdefault(_family, []).append((key, value))

        async def send(*, key: bytes, value: bytes, _family: str = family, **_: Any) -> None:
            send_soon(key=key, value=value, _family=_family)

        monkeypatch.setattr(topic, "send_soon", send_soon)
        monkeypatch.setattr(topic, "send", send)
    app.finalize()
    app.conf.store = "memory://"
    return app, sent


def agent(app: Any, name: str) -> Any:
    return app.agents[f"stream_processors.worker.{name}"]


def source_record(value: bytes, *, key: bytes, offset: int = 0) -> Any:
    """A source record on its family's topic, as the route stage's consumer gets it (aiokafka's
    ConsumerRecord)."""
    from aiokafka.structs import ConsumerRecord

    return ConsumerRecord(
        topic=f"comp.{codec.topic_family(codec.decode(value).type)}",
        partition=0,
        offset=offset,
        timestamp=int(datetime.now(UTC).timestamp() * 1000),
        timestamp_type=1,  # LogAppendTime
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(value),
        headers=(),
    )


async def route(app: Any, *records: Any) -> None:
    """The route stage over ``records`` (one batch, as one ``getmany`` gives it)."""
    await app.hzbus_route(list(records))


def routed_keys(sent: dict[str, list[tuple[bytes, bytes]]]) -> list[bytes]:
    """The correlation keys of the entries of the by-key batch records, in order."""
    return [k for key, value in sent.get("by-key", []) for k, _ in batch_entries(key, value)]


def test_a_request_routes_to_its_request_key_and_the_year_of_its_meeting_clock(worker: Any) -> None:
    asyncio.run(_routes(*worker))


async def _routes(app: Any, sent: Any) -> None:
    request = event(
        "DeterminationRequested",
        source_dept="HZ-ZFJ",
        request_id="R-1",
        case_id="C-1",
        to_dept="HZ-GTJ",
        question=None,
    )
    await route(app, source_record(codec.encode(request), key=b"R-1"))
    assert routed_keys(sent) == [b"request:R-1", b"year:2026"]


def test_a_missed_reply_raises_one_alert_and_a_late_reply_resolves_it(worker: Any) -> None:
    asyncio.run(_missed_then_late(*worker))


async def _missed_then_late(app: Any, sent: Any) -> None:
    request = event(
        "DeterminationRequested",
        source_dept="HZ-ZFJ",
        request_id="R-2",
        case_id="C-2",
        to_dept="HZ-GTJ",
        question=None,
    )
    reply = codec.from_canonical(
        {
            "type": "DeterminationReplied",
            "event_id": "reply-R-2",
            "source_dept": "HZ-GTJ",
            "occurred_at": "2026-11-01T15:00:00+08:00",
            "recorded_at": "2026-11-01T15:01:00+08:00",
            "request_id": "R-2",
            "conclusion": "属于违法占用耕地",
        }
    )
    async with agent(app, "track").test_context() as track:
        await track.put(pack_event(codec.encode(request), request.recorded_at), key=b"request:R-2")
        # a tick that changes nothing may be a re-delivery after a crash: the key is restated,
        # the same alert fact again (the notifier and the alerts table keep it once)
        await track.put(pack_tick(NOW), key=b"request:R-2")
        alerts = [orjson.loads(v) for _, v in sent["alerts"]]
        assert (alerts[0]["event"], alerts[0]["kind"]) == ("raised", "missed")
        assert alerts[0]["obligation"]["due_at"] == "2026-10-26T23:59:59+08:00"  # 10 WD after 10-12
        await track.put(pack_event(codec.encode(reply), reply.recorded_at), key=b"request:R-2")
        await track.put(pack_event(codec.encode(reply), reply.recorded_at), key=b"request:R-2")  # a duplicate
    alerts = [orjson.loads(v) for _, v in sent["alerts"]]
    assert [(a["event"], a["kind"]) for a in alerts] == [
        ("raised", "missed"),
        ("raised", "missed"),
        ("resolved", "missed"),
    ]
    assert alerts[1] == alerts[0]  # restated: the same fact, which readers keep once
    # the duplicate reply restates the key: the late obligation again, no alert (none is active)
    statuses = [orjson.loads(v)["obligation"]["status"] for _, v in sent["obligations"]]
    assert statuses == ["missed", "missed", "late", "late"]
    assert app.hzbus_tables["states"].get(b"request:R-2") is not None


def test_an_import_of_past_records_runs_on_their_own_time_and_raises_no_stale_alert(worker: Any) -> None:
    asyncio.run(_historical(*worker))


async def _historical(app: Any, sent: Any) -> None:
    request = event(
        "DeterminationRequested",
        source_dept="HZ-ZFJ",
        request_id="R-3",
        case_id="C-3",
        to_dept="HZ-GTJ",
        question=None,
    )
    reply = codec.from_canonical(
        {
            "type": "DeterminationReplied",
            "event_id": "reply-R-3",
            "source_dept": "HZ-GTJ",
            "occurred_at": "2026-10-20T15:00:00+08:00",
            "recorded_at": "2026-10-20T15:01:00+08:00",
            "request_id": "R-3",
            "conclusion": "不属于违法行为",
        }
    )
    async with agent(app, "track").test_context() as track:
        await track.put(pack_event(codec.encode(request), None), key=b"request:R-3")  # no publication time
        await track.put(pack_event(codec.encode(reply), None), key=b"request:R-3")
    assert "alerts" not in sent  # evaluated at each record's recorded_at: open, then met
    statuses = [orjson.loads(v)["obligation"]["status"] for _, v in sent["obligations"]]
    assert statuses == ["open", "met"]


def test_a_batch_record_gives_the_facts_of_the_same_records_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_batch_equals_singles(tmp_path, monkeypatch))


async def _batch_equals_singles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requests = [
        event(
            "DeterminationRequested",
            source_dept="HZ-ZFJ",
            request_id=r,
            case_id="C-5",
            to_dept="HZ-GTJ",
            question=None,
        )
        for r in ("R-5", "R-6")
    ]
    reply = codec.from_canonical(
        {
            "type": "DeterminationReplied",
            "event_id": "reply-R-5",
            "source_dept": "HZ-GTJ",
            "occurred_at": "2026-11-01T15:00:00+08:00",
            "recorded_at": "2026-11-01T15:01:00+08:00",
            "request_id": "R-5",
            "conclusion": "属于违法占用耕地",
        }
    )
    inputs = [
        (b"request:R-5", pack_event(codec.encode(requests[0]), requests[0].recorded_at)),
        (b"request:R-6", pack_event(codec.encode(requests[1]), requests[1].recorded_at)),
        (b"request:R-5", pack_event(codec.encode(reply), reply.recorded_at)),  # the same key again
        (b"request:R-6", pack_tick(NOW)),
    ]
    app_a, sent_a = agent_app(tmp_path / "a", monkeypatch, [])
    async with agent(app_a, "track").test_context() as track:
        for key, value in inputs:
            await track.put(value, key=key)
    app_b, sent_b = agent_app(tmp_path / "b", monkeypatch, [])
    async with agent(app_b, "track").test_context() as track:
        await track.put(pack_batch(inputs), key=b"__batch__")
    # the same facts; in a batch the keys take turns (the facts of one key keep their order)
    assert sent_b.keys() == sent_a.keys()
    for family in sent_a:
        for key in {k for k, _ in sent_a[family]}:
            assert [v for k, v in sent_b[family] if k == key] == [v for k, v in sent_a[family] if k == key]
        assert sorted(sent_b[family]) == sorted(sent_a[family])
    alerts = [(orjson.loads(v)["event"], orjson.loads(v)["dedup_key"]) for _, v in sent_b["alerts"]]
    assert alerts == [
        ("raised", "determination_reply:R-5:missed"),
        ("resolved", "determination_reply:R-5:missed"),
        ("raised", "determination_reply:R-6:missed"),
        ("raised", "determination_reply:R-6:missed"),  # the tick changed nothing: restated
    ]
    for app in (app_a, app_b):
        for key in (b"request:R-5", b"request:R-6"):
            assert app.hzbus_tables["states"].get(key) is not None
