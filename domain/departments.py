"""The department registry: reference data that is part of the event contract.

Every ``source_dept``, ``to_dept``, ``jurisdiction_dept`` and ``participants`` entry of an event
is a code of ``domain/data/departments.csv``: the 17 assessed units of the scorecard
[考评办法 三], the coordination office (行政执法统筹协调指挥办事机构), the joint-meeting office
(联席会议办), the seven county-level enforcement bureaus and their township squadrons
(``<county>-ZD-<town>``). Standard library only.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, cast

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "departments.csv"

Level = Literal["city", "county", "township"]
Kind = Literal["enforcement", "business", "police", "coordination_office", "joint_meeting_office"]

LEVELS: frozenset[str] = frozenset({"city", "county", "township"})
KINDS: frozenset[str] = frozenset(
    {"enforcement", "business", "police", "coordination_office", "joint_meeting_office"}
)
_COLUMNS = ("code", "name_zh", "name_en", "level", "area", "kind", "assessed")


class UnknownDepartment(KeyError):
    """A department code that is not in the registry."""

    def __init__(self, code: str, suggestion: str | None = None) -> None:
        self.code = code
        self.suggestion = suggestion
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(f"unknown department code {code!r}{hint}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Department:
    """One department. ``assessed`` marks the 17 units of the scorecard [考评办法 三]."""

    code: str
    name_zh: str
    name_en: str
    level: Level
    area: str
    kind: Kind
    assessed: bool

    @property
    def is_enforcement(self) -> bool:
        return self.kind == "enforcement"

    @property
    def is_business(self) -> bool:
        return self.kind == "business"

    @property
    def county_bureau(self) -> str | None:
        """For a township squadron, the code of its county-level bureau (DQ-ZD-WK → DQ-ZFJ)."""
        if self.level != "township":
            return None
        return self.code.split("-ZD-", 1)[0] + "-ZFJ"


class DepartmentRegistry:
    """All departments by code, in file order."""

    def __init__(self, departments: list[Department]) -> None:
        self._by_code: dict[str, Department] = {}
        for dept in departments:
            if dept.code in self._by_code:
                raise ValueError(f"duplicate department code {dept.code!r}")
            self._by_code[dept.code] = dept

    def get(self, code: str) -> Department:
        """The department of ``code``; :class:`UnknownDepartment` (a ``KeyError``) otherwise."""
        try:
            return self._by_code[code]
        except KeyError:
            close = difflib.get_close_matches(str(code).upper(), list(self._by_code), n=1, cutoff=0.5)
            raise UnknownDepartment(code, close[0] if close else None) from None

    def __getitem__(self, code: str) -> Department:
        return self.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Department]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def codes(self) -> list[str]:
        return list(self._by_code)

    def assessed(self) -> list[Department]:
        """The 17 assessed units of the scorecard [考评办法 三]."""
        return [d for d in self if d.assessed]

    def enforcement(self) -> list[Department]:
        """Enforcement departments of every level (city bureau, county bureaus, squadrons)."""
        return [d for d in self if d.kind == "enforcement"]

    def business(self) -> list[Department]:
        """The related competent departments (相关业务主管部门), police excluded."""
        return [d for d in self if d.kind == "business"]

    def of_kind(self, kind: str) -> list[Department]:
        return [d for d in self if d.kind == kind]

    def in_area(self, area: str) -> list[Department]:
        return [d for d in self if d.area == area]

    def squadrons(self, county_bureau: str) -> list[Department]:
        """The township squadrons of a county-level bureau."""
        self.get(county_bureau)
        return [d for d in self if d.county_bureau == county_bureau]


def _parse_bool(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ValueError(f"{where}: assessed must be true or false, not {value!r}")


def parse_registry(lines: Iterator[str] | list[str], source: str = "<departments>") -> DepartmentRegistry:
    """A registry from CSV text lines with the columns of ``departments.csv``."""
    reader = csv.DictReader(lines)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
    departments = []
    for row in reader:
        where = f"{source}:{reader.line_num}"
        code = row["code"].strip()
        level = row["level"].strip()
        kind = row["kind"].strip()
        if not code:
            raise ValueError(f"{where}: empty code")
        if level not in LEVELS:
            raise ValueError(f"{where}: level {level!r} not one of {sorted(LEVELS)}")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind {kind!r} not one of {sorted(KINDS)}")
        departments.append(
            Department(
                code=code,
                name_zh=row["name_zh"].strip(),
                name_en=row["name_en"].strip(),
                level=cast(Level, level),
                area=row["area"].strip(),
                kind=cast(Kind, kind),
                assessed=_parse_bool(row["assessed"], where),
            )
        )
    return DepartmentRegistry(departments)


@cache
def _load_default() -> DepartmentRegistry:
    return _load(DEFAULT_PATH)


def _load(path: Path) -> DepartmentRegistry:
    with path.open(encoding="utf-8", newline="") as fh:
        return parse_registry(list(fh), source=str(path))


def load_registry(path: Path | str | None = None) -> DepartmentRegistry:
    """The registry from ``path``, or the project's ``departments.csv`` (read once, cached)."""
    if path is None:
        return _load_default()
    return _load(Path(path))
