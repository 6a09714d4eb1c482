"""Quarter close (季度考评结果发布): the published scorecard is frozen; later facts that change
the quarter produce restatement records instead of changing the published number.

:class:`ScorecardStore` is the port; the shells provide a JSON file under the state dir (offline
path) and ClickHouse tables ``scorecard_published`` / ``scorecard_restatements``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.scorecard.engine import official, restate
from domain.scorecard.model import Restatement, Scorecard


class ScorecardStore(ABC):
    """Where published scorecards and their restatements are kept."""

    @abstractmethod
    def published(self, quarter: str) -> tuple[Scorecard, datetime] | None:
        """The published scorecard of ``quarter`` and when it was published, if closed."""

    @abstractmethod
    def restatements(self, quarter: str) -> list[Restatement]:
        """The restatements of ``quarter``, by revision."""

    @abstractmethod
    def publish(self, card: Scorecard, at: datetime) -> None:
        """Record ``card`` as the published scorecard of its quarter."""

    @abstractmethod
    def add_restatement(self, restatement: Restatement) -> None:
        """Record one restatement."""

    def official(self, quarter: str) -> Scorecard | None:
        """The published scorecard with its restatements applied, if the quarter is closed."""
        found = self.published(quarter)
        return None if found is None else official(found[0], self.restatements(quarter))


class InMemoryStore(ScorecardStore):
    """A store in a dict: for tests and as the reference of the contract."""

    def __init__(self) -> None:
        self._published: dict[str, tuple[Scorecard, datetime]] = {}
        self._restatements: dict[str, list[Restatement]] = {}

    def published(self, quarter: str) -> tuple[Scorecard, datetime] | None:
        return self._published.get(quarter)

    def restatements(self, quarter: str) -> list[Restatement]:
        return sorted(self._restatements.get(quarter, []), key=lambda r: r.revision)

    def publish(self, card: Scorecard, at: datetime) -> None:
        self._published.setdefault(card.quarter, (card, at))

    def add_restatement(self, restatement: Restatement) -> None:
        self._restatements.setdefault(restatement.quarter, []).append(restatement)


@dataclass(frozen=True, slots=True)
class CloseOutcome:
    """What closing did: ``published`` the first time; later ``restated`` (with the
    restatement) or ``unchanged``. ``card`` is the official scorecard afterwards."""

    action: Literal["published", "restated", "unchanged"]
    card: Scorecard
    restatement: Restatement | None = None


def close_quarter(store: ScorecardStore, current: Scorecard, at: datetime) -> CloseOutcome:
    """Publish ``current`` if its quarter is not closed yet; otherwise compare it with the
    official scorecard and record a restatement when a department changed."""
    found = store.published(current.quarter)
    if found is None:
        store.publish(current, at)
        return CloseOutcome("published", current)
    previous = store.restatements(current.quarter)
    card = official(found[0], previous)
    revision = max((r.revision for r in previous), default=0) + 1
    restatement = restate(card, current, revision, at)
    if restatement is None:
        return CloseOutcome("unchanged", card)
    store.add_restatement(restatement)
    return CloseOutcome("restated", official(found[0], [*previous, restatement]), restatement)


def pending_restatement(store: ScorecardStore, current: Scorecard, at: datetime) -> Restatement | None:
    """What closing again would record (nothing is written): shown by ``hzbus scorecard``."""
    found = store.published(current.quarter)
    if found is None:
        return None
    previous = store.restatements(current.quarter)
    revision = max((r.revision for r in previous), default=0) + 1
    return restate(official(found[0], previous), current, revision, at)
