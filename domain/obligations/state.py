"""Per-key state as a fold over events: the set of facts seen, deduplicated by ``event_id``.

The state holds the events themselves, not a running total, so applying the same events in any
order and any number of times gives the same state (a set union), and every rule is evaluated
afresh from the facts known at ``as_of``. Besides the facts, the state remembers the last
evaluation (``as_of`` and the obligations and findings then), which the streaming API diffs
against to emit only real changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from operator import attrgetter
from typing import Any

from domain.events import Event
from domain.obligations.keys import key_prefix
from domain.obligations.model import Finding, Obligation
from domain.values import fast_init

#: the order of a key's events: (occurred_at, event_id)
_order = attrgetter("occurred_at", "event_id")


def _merge(old: Event, new: Event) -> Event:
    """Two copies of one fact (same ``event_id``): keep the first publication time.

    A producer's retry re-publishes the same event; the fact of publication is the earliest
    broker append time. ``min`` ignoring None is commutative, so the order of arrival does not
    matter.
    """
    times = [t for t in (old.published_at, new.published_at) if t is not None]
    if not times:
        return old
    first = min(times)
    return old if old.published_at == first else replace(old, published_at=first)


@fast_init
@dataclass(frozen=True, slots=True)
class KeyState:
    """The facts of one correlation key and the last evaluation of them.

    ``events`` is sorted by (occurred_at, event_id) and holds each ``event_id`` once.
    ``as_of`` is the latest moment evaluated (None before the first evaluation);
    ``obligations`` and ``findings`` are the result of that evaluation.
    """

    key: str
    events: tuple[Event, ...] = ()
    as_of: datetime | None = None
    obligations: tuple[Obligation, ...] = ()
    findings: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        key_prefix(self.key)

    @property
    def event_ids(self) -> frozenset[str]:
        return frozenset(e.event_id for e in self.events)

    def with_event(self, event: Event) -> KeyState:
        """The state with ``event`` added (a no-op for an ``event_id`` already seen, except
        that an earlier ``published_at`` of the same fact is kept)."""
        for i, seen in enumerate(self.events):
            if seen.event_id == event.event_id:
                merged = _merge(seen, event)
                if merged is seen:
                    return self
                return replace(self, events=(*self.events[:i], merged, *self.events[i + 1 :]))
        events = sorted((*self.events, event), key=_order)
        return KeyState(self.key, tuple(events), self.as_of, self.obligations, self.findings)  # (not replace)

    def with_events(self, events: Iterable[Event]) -> KeyState:
        """The state with all of ``events`` added (see :meth:`with_event`)."""
        return replace(self, events=unique_events((*self.events, *events)))

    def to_dict(
        self, encode_event: Callable[[Event], Mapping[str, Any]], *, plain: bool = True
    ) -> dict[str, Any]:
        """A JSON-ready dict for a durable table; ``encode_event`` is the codec's
        ``to_canonical`` (plus ``published_at`` if the shell keeps it). ``plain=False`` leaves
        the obligations and findings as they are, for a serialiser that writes a dataclass as
        its fields in order, times in ISO-8601 (orjson: the same bytes as their ``to_dict``,
        in half the time; tests/unit/test_worker_pure_parts.py holds it to that)."""
        return {
            "key": self.key,
            "events": [dict(encode_event(e)) for e in self.events],
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "obligations": [o.to_dict() for o in self.obligations] if plain else list(self.obligations),
            "findings": [f.to_dict() for f in self.findings] if plain else list(self.findings),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], decode_event: Callable[[Mapping[str, Any]], Event]
    ) -> KeyState:
        """The inverse of :meth:`to_dict`."""
        findings = tuple(
            Finding(
                finding_id=f["finding_id"],
                kind=f["kind"],
                ref=f["ref"],
                dept=f["dept"],
                at=datetime.fromisoformat(f["at"]),
                clause=f["clause"],
                rule_version=f["rule_version"],
                details=tuple(f["details"]),
                event_id=f["event_id"],
            )
            for f in data.get("findings", ())
        )
        as_of = data.get("as_of")
        return cls(
            key=data["key"],
            events=tuple(sorted((decode_event(e) for e in data.get("events", ())), key=_order)),
            as_of=datetime.fromisoformat(as_of) if as_of else None,
            obligations=tuple(Obligation.from_dict(o) for o in data.get("obligations", ())),
            findings=findings,
        )


def unique_events(events: Iterable[Event]) -> tuple[Event, ...]:
    """``events`` once per ``event_id`` (first publication kept), sorted by (occurred_at, event_id)."""
    if type(events) is list and len(events) == 1:  # most keys of a batch: one fact
        return (events[0],)
    by_id: dict[str, Event] = {}
    for event in events:
        seen = by_id.get(event.event_id)
        by_id[event.event_id] = event if seen is None else _merge(seen, event)
    return tuple(sorted(by_id.values(), key=_order))


def fold(key: str, events: Iterable[Event]) -> KeyState:
    """The state of ``key`` after ``events`` (in any order, duplicates allowed); not evaluated."""
    return KeyState(key, unique_events(events))
