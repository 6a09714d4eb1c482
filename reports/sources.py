"""Where the scorecard's facts come from: ClickHouse (the facts the worker computed and the sink
stored) or an event file evaluated offline by the same engine as ``hzbus replay``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from domain.calendar import WorkingDayCalendar
from domain.departments import DepartmentRegistry
from domain.events import SHANGHAI, Event
from domain.obligations import Evaluation, Obligation, evaluate_events
from domain.scorecard import Adjustment, Policy, Quarter, Scorecard, adjustments_from_events, score_quarter
from sinks.clickhouse.migrate import check_database_name


def aware(moment: datetime) -> datetime:
    """A ClickHouse DateTime('Asia/Shanghai') value as a tz-aware datetime."""
    return moment.replace(tzinfo=SHANGHAI) if moment.tzinfo is None else moment.astimezone(SHANGHAI)


@dataclass(frozen=True)
class OfflineQuarter:
    """An event file evaluated at ``as_of``: the evaluation, the manual entries, bad lines."""

    path: Path
    as_of: datetime
    events: list[Event]
    evaluation: Evaluation
    adjustments: list[Adjustment]
    errors: list[str]


def evaluate_file(path: Path, as_of: datetime, calendar: WorkingDayCalendar) -> OfflineQuarter:
    """Read ``path`` as ``hzbus replay`` does and evaluate it at ``as_of``."""
    from hzbus.commands.replay import read_events  # the replay's reader, reused as is

    events, errors = read_events(path)
    return OfflineQuarter(
        path, as_of, events, evaluate_events(events, as_of, calendar), adjustments_from_events(events), errors
    )


def offline_scorecard(
    data: OfflineQuarter, quarter: Quarter, policy: Policy, registry: DepartmentRegistry
) -> Scorecard:
    return score_quarter(
        data.evaluation.obligations,
        data.adjustments,
        quarter,
        policy,
        registry,
        data.as_of,
        source=f"events:{data.path}",
    )


_OBLIGATION_SQL = """
SELECT obligation_id, kind, ref, responsible_dept, started_at, due_at, status, fulfilled_at,
       provisional, clause, rule_version, calendar_version, extended, paused_working_days,
       delay_working_days
FROM {db}.obligations_latest
WHERE due_quarter = %(quarter)s
ORDER BY due_at, obligation_id
"""

_ADJUSTMENT_SQL = """
SELECT event_id, source_dept, occurred_at, dept, quarter, item, points, reason
FROM {db}.assessment_adjustments
WHERE quarter = %(quarter)s
ORDER BY occurred_at, event_id
"""


class ClickHouseFacts:
    """The facts of a quarter as stored in ClickHouse (views of migration 0003)."""

    def __init__(self, client: Any, database: str) -> None:
        self.client = client
        self.database = check_database_name(database)

    def _rows(self, sql: str, quarter: Quarter) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.client.execute(
            sql.format(db=self.database), {"quarter": str(quarter)}
        )
        return rows

    def obligations(self, quarter: Quarter) -> list[Obligation]:
        """The latest state of every obligation due in ``quarter``, as the worker evaluated it."""
        out = []
        for (
            oid,
            kind,
            ref,
            dept,
            started,
            due,
            status,
            fulfilled,
            provisional,
            clause,
            rule_v,
            cal_v,
            extended,
            paused,
            delay,
        ) in self._rows(_OBLIGATION_SQL, quarter):
            out.append(
                Obligation(
                    obligation_id=oid,
                    kind=kind,
                    ref=ref,
                    responsible_dept=dept,
                    started_at=aware(started),
                    due_at=aware(due),
                    status=status,
                    fulfilled_at=aware(fulfilled) if fulfilled else None,
                    provisional=bool(provisional),
                    clause=clause,
                    rule_version=rule_v,
                    calendar_version=cal_v,
                    extended=bool(extended),
                    paused_working_days=int(paused),
                    delay_working_days=int(delay),
                )
            )
        return out

    def latest_evaluation(self) -> datetime | None:
        """The latest moment the worker evaluated an obligation at (its watermark), if any."""
        rows = self.client.execute(f"SELECT count(), max(evaluated_at) FROM {self.database}.obligations")
        return aware(rows[0][1]) if rows and int(rows[0][0]) else None

    def adjustments(self, quarter: Quarter) -> list[Adjustment]:
        return [
            Adjustment(eid, src, aware(at), dept, q, item, float(points), reason)
            for eid, src, at, dept, q, item, points, reason in self._rows(_ADJUSTMENT_SQL, quarter)
        ]

    def scorecard(
        self, quarter: Quarter, policy: Policy, registry: DepartmentRegistry, as_of: datetime
    ) -> Scorecard:
        """The scorecard of ``quarter`` from the stored facts. ``as_of`` bounds the manual entries
        counted; obligation statuses are the stored ones (the worker's latest evaluation)."""
        return score_quarter(
            self.obligations(quarter),
            self.adjustments(quarter),
            quarter,
            policy,
            registry,
            as_of,
            source=f"clickhouse:{self.database}",
        )
