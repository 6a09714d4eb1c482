"""Pseudonymisation of personal identifiers [信息资源共享机制 五].

The regulated subject is an organisation (统一社会信用代码, 18 characters, not personal
data) or an individual (居民身份证号码, 18 characters with an ISO 7064 check digit:
personal data). Personal ID numbers are replaced by a keyed hash before anything is stored
for analysts, so analysts can still count and correlate a person's cases without seeing who
it is; the key stays with the operator.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache
from operator import mul
from typing import Final

_ID_RE = re.compile(r"^\d{17}[\dXx]$")
_OLD_ID_RE = re.compile(r"^\d{15}$")  # first-generation 15-digit ID numbers
_USCC_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ZERO_WEIGHT: Final = 48 * sum(_WEIGHTS)
_CHECK: Final = "10X98765432"
PSEUDONYM_PREFIX: Final = "P-"


def is_personal_id(subject_id: str) -> bool:
    """True for a well-formed 18-digit PRC resident ID number (GB 11643 check digit)."""
    if not _ID_RE.match(subject_id):
        return False
    if subject_id.isascii():  # the digits' bytes, weighted in C: 48 is ord("0")
        total = sum(map(mul, subject_id.encode("ascii")[:17], _WEIGHTS)) - _ZERO_WEIGHT
    else:  # other Unicode digits (full-width ０-９...) are digits too: when in doubt, pseudonymise
        total = sum(int(c) * w for c, w in zip(subject_id[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == subject_id[17].upper()


def is_uscc(subject_id: str) -> bool:
    """True for a well-formed 统一社会信用代码 (GB 32100, with its check character)."""
    code = subject_id.upper()
    if len(code) != 18 or any(c not in _USCC_CHARS for c in code):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(code[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == code[17]


def looks_personal(subject_id: str) -> bool:
    """Whether a subject id must be treated as a personal ID number: a valid one, or anything
    shaped like one (a mistyped check digit, a 15-digit old number) that is not a valid
    organisation code. When in doubt, pseudonymise: a leak cannot be undone."""
    if is_personal_id(subject_id):
        return True
    shaped = bool(_ID_RE.match(subject_id) or _OLD_ID_RE.match(subject_id))
    return shaped and not is_uscc(subject_id)


@lru_cache(maxsize=65_536)  # subjects recur across a case's events; the result is a pure function
def pseudonymise(subject_id: str, key: bytes) -> str:
    """The subject id as analysts may see it: personal ID numbers (and ids shaped like one, see
    :func:`looks_personal`) become ``P-<hmac>``.

    Organisation codes pass unchanged. The same ID and key always give the same pseudonym,
    so correlation and repeat-offender counts work on pseudonymised data.
    """
    if not looks_personal(subject_id):
        return subject_id
    # hmac.new(...).hexdigest() in one C call; UTF-8 is ASCII for ASCII ids (full-width digits too)
    digest = hmac.digest(key, subject_id.upper().encode("utf-8"), "sha256")
    return PSEUDONYM_PREFIX + digest.hex()[:32]
