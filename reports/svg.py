"""Charts as inline SVG, generated on the server: the report needs no script and no network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

COLOURS = {
    "met": "#2e7d32",
    "late": "#ef6c00",
    "missed": "#c62828",
    "open": "#90a4ae",
    "rate": "#1565c0",
    "penalties": "#6a1b9a",
}
FONT = "font-family=\"'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif\""


def _svg(chart: str, title: str, width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(chart)}" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'{FONT} font-size="12"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def rate_bars(chart: str, title: str, rows: Sequence[tuple[str, float | None, str]], width: int = 760) -> str:
    """One horizontal bar per row: (label, rate 0..1 or None, annotation)."""
    label_w, bar_w, row_h = 290, width - 290 - 120, 22
    height = 30 + row_h * max(1, len(rows))
    body = [
        f'<text x="{label_w}" y="14" fill="#555">0%</text>',
        f'<text x="{label_w + bar_w - 30}" y="14" fill="#555">100%</text>',
    ]
    for i, (label, rate, note) in enumerate(rows):
        y = 24 + i * row_h
        body.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="{row_h - 8}" fill="#eceff1"/>')
        if rate is not None:
            w = max(0.0, min(1.0, rate)) * bar_w
            body.append(
                f'<rect class="bar" data-value="{rate:.4f}" x="{label_w}" y="{y + 3}" width="{w:.1f}" '
                f'height="{row_h - 8}" fill="{COLOURS["rate"]}"/>'
            )
        body.append(f'<text x="{label_w + bar_w + 8}" y="{y + 14}">{escape(note)}</text>')
    return _svg(chart, title, width, height, body)


def stacked_bars(
    chart: str, title: str, rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[str], width: int = 760
) -> str:
    """Horizontal stacked bars: (label, counts per series)."""
    label_w, bar_w, row_h = 180, width - 180 - 90, 24
    top = max([sum(c) for _, c in rows] + [1])
    height = 40 + row_h * max(1, len(rows))
    body = _legend(series, label_w)
    for i, (label, counts) in enumerate(rows):
        y = 30 + i * row_h
        body.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        x = float(label_w)
        for name, n in zip(series, counts, strict=True):
            if n:
                w = n / top * bar_w
                body.append(
                    f'<rect class="bar" data-series="{name}" data-value="{n}" x="{x:.1f}" y="{y + 3}" '
                    f'width="{w:.1f}" height="{row_h - 8}" fill="{COLOURS.get(name, "#777")}">'
                    f"<title>{escape(label)} {name}: {n}</title></rect>"
                )
                x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{" / ".join(str(n) for n in counts)}</text>')
    return _svg(chart, title, width, height, body)


def columns(
    chart: str, title: str, rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[str], width: int = 760
) -> str:
    """Vertical stacked columns, one per label (e.g. a month)."""
    left, bottom, height = 40, 40, 260
    plot_h = height - bottom - 30
    top = max([sum(c) for _, c in rows] + [1])
    step = (width - left - 10) / max(1, len(rows))
    body = _legend(series, left)
    for frac in (0.0, 0.5, 1.0):
        y = 30 + plot_h * (1 - frac)
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{round(top * frac)}</text>'
        )
    for i, (label, counts) in enumerate(rows):
        x = left + i * step + step * 0.15
        y = 30.0 + plot_h
        for name, n in zip(series, counts, strict=True):
            if n:
                h = n / top * plot_h
                y -= h
                body.append(
                    f'<rect class="bar" data-series="{name}" data-value="{n}" x="{x:.1f}" y="{y:.1f}" '
                    f'width="{step * 0.7:.1f}" height="{h:.1f}" fill="{COLOURS.get(name, "#777")}">'
                    f"<title>{escape(label)} {name}: {n}</title></rect>"
                )
        body.append(
            f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 28}" text-anchor="middle" '
            f'fill="#333">{escape(label[2:] if len(label) == 7 else label)}</text>'
        )
    return _svg(chart, title, width, height, body)


def _legend(series: Sequence[str], x0: int) -> list[str]:
    out = []
    for i, name in enumerate(series):
        x = x0 + i * 90
        out.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{COLOURS.get(name, "#777")}"/>')
        out.append(f'<text x="{x + 16}" y="14">{escape(name)}</text>')
    return out
