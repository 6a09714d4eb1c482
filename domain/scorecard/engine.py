"""The scorecard (考评) as pure functions of obligations, manual entries and the policy.

- :func:`score_quarter`: one quarter's scorecard [考评办法 四, 五(四)]: each obligation due in the
  quarter (calendar quarter of ``due_at``, Asia/Shanghai) whose status the policy scores costs its
  responsible department the rule's points under the rule's item; AssessmentAdjusted entries of
  the quarter count as entered; each section's deductions stop at its points.
- :func:`restate`: the difference between a closed quarter's official scorecard and a new
  evaluation, as a :class:`Restatement` (old score, new score, which obligations, why).
- :func:`rank_year`: the annual ranking (年评) from the quarters.

Statuses, due times and delays come from the obligation engine (``domain.obligations``); nothing
here re-derives them. No function reads the clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from domain.departments import DepartmentRegistry
from domain.events import Event
from domain.obligations.model import Obligation
from domain.scorecard.model import (
    Deduction,
    DepartmentChange,
    DepartmentScore,
    RejectedAdjustment,
    Restatement,
    Scorecard,
    SectionScore,
    YearRanking,
    YearRow,
)
from domain.scorecard.policy import Policy
from domain.scorecard.quarters import Quarter


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A manual scorecard entry of the joint-meeting office (AssessmentAdjusted): ``points``
    negative = a deduction, as entered."""

    event_id: str
    source_dept: str
    occurred_at: datetime
    dept: str
    quarter: str
    item: str
    points: float
    reason: str


def adjustments_from_events(events: Iterable[Event]) -> list[Adjustment]:
    """The AssessmentAdjusted entries among ``events``, once per event_id, in time order."""
    seen: dict[str, Adjustment] = {}
    for e in events:
        if e.type != "AssessmentAdjusted" or e.event_id in seen:
            continue
        seen[e.event_id] = Adjustment(
            event_id=e.event_id,
            source_dept=e.source_dept,
            occurred_at=e.occurred_at,
            dept=str(e["dept"]),
            quarter=str(e["quarter"]),
            item=str(e["item"]),
            points=float(e["points"]),
            reason=str(e.get("reason") or ""),
        )
    return sorted(seen.values(), key=lambda a: (a.occurred_at, a.event_id))


def obligation_deduction(obligation: Obligation, policy: Policy) -> Deduction | None:
    """The deduction one obligation costs under ``policy``, if any."""
    rule = policy.rules.get(obligation.kind)
    if rule is None or obligation.status not in rule.statuses:
        return None
    return Deduction(
        dept=obligation.responsible_dept,
        item=rule.item,
        points=rule.points,
        clause=rule.clause,
        source="obligation",
        ref=obligation.obligation_id,
        kind=obligation.kind,
        status=obligation.status,
        due_at=obligation.due_at,
        basis=obligation.clause,
    )


def _check_adjustment(a: Adjustment, policy: Policy, registry: DepartmentRegistry) -> str | None:
    if a.source_dept not in policy.adjustments.accepted_sources:
        allowed = ", ".join(sorted(policy.adjustments.accepted_sources))
        return f"entered by {a.source_dept}, only {allowed} may"
    if not policy.adjustments.item_ok(a.item) or policy.section_of_item(a.item) is None:
        return f"item {a.item!r} is not an item of the 考评细则 (e.g. 二.4)"
    if a.dept not in registry or not registry[a.dept].assessed:
        return f"{a.dept} is not an assessed unit [考评办法 三]"
    return None


def score_department(
    dept: str, name: str, assessed: bool, deductions: Iterable[Deduction], policy: Policy
) -> DepartmentScore:
    """Sections and score of one department: each section's deductions held within 0..points."""
    ds = tuple(sorted(deductions, key=lambda d: (d.item, d.due_at.isoformat() if d.due_at else "~", d.ref)))
    sections = []
    for s in policy.sections:
        uncapped = float(round(sum(d.points for d in ds if d.section == s.id), 2))
        sections.append(SectionScore(s.id, s.key, s.points, min(max(uncapped, 0.0), s.points), uncapped))
    score = round(sum(s.score for s in sections), 2)
    return DepartmentScore(dept, name, assessed, score, tuple(sections), ds)


def rank(departments: Iterable[DepartmentScore]) -> tuple[DepartmentScore, ...]:
    """By score, highest first (ties by code); equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(departments, key=lambda d: (-d.score, d.dept))
    out: list[DepartmentScore] = []
    for i, d in enumerate(ordered):
        r = out[-1].rank if i and ordered[i - 1].score == d.score else i + 1
        out.append(replace(d, rank=r))
    return tuple(out)


def score_quarter(
    obligations: Iterable[Obligation],
    adjustments: Iterable[Adjustment],
    quarter: Quarter,
    policy: Policy,
    registry: DepartmentRegistry,
    as_of: datetime,
    source: str = "",
) -> Scorecard:
    """The scorecard of ``quarter`` from the obligations as evaluated at ``as_of`` and the manual
    entries known at ``as_of`` (``occurred_at <= as_of``).

    Every assessed unit appears (100 when nothing is deducted). Departments that are not
    assessed units (county bureaus, squadrons, offices) are scored the same way in
    ``unassessed`` when the policy says so [考评办法 六(二)], never folded into another unit.
    """
    if as_of.tzinfo is None:
        raise ValueError("as_of must be tz-aware")
    q = str(quarter)
    by_dept: dict[str, list[Deduction]] = {}
    for o in obligations:
        if Quarter.of(o.due_at) != quarter:
            continue
        d = obligation_deduction(o, policy)
        if d is not None:
            by_dept.setdefault(d.dept, []).append(d)
    rejected: list[RejectedAdjustment] = []
    seen: set[str] = set()
    for a in adjustments:
        if a.quarter != q or a.occurred_at > as_of or a.event_id in seen:
            continue
        seen.add(a.event_id)
        problem = _check_adjustment(a, policy, registry)
        if problem:
            rejected.append(RejectedAdjustment(a.event_id, a.dept, a.item, a.points, problem))
            continue
        by_dept.setdefault(a.dept, []).append(
            Deduction(
                dept=a.dept,
                item=a.item,
                points=-a.points,
                clause=f"考评细则 {a.item}: {policy.adjustments.clause}",
                source="adjustment",
                ref=a.event_id,
                kind="manual",
                status="",
                due_at=None,
                basis=a.reason,
            )
        )
    assessed_codes = [d.code for d in registry.assessed()]
    assessed = [
        score_department(code, registry[code].name_zh, True, by_dept.get(code, ()), policy)
        for code in assessed_codes
    ]
    unassessed: list[DepartmentScore] = []
    if policy.report_unassessed:
        for code in sorted(set(by_dept) - set(assessed_codes)):
            name = registry[code].name_zh if code in registry else "(not in the registry)"
            unassessed.append(score_department(code, name, False, by_dept[code], policy))
    return Scorecard(
        quarter=q,
        as_of=as_of,
        policy_version=policy.version,
        departments=rank(assessed),
        unassessed=tuple(unassessed),
        rejected=tuple(rejected),
        source=source,
    )


# ----------------------------------------------------------------------------- restatements


def restate(official: Scorecard, current: Scorecard, revision: int, at: datetime) -> Restatement | None:
    """The restatement of a closed quarter: every assessed unit whose score or set of
    deductions differs between the official scorecard and ``current``; ``None`` if none does.

    Deductions are compared by :attr:`Deduction.key` (source, ref, item, points): an obligation
    missed at the close and fulfilled late since costs the same and changes nothing.
    """
    if official.quarter != current.quarter:
        raise ValueError(f"cannot restate {official.quarter} with a scorecard of {current.quarter}")
    old = {d.dept: d for d in official.departments}
    changes = []
    for new in sorted(current.departments, key=lambda d: d.dept):
        before = old.get(new.dept)
        before_keys = {x.key: x for x in before.deductions} if before else {}
        after_keys = {x.key: x for x in new.deductions}
        added = tuple(after_keys[k] for k in sorted(set(after_keys) - set(before_keys)))
        removed = tuple(before_keys[k] for k in sorted(set(before_keys) - set(after_keys)))
        old_score = before.score if before else new.score
        if added or removed or old_score != new.score:
            changes.append(DepartmentChange(new.dept, old_score, new.score, added, removed, new))
    if not changes:
        return None
    return Restatement(current.quarter, revision, at, current.as_of, tuple(changes))


def apply_restatement(card: Scorecard, restatement: Restatement) -> Scorecard:
    """The official scorecard after ``restatement``: changed departments replaced, re-ranked."""
    changed = {c.dept: c.new for c in restatement.changes}
    departments = rank(changed.get(d.dept, d) for d in card.departments)
    return replace(card, departments=departments, as_of=restatement.as_of)


def official(published: Scorecard, restatements: Iterable[Restatement]) -> Scorecard:
    """A closed quarter's current official scorecard: the published one and its restatements."""
    card = published
    for r in sorted(restatements, key=lambda r: r.revision):
        card = apply_restatement(card, r)
    return card


# ----------------------------------------------------------------------------- the year


def rank_year(
    year: int, cards: Mapping[str, Scorecard], official_quarters: Collection[str] = ()
) -> YearRanking:
    """年评: each assessed unit's quarter scores of ``year`` (the quarters in ``cards``), their
    total and average; ranked by average (ties share a rank) [考评办法 五(四)]."""
    quarters = tuple(str(Quarter(year, n)) for n in (1, 2, 3, 4) if str(Quarter(year, n)) in cards)
    if not quarters:
        raise ValueError(f"no quarter of {year} to rank")
    names: dict[str, str] = {}
    scores: dict[str, list[float | None]] = {}
    for i, q in enumerate(quarters):
        for d in cards[q].departments:
            names.setdefault(d.dept, d.name)
            scores.setdefault(d.dept, [None] * len(quarters))[i] = d.score
    rows = []
    for dept, qs in scores.items():
        present = [s for s in qs if s is not None]
        total = round(sum(present), 2)
        rows.append(YearRow(dept, names[dept], tuple(qs), total, round(total / len(present), 2), 0))
    ordered = sorted(rows, key=lambda r: (-r.average, r.dept))
    ranked: list[YearRow] = []
    for i, r in enumerate(ordered):
        tie = i > 0 and ordered[i - 1].average == r.average
        ranked.append(replace(r, rank=ranked[-1].rank if tie else i + 1))
    return YearRanking(
        year=year,
        quarters=quarters,
        official=tuple(q for q in quarters if q in official_quarters),
        provisional=tuple(q for q in quarters if q not in official_quarters),
        rows=tuple(ranked),
    )
