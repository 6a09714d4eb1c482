"""The worker's agents on bad records (Faust test_context, no broker): a refused event is not
routed, a record of its own topics it cannot read is kept as a dead letter with the reason,
and the agent goes on with the next record; each notifier's delivery is recorded on its own."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from domain.events import SHANGHAI
from schemas import codec
from stream_processors.envelope import pack_batch, pack_event
from stream_processors.notifiers import Notifier
from tests.component.test_worker_agents import (  # noqa: F401 (fixture)
    agent,
    agent_app,
    event,
    route,
    routed_keys,
    source_record,
    worker,
)

REQUEST = dict(source_dept="HZ-ZFJ", request_id="R-9", case_id="C-9", to_dept="HZ-GTJ", question=None)


def test_a_refused_event_is_not_routed_and_the_next_one_is(worker: Any) -> None:  # noqa: F811
    asyncio.run(_refused(*worker))


async def _refused(app: Any, sent: Any) -> None:
    good = event("DeterminationRequested", **REQUEST)
    unknown = replace(good, event_id="u-1", source_dept="HZ-NOPE")
    future = datetime.now(SHANGHAI) + timedelta(days=2)
    skewed = replace(good, event_id="s-1", occurred_at=future, recorded_at=future)
    await route(app, source_record(codec.encode(unknown), key=b"R-9"))
    await route(app, source_record(codec.encode(skewed), key=b"R-9", offset=1))
    assert "by-key" not in sent
    await route(app, source_record(codec.encode(good), key=b"R-9", offset=2))
    assert routed_keys(sent) == [b"request:R-9", b"year:2026"]
    assert app.hzbus_stats["refused"] == 2 and app.hzbus_stats["events"] == 1


def test_unreadable_records_of_the_worker_topics_become_dead_letters_and_the_agent_goes_on(
    worker: Any,  # noqa: F811
) -> None:
    asyncio.run(_unreadable(*worker))


async def _unreadable(app: Any, sent: Any) -> None:
    good = event("DeterminationRequested", **REQUEST)
    async with agent(app, "track").test_context() as track:
        await track.put(b"garbage", key=b"request:R-9")
        await track.put(b"E" + b"\xff" * 8 + b"not avro", key=b"request:R-9")
        await track.put(pack_event(codec.encode(good), good.recorded_at), key=b"request:R-9")
    dead = [v for _, v in sent["deadletter"]]
    assert dead == [b"garbage", b"E" + b"\xff" * 8 + b"not avro"]
    assert app.hzbus_stats["dead_letters"] == 2
    assert [orjson.loads(v)["obligation"]["kind"] for _, v in sent["obligations"]] == ["determination_reply"]
    async with agent(app, "correlate").test_context() as correlate:
        await correlate.put(b"E", key=b"subject")
    assert app.hzbus_stats["dead_letters"] == 3
    # in a batch record: the bad entry is kept, the good ones after it are applied
    other = event("DeterminationRequested", **{**REQUEST, "request_id": "R-10"})
    batch = pack_batch(
        [
            (b"request:R-11", b"E" + b"\xff" * 8 + b"junk"),
            (b"request:R-10", pack_event(codec.encode(other), None)),
        ]
    )
    async with agent(app, "track").test_context() as track:
        await track.put(batch, key=b"__batch__")
        await track.put(batch[:-3], key=b"__batch__")  # cut short: kept whole
    assert [v for _, v in sent["deadletter"]][3:] == [b"E" + b"\xff" * 8 + b"junk", batch[:-3]]
    assert orjson.loads(sent["obligations"][-1][1])["obligation"]["ref"] == "R-10"


class Crash(BaseException):
    """A SIGKILL, as far as the agent can tell: nothing after it runs."""


class Flaky(Notifier):
    def __init__(self, name: str, crash_first: bool = False) -> None:
        self.name = name
        self.crash_first = crash_first
        self.delivered: list[str] = []

    async def deliver(self, alert: Any) -> None:
        if self.crash_first:
            self.crash_first = False
            raise Crash()
        self.delivered.append(alert["dedup_key"])


def test_a_worker_stopped_between_two_notifiers_delivers_only_the_missing_one_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    console, robot = Flaky("console"), Flaky("webhook", crash_first=True)
    app, _sent = agent_app(tmp_path, monkeypatch, [console, robot])
    alert = {
        "event": "raised",
        "kind": "missed",
        "dedup_key": "determination_reply:R-9:missed",
        "at": "2026-10-27T00:00:00+08:00",
        "obligation": {"status": "missed"},
    }

    async def deliver_twice() -> None:
        with contextlib.suppress(Crash):
            async with agent(app, "notify").test_context() as notify:
                await notify.put(orjson.dumps(alert), key=b"k")
        assert (console.delivered, robot.delivered) == (["determination_reply:R-9:missed"], [])
        async with agent(app, "notify").test_context() as notify:  # the restarted worker
            await notify.put(orjson.dumps(alert), key=b"k")  # re-delivered: no offset was committed
            await notify.put(orjson.dumps(alert), key=b"k")  # and once more: nothing left to do

    asyncio.run(deliver_twice())
    assert console.delivered == ["determination_reply:R-9:missed"]
    assert robot.delivered == ["determination_reply:R-9:missed"]


def test_a_record_the_route_stage_fails_on_is_kept_as_a_dead_letter_and_the_rest_are_routed(
    worker: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error of ours meeting one admitted record (here: the correlation keys raise for it)
    must not stop the bus: the route stage would fail on the same record at every restart."""
    from domain import obligations
    from stream_processors import worker as worker_module

    real = obligations.correlation_keys

    def keys(e: Any) -> Any:
        if e.event_id == "boom-1":
            raise KeyError("request_id")
        return real(e)

    monkeypatch.setattr(worker_module.obligations, "correlation_keys", keys)
    asyncio.run(_unroutable(*worker))


async def _unroutable(app: Any, sent: Any) -> None:
    good = event("DeterminationRequested", **REQUEST)
    boom = replace(good, event_id="boom-1", fields={**good.fields, "request_id": "R-BOOM"})
    bad_value = codec.encode(boom)
    await route(
        app,
        source_record(bad_value, key=b"R-BOOM"),
        source_record(codec.encode(good), key=b"R-9", offset=1),
    )
    assert routed_keys(sent) == [b"request:R-9", b"year:2026"]  # nothing of the bad one
    assert [(k, v) for k, v in sent["deadletter"]] == [(b"R-BOOM", bad_value)]
    assert app.hzbus_stats["dead_letters"] == 1 and app.hzbus_stats["events"] == 1
