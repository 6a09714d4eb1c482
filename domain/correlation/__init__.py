"""Correlation of approvals and penalties (domain.md; 分工办法 二, 协作机制 五(三), 三(二)3).

A pure core: per regulated subject, a set of facts (approval decisions, penalties) and rules
evaluated over it. See docs/correlation.md for the rules and the API.
"""

from domain.correlation.engine import (
    CORRELATION_EVENT_TYPES,
    apply,
    changes,
    evaluate,
    fact_of,
    fold,
    prepare,
    subject_key,
)
from domain.correlation.model import (
    CORRELATION_KINDS,
    DEFAULT_POLICY,
    RULES_VERSION,
    ApprovalDecision,
    Correlation,
    CorrelationKind,
    CorrelationPolicy,
    PenaltyFact,
    SubjectState,
)
from domain.correlation.rules import months_after, within_months

__all__ = [
    "CORRELATION_EVENT_TYPES",
    "CORRELATION_KINDS",
    "DEFAULT_POLICY",
    "RULES_VERSION",
    "ApprovalDecision",
    "Correlation",
    "CorrelationKind",
    "CorrelationPolicy",
    "PenaltyFact",
    "SubjectState",
    "apply",
    "changes",
    "evaluate",
    "fact_of",
    "fold",
    "months_after",
    "prepare",
    "subject_key",
    "within_months",
]
