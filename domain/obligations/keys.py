"""Correlation keys: which per-key state an event belongs to.

Each obligation lives in exactly one key's state, so a stream processor can keep the state in a
table keyed by these strings (and partition by them) and replay can group a file by them.

- ``case:<case_id>``: ViolationDiscovered, TransferExtensionNotified, StopOrdered,
  CaseTransferred, TransferAcknowledged → case_transfer, transfer_ack and the transfer findings;
- ``complaint:<complaint_id>``: ComplaintVerified, a CaseTransferred carrying that complaint_id,
  a TransferExtensionNotified whose case_id is the complaint id → complaint_referral;
- ``approval:<approval_id>``: ApprovalIssued → approval_share;
- ``penalty:<penalty_id>`` / ``measure:<measure_id>``: PenaltyDecided / CoerciveMeasureDecided →
  penalty_share;
- ``share:<share_id>``: InfoFormed, InfoShared → written_share;
- ``request:<request_id>``: DeterminationRequested … DeterminationReplied → determination_reply;
- ``year:<yyyy>``: ConsultationMeetingHeld (by its Shanghai year) → annual_joint_meeting.

Events no rule reads (ComplaintReceived, ComplaintReplied, AssessmentAdjusted) have no key.
"""

from __future__ import annotations

from domain.calendar import shanghai_date
from domain.events import Event

_BY_FIELD: dict[str, tuple[str, str]] = {
    "ViolationDiscovered": ("case", "case_id"),
    "StopOrdered": ("case", "case_id"),
    "TransferAcknowledged": ("case", "case_id"),
    "ComplaintVerified": ("complaint", "complaint_id"),
    "ApprovalIssued": ("approval", "approval_id"),
    "PenaltyDecided": ("penalty", "penalty_id"),
    "CoerciveMeasureDecided": ("measure", "measure_id"),
    "InfoFormed": ("share", "share_id"),
    "InfoShared": ("share", "share_id"),
    "DeterminationRequested": ("request", "request_id"),
    "DeterminationExtended": ("request", "request_id"),
    "DeterminationReferred": ("request", "request_id"),
    "DeterminationReferralReturned": ("request", "request_id"),
    "DeterminationReplied": ("request", "request_id"),
}

KEY_PREFIXES = ("case", "complaint", "approval", "penalty", "measure", "share", "request", "year")

#: the types of exactly one key, ``<prefix>:<value of the field>``: the prefix with its colon,
#: and the field (what :func:`correlation_keys` gives them, for a loop that builds their key
#: without a list: ``engine.group_by_key``)
ONE_KEY: dict[str, tuple[str, str]] = {t: (f"{prefix}:", name) for t, (prefix, name) in _BY_FIELD.items()}


def correlation_keys(event: Event) -> list[str]:
    """The keys whose state ``event`` may change (empty for events no obligation reads).

    A CaseTransferred with a ``complaint_id`` goes to its case and to its complaint (it fulfils
    complaint_referral [协作机制 四]). A TransferExtensionNotified goes to ``case:<case_id>`` and
    also to ``complaint:<case_id>``: before a complaint has a case, the referring dept can only
    name the complaint (the schema has no complaint_id field; see docs/obligations.md).
    """
    t = event.type
    hit = ONE_KEY.get(t)
    if hit is not None:
        prefix, name = hit
        return [f"{prefix}{event.fields[name]}"]
    if t == "CaseTransferred":
        keys = [f"case:{event.fields['case_id']}"]
        complaint = event.fields.get("complaint_id")
        if complaint:
            keys.append(f"complaint:{complaint}")
        return keys
    if t == "TransferExtensionNotified":
        case_id = event.fields["case_id"]
        return [f"case:{case_id}", f"complaint:{case_id}"]
    if t == "ConsultationMeetingHeld":
        return [year_key(shanghai_date(event.occurred_at).year)]
    return []


def year_key(year: int) -> str:
    """The key of the annual joint meeting of ``year``: ``year:2026``."""
    return f"year:{year:04d}"


def key_prefix(key: str) -> str:
    """``case`` of ``case:AJ-1``; ValueError for a key of no known kind."""
    prefix, sep, rest = key.partition(":")
    if not sep or not rest or prefix not in KEY_PREFIXES:
        raise ValueError(f"not a correlation key: {key!r}")
    return prefix


def key_ref(key: str) -> str:
    """``AJ-1`` of ``case:AJ-1``."""
    return key.partition(":")[2]
