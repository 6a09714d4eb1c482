"""Plain-text tables for the terminal, aligned for Chinese (wide) characters."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * (size - width(text))
    return gap + text if right else text + gap


def render(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> str:
    """A table with a header rule; numbers are right-aligned."""
    cells = [[("" if v is None else f"{v:,}" if isinstance(v, int) else str(v)) for v in row] for row in rows]
    numeric = [bool(cells) and all(_is_number(c[i]) for c in cells) for i in range(len(headers))]
    sizes = [max([width(h)] + [width(c[i]) for c in cells]) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(_pad(h, sizes[i], numeric[i]) for i, h in enumerate(headers)))
    lines.append("  ".join("-" * s for s in sizes))
    for c in cells:
        lines.append("  ".join(_pad(v, sizes[i], numeric[i]) for i, v in enumerate(c)))
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    stripped = text.replace(",", "").replace(".", "", 1).rstrip("%").lstrip("-")
    return stripped.isdigit()
