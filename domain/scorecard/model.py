"""The scorecard's value objects: deductions, section scores, department scores, scorecards,
restatements and the yearly ranking. Frozen dataclasses with ``to_dict``/``from_dict`` (JSON-ready,
times ISO-8601 with offset) so a published scorecard can be stored and read back unchanged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


def _t(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value in (None, "") else datetime.fromisoformat(str(value))


def points_text(points: float) -> str:
    """``2``, ``1.5``: points without a useless ``.0``."""
    return f"{points:g}"


@dataclass(frozen=True, slots=True)
class Deduction:
    """One deduction: from one obligation (``source='obligation'``, ``ref`` = obligation_id) or
    one manual entry (``source='adjustment'``, ``ref`` = the AssessmentAdjusted event_id).

    ``points`` > 0 takes points off; a manual entry with positive points gives some back
    (``points`` < 0 here). ``clause`` is the item's clause in the 考评细则; ``basis`` is the
    obligation's own clause of the notice (or the adjustment's reason).
    """

    dept: str
    item: str
    points: float
    clause: str
    source: str
    ref: str
    kind: str
    status: str = ""
    due_at: datetime | None = None
    basis: str = ""

    @property
    def section(self) -> str:
        return self.item.split(".", 1)[0]

    @property
    def key(self) -> tuple[str, str, str, float]:
        """Identity across evaluations: a missed obligation that later turns late is the same
        deduction (same points), so it is no reason for a restatement."""
        return (self.source, self.ref, self.item, self.points)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dept": self.dept,
            "item": self.item,
            "points": self.points,
            "clause": self.clause,
            "source": self.source,
            "ref": self.ref,
            "kind": self.kind,
            "status": self.status,
            "due_at": _t(self.due_at),
            "basis": self.basis,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Deduction:
        return cls(
            dept=str(d["dept"]),
            item=str(d["item"]),
            points=float(d["points"]),
            clause=str(d["clause"]),
            source=str(d["source"]),
            ref=str(d["ref"]),
            kind=str(d["kind"]),
            status=str(d.get("status") or ""),
            due_at=_dt(d.get("due_at")),
            basis=str(d.get("basis") or ""),
        )


@dataclass(frozen=True, slots=True)
class SectionScore:
    """A section's score: ``points`` − ``deducted``, where ``deducted`` = the sum of its
    deductions (``uncapped``) held within 0..``points`` [考评办法 四: 扣完为止]."""

    id: str
    key: str
    points: float
    deducted: float
    uncapped: float

    @property
    def score(self) -> float:
        return round(self.points - self.deducted, 2)

    @property
    def capped(self) -> bool:
        return self.uncapped != self.deducted

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "points": self.points,
            "deducted": self.deducted,
            "uncapped": self.uncapped,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SectionScore:
        return cls(
            str(d["id"]), str(d["key"]), float(d["points"]), float(d["deducted"]), float(d["uncapped"])
        )


@dataclass(frozen=True, slots=True)
class DepartmentScore:
    """One department's quarter: score (out of the policy's total, 100), sections, the
    deductions behind it and its rank (0 for a department that is not an assessed unit)."""

    dept: str
    name: str
    assessed: bool
    score: float
    sections: tuple[SectionScore, ...]
    deductions: tuple[Deduction, ...]
    rank: int = 0

    @property
    def deducted(self) -> float:
        return round(sum(s.deducted for s in self.sections), 2)

    @property
    def obligation_ids(self) -> list[str]:
        return sorted({d.ref for d in self.deductions if d.source == "obligation"})

    @property
    def adjustment_ids(self) -> list[str]:
        return sorted({d.ref for d in self.deductions if d.source == "adjustment"})

    def section(self, key: str) -> SectionScore:
        return next(s for s in self.sections if s.key == key or s.id == key)

    def by_item(self) -> list[tuple[str, str, float, list[Deduction]]]:
        """(item, clause, points, deductions) per item, in item order."""
        groups: dict[tuple[str, str], list[Deduction]] = {}
        for d in self.deductions:
            groups.setdefault((d.item, d.clause), []).append(d)
        return [
            (item, clause, round(sum(d.points for d in ds), 2), ds)
            for (item, clause), ds in sorted(groups.items())
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dept": self.dept,
            "name": self.name,
            "assessed": self.assessed,
            "rank": self.rank,
            "score": self.score,
            "sections": [s.to_dict() for s in self.sections],
            "deductions": [d.to_dict() for d in self.deductions],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DepartmentScore:
        return cls(
            dept=str(d["dept"]),
            name=str(d.get("name") or ""),
            assessed=bool(d["assessed"]),
            score=float(d["score"]),
            sections=tuple(SectionScore.from_dict(s) for s in d["sections"]),
            deductions=tuple(Deduction.from_dict(x) for x in d["deductions"]),
            rank=int(d.get("rank") or 0),
        )


@dataclass(frozen=True, slots=True)
class RejectedAdjustment:
    """A manual entry that was not counted, and why (wrong sender, unknown item, not an
    assessed unit)."""

    event_id: str
    dept: str
    item: str
    points: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "dept": self.dept,
            "item": self.item,
            "points": self.points,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RejectedAdjustment:
        return cls(str(d["event_id"]), str(d["dept"]), str(d["item"]), float(d["points"]), str(d["reason"]))


@dataclass(frozen=True, slots=True)
class Scorecard:
    """The scorecard of one quarter: the assessed units ranked by score (``departments``), the
    departments that are not assessed units (``unassessed``, unranked), the rejected manual
    entries; ``as_of`` is the moment of evaluation, ``source`` where the facts came from."""

    quarter: str
    as_of: datetime
    policy_version: str
    departments: tuple[DepartmentScore, ...]
    unassessed: tuple[DepartmentScore, ...] = ()
    rejected: tuple[RejectedAdjustment, ...] = ()
    source: str = ""

    def department(self, dept: str) -> DepartmentScore:
        for d in (*self.departments, *self.unassessed):
            if d.dept == dept:
                return d
        raise KeyError(dept)

    def scores(self) -> dict[str, float]:
        return {d.dept: d.score for d in self.departments}

    def to_dict(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter,
            "as_of": self.as_of.isoformat(),
            "policy_version": self.policy_version,
            "source": self.source,
            "departments": [d.to_dict() for d in self.departments],
            "unassessed": [d.to_dict() for d in self.unassessed],
            "rejected_adjustments": [r.to_dict() for r in self.rejected],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scorecard:
        as_of = _dt(d["as_of"])
        assert as_of is not None
        return cls(
            quarter=str(d["quarter"]),
            as_of=as_of,
            policy_version=str(d["policy_version"]),
            departments=tuple(DepartmentScore.from_dict(x) for x in d["departments"]),
            unassessed=tuple(DepartmentScore.from_dict(x) for x in d.get("unassessed") or ()),
            rejected=tuple(RejectedAdjustment.from_dict(x) for x in d.get("rejected_adjustments") or ()),
            source=str(d.get("source") or ""),
        )


@dataclass(frozen=True, slots=True)
class DepartmentChange:
    """How one department's published quarter changed: old and new score, the deductions that
    appeared (``added``) and disappeared (``removed``), and the new department score."""

    dept: str
    old_score: float
    new_score: float
    added: tuple[Deduction, ...]
    removed: tuple[Deduction, ...]
    new: DepartmentScore

    @property
    def obligation_ids(self) -> list[str]:
        return sorted({d.ref for d in (*self.added, *self.removed) if d.source == "obligation"})

    @property
    def event_ids(self) -> list[str]:
        return sorted({d.ref for d in (*self.added, *self.removed) if d.source == "adjustment"})

    @property
    def why(self) -> str:
        """One line per changed deduction, e.g. ``+1 二.2 case_transfer:C-9 missed (协作机制 二(一))``."""
        lines = [
            f"+{points_text(d.points)} {d.item} {d.ref} {d.status or d.kind} ({d.basis})" for d in self.added
        ]
        lines += [f"-{points_text(d.points)} {d.item} {d.ref} no longer deducted" for d in self.removed]
        if self.old_score != self.new_score and not lines:
            lines.append("section cap")
        return "; ".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dept": self.dept,
            "old_score": self.old_score,
            "new_score": self.new_score,
            "obligation_ids": self.obligation_ids,
            "event_ids": self.event_ids,
            "why": self.why,
            "added": [d.to_dict() for d in self.added],
            "removed": [d.to_dict() for d in self.removed],
            "new": self.new.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DepartmentChange:
        return cls(
            dept=str(d["dept"]),
            old_score=float(d["old_score"]),
            new_score=float(d["new_score"]),
            added=tuple(Deduction.from_dict(x) for x in d["added"]),
            removed=tuple(Deduction.from_dict(x) for x in d["removed"]),
            new=DepartmentScore.from_dict(d["new"]),
        )


@dataclass(frozen=True, slots=True)
class Restatement:
    """A correction of a closed quarter: revision ``n`` (1, 2, ...) made at ``restated_at`` from
    facts known at ``as_of``; the published record itself never changes."""

    quarter: str
    revision: int
    restated_at: datetime
    as_of: datetime
    changes: tuple[DepartmentChange, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "quarter": self.quarter,
            "revision": self.revision,
            "restated_at": self.restated_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Restatement:
        restated_at, as_of = _dt(d["restated_at"]), _dt(d["as_of"])
        assert restated_at is not None and as_of is not None
        return cls(
            quarter=str(d["quarter"]),
            revision=int(d["revision"]),
            restated_at=restated_at,
            as_of=as_of,
            changes=tuple(DepartmentChange.from_dict(c) for c in d["changes"]),
        )


@dataclass(frozen=True, slots=True)
class YearRow:
    dept: str
    name: str
    quarter_scores: tuple[float | None, ...]
    total: float
    average: float
    rank: int


@dataclass(frozen=True, slots=True)
class YearRanking:
    """The annual ranking (年评) from the quarters of ``year``: ``average`` of the quarter scores
    included; ``official`` quarters are closed (published + restatements), ``provisional`` ones
    are computed live; quarters not begun at the moment of evaluation are left out."""

    year: int
    quarters: tuple[str, ...]
    official: tuple[str, ...]
    provisional: tuple[str, ...]
    rows: tuple[YearRow, ...]
