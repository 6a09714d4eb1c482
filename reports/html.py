"""The self-contained HTML report: inline CSS and server-side SVG, no script, no network."""

from __future__ import annotations

from html import escape
from math import isnan, nan

from domain.scorecard import DepartmentScore, Scorecard, points_text
from reports import svg
from reports.data import STATUS_ORDER, DeptRow, ReportData

CSS = """
body{font-family:'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif;margin:24px;color:#222;
max-width:1100px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}
.meta{color:#555;font-size:13px}.note{color:#8a4b00;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.low td{background:#fff4f4}details{margin:2px 0}summary{cursor:pointer}.refs{color:#555;font-size:12px}
.kpi{display:inline-block;margin:6px 18px 6px 0}.kpi b{font-size:20px;display:block}
"""


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _num(value: float) -> str:
    return "—" if isnan(value) else f"{value:g}"


def _refs(refs: list[str], limit: int = 12) -> str:
    shown = ", ".join(escape(r) for r in refs[:limit])
    return shown + (f" … (+{len(refs) - limit})" if len(refs) > limit else "")


def _deductions(d: DepartmentScore) -> str:
    if not d.deductions:
        return "—"
    parts = []
    for item, clause, points, ds in d.by_item():
        refs = [x.ref if x.source == "obligation" else f"{x.ref} ({x.basis})" for x in ds]
        parts.append(
            f'<details data-item="{escape(item)}"><summary>{escape(item)} −{points_text(points)} '
            f'({len(ds)})</summary><div>{escape(clause)}</div><div class="refs">{_refs(refs)}</div></details>'
        )
    return "".join(parts)


def scorecard_table(card: Scorecard) -> str:
    """The ranked scorecard: rank, unit, score, the three sections, deductions per item."""
    heads = [
        "rank",
        "dept",
        "unit",
        "score",
        "一 organisation /20",
        "二 cooperation /50",
        "三 supervision /30",
        "deductions (item, clause, obligations)",
    ]
    rows = []
    for d in card.departments:
        cls = ' class="low"' if d.score < 95 else ""
        rows.append(
            f'<tr{cls} data-dept="{escape(d.dept)}" data-score="{d.score:g}"><td class="n">{d.rank}</td>'
            f'<td>{escape(d.dept)}</td><td>{escape(d.name)}</td><td class="n"><b>{d.score:g}</b></td>'
            + "".join(f'<td class="n">{s.score:g}{"*" if s.capped else ""}</td>' for s in d.sections)
            + f"<td>{_deductions(d)}</td></tr>"
        )
    html = (
        '<table class="scorecard" data-quarter="'
        + escape(card.quarter)
        + '"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in heads)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + '<p class="meta">* the section\'s deductions reached its points and stop there [考评办法 四].</p>'
    )
    if card.unassessed:
        html += (
            "<h3>Not assessed units (county bureaus, squadrons; 考评办法 六(二): 县区参照执行)</h3>"
            '<table class="unassessed"><tr><th>dept</th><th>unit</th><th>would score</th>'
            "<th>deductions</th></tr>"
            + "".join(
                f'<tr><td>{escape(d.dept)}</td><td>{escape(d.name)}</td><td class="n">{d.score:g}</td>'
                f"<td>{_deductions(d)}</td></tr>"
                for d in card.unassessed
            )
            + "</table>"
        )
    if card.rejected:
        html += (
            "<h3>Manual entries not counted</h3><ul>"
            + "".join(
                f"<li>{escape(r.event_id)} {escape(r.dept)} {escape(r.item)} {r.points:g}: "
                f"{escape(r.reason)}</li>"
                for r in card.rejected
            )
            + "</ul>"
        )
    return html


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def render_scorecard(card: Scorecard, note: str = "") -> str:
    """The scorecard alone as a page (``hzbus scorecard --format html``)."""
    body = (
        f"<h1>考评 Scorecard {escape(card.quarter)}</h1>"
        f'<p class="meta">as of {escape(card.as_of.isoformat())}'
        f" · source {escape(card.source)} · policy {escape(card.policy_version)}</p>"
        + (f'<p class="note">{escape(note)}</p>' if note else "")
        + scorecard_table(card)
    )
    return _page(f"Scorecard {card.quarter}", body)


def render_report(data: ReportData) -> str:
    """The quarter's report: on-time rate per department, late and missed by kind, monthly
    trend, top repeat offenders, the scorecard."""
    name = data.names.get
    total = sum(d.total for d in data.departments)
    met = sum(d.met for d in data.departments)
    decided = sum(d.met + d.late + d.missed for d in data.departments)
    late = sum(d.late for d in data.departments)
    missed = sum(d.missed for d in data.departments)
    kpis = "".join(
        f'<span class="kpi"><b>{v}</b>{escape(k)}</span>'
        for k, v in (
            ("obligations due", total),
            ("on-time rate", _pct(met / decided if decided else None)),
            ("late", late),
            ("missed", missed),
            ("repeat offenders", len(data.offenders)),
        )
    )
    assessed = {d.dept for d in data.scorecard.departments}
    others = [d for d in data.departments if d.dept not in assessed]
    shown = [d for d in data.departments if d.dept in assessed]
    if others:  # county bureaus and squadrons: one line, they are not assessed units [考评办法 六(二)]
        o_met, o_late, o_missed = (sum(getattr(d, f) for d in others) for f in ("met", "late", "missed"))
        decided_o = o_met + o_late + o_missed
        shown.append(
            DeptRow(
                f"{len(others)} county/township units",
                sum(d.total for d in others),
                o_met,
                o_late,
                o_missed,
                sum(d.open for d in others),
                o_met / decided_o if decided_o else None,
                nan,
                nan,
            )
        )
    depts = sorted(shown, key=lambda d: (d.on_time_rate is None, d.on_time_rate or 0, d.dept))
    on_time = svg.rate_bars(
        "on-time-rate",
        f"On-time rate per department, {data.quarter}",
        [
            (
                f"{name(d.dept)} {d.dept}" if name(d.dept) else d.dept,
                d.on_time_rate,
                f"{_pct(d.on_time_rate)} of {d.met + d.late + d.missed}",
            )
            for d in depts
        ],
    )
    dept_table = (
        '<table class="departments"><tr><th>dept</th><th>unit</th><th>due</th><th>met</th><th>late</th>'
        "<th>missed</th><th>open</th><th>on-time</th><th>median delay WD</th><th>p90 delay WD</th></tr>"
        + "".join(
            f"<tr><td>{escape(d.dept)}</td><td>{escape(name(d.dept, ''))}</td>"
            + "".join(f'<td class="n">{v}</td>' for v in (d.total, d.met, d.late, d.missed, d.open))
            + f'<td class="n">{_pct(d.on_time_rate)}</td><td class="n">{_num(d.median_delay_wd)}</td>'
            f'<td class="n">{_num(d.p90_delay_wd)}</td></tr>'
            for d in sorted(shown, key=lambda d: d.dept)
        )
        + "</table>"
    )
    by_kind = svg.stacked_bars(
        "late-missed-by-kind",
        f"Late and missed by obligation kind, {data.quarter}",
        [(k.label, (k.late, k.missed)) for k in data.kinds],
        ("late", "missed"),
    )
    trend = svg.columns(
        "monthly-trend",
        "Obligations by month of their due time",
        [(m.label, tuple(getattr(m, s) for s in STATUS_ORDER)) for m in data.months],
        STATUS_ORDER,
    )
    top = data.offenders[:10]
    offenders = (
        svg.stacked_bars(
            "repeat-offenders",
            "Top repeat offenders (penalties in 12 months)",
            [(o.subject[:18], (o.penalties,)) for o in top],
            ("penalties",),
        )
        + '<table class="offenders"><tr><th>subject</th><th>penalties</th><th>since</th>'
        + "<th>notified</th></tr>"
        + "".join(
            f'<tr><td>{escape(o.subject)}</td><td class="n">{o.penalties}</td>'
            f"<td>{escape(o.became_true_at)}</td>"
            f"<td>{escape(o.notify_dept)}</td></tr>"
            for o in top
        )
        + "</table>"
        if top
        else "<p>No subject is on the key-supervision list.</p>"
    )
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in data.notes)
    body = (
        f"<h1>湖州综合行政执法协作 — quarterly report {escape(data.quarter)}</h1>"
        f'<p class="meta">generated {escape(data.generated_at.isoformat(timespec="seconds"))} · source '
        f"{escape(data.source)} · quarter = calendar quarter of the due time · delays in working days</p>"
        f"{notes}<div>{kpis}</div>"
        f'<h2 id="on-time">On-time rate per department</h2>{on_time}{dept_table}'
        f'<h2 id="by-kind">Late and missed by obligation kind</h2>{by_kind}'
        f'<h2 id="trend">Monthly trend</h2>{trend}'
        f'<h2 id="offenders">Top repeat offenders (重点监管名单)</h2>{offenders}'
        f'<h2 id="scorecard">Scorecard (考评) {escape(data.quarter)}</h2>'
        f'<p class="meta">as of {escape(data.scorecard.as_of.isoformat(timespec="seconds"))} · '
        f"policy {escape(data.scorecard.policy_version)}</p>{scorecard_table(data.scorecard)}"
    )
    return _page(f"hzbus report {data.quarter}", body)
