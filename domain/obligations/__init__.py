"""The obligation engine [湖政办发〔2016〕98号]: the clocks of domain.md as pure functions of
events, a calendar and a moment. See docs/obligations.md.

Standard library and ``domain.*`` only; no function reads the clock. The engine, the state,
the keys and the rules are compiled with mypyc when built (``hzbus/native.py``); the check
(``_guard``) refuses an extension built from other sources than those in the tree.
"""

from domain.obligations import _guard  # noqa: F401  (first: a stale compiled module would run old code)
from domain.obligations.engine import (
    RULES,
    Evaluation,
    active_alerts,
    advance,
    apply,
    due_times,
    evaluate,
    evaluate_events,
    findings,
    group_by_key,
    next_wakeup,
    restate,
    sort_key,
    warn_at,
    years_to_assess,
)
from domain.obligations.keys import correlation_keys, key_prefix, key_ref, year_key
from domain.obligations.model import (
    CLAUSES,
    FINDING_KINDS,
    KINDS,
    RULE_VERSION,
    STATUSES,
    Alert,
    AlertResolved,
    Change,
    Finding,
    FindingRaised,
    FindingWithdrawn,
    Obligation,
    ObligationChanged,
)
from domain.obligations.state import KeyState, fold

__all__ = [
    "CLAUSES",
    "FINDING_KINDS",
    "KINDS",
    "RULES",
    "RULE_VERSION",
    "STATUSES",
    "Alert",
    "AlertResolved",
    "Change",
    "Evaluation",
    "Finding",
    "FindingRaised",
    "FindingWithdrawn",
    "KeyState",
    "Obligation",
    "ObligationChanged",
    "active_alerts",
    "advance",
    "apply",
    "correlation_keys",
    "due_times",
    "evaluate",
    "evaluate_events",
    "findings",
    "fold",
    "group_by_key",
    "key_prefix",
    "key_ref",
    "next_wakeup",
    "restate",
    "sort_key",
    "warn_at",
    "year_key",
    "years_to_assess",
]
