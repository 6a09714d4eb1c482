"""The topic catalogue (``infra/topics.json``): names, partitions and configs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

TOPICS_FILE = Path(__file__).resolve().parent.parent / "infra" / "topics.json"


@dataclass(frozen=True)
class TopicSpec:
    family: str
    name: str
    partitions: int
    config: dict[str, str]
    carries_events: bool


@cache
def _catalogue() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TOPICS_FILE.read_text(encoding="utf-8"))
    return data


def event_families() -> list[str]:
    return list(_catalogue()["event_families"])


def topic_name(prefix: str, family: str) -> str:
    return f"{prefix}.{family}"


def event_topics(prefix: str) -> list[str]:
    return [topic_name(prefix, f) for f in event_families()]


def all_topics(prefix: str) -> list[TopicSpec]:
    cat = _catalogue()
    specs = []
    for section, carries in (("event_families", True), ("other", False)):
        for family, spec in cat[section].items():
            specs.append(
                TopicSpec(
                    family=family,
                    name=topic_name(prefix, family),
                    partitions=int(spec["partitions"]),
                    config={k: str(v) for k, v in spec.get("config", {}).items()},
                    carries_events=carries,
                )
            )
    return specs


def ingress_spec(prefix: str, code: str) -> TopicSpec:
    """A department's ingress topic of the secured mode (``hzbus.identity``; the ``ingress``
    entry of the catalogue): only that department's principal may write it."""
    from hzbus.identity import ingress_topic

    spec = _catalogue()["ingress"]
    return TopicSpec(
        family=f"ingress.{code}",
        name=ingress_topic(prefix, code),
        partitions=int(spec["partitions"]),
        config={k: str(v) for k, v in spec.get("config", {}).items()},
        carries_events=False,
    )
