"""The values of the correlation core: facts, per-subject state, policy and outputs.

The state of one regulated subject is a *set of facts* (approval decisions and penalty
decisions, each keyed by the ``event_id`` that reported it), so it does not depend on the order
in which the facts arrived; every output is evaluated from it by the pure rules of
:mod:`domain.correlation.rules`. Everything here is plain data that round-trips through
JSON-able dicts (``to_dict`` / ``from_dict``) for Faust tables and restarts.

Privacy [信息资源共享机制 五]: ``subject`` is the *pseudonymised* subject key. The shell replaces
the subject id with :func:`domain.privacy.pseudonymise` (see
:func:`domain.correlation.engine.subject_key`) before it builds or updates a state, and a state
refuses a subject that is still a personal ID number, so no personal identifier is ever stored
in a state or written into an output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal, cast

from domain.privacy import is_personal_id

#: bumped when a rule's meaning changes; travels with every output (with the policy's parameters)
RULES_VERSION = "1"
#: version of the serialised state (``SubjectState.to_dict``)
STATE_FORMAT = 1

CorrelationKind = Literal[
    "penalty_on_approved_subject",
    "permit_suspension_notice",
    "unlicensed_no_approval_on_record",
    "approval_to_recently_penalised",
    "repeat_offender",
]
CORRELATION_KINDS: tuple[CorrelationKind, ...] = (
    "penalty_on_approved_subject",
    "permit_suspension_notice",
    "unlicensed_no_approval_on_record",
    "approval_to_recently_penalised",
    "repeat_offender",
)
Status = Literal["active", "withdrawn"]

#: penalty kinds that by themselves suspend or revoke the permit [协作机制 五(三)]
PERMIT_SUSPENDING_KINDS = frozenset({"license_suspension", "license_revocation"})


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _aware(text: Any, name: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected an ISO-8601 string, got {type(text).__name__}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {text!r} has no UTC offset")
    return moment


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
    return value


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return None if value is None else _str(obj, name)


def _bool(obj: Mapping[str, Any], name: str) -> bool:
    value = obj[name]
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected a boolean, got {type(value).__name__}")
    return value


def _ids(obj: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = obj[name]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name}: expected a list of strings")
    return tuple(value)


def _canonical(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """One decision on an approval (ApprovalIssued): granted, denied, revoked or suspended.

    An approval (``approval_id``) may have several decisions; at any instant the latest decision
    taken by then wins (granted → active until ``valid_until``; the others → not active).
    ``issuing_dept`` is the event's ``source_dept``; ``decided_at`` its ``occurred_at``.
    """

    event_id: str
    approval_id: str
    domain: str
    matter_code: str
    approval_kind: str
    decision: str
    issuing_dept: str
    decided_at: datetime
    recorded_at: datetime
    valid_until: date | None = None

    def __post_init__(self) -> None:
        _require_aware(self.decided_at, "decided_at")
        _require_aware(self.recorded_at, "recorded_at")

    @property
    def order(self) -> tuple[datetime, datetime, str]:
        """Which of two decisions on the same approval is the later one (arrival order plays no part)."""
        return (self.decided_at, self.recorded_at, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "approval_id": self.approval_id,
            "domain": self.domain,
            "matter_code": self.matter_code,
            "approval_kind": self.approval_kind,
            "decision": self.decision,
            "issuing_dept": self.issuing_dept,
            "decided_at": _iso(self.decided_at),
            "recorded_at": _iso(self.recorded_at),
            "valid_until": None if self.valid_until is None else self.valid_until.isoformat(),
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ApprovalDecision:
        valid = obj.get("valid_until")
        if valid is not None and not isinstance(valid, str):
            raise ValueError("valid_until: expected a YYYY-MM-DD string or null")
        return cls(
            event_id=_str(obj, "event_id"),
            approval_id=_str(obj, "approval_id"),
            domain=_str(obj, "domain"),
            matter_code=_str(obj, "matter_code"),
            approval_kind=_str(obj, "approval_kind"),
            decision=_str(obj, "decision"),
            issuing_dept=_str(obj, "issuing_dept"),
            decided_at=_aware(obj["decided_at"], "decided_at"),
            recorded_at=_aware(obj["recorded_at"], "recorded_at"),
            valid_until=None if valid is None else date.fromisoformat(valid),
        )


@dataclass(frozen=True, slots=True)
class PenaltyFact:
    """One penalty decision (PenaltyDecided). ``deciding_dept`` is the event's ``source_dept``."""

    event_id: str
    penalty_id: str
    case_id: str
    domain: str
    penalty_kind: str
    deciding_dept: str
    decided_at: datetime
    recorded_at: datetime
    unlicensed_operation: bool
    requires_permit_suspension: bool

    def __post_init__(self) -> None:
        _require_aware(self.decided_at, "decided_at")
        _require_aware(self.recorded_at, "recorded_at")

    @property
    def suspends_permit(self) -> bool:
        """The penalty needs the permit suspended (flag, or kind suspension/revocation) [协作机制 五(三)]."""
        return self.requires_permit_suspension or self.penalty_kind in PERMIT_SUSPENDING_KINDS

    @property
    def order(self) -> tuple[datetime, str]:
        """Chronological order of penalties; ties broken by id so that it is total."""
        return (self.decided_at, self.penalty_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "penalty_id": self.penalty_id,
            "case_id": self.case_id,
            "domain": self.domain,
            "penalty_kind": self.penalty_kind,
            "deciding_dept": self.deciding_dept,
            "decided_at": _iso(self.decided_at),
            "recorded_at": _iso(self.recorded_at),
            "unlicensed_operation": self.unlicensed_operation,
            "requires_permit_suspension": self.requires_permit_suspension,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> PenaltyFact:
        return cls(
            event_id=_str(obj, "event_id"),
            penalty_id=_str(obj, "penalty_id"),
            case_id=_str(obj, "case_id"),
            domain=_str(obj, "domain"),
            penalty_kind=_str(obj, "penalty_kind"),
            deciding_dept=_str(obj, "deciding_dept"),
            decided_at=_aware(obj["decided_at"], "decided_at"),
            recorded_at=_aware(obj["recorded_at"], "recorded_at"),
            unlicensed_operation=_bool(obj, "unlicensed_operation"),
            requires_permit_suspension=_bool(obj, "requires_permit_suspension"),
        )


Fact = ApprovalDecision | PenaltyFact


def _winner(a: Fact, b: Fact) -> Fact:
    """Of two facts reported under the same event_id, the one kept (independent of arrival order)."""
    return a if _canonical(a.to_dict()) >= _canonical(b.to_dict()) else b


# --------------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class SubjectState:
    """Everything the correlation rules know about one regulated subject.

    ``subject`` is the pseudonymised subject key (never a personal ID number: refused).
    ``approvals`` and ``penalties`` map ``event_id`` → fact; two states holding the same facts
    are equal whatever the order in which the facts arrived. Immutable: updates return a new state.
    """

    subject: str
    approvals: Mapping[str, ApprovalDecision] = field(default_factory=dict)
    penalties: Mapping[str, PenaltyFact] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject:
            raise ValueError("a subject state needs a non-empty subject key")
        if is_personal_id(self.subject):
            raise ValueError(
                "subject is a personal ID number: pseudonymise it with subject_key() before it "
                "reaches the correlation state [信息资源共享机制 五]"
            )

    def knows(self, event_id: str) -> bool:
        return event_id in self.approvals or event_id in self.penalties

    def with_fact(self, fact: Fact) -> SubjectState:
        """This state plus ``fact`` (a fact already held under the same event_id is deduplicated)."""
        if isinstance(fact, ApprovalDecision):
            old_a = self.approvals.get(fact.event_id)
            kept_a = fact if old_a is None else cast(ApprovalDecision, _winner(old_a, fact))
            if kept_a is old_a:
                return self
            return replace(self, approvals={**self.approvals, fact.event_id: kept_a})
        old_p = self.penalties.get(fact.event_id)
        kept_p = fact if old_p is None else cast(PenaltyFact, _winner(old_p, fact))
        if kept_p is old_p:
            return self
        return replace(self, penalties={**self.penalties, fact.event_id: kept_p})

    def decisions_by_approval(self) -> dict[str, list[ApprovalDecision]]:
        """The decisions of each approval_id, oldest first."""
        out: dict[str, list[ApprovalDecision]] = {}
        for d in self.approvals.values():
            out.setdefault(d.approval_id, []).append(d)
        for decisions in out.values():
            decisions.sort(key=lambda d: d.order)
        return out

    def current_penalties(self) -> list[PenaltyFact]:
        """One fact per penalty_id (a re-sent or corrected penalty under a new event_id counts once:
        the latest ``recorded_at`` wins, then the larger event_id), in chronological order."""
        best: dict[str, PenaltyFact] = {}
        for p in self.penalties.values():
            held = best.get(p.penalty_id)
            if held is None or (p.recorded_at, p.event_id) > (held.recorded_at, held.event_id):
                best[p.penalty_id] = p
        return sorted(best.values(), key=lambda p: p.order)

    def known_by(self, as_of: datetime) -> SubjectState:
        """The facts decided at or before ``as_of`` (business time): the world as of that instant."""
        _require_aware(as_of, "as_of")
        return replace(
            self,
            approvals={k: a for k, a in self.approvals.items() if a.decided_at <= as_of},
            penalties={k: p for k, p in self.penalties.items() if p.decided_at <= as_of},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (facts sorted by event_id, so equal states serialise identically)."""
        return {
            "format": STATE_FORMAT,
            "subject": self.subject,
            "approvals": [self.approvals[k].to_dict() for k in sorted(self.approvals)],
            "penalties": [self.penalties[k].to_dict() for k in sorted(self.penalties)],
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> SubjectState:
        if obj.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown correlation state format {obj.get('format')!r}")
        # the facts as with_fact() adds them one by one (the same winner of two under one
        # event_id), into two dicts built once instead of a new state per fact
        approvals: dict[str, ApprovalDecision] = {}
        for a in obj["approvals"]:
            approval = ApprovalDecision.from_dict(a)
            held_a = approvals.get(approval.event_id)
            approvals[approval.event_id] = (
                approval if held_a is None else cast(ApprovalDecision, _winner(held_a, approval))
            )
        penalties: dict[str, PenaltyFact] = {}
        for p in obj["penalties"]:
            penalty = PenaltyFact.from_dict(p)
            held_p = penalties.get(penalty.event_id)
            penalties[penalty.event_id] = (
                penalty if held_p is None else cast(PenaltyFact, _winner(held_p, penalty))
            )
        return cls(subject=_str(obj, "subject"), approvals=approvals, penalties=penalties)


# --------------------------------------------------------------------------------- policy


@dataclass(frozen=True, slots=True)
class CorrelationPolicy:
    """The policy choices of the rules (domain.md "Correlation of approvals and penalties").

    - ``repeat_threshold`` / ``repeat_window_months``: a subject with at least this many
      penalties within this many months goes on the key-supervision list (policy: 3 in 12).
    - ``recent_penalty_months``: how far back a penalty makes a new approval worth a flag (12).
    - ``competent_depts``: domain → competent business dept (相关业务主管部门), told about an
      unlicensed operation with no approval on record. A domain not listed gives no dept.
    - ``key_supervision_dept``: who keeps the key-supervision list; ``None`` → the enforcement
      dept that decided the penalty completing the count.
    """

    repeat_threshold: int = 3
    repeat_window_months: int = 12
    recent_penalty_months: int = 12
    competent_depts: Mapping[str, str] = field(default_factory=dict)
    key_supervision_dept: str | None = None

    def __post_init__(self) -> None:
        for name in ("repeat_threshold", "repeat_window_months", "recent_penalty_months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    @property
    def rule_version(self) -> str:
        """The rules' version with the policy parameters that shaped the result."""
        return (
            f"correlation/{RULES_VERSION};repeat={self.repeat_threshold}in{self.repeat_window_months}m;"
            f"recent={self.recent_penalty_months}m"
        )


DEFAULT_POLICY = CorrelationPolicy()


# --------------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Correlation:
    """One correlation (a link, a flag or an obligation) the rules derived from the facts.

    - ``correlation_id``: stable, built from the kinds and ids of the facts involved, never from
      arrival order or the clock: the key for dedup (Kafka key, ClickHouse ReplacingMergeTree key).
    - ``subject``: the pseudonymised subject key; ``domain`` is ``None`` for ``repeat_offender``
      (counted over all domains).
    - ``notify_dept``: the dept the output is addressed to; ``responsible_dept``: the dept that
      owes the action (differs only for ``permit_suspension_notice``: the enforcement dept must
      notify the issuing dept).
    - ``became_true_at``: business time at which the facts made it true (a decision time).
    - ``due_at``: only for obligations with a period set by the notice; ``None`` otherwise (the
      notice sets none for the permit-suspension notice: "及时", see docs/correlation.md).
    - ``status``: ``active``, or ``withdrawn`` when a later-arriving fact (e.g. an earlier-dated
      revocation or approval) means it no longer holds. The last emission for an id wins.
    """

    kind: CorrelationKind
    correlation_id: str
    subject: str
    domain: str | None
    approval_ids: tuple[str, ...]
    penalty_ids: tuple[str, ...]
    case_ids: tuple[str, ...]
    notify_dept: str | None
    responsible_dept: str | None
    clause: str
    rule_version: str
    became_true_at: datetime
    due_at: datetime | None = None
    status: Status = "active"

    def withdrawn(self) -> Correlation:
        return replace(self, status="withdrawn")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (times ISO-8601 with offset), e.g. for the correlations topic and the sink."""
        return {
            "kind": self.kind,
            "correlation_id": self.correlation_id,
            "subject": self.subject,
            "domain": self.domain,
            "approval_ids": list(self.approval_ids),
            "penalty_ids": list(self.penalty_ids),
            "case_ids": list(self.case_ids),
            "notify_dept": self.notify_dept,
            "responsible_dept": self.responsible_dept,
            "clause": self.clause,
            "rule_version": self.rule_version,
            "became_true_at": _iso(self.became_true_at),
            "due_at": None if self.due_at is None else _iso(self.due_at),
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Correlation:
        kind = _str(obj, "kind")
        if kind not in CORRELATION_KINDS:
            raise ValueError(f"unknown correlation kind {kind!r}")
        status = _str(obj, "status")
        if status not in ("active", "withdrawn"):
            raise ValueError(f"unknown correlation status {status!r}")
        due = obj.get("due_at")
        return cls(
            kind=cast(CorrelationKind, kind),
            correlation_id=_str(obj, "correlation_id"),
            subject=_str(obj, "subject"),
            domain=_opt_str(obj, "domain"),
            approval_ids=_ids(obj, "approval_ids"),
            penalty_ids=_ids(obj, "penalty_ids"),
            case_ids=_ids(obj, "case_ids"),
            notify_dept=_opt_str(obj, "notify_dept"),
            responsible_dept=_opt_str(obj, "responsible_dept"),
            clause=_str(obj, "clause"),
            rule_version=_str(obj, "rule_version"),
            became_true_at=_aware(obj["became_true_at"], "became_true_at"),
            due_at=None if due is None else _aware(due, "due_at"),
            status=cast(Status, status),
        )
