"""Rows of the fact tables from the worker's output topics (pure, no I/O).

The values are JSON facts computed by the core (``stream_processors.worker.change_records`` and
``Correlation.to_dict``); nothing here computes a deadline or a status, it only lays them out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from domain.scorecard import Quarter

FACT_COLUMNS: dict[str, tuple[str, ...]] = {
    "obligations": (
        "obligation_id",
        "kind",
        "ref",
        "responsible_dept",
        "started_at",
        "due_at",
        "due_quarter",
        "status",
        "fulfilled_at",
        "delay_working_days",
        "provisional",
        "extended",
        "paused_working_days",
        "clause",
        "rule_version",
        "calendar_version",
        "evaluated_at",
        "version",
    ),
    "alerts": (
        "dedup_key",
        "event",
        "kind",
        "obligation_id",
        "obligation_kind",
        "ref",
        "responsible_dept",
        "due_at",
        "at",
        "status",
        "clause",
        "version",
    ),
    "findings": ("finding_id", "kind", "ref", "dept", "at", "details", "clause", "active", "version"),
    "correlations": (
        "correlation_id",
        "kind",
        "subject",
        "domain",
        "approval_ids",
        "penalty_ids",
        "case_ids",
        "notify_dept",
        "responsible_dept",
        "became_true_at",
        "status",
        "clause",
        "rule_version",
        "version",
    ),
}


def _t(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def quarter_of(moment: datetime) -> str:
    """The scorecard's quarter of an obligation: the calendar quarter of its due time, as the
    scorecard core computes it (``domain.scorecard.Quarter.of``) [考评办法]."""
    return str(Quarter.of(moment))


def obligation_row(value: bytes, version: int) -> tuple[Any, ...]:
    fact = orjson.loads(value)
    o = fact["obligation"]
    due = _t(o["due_at"])
    assert due is not None
    return (
        o["obligation_id"],
        o["kind"],
        o["ref"],
        o["responsible_dept"],
        _t(o["started_at"]),
        due,
        quarter_of(due),
        o["status"],
        _t(o.get("fulfilled_at")),
        int(o.get("delay_working_days") or 0),
        int(bool(o.get("provisional"))),
        int(bool(o.get("extended"))),
        int(o.get("paused_working_days") or 0),
        o["clause"],
        o["rule_version"],
        o["calendar_version"],
        _t(fact["at"]),
        version,
    )


def alert_row(value: bytes, version: int) -> tuple[Any, ...]:
    fact = orjson.loads(value)
    o = fact["obligation"]
    return (
        fact["dedup_key"],
        fact["event"],
        fact["kind"],
        o["obligation_id"],
        o["kind"],
        o["ref"],
        o["responsible_dept"],
        _t(o["due_at"]),
        _t(fact["at"]),
        o["status"],
        o["clause"],
        version,
    )


def finding_row(value: bytes, version: int) -> tuple[Any, ...]:
    fact = orjson.loads(value)
    f = fact["finding"]
    return (
        f["finding_id"],
        f["kind"],
        f["ref"],
        f["dept"],
        _t(f["at"]),
        "; ".join(f.get("details") or ()),
        f["clause"],
        int(fact["event"] == "raised"),
        version,
    )


def correlation_row(value: bytes, version: int) -> tuple[Any, ...]:
    c = orjson.loads(value)
    return (
        c["correlation_id"],
        c["kind"],
        c["subject"],
        c.get("domain") or "",
        ",".join(c.get("approval_ids") or ()),
        ",".join(c.get("penalty_ids") or ()),
        ",".join(c.get("case_ids") or ()),
        c.get("notify_dept") or "",
        c.get("responsible_dept") or "",
        _t(c["became_true_at"]),
        c["status"],
        c["clause"],
        c["rule_version"],
        version,
    )


ROW_BUILDERS: dict[str, Callable[[bytes, int], tuple[Any, ...]]] = {
    "obligations": obligation_row,
    "alerts": alert_row,
    "findings": finding_row,
    "correlations": correlation_row,
}
