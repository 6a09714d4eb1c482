"""Turning a canonical-JSON object into a valid event, or a clear reason why not.

Checks, in order: the Avro contract (``schemas.codec.from_canonical``: type, fields, enums,
timestamps with offsets); the department registry for every department-valued field; that
the adapter publishes only as itself [信息资源共享机制 五]; and that business time is not
in the future of the adapter's clock (a skewed clock would silently move deadlines).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

import orjson

from domain.departments import DepartmentRegistry, UnknownDepartment
from domain.events import SHANGHAI, Event
from schemas import admission, codec

#: namespace of derived event ids (uuid5): stable across re-exports of the same fact
EVENT_ID_NAMESPACE = uuid.UUID("8d0f5a3e-6a1c-5d7e-9f5b-2b1c0e4a7d10")
#: tolerated clock skew between a department's business time and its adapter's clock (the
#: consumers allow the same against the broker's clock: schemas/admission.py)
MAX_SKEW = admission.MAX_SKEW


class RejectedRecord(ValueError):
    """A record that cannot become an event; ``str()`` is the reason shown to the operator."""


def derive_event_id(obj: Mapping[str, Any], key_fields: Iterable[str] = ()) -> str:
    """A deterministic event id for a source record without one.

    From the natural key of the fact (``key_fields``, e.g. the approval number and decision)
    or, by default, from every field but the adapter's ``recorded_at``: re-publishing the
    same export yields the same ids, so no new facts [idempotent publication].
    """
    keys = list(key_fields)
    if keys:
        basis: Any = [obj.get("source_dept"), obj.get("type"), *[obj.get(k) for k in keys]]
    else:
        basis = {k: v for k, v in obj.items() if k not in ("recorded_at", "event_id")}
    text = orjson.dumps(basis, option=orjson.OPT_SORT_KEYS).decode()
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, text))


@cache
def _department_fields(event_type: str) -> tuple[str, ...]:
    """Fields whose values are department codes: marked ``"hzbus.refers": "department"`` in the schema."""
    return tuple(
        f["name"] for f in codec.schema_of(event_type)["fields"] if f.get("hzbus.refers") == "department"
    )


@lru_cache(maxsize=4)
def _latest(now: datetime) -> datetime:
    """The latest business time accepted with the adapter's clock at ``now``, in the events'
    own zone object (comparing aware datetimes that share a tzinfo skips two utcoffset() calls)."""
    return (now + MAX_SKEW).astimezone(SHANGHAI)


def validate_event(
    obj: Mapping[str, Any],
    registry: DepartmentRegistry,
    *,
    publishing_dept: str | None,
    now: datetime,
    key_fields: Iterable[str] = (),
) -> Event:
    """A valid event from a canonical-JSON object, or ``RejectedRecord`` naming the problem.

    ``event_id`` is derived when absent; ``recorded_at`` defaults to ``now`` (the adapter's
    time); ``source_dept`` defaults to ``publishing_dept``.
    """
    obj = dict(obj)
    if publishing_dept is not None:
        claimed = obj.setdefault("source_dept", publishing_dept)
        if claimed != publishing_dept:
            raise RejectedRecord(
                f"source_dept {claimed!r} is not the publishing department {publishing_dept!r}: "
                "an adapter publishes only as itself [信息资源共享机制 五]"
            )
    if "event_id" not in obj or obj["event_id"] in ("", None):
        obj["event_id"] = derive_event_id(obj, key_fields)
    if "recorded_at" not in obj:
        obj["recorded_at"] = now.isoformat()
    try:
        event = codec.from_canonical(obj)
    except codec.EventError as exc:
        raise RejectedRecord(str(exc)) from None
    for name in _department_fields(event.type):
        value = obj.get(name)
        for code in value if isinstance(value, list) else [value]:
            if isinstance(code, str) and code not in registry:
                try:
                    registry.get(code)
                except UnknownDepartment as exc:
                    raise RejectedRecord(f"field {name!r}: {exc}") from None
    if event.occurred_at > event.recorded_at + MAX_SKEW:
        raise RejectedRecord(
            f"occurred_at {event.occurred_at.isoformat()} is after recorded_at "
            f"{event.recorded_at.isoformat()}: the department's clock is skewed"
        )
    for name, moment in (("occurred_at", event.occurred_at), ("recorded_at", event.recorded_at)):
        if moment < admission.EARLIEST:
            raise RejectedRecord(
                f"{name} {moment.isoformat()} is before {admission.EARLIEST.date()}: the department's "
                "clock is skewed (reset?)"
            )
    if event.recorded_at > _latest(now):
        raise RejectedRecord(
            f"recorded_at {event.recorded_at.isoformat()} is in the future of this adapter's "
            f"clock ({now.isoformat()})"
        )
    return event
