"""The scorecard (考评) of 湖政办发〔2016〕98号: quarterly department scores from the obligation
engine's obligations and the joint-meeting office's manual entries, under a configurable policy
(``domain/data/scorecard_policy.toml``); quarter close with restatements; the annual ranking.
See docs/scorecard.md. Standard library and ``domain.*`` only; no function reads the clock.
"""

from domain.scorecard.engine import (
    Adjustment,
    adjustments_from_events,
    apply_restatement,
    obligation_deduction,
    official,
    rank,
    rank_year,
    restate,
    score_department,
    score_quarter,
)
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
    points_text,
)
from domain.scorecard.policy import Policy, PolicyError, Rule, Section, load_policy, parse_policy
from domain.scorecard.quarters import Quarter, quarters_of_year
from domain.scorecard.store import (
    CloseOutcome,
    InMemoryStore,
    ScorecardStore,
    close_quarter,
    pending_restatement,
)

__all__ = [
    "Adjustment",
    "CloseOutcome",
    "Deduction",
    "DepartmentChange",
    "DepartmentScore",
    "InMemoryStore",
    "Policy",
    "PolicyError",
    "Quarter",
    "RejectedAdjustment",
    "Restatement",
    "Rule",
    "Scorecard",
    "ScorecardStore",
    "Section",
    "SectionScore",
    "YearRanking",
    "YearRow",
    "adjustments_from_events",
    "apply_restatement",
    "close_quarter",
    "load_policy",
    "obligation_deduction",
    "official",
    "parse_policy",
    "pending_restatement",
    "points_text",
    "quarters_of_year",
    "rank",
    "rank_year",
    "restate",
    "score_department",
    "score_quarter",
]
