"""The correlation rules: pure functions of one subject's facts and the policy.

Each rule states the business rule and cites its clause of 湖政办发〔2016〕98号; the clause
travels with every output. Times are business times (decision times) from the events, never
arrival times or the clock, so the result depends only on the set of facts.

Month windows are counted on Asia/Shanghai dates with the notice's period rule (期间开始之日不计算在内):
"within 12 months after D" ends with the same day 12 months later (the last day of that month
when it has no such day), inclusive. A penalty on 2025-03-10 is within 12 months of an event
on 2026-03-10 and not of one on 2026-03-11.
"""

from __future__ import annotations

import calendar as _gregorian
from collections.abc import Iterator
from datetime import date, datetime

from domain.calendar import shanghai_date
from domain.correlation.model import (
    ApprovalDecision,
    Correlation,
    CorrelationPolicy,
    SubjectState,
)

CLAUSE_POST_APPROVAL_SUPERVISION = "分工办法 二"
CLAUSE_PERMIT_SUSPENSION = "协作机制 五(三)"
CLAUSE_UNAPPROVED_OPERATION = "分工办法 二"
CLAUSE_CREDIT_LINKAGE = "协作机制 三(二)3"


def months_after(d: date, months: int) -> date:
    """The same day ``months`` calendar months after ``d`` (clamped to the month's last day)."""
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    last = _gregorian.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(d.day, last))


def within_months(earlier: datetime, later: datetime, months: int) -> bool:
    """``later`` is not before ``earlier`` and falls within ``months`` months after it (dates in Shanghai)."""
    if later < earlier:
        return False
    return shanghai_date(later) <= months_after(shanghai_date(earlier), months)


def active_decision_at(decisions: list[ApprovalDecision], moment: datetime) -> ApprovalDecision | None:
    """The grant that makes an approval active at ``moment``, or ``None``.

    The latest decision taken at or before ``moment`` wins: ``granted`` is active up to and
    including ``valid_until`` (no date: no expiry); ``denied``, ``revoked`` and ``suspended`` are
    not active. Decisions taken after ``moment`` play no part.
    """
    prior = [d for d in decisions if d.decided_at <= moment]
    if not prior:
        return None
    latest = max(prior, key=lambda d: d.order)
    if latest.decision != "granted":
        return None
    if latest.valid_until is not None and shanghai_date(moment) > latest.valid_until:
        return None
    return latest


def penalty_on_approved_subject(state: SubjectState, policy: CorrelationPolicy) -> Iterator[Correlation]:
    """A penalty on a subject holding an active approval in the same domain [分工办法 二].

    Approvals are supervised by the business dept that issued them (批后监管): when the
    enforcement dept penalises a subject whose approval in the penalty's domain is active at the
    penalty's decision time, the penalty and the approval are linked and the issuing dept is told.
    When the penalty needs the permit suspended (``requires_permit_suspension`` or a
    ``license_suspension`` / ``license_revocation`` penalty), the enforcement dept must also notify
    the issuing dept so it stops the permit [协作机制 五(三)]: a ``permit_suspension_notice``
    obligation. The notice says only "及时" (promptly): no period, hence no ``due_at``.
    """
    by_approval = state.decisions_by_approval()
    for p in state.current_penalties():
        for approval_id in sorted(by_approval):
            grant = active_decision_at(by_approval[approval_id], p.decided_at)
            if grant is None or grant.domain != p.domain:
                continue
            yield Correlation(
                kind="penalty_on_approved_subject",
                correlation_id=f"penalty_on_approved_subject:{state.subject}:{p.penalty_id}:{approval_id}",
                subject=state.subject,
                domain=p.domain,
                approval_ids=(approval_id,),
                penalty_ids=(p.penalty_id,),
                case_ids=(p.case_id,),
                notify_dept=grant.issuing_dept,
                responsible_dept=grant.issuing_dept,
                clause=CLAUSE_POST_APPROVAL_SUPERVISION,
                rule_version=policy.rule_version,
                became_true_at=p.decided_at,
            )
            if p.suspends_permit:
                yield Correlation(
                    kind="permit_suspension_notice",
                    correlation_id=f"permit_suspension_notice:{state.subject}:{p.penalty_id}:{approval_id}",
                    subject=state.subject,
                    domain=p.domain,
                    approval_ids=(approval_id,),
                    penalty_ids=(p.penalty_id,),
                    case_ids=(p.case_id,),
                    notify_dept=grant.issuing_dept,
                    responsible_dept=p.deciding_dept,
                    clause=CLAUSE_PERMIT_SUSPENSION,
                    rule_version=policy.rule_version,
                    became_true_at=p.decided_at,
                    due_at=None,
                )


def unlicensed_no_approval_on_record(state: SubjectState, policy: CorrelationPolicy) -> Iterator[Correlation]:
    """A penalty for operating without approval, and no approval on record [分工办法 二].

    Matters that need an approval are supervised by the competent business dept, including
    operation without approval (未经审批) and approvals it has given up on (放弃审批). A penalty
    with ``unlicensed_operation`` whose subject has no approval decision of any kind (granted,
    denied, revoked, suspended) in the penalty's domain decided at or before the penalty is linked
    as "no approval on record" for the competent dept of the domain (``policy.competent_depts``).
    An approval decided after the penalty does not undo the link (there was none on record then).
    """
    decisions = list(state.approvals.values())
    for p in state.current_penalties():
        if not p.unlicensed_operation:
            continue
        if any(d.domain == p.domain and d.decided_at <= p.decided_at for d in decisions):
            continue
        dept = policy.competent_depts.get(p.domain)
        yield Correlation(
            kind="unlicensed_no_approval_on_record",
            correlation_id=f"unlicensed_no_approval_on_record:{state.subject}:{p.penalty_id}",
            subject=state.subject,
            domain=p.domain,
            approval_ids=(),
            penalty_ids=(p.penalty_id,),
            case_ids=(p.case_id,),
            notify_dept=dept,
            responsible_dept=dept,
            clause=CLAUSE_UNAPPROVED_OPERATION,
            rule_version=policy.rule_version,
            became_true_at=p.decided_at,
        )


def approval_to_recently_penalised(state: SubjectState, policy: CorrelationPolicy) -> Iterator[Correlation]:
    """An approval granted to a subject penalised in the same domain shortly before [协作机制 三(二)3].

    Violations found by the enforcement dept go into the subject's credit record (信用评价档案)
    for the other depts to use. A grant decision in a domain where the subject was penalised
    within ``policy.recent_penalty_months`` (12) before the decision is flagged for the issuing
    dept: one flag per (approval, penalty), dated by the earliest such grant of that approval.
    """
    penalties = state.current_penalties()
    months = policy.recent_penalty_months
    for approval_id, decisions in sorted(state.decisions_by_approval().items()):
        grants = [d for d in decisions if d.decision == "granted"]
        for p in penalties:
            hits = [
                g
                for g in grants
                if g.domain == p.domain and within_months(p.decided_at, g.decided_at, months)
            ]
            if not hits:
                continue
            first = min(hits, key=lambda g: g.order)
            yield Correlation(
                kind="approval_to_recently_penalised",
                correlation_id=f"approval_to_recently_penalised:{state.subject}:{approval_id}:{p.penalty_id}",
                subject=state.subject,
                domain=p.domain,
                approval_ids=(approval_id,),
                penalty_ids=(p.penalty_id,),
                case_ids=(p.case_id,),
                notify_dept=first.issuing_dept,
                responsible_dept=first.issuing_dept,
                clause=CLAUSE_CREDIT_LINKAGE,
                rule_version=policy.rule_version,
                became_true_at=first.decided_at,
            )


def repeat_offender(state: SubjectState, policy: CorrelationPolicy) -> Iterator[Correlation]:
    """Repeated penalties → key-supervision list (重点监管名单) and credit linkage [协作机制 三(二)3].

    Policy: ``repeat_threshold`` (3) penalties, over all domains, within ``repeat_window_months``
    (12). Penalties are taken in decision order; the one that brings the count of its trailing
    window to the threshold lists the subject, unless the penalty before it already completed a
    window (the subject is still listed: one listing per uninterrupted run of qualifying
    penalties). The listing's id is the subject and that penalty; it names the penalties of the
    window and is addressed to ``policy.key_supervision_dept`` or else the dept that decided it.
    """
    ps = state.current_penalties()
    lo = 0
    previous_qualified = False
    for i, p in enumerate(ps):
        while not within_months(ps[lo].decided_at, p.decided_at, policy.repeat_window_months):
            lo += 1
        window = ps[lo : i + 1]
        qualified = len(window) >= policy.repeat_threshold
        if qualified and not previous_qualified:
            dept = policy.key_supervision_dept or p.deciding_dept
            yield Correlation(
                kind="repeat_offender",
                correlation_id=f"repeat_offender:{state.subject}:{p.penalty_id}",
                subject=state.subject,
                domain=None,
                approval_ids=(),
                penalty_ids=tuple(q.penalty_id for q in window),
                case_ids=tuple(q.case_id for q in window),
                notify_dept=dept,
                responsible_dept=dept,
                clause=CLAUSE_CREDIT_LINKAGE,
                rule_version=policy.rule_version,
                became_true_at=p.decided_at,
            )
        previous_qualified = qualified
