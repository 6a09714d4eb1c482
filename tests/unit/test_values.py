"""fast_init: the leaner __init__ of the engine's value objects builds exactly what the
dataclass's own __init__ builds, with the same defaults, checks and immutability."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.events import SHANGHAI, Event
from domain.values import draft_class, fast_init

T = datetime(2026, 9, 30, 10, tzinfo=SHANGHAI)


@dataclass(frozen=True, slots=True)
class Plain:
    a: str
    b: int = 3
    c: dict[str, int] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if self.b < 0:
            raise ValueError(f"b {self.b} < 0")


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    a: str
    b: int = 3
    c: dict[str, int] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        if self.b < 0:
            raise ValueError(f"b {self.b} < 0")


def as_tuple(x: Plain | Fast) -> tuple[object, ...]:
    return (x.a, x.b, x.c, x.seen)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("x",), {}), (("x", 5), {}), (("x",), {"c": {"k": 1}}), ((), {"a": "x", "b": 0, "seen": ["s"]})],
)
def test_the_fast_init_builds_what_the_dataclass_init_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    assert as_tuple(Fast(*args, **kwargs)) == as_tuple(Plain(*args, **kwargs))  # type: ignore[arg-type]


def test_defaults_are_fresh_checks_run_and_the_value_stays_frozen() -> None:
    one, two = Fast("x"), Fast("y")
    assert one.c == {} and one.c is not two.c
    with pytest.raises(ValueError, match="b -1 < 0"):
        Fast("x", -1)
    with pytest.raises(TypeError):
        Fast()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Fast("x", 1, {}, [], "extra")  # type: ignore[call-arg]
    with pytest.raises(FrozenInstanceError):
        one.a = "z"  # type: ignore[misc]
    assert replace(one, b=7) == Fast("x", 7) and Fast("x", seen=["s"]) == Fast("x", c={})


def test_an_event_without_an_offset_is_still_refused() -> None:
    naive = datetime(2026, 9, 30, 10)
    for kwargs in ({"occurred_at": naive}, {"recorded_at": naive}, {"published_at": naive}):
        values = {"occurred_at": T, "recorded_at": T, "published_at": None, **kwargs}
        with pytest.raises(ValueError, match="has no UTC offset"):
            Event("StopOrdered", "e1", "HZ-ZFJ", fields={"case_id": "C1"}, **values)
    assert Event("StopOrdered", "e1", "HZ-ZFJ", T, T).fields == {}


def test_only_frozen_slotted_dataclasses_without_init_false_fields_are_taken() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(frozen=True, slots=True)
    class Computed:
        a: int
        b: int = field(init=False, default=0)

    for cls in (NoSlots, Computed):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_a_draft_filled_in_becomes_the_value_its_init_would_build() -> None:
    draft = draft_class(Plain)
    built: Any = object.__new__(draft)
    built.a, built.b, built.c, built.seen = "x", 5, {"k": 1}, ["s"]
    built.__class__ = Plain
    assert type(built) is Plain and built == Plain("x", 5, {"k": 1})
    with pytest.raises(FrozenInstanceError):
        built.a = "z"
    unfinished: Any = object.__new__(draft)
    unfinished.a = "x"
    unfinished.__class__ = Plain
    with pytest.raises(AttributeError):  # a field left unset stays unset: never a default
        _ = unfinished.b


def test_only_a_frozen_slotted_dataclass_has_a_draft_and_only_its_own_layout_passes() -> None:
    @dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclass(slots=True)
    class Mutable:
        a: int

    for cls in (NoSlots, Mutable):
        with pytest.raises(TypeError):
            draft_class(cls)
    other: Any = object.__new__(draft_class(Fast))
    with pytest.raises(TypeError):  # CPython refuses a class of another layout
        other.__class__ = Event


def test_an_event_with_its_publication_time_or_other_fields_is_what_replace_gives() -> None:
    e = Event("StopOrdered", "e1", "HZ-ZFJ", T, T, {"case_id": "C1"})
    later = datetime(2026, 11, 3, 1, 2, 3, tzinfo=UTC)
    assert e.with_published_at(later) == replace(e, published_at=later)
    assert e.with_fields({"case_id": "C2"}) == replace(e, fields={"case_id": "C2"})
    published = e.with_published_at(later)
    assert published.with_fields({"case_id": "C2"}).published_at == later
    with pytest.raises(ValueError, match="no UTC offset"):
        e.with_published_at(datetime(2026, 11, 3))
