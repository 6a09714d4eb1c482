"""Alert delivery to a group-robot webhook served on localhost: the message format, the retry
with backoff, and the failure that is reported instead of raised."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from stream_processors.notifiers import WebhookNotifier, deliver_with_retry

ALERT = {
    "event": "raised",
    "kind": "missed",
    "dedup_key": "determination_reply:RD-1:missed",
    "at": "2026-10-27T00:00:00+08:00",
    "obligation": {
        "kind": "determination_reply",
        "ref": "RD-1",
        "responsible_dept": "HZ-GTJ",
        "due_at": "2026-10-26T23:59:59+08:00",
        "clause": "协作机制 五(二)",
        "status": "missed",
        "provisional": False,
    },
}


async def _serve(answers: list[tuple[int, str]], received: list[Any]) -> tuple[web.AppRunner, str]:
    async def robot(request: web.Request) -> web.Response:
        received.append(await request.json())
        status, body = answers.pop(0) if answers else (200, '{"errcode":0,"errmsg":"ok"}')
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/robot/send", robot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/robot/send"


def test_the_webhook_gets_a_dingtalk_text_message_in_chinese_after_retries() -> None:
    async def scenario() -> tuple[str | None, list[Any]]:
        received: list[Any] = []
        answers = [(502, "bad gateway"), (200, '{"errcode":310000,"errmsg":"keywords not in content"}')]
        runner, url = await _serve(answers, received)
        try:
            error = await deliver_with_retry(WebhookNotifier(url), ALERT, attempts=4, first_delay=0.01)
        finally:
            await runner.cleanup()
        return error, received

    error, received = asyncio.run(scenario())
    assert error is None
    assert len(received) == 3  # HTTP 502, then a refusal by the robot, then delivered
    assert received[-1]["msgtype"] == "text"
    content = received[-1]["text"]["content"]
    assert content.startswith("【执法协作超期提醒】专业认定答复")
    assert "市国土资源局（HZ-GTJ）" in content and "协作机制 五(二)" in content


def test_a_webhook_that_keeps_failing_is_reported_not_raised() -> None:
    async def scenario() -> tuple[str | None, int]:
        received: list[Any] = []
        runner, url = await _serve([(500, "down")] * 10, received)
        try:
            error = await deliver_with_retry(WebhookNotifier(url), ALERT, attempts=3, first_delay=0.01)
        finally:
            await runner.cleanup()
        return error, len(received)

    error, attempts = asyncio.run(scenario())
    assert attempts == 3
    assert error is not None and "HTTP 500" in error
