"""Pseudonymisation of personal identifiers [信息资源共享机制 五].

The regulated subject is an organisation (统一社会信用代码, 18 characters, not personal
data) or an individual (居民身份证号码, 18 characters with an ISO 7064 check digit:
personal data). Personal ID numbers are replaced by a keyed hash before anything is stored
for analysts, so analysts can still count and correlate a person's cases without seeing who
it is; the key stays with the operator.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

_ID_RE = re.compile(r"^\d{17}[\dXx]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
PSEUDONYM_PREFIX = "P-"


def is_personal_id(subject_id: str) -> bool:
    """True for a well-formed 18-digit PRC resident ID number (GB 11643 check digit)."""
    if not _ID_RE.match(subject_id):
        return False
    total = sum(int(c) * w for c, w in zip(subject_id[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == subject_id[17].upper()


@lru_cache(maxsize=65_536)  # subjects recur across a case's events; the result is a pure function
def pseudonymise(subject_id: str, key: bytes) -> str:
    """The subject id as analysts may see it: personal ID numbers become ``P-<hmac>``.

    Organisation codes pass unchanged. The same ID and key always give the same pseudonym,
    so correlation and repeat-offender counts work on pseudonymised data.
    """
    if not is_personal_id(subject_id):
        return subject_id
    digest = hmac.new(key, subject_id.upper().encode("ascii"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:32]
