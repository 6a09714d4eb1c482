"""The obligation model: the clocks the processors keep, what they find, what they raise.

Value objects only (frozen dataclasses); the rules that build them live in
``domain.obligations.rules``, the fold and the streaming API in ``domain.obligations.engine``.
Every obligation, finding and alert carries the clause of the notice (湖政办发〔2016〕98号) it
enforces, the rule version and (for obligations) the calendar version that computed its due time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, Literal

from domain.values import fast_init

#: bump when a rule changes what it computes (stored with every obligation)
RULE_VERSION = "2026.2"

ObligationKind = Literal[
    "case_transfer",
    "transfer_ack",
    "approval_share",
    "penalty_share",
    "written_share",
    "determination_reply",
    "complaint_referral",
    "annual_joint_meeting",
]
KINDS: tuple[str, ...] = (
    "case_transfer",
    "transfer_ack",
    "approval_share",
    "penalty_share",
    "written_share",
    "determination_reply",
    "complaint_referral",
    "annual_joint_meeting",
)

Status = Literal["open", "met", "late", "missed"]
STATUSES: tuple[str, ...] = ("open", "met", "late", "missed")

FindingKind = Literal["incomplete_transfer", "urgent_transfer_without_stop"]
FINDING_KINDS: tuple[str, ...] = ("incomplete_transfer", "urgent_transfer_without_stop")

AlertKind = Literal["missed", "due_soon"]

#: the clause each obligation or finding kind enforces (domain.md, "Obligations")
CLAUSES: Mapping[str, str] = {
    "case_transfer": "协作机制 二(一)",
    "transfer_ack": "协作机制 二(一)",
    "approval_share": "协作机制 三(二)1",
    "penalty_share": "协作机制 三(二)1",
    "written_share": "协作机制 三(二)2",
    "determination_reply": "协作机制 五(二)",
    "complaint_referral": "协作机制 四, 二(一)",
    "annual_joint_meeting": "协作机制 一(三)",
    "incomplete_transfer": "协作机制 二(二)",
    "urgent_transfer_without_stop": "协作机制 二(一)",
}

_TIME_FIELDS = frozenset({"started_at", "due_at", "fulfilled_at", "clock_stopped_since"})


@fast_init
@dataclass(frozen=True, slots=True)
class Obligation:
    """One obligation of one department, as known at some moment (``as_of``).

    - ``obligation_id`` is stable: ``f"{kind}:{ref}"``; ``ref`` is the case, approval, penalty or
      measure, share, request or complaint id, or the year (annual_joint_meeting). A case
      transferred again owes another answer: ``transfer_ack:<case_id>:<transfer's event_id>``.
    - ``started_at``: the trigger's event time; ``due_at``: 23:59:59 Asia/Shanghai of the last
      working day of the period (tz-aware, +08:00), after extension and pauses.
    - ``status``: ``open`` (not fulfilled, due time not passed, or the clock is stopped),
      ``met`` (fulfilled by the due time), ``late`` (fulfilled after it), ``missed`` (due time
      passed, not fulfilled yet).
    - ``provisional``: the due time counts over a year without official calendar data.
    - What explains the due: ``period_working_days`` (the period actually applied, e.g. 3 or 15),
      ``extended`` / ``extension_reason``, ``paused_working_days`` (working days removed by
      referrals that returned) and ``clock_stopped_since`` (a referral not yet returned: the
      clock is stopped, ``due_at`` is then a lower bound and the obligation cannot be missed).
    - ``delay_working_days``: for ``late``, working days from the due date to the fulfilment; for
      ``missed``, to ``as_of`` (a fulfilment or as_of on a day off counts as the next working
      day, so a late obligation is at least 1 day late); 0 otherwise.
    """

    obligation_id: str
    kind: str
    ref: str
    responsible_dept: str
    started_at: datetime
    due_at: datetime
    status: str
    fulfilled_at: datetime | None
    provisional: bool
    clause: str
    rule_version: str
    calendar_version: str
    period_working_days: int = 0
    extended: bool = False
    extension_reason: str | None = None
    paused_working_days: int = 0
    clock_stopped_since: datetime | None = None
    delay_working_days: int = 0
    trigger_event_id: str = ""
    fulfilled_by: str | None = None

    @property
    def is_closed(self) -> bool:
        """Fulfilled (met or late): nothing can change it any more except out-of-order facts."""
        return self.status in ("met", "late")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times as ISO-8601 strings with their offset (+08:00)."""
        out: dict[str, Any] = {}
        for name in _OBLIGATION_FIELDS:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Obligation:
        """The inverse of :meth:`to_dict`."""
        values: dict[str, Any] = {
            k: (datetime.fromisoformat(v) if k in _TIME_FIELDS and isinstance(v, str) else v)
            for k, v in data.items()
        }
        return cls(**values)

    def same_facts(self, other: Obligation) -> bool:
        """Equal except for ``delay_working_days`` (which grows every day an obligation stays missed)."""
        return bool(_facts_of(self) == _facts_of(other))


_OBLIGATION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Obligation))
_facts_of = attrgetter(*(name for name in _OBLIGATION_FIELDS if name != "delay_working_days"))


@fast_init
@dataclass(frozen=True, slots=True)
class Finding:
    """A breach found in one fact, not a clock: e.g. a transfer without its materials.

    ``dept`` is the department at fault; ``at`` the time of the fact; ``details`` the missing
    items (incomplete_transfer: ``transfer_letter``, ``source_material``, ``evidence``,
    ``leader_approval``, ``cc_coordination_office``).
    """

    finding_id: str
    kind: str
    ref: str
    dept: str
    at: datetime
    clause: str
    rule_version: str
    details: tuple[str, ...] = ()
    event_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding_id": self.finding_id,
            "kind": self.kind,
            "ref": self.ref,
            "dept": self.dept,
            "at": self.at.isoformat(),
            "clause": self.clause,
            "rule_version": self.rule_version,
            "details": list(self.details),
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert fact: ``missed`` (the due time passed, not fulfilled) or ``due_soon`` (the last
    working day of the period has begun). ``raised_at`` is when the condition began (the due
    time for ``missed``, :func:`~domain.obligations.engine.warn_at` for ``due_soon``), so a
    replay and the stream agree. Deduplicate on :attr:`dedup_key`."""

    kind: str
    obligation: Obligation
    raised_at: datetime
    clause: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clause", self.obligation.clause)

    @property
    def dedup_key(self) -> str:
        return f"{self.obligation.obligation_id}:{self.kind}"


@dataclass(frozen=True, slots=True)
class AlertResolved:
    """The condition of an alert no longer holds: fulfilled (``resolved_at`` = the fulfilment
    time), or the clock stopped by a referral, or the obligation turned missed (a ``due_soon``
    gives way to ``missed``; ``resolved_at`` = the time the engine saw it)."""

    alert_kind: str
    obligation: Obligation
    resolved_at: datetime

    @property
    def dedup_key(self) -> str:
        return f"{self.obligation.obligation_id}:{self.alert_kind}"


@dataclass(frozen=True, slots=True)
class ObligationChanged:
    """An obligation appeared (``previous`` None) or its status, due time, fulfilment or
    explanation changed. ``obligation`` is the new value, to be stored as a fact."""

    obligation: Obligation
    previous: Obligation | None
    at: datetime


@dataclass(frozen=True, slots=True)
class FindingRaised:
    finding: Finding
    at: datetime


@dataclass(frozen=True, slots=True)
class FindingWithdrawn:
    """A finding no longer holds: a fact that arrived out of order cured it (e.g. the
    StopOrdered of an urgent case, dated before the transfer, arrived after it)."""

    finding: Finding
    at: datetime


Change = ObligationChanged | Alert | AlertResolved | FindingRaised | FindingWithdrawn
