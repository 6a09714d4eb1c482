"""The scorecard policy: the deduction table of domain.md as configuration.

``domain/data/scorecard_policy.toml`` names, for every obligation kind that is scored, the
statuses that cost points, how many, the item of the 考评细则 and its clause; the three sections
and their points [考评办法 四]; who may enter manual adjustments; and what happens to the
obligations of departments that are not assessed units [考评办法 六(二)]. The joint-meeting
office changes a policy choice by editing the file, not the code.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "scorecard_policy.toml"
_STATUSES = frozenset({"open", "met", "late", "missed"})


class PolicyError(ValueError):
    """The policy file is not usable (names the file and the problem)."""


@dataclass(frozen=True, slots=True)
class Section:
    """One of the three sections of 考评办法 四; its deductions stop at ``points``."""

    id: str  # 一 / 二 / 三
    key: str  # organisation / cooperation / supervision
    name: str
    points: float


@dataclass(frozen=True, slots=True)
class Rule:
    """An obligation of ``kind`` with a status in ``statuses`` costs ``points`` under ``item``."""

    kind: str
    statuses: frozenset[str]
    points: float
    item: str
    clause: str

    @property
    def section(self) -> str:
        return self.item.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class AdjustmentPolicy:
    accepted_sources: frozenset[str]
    item_pattern: str
    clause: str

    def item_ok(self, item: str) -> bool:
        return re.match(self.item_pattern, item) is not None


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    sections: tuple[Section, ...]
    rules: Mapping[str, Rule]
    adjustments: AdjustmentPolicy
    report_unassessed: bool
    unassessed_clause: str

    @property
    def total_points(self) -> float:
        return sum(s.points for s in self.sections)

    def section(self, section_id: str) -> Section:
        for s in self.sections:
            if s.id == section_id:
                return s
        raise KeyError(section_id)

    def section_of_item(self, item: str) -> Section | None:
        head = item.split(".", 1)[0]
        return next((s for s in self.sections if s.id == head), None)


def _req(obj: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise PolicyError(f"{where}: missing {name!r}")
    return obj[name]


def parse_policy(data: Mapping[str, Any], source: str = "<policy>") -> Policy:
    """A :class:`Policy` from the parsed TOML document; :class:`PolicyError` names any problem."""
    sections = tuple(
        Section(
            id=str(_req(s, "id", f"{source}: sections[{i}]")),
            key=str(_req(s, "key", f"{source}: sections[{i}]")),
            name=str(s.get("name", "")),
            points=float(_req(s, "points", f"{source}: sections[{i}]")),
        )
        for i, s in enumerate(_req(data, "sections", source))
    )
    if len({s.id for s in sections}) != len(sections):
        raise PolicyError(f"{source}: two sections share an id")
    ids = {s.id for s in sections}
    rules: dict[str, Rule] = {}
    for i, r in enumerate(data.get("rules", ())):
        where = f"{source}: rules[{i}]"
        rule = Rule(
            kind=str(_req(r, "kind", where)),
            statuses=frozenset(str(x) for x in _req(r, "statuses", where)),
            points=float(_req(r, "points", where)),
            item=str(_req(r, "item", where)),
            clause=str(_req(r, "clause", where)),
        )
        if not rule.statuses <= _STATUSES:
            raise PolicyError(f"{where}: statuses must be among {sorted(_STATUSES)}")
        if rule.section not in ids:
            raise PolicyError(f"{where}: item {rule.item!r} is in no section ({', '.join(sorted(ids))})")
        if not rule.clause.strip():
            raise PolicyError(f"{where}: every rule names its clause")
        if rule.kind in rules:
            raise PolicyError(f"{where}: a second rule for kind {rule.kind!r}")
        rules[rule.kind] = rule
    adj = data.get("adjustments", {})
    pattern = str(adj.get("item_pattern", r"^[一二三]\.[0-9]+$"))
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PolicyError(f"{source}: adjustments.item_pattern: {exc}") from None
    unassessed = data.get("unassessed", {})
    return Policy(
        version=str(_req(data, "version", source)),
        sections=sections,
        rules=rules,
        adjustments=AdjustmentPolicy(
            accepted_sources=frozenset(str(x) for x in adj.get("accepted_sources", ("HZ-LXB",))),
            item_pattern=pattern,
            clause=str(adj.get("clause", "考评办法 五")),
        ),
        report_unassessed=bool(unassessed.get("report", True)),
        unassessed_clause=str(unassessed.get("clause", "考评办法 六(二)")),
    )


@cache
def _load_default() -> Policy:
    return _load(DEFAULT_PATH)


def _load(path: Path) -> Policy:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: {exc}") from None
    return parse_policy(data, source=str(path))


def load_policy(path: Path | str | None = None) -> Policy:
    """The policy from ``path``, or the project's ``scorecard_policy.toml`` (read once, cached)."""
    return _load_default() if path is None else _load(Path(path))
