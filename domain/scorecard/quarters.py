"""Calendar quarters (季度) of the scorecard: a quarter is the calendar quarter, Asia/Shanghai,
of an obligation's due time [考评办法 五(四): 季考年评]."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from domain.events import SHANGHAI

_PATTERN = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True, order=True, slots=True)
class Quarter:
    """A calendar quarter, written ``2026Q4``."""

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4:
            raise ValueError(f"quarter number {self.number} not in 1..4")

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = _PATTERN.match(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a quarter like 2026Q4")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> Quarter:
        """The quarter of a tz-aware instant's Asia/Shanghai date."""
        if moment.tzinfo is None:
            raise ValueError("a quarter needs a tz-aware moment")
        d = moment.astimezone(SHANGHAI).date()
        return cls(d.year, (d.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def first_day(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def last_day(self) -> date:
        nxt = self.next()
        return nxt.first_day - timedelta(days=1)

    @property
    def start(self) -> datetime:
        """00:00:00 Asia/Shanghai of the first day."""
        return datetime.combine(self.first_day, time(0, 0), SHANGHAI)

    @property
    def end(self) -> datetime:
        """23:59:59 Asia/Shanghai of the last day: the latest due time the quarter holds."""
        return datetime.combine(self.last_day, time(23, 59, 59), SHANGHAI)

    def months(self) -> list[str]:
        """``YYYY-MM`` of its three months."""
        return [f"{self.year}-{m:02d}" for m in range(3 * self.number - 2, 3 * self.number + 1)]

    def next(self) -> Quarter:
        return Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)

    def contains(self, moment: datetime) -> bool:
        return Quarter.of(moment) == self


def quarters_of_year(year: int) -> list[Quarter]:
    return [Quarter(year, n) for n in (1, 2, 3, 4)]
