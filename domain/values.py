"""Value objects built fast: a leaner ``__init__`` for frozen, slotted dataclasses.

A frozen dataclass's generated ``__init__`` stores each field with ``object.__setattr__(self,
"name", value)``, which looks the name up again at every call. :func:`fast_init` replaces it
with one that stores each field through its slot's descriptor, found once: the same signature,
defaults, default factories and ``__post_init__``, about twice as fast (the engine builds an
event per line of a replayed file and an obligation per key). Everything else of the dataclass
(equality, hashing, ``replace``, ``fields``, immutability) is unchanged.

:func:`draft_class` goes further for compiled code that builds many values: a mutable twin of
the same slots, filled in by plain attribute stores and then given the real class.
"""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Give the frozen, slotted dataclass ``cls`` the faster ``__init__`` (a class decorator,
    applied after ``@dataclass(frozen=True, slots=True)``). Positional-or-keyword fields only;
    a field with ``init=False`` or ``kw_only`` is refused (TypeError)."""
    params = getattr(cls, "__dataclass_params__", None)
    if not is_dataclass(cls) or params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init takes a frozen dataclass with slots")
    env: dict[str, Any] = {"_MISSING": MISSING}
    names, body = [], []
    for i, f in enumerate(fields(cls)):
        if not f.init or f.kw_only:
            raise TypeError(f"{cls.__name__}.{f.name}: fields with init=False or kw_only are not supported")
        env[f"_set{i}"] = cls.__dict__[f.name].__set__
        if f.default is not MISSING:
            env[f"_d{i}"] = f.default
            names.append(f"{f.name}=_d{i}")
            body.append(f"    _set{i}(self, {f.name})")
        elif f.default_factory is not MISSING:
            env[f"_f{i}"] = f.default_factory
            names.append(f"{f.name}=_MISSING")
            body.append(f"    _set{i}(self, _f{i}() if {f.name} is _MISSING else {f.name})")
        else:
            names.append(f.name)
            body.append(f"    _set{i}(self, {f.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(names)}) -> None:\n" + "\n".join(body or ["    pass"])
    exec(source, env)  # generated above from the dataclass's own fields
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def draft_class(cls: type[T]) -> type:
    """A mutable twin of the frozen, slotted dataclass ``cls``: the same slots, nothing else.

    For code that builds many ``cls`` values (the engine's obligations, replay's events): an
    instance of the twin gets its fields by plain attribute stores, then ``cls`` as its class
    (``draft.__class__ = cls``), which CPython allows between classes of one layout and checks
    (TypeError otherwise). The result is what ``cls(...)`` builds, without ``__init__`` (so
    without ``__post_init__``: the caller checks what it would) and about three times faster
    than storing each field through its slot's descriptor. A field left unset stays unset: the
    caller's tests compare what it builds with ``cls(...)``."""
    params = getattr(cls, "__dataclass_params__", None)
    slots = cls.__dict__.get("__slots__")
    if not is_dataclass(cls) or params is None or not params.frozen or slots is None:
        raise TypeError(f"{cls.__name__}: draft_class takes a frozen dataclass with slots")
    return type(f"{cls.__name__}Draft", (), {"__slots__": tuple(slots), "__module__": cls.__module__})
