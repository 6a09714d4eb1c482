"""Stores of published scorecards: a JSON file per quarter under the state dir (offline path)
and the ClickHouse tables ``scorecard_published`` / ``scorecard_restatements`` (migration 0004).
Both implement :class:`domain.scorecard.ScorecardStore`; the contract tests run against both."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.scorecard import Restatement, Scorecard, ScorecardStore
from domain.scorecard.model import DepartmentChange
from reports.sources import aware
from sinks.clickhouse.migrate import check_database_name

#: version = VERSION_BASE - publication epoch seconds: the earliest publication wins the merge
VERSION_BASE = (1 << 63) - 1


class JsonFileStore(ScorecardStore):
    """``<directory>/<quarter>.json``: {"published": ..., "published_at": ..., "restatements": [...]}.
    Written atomically (temporary file, then rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, quarter: str) -> Path:
        return self.directory / f"{quarter}.json"

    def _load(self, quarter: str) -> dict[str, Any] | None:
        path = self._path(quarter)
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _save(self, quarter: str, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(quarter)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    def published(self, quarter: str) -> tuple[Scorecard, datetime] | None:
        data = self._load(quarter)
        if data is None:
            return None
        return Scorecard.from_dict(data["published"]), datetime.fromisoformat(data["published_at"])

    def restatements(self, quarter: str) -> list[Restatement]:
        data = self._load(quarter) or {}
        return sorted(
            (Restatement.from_dict(r) for r in data.get("restatements", ())), key=lambda r: r.revision
        )

    def publish(self, card: Scorecard, at: datetime) -> None:
        if self._load(card.quarter) is not None:
            return
        self._save(
            card.quarter, {"published": card.to_dict(), "published_at": at.isoformat(), "restatements": []}
        )

    def add_restatement(self, restatement: Restatement) -> None:
        data = self._load(restatement.quarter)
        if data is None:
            raise ValueError(f"{restatement.quarter} is not published")
        data["restatements"].append(restatement.to_dict())
        self._save(restatement.quarter, data)


_PUBLISHED_COLUMNS = (
    "quarter",
    "dept",
    "dept_name",
    "assessed",
    "rank",
    "score",
    "organisation",
    "cooperation",
    "supervision",
    "deducted",
    "obligation_ids",
    "adjustment_ids",
    "department",
    "as_of",
    "published_at",
    "policy_version",
    "source",
    "version",
)
_RESTATEMENT_COLUMNS = (
    "quarter",
    "revision",
    "dept",
    "old_score",
    "new_score",
    "obligation_ids",
    "event_ids",
    "why",
    "change",
    "as_of",
    "restated_at",
)


class ClickHouseStore(ScorecardStore):
    """Published scorecards in ClickHouse (one row per department and quarter; restatements one
    row per changed department and revision)."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.db = check_database_name(database)

    def published(self, quarter: str) -> tuple[Scorecard, datetime] | None:
        rows = self.client.execute(
            f"SELECT department, assessed, as_of, published_at, policy_version, source "
            f"FROM {self.db}.scorecard_published FINAL WHERE quarter = %(q)s "
            "ORDER BY assessed DESC, rank, dept",
            {"q": quarter},
        )
        if not rows:
            return None
        from domain.scorecard import DepartmentScore

        departments = tuple(DepartmentScore.from_dict(json.loads(r[0])) for r in rows if r[1])
        unassessed = tuple(DepartmentScore.from_dict(json.loads(r[0])) for r in rows if not r[1])
        first = rows[0]
        card = Scorecard(
            quarter=quarter,
            as_of=aware(first[2]),
            policy_version=first[4],
            departments=departments,
            unassessed=unassessed,
            source=first[5],
        )
        return card, aware(first[3])

    def restatements(self, quarter: str) -> list[Restatement]:
        rows = self.client.execute(
            f"SELECT revision, change, as_of, restated_at FROM {self.db}.scorecard_restatements FINAL "
            "WHERE quarter = %(q)s ORDER BY revision, dept",
            {"q": quarter},
        )
        by_revision: dict[int, list[tuple[Any, ...]]] = {}
        for r in rows:
            by_revision.setdefault(int(r[0]), []).append(r)
        return [
            Restatement(
                quarter=quarter,
                revision=rev,
                restated_at=aware(rs[0][3]),
                as_of=aware(rs[0][2]),
                changes=tuple(DepartmentChange.from_dict(json.loads(r[1])) for r in rs),
            )
            for rev, rs in sorted(by_revision.items())
        ]

    def publish(self, card: Scorecard, at: datetime) -> None:
        if self.published(card.quarter) is not None:
            return
        version = VERSION_BASE - int(at.timestamp())
        rows = [
            (
                card.quarter,
                d.dept,
                d.name,
                int(d.assessed),
                d.rank,
                d.score,
                d.section("organisation").score,
                d.section("cooperation").score,
                d.section("supervision").score,
                d.deducted,
                d.obligation_ids,
                d.adjustment_ids,
                json.dumps(d.to_dict(), ensure_ascii=False),
                card.as_of,
                at,
                card.policy_version,
                card.source,
                version,
            )
            for d in (*card.departments, *card.unassessed)
        ]
        self.client.execute(
            f"INSERT INTO {self.db}.scorecard_published ({', '.join(_PUBLISHED_COLUMNS)}) VALUES", rows
        )

    def add_restatement(self, restatement: Restatement) -> None:
        rows = [
            (
                restatement.quarter,
                restatement.revision,
                c.dept,
                c.old_score,
                c.new_score,
                c.obligation_ids,
                c.event_ids,
                c.why,
                json.dumps(c.to_dict(), ensure_ascii=False),
                restatement.as_of,
                restatement.restated_at,
            )
            for c in restatement.changes
        ]
        self.client.execute(
            f"INSERT INTO {self.db}.scorecard_restatements ({', '.join(_RESTATEMENT_COLUMNS)}) VALUES", rows
        )
