"""Alert delivery: the console/log and group-robot webhooks (DingTalk / WeCom message format).

A notifier gets an alert fact (the JSON of the alerts topic) and delivers it; the worker
retries a failing notifier with backoff in its own task, so delivery never blocks the stream.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import sys
from collections.abc import Mapping
from typing import IO, Any

from domain.departments import load_registry

log = logging.getLogger("hzbus.alerts")

KIND_ZH = {
    "case_transfer": "案件移送",
    "transfer_ack": "移送案件受理答复",
    "approval_share": "审批信息共享",
    "penalty_share": "处罚信息共享",
    "written_share": "书面抄告",
    "determination_reply": "专业认定答复",
    "complaint_referral": "投诉举报移送",
    "annual_joint_meeting": "年度联席会议",
}


def alert_text(alert: Mapping[str, Any]) -> str:
    """The Chinese message of an alert: department, reference, due time, clause."""
    o = alert["obligation"]
    registry = load_registry()
    dept = o["responsible_dept"]
    name = registry.get(dept).name_zh if dept in registry else dept
    kind = KIND_ZH.get(o["kind"], o["kind"])
    due = str(o["due_at"]).replace("T", " ")[:19]
    if alert["event"] == "resolved":
        head = "【执法协作提醒已解除】"
        done = str(o.get("fulfilled_at") or alert["at"]).replace("T", " ")[:19]
        tail = f"已于 {done} 履行（状态：{o['status']}）。"
    elif alert["kind"] == "due_soon":
        head = "【执法协作临期提醒】"
        tail = "今日为最后期限，请及时办理。"
    else:
        head = "【执法协作超期提醒】"
        tail = "已超过期限仍未履行。"
    provisional = "（期限按未经国务院公布的节假日安排暂算）" if o.get("provisional") else ""
    return (
        f"{head}{kind}（{o['kind']}）{o['ref']}：责任部门 {name}（{dept}），"
        f"期限 {due}{provisional}，依据 湖政办发〔2016〕98号 {o['clause']}。{tail}"
    )


class Notifier(abc.ABC):
    name: str = "notifier"

    @abc.abstractmethod
    async def deliver(self, alert: Mapping[str, Any]) -> None:
        """Deliver one alert or raise."""


class ConsoleNotifier(Notifier):
    name = "console"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        print(alert_text(alert), file=self.stream, flush=True)


class WebhookNotifier(Notifier):
    """POSTs ``{"msgtype": "text", "text": {"content": ...}}``: the text message of DingTalk and
    WeCom group robots."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    async def deliver(self, alert: Mapping[str, Any]) -> None:
        import aiohttp

        body = {"msgtype": "text", "text": {"content": alert_text(alert)}}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(self.url, json=body) as response,
        ):
            if response.status >= 300:
                raise RuntimeError(f"webhook answered HTTP {response.status}")
            payload = await response.text()
            if '"errcode"' in payload and '"errcode":0' not in payload.replace(" ", ""):
                raise RuntimeError(f"webhook refused the message: {payload[:200]}")


async def deliver_with_retry(
    notifier: Notifier, alert: Mapping[str, Any], *, attempts: int = 6, first_delay: float = 0.5
) -> str | None:
    """Deliver, retrying with exponential backoff; None on success, else the last error."""
    delay = first_delay
    error = "not attempted"
    for attempt in range(1, attempts + 1):
        try:
            await notifier.deliver(alert)
            return None
        except Exception as exc:  # any failure of a notifier is retried, never raised
            error = f"{type(exc).__name__}: {exc}"
            log.warning("%s notifier failed (attempt %d/%d): %s", notifier.name, attempt, attempts, error)
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
    return error
