"""Small, accessible SVG charts: pure functions of plain values, no database, no Flask.

Every drawing is a complete standalone SVG document that

* names itself for assistive technology (``role="img"``, ``<title>`` and ``<desc>`` referenced by
  ``aria-labelledby``; the description lists the figures drawn, so nothing is only visual);
* labels in Chinese with English (``Label(zh, en)``), drawn as text, with the system's sans-serif
  fonts (no web fonts, no scripts, no external references of any kind: the only URL in the file is
  the SVG namespace);
* is deterministic: the same input gives the same bytes (no timestamps, no random ids; numbers
  are formatted with fixed rules), so the HTTP layer can answer with an ETag and caches hold.

Charts: ``bar_chart`` (vertical, grouped series, an optional target line such as the 90 %
coverage line) and ``hbar_chart`` (one series with long category names), pure functions of plain
values. ``statistics_chart_svg`` asks the statistics service for the figures of one of its charts and
draws them. Maps, in the same style, are in ``render/maps.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any, Sequence

from sqlalchemy.orm import Session

from ..i18n import Label
from ..services import statistics as stats

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
PALETTE = ("#1f6f8b", "#e07a1f", "#3c9d4e", "#b8323a", "#7a5aa6", "#8c6d31", "#d45d9e", "#5f6b73")
TEXT = "#1d2327"
MUTED = "#5f6b73"
GRID = "#d9dee2"
TARGET = "#b8323a"


@dataclass(frozen=True)
class Series:
    label: Label
    values: tuple[float, ...]
    colour: str = ""


def _x(text: str) -> str:
    return escape(str(text), quote=True)


def number(value: float, *, decimals: int = 0) -> str:
    """A figure as drawn: thousands separated, fixed decimals (deterministic, locale-free)."""
    if decimals:
        return f"{value:,.{decimals}f}"
    return f"{int(round(value)):,}"


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above `value` (at least 1): a readable axis end."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * 10 ** exp
        if top >= value - 1e-9:
            return float(top)
    return float(10 ** (exp + 1))  # pragma: no cover - the loop always returns


def _svg_open(ident: str, width: float, height: float, title: Label, description: str) -> list[str]:
    t, d = f"{ident}-title", f"{ident}-desc"
    return [f'<svg xmlns="{SVG_NS}" width="{width:g}" height="{height:g}" viewBox="0 0 {width:g} {height:g}" '
            f'role="img" aria-labelledby="{t} {d}" font-family="{_x(FONT)}" font-size="12" fill="{TEXT}">',
            f'<title id="{t}">{_x(title.text())}</title>',
            f'<desc id="{d}">{_x(description)}</desc>',
            f'<rect width="{width:g}" height="{height:g}" fill="#ffffff"/>',
            f'<text x="16" y="24" font-size="16" font-weight="bold">{_x(title.zh)}</text>',
            f'<text x="16" y="42" font-size="12" fill="{MUTED}">{_x(title.en)}</text>' if title.en else ""]


def _legend(items: Sequence[tuple[str, str]], x: float, y: float, width: float) -> tuple[list[str], float]:
    """Swatch + text items flowed in rows from (x, y); returns the parts and the height used."""
    parts, cx, cy = [], x, y
    for colour, text in items:
        w = 28 + text_px(text, 12)
        if cx > x and cx + w > x + width:
            cx, cy = x, cy + 18
        parts.append(f'<rect x="{cx:.1f}" y="{cy - 10:.1f}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{cx + 16:.1f}" y="{cy:.1f}">{_x(text)}</text>')
        cx += w
    return parts, (cy - y) + 18 if items else 0.0


def text_px(text: str, size: float) -> float:
    """About how wide `text` is drawn at `size` px in a sans-serif font: CJK one em, others 0.6 em."""
    return sum(1.0 if ord(ch) > 0x2E80 else 0.6 for ch in text) * size


def bar_chart(*, ident: str, title: Label, description: str, categories: Sequence[Label],
              series: Sequence[Series], target: float | None = None, target_label: Label | None = None,
              percent: bool = False, decimals: int = 0, y_label: Label | None = None,
              notes: Sequence[str] = ()) -> str:
    """Vertical bars: one group per category, one bar per series, values written above the bars.

    With `percent` values are 0..100 and the axis ends at 100; `target` (same unit as the values)
    draws a dashed line labelled `target_label`, e.g. the 90 % coverage line.
    """
    n, k = len(categories), max(1, len(series))
    colours = [s.colour or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]
    bar_w = 22 if k == 1 else max(10, 40 // k)
    rotate = n > 6
    if rotate:  # one line per category, turned 40°: room below and to the left for the longest
        widest = max(text_px(c.text(), 11) for c in categories)
        band = max(36, k * bar_w + 14)
        label_room = max(60.0, widest * 0.65 + 20)
        left = max(64.0, widest * 0.77 - band / 2 + 8)
    else:
        widest = max([0.0, *(max(text_px(c.zh, 11), text_px(c.en, 10)) for c in categories)])
        band = max(64, k * bar_w + 20, widest + 12)
        label_room, left = 40.0, 64.0
    # The target's label sits in the right margin, clear of the bars' values.
    right = 24 + (text_px(target_label.zh, 11) + 8 if target is not None and target_label else 0)
    top = 64
    legend_items = [(c, s.label.text()) for c, s in zip(colours, series)] if k > 1 else []
    width = max(480.0, left + right + n * band)
    legend, legend_h = _legend(legend_items, left, top, width - left - right)
    top += legend_h + (8 if legend_h else 0)
    plot_h = 240.0
    note_h = 16 * len(notes)
    height = top + plot_h + label_room + 24 + note_h
    values = [v for s in series for v in s.values]
    top_value = 100.0 if percent else nice_max(max([*values, target or 0, 0]))
    scale = plot_h / top_value
    base = top + plot_h
    summary = "; ".join(
        f"{cat.text()}: " + ", ".join(f"{s.label.text()} {number(s.values[i], decimals=decimals)}"
                                      f"{'%' if percent else ''}" for s in series)
        for i, cat in enumerate(categories))
    desc = f"{description} {summary}".strip() if summary else f"{description} (no data)".strip()
    out = _svg_open(ident, width, height, title, desc)
    out += legend
    # Axis, grid and ticks.
    ticks = 5
    out.append(f'<g stroke="{GRID}" stroke-width="1">')
    for i in range(ticks + 1):
        y = base - plot_h * i / ticks
        out.append(f'<line x1="{left:g}" y1="{y:.1f}" x2="{width - right:g}" y2="{y:.1f}"/>')
    out.append("</g>")
    out.append(f'<g font-size="11" fill="{MUTED}" text-anchor="end">')
    for i in range(ticks + 1):
        value = top_value * i / ticks
        y = base - plot_h * i / ticks
        tick = f"{number(value, decimals=0 if value == int(value) else 1)}{'%' if percent else ''}"
        out.append(f'<text x="{left - 6:g}" y="{y + 4:.1f}">{tick}</text>')
    out.append("</g>")
    if y_label is not None:
        mid = top + plot_h / 2
        out.append(f'<text x="16" y="{mid:.1f}" font-size="11" fill="{MUTED}" transform="rotate(-90 16 {mid:.1f})" '
                   f'text-anchor="middle">{_x(y_label.text())}</text>')
    # Bars.
    for i, cat in enumerate(categories):
        gx = left + i * band + (band - k * bar_w) / 2
        out.append('<g class="category">')
        for j, s in enumerate(series):
            v = s.values[i]
            h = max(0.0, v) * scale
            x = gx + j * bar_w
            shown = f"{number(v, decimals=decimals)}{'%' if percent else ''}"
            out.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w - 2}" height="{h:.1f}" '
                       f'fill="{colours[j]}"><title>{_x(cat.text())} — {_x(s.label.text())}: {shown}</title></rect>')
            if v or k == 1:  # zeros of grouped bars are in the titles and the description; drawn they clutter
                out.append(f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{base - h - 4:.1f}" font-size="10" '
                           f'text-anchor="middle">{_x(shown)}</text>')
        cx = left + i * band + band / 2
        if rotate:
            out.append(f'<text x="{cx:.1f}" y="{base + 14:.1f}" font-size="11" text-anchor="end" '
                       f'transform="rotate(-40 {cx:.1f} {base + 14:.1f})">{_x(cat.zh)}'
                       f'{f" {_x(cat.en)}" if cat.en else ""}</text>')
        else:
            out.append(f'<text x="{cx:.1f}" y="{base + 16:.1f}" font-size="11" text-anchor="middle">{_x(cat.zh)}'
                       f'</text>')
            if cat.en:
                out.append(f'<text x="{cx:.1f}" y="{base + 30:.1f}" font-size="10" fill="{MUTED}" '
                           f'text-anchor="middle">{_x(cat.en)}</text>')
        out.append("</g>")
    out.append(f'<line x1="{left:g}" y1="{base:.1f}" x2="{width - right:g}" y2="{base:.1f}" stroke="{TEXT}"/>')
    if target is not None:
        y = base - target * scale
        label = target_label.text() if target_label else number(target, decimals=decimals)
        out.append(f'<g class="target"><line x1="{left:g}" y1="{y:.1f}" x2="{width - right:g}" y2="{y:.1f}" '
                   f'stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="6 4"/>'
                   f'<text x="{width - right + 6:g}" y="{y - 2:.1f}" font-size="11" fill="{TARGET}">'
                   f'{_x(target_label.zh if target_label else label)}</text>'
                   + (f'<text x="{width - right + 6:g}" y="{y + 11:.1f}" font-size="10" fill="{TARGET}">'
                      f'{_x(target_label.en)}</text>' if target_label and target_label.en else "") + '</g>')
    if not categories:
        out.append(f'<text x="{(left + width - right) / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                   f'fill="{MUTED}">无数据 No data</text>')
    for i, note in enumerate(notes):
        out.append(f'<text x="16" y="{height - 8 - 16 * (len(notes) - 1 - i):.1f}" font-size="11" '
                   f'fill="{MUTED}">{_x(note)}</text>')
    out.append("</svg>")
    return "".join(p for p in out if p) + "\n"


def hbar_chart(*, ident: str, title: Label, description: str, categories: Sequence[Label],
               values: Sequence[float], colour: str = PALETTE[3], decimals: int = 0,
               notes: Sequence[str] = ()) -> str:
    """Horizontal bars for one series with long category names (e.g. violation kinds)."""
    label_w = max([150.0, *(text_px(c.text(), 12) + 16 for c in categories)])
    left, right, top, row = 16 + label_w, 72, 60, 26
    width = max(560.0, left + 360 + right)
    plot_w = width - left - right
    height = top + max(1, len(categories)) * row + 16 + 16 * len(notes)
    top_value = nice_max(max([*values, 0]))
    summary = "; ".join(f"{c.text()}: {number(v, decimals=decimals)}" for c, v in zip(categories, values))
    out = _svg_open(ident, width, height, title, f"{description} {summary}".strip())
    for i, (cat, v) in enumerate(zip(categories, values)):
        y = top + i * row
        w = max(0.0, v) / top_value * plot_w
        shown = number(v, decimals=decimals)
        out.append(f'<g class="category"><text x="{left - 8:.1f}" y="{y + 15:.1f}" text-anchor="end">{_x(cat.zh)}'
                   f'{f" {_x(cat.en)}" if cat.en else ""}</text>'
                   f'<rect x="{left:.1f}" y="{y + 4:.1f}" width="{w:.1f}" height="{row - 8}" fill="{colour}">'
                   f'<title>{_x(cat.text())}: {shown}</title></rect>'
                   f'<text x="{left + w + 6:.1f}" y="{y + 15:.1f}" font-size="11">{shown}</text></g>')
    out.append(f'<line x1="{left:.1f}" y1="{top - 2}" x2="{left:.1f}" y2="{top + len(categories) * row + 2}" '
               f'stroke="{TEXT}"/>')
    if not categories:
        out.append(f'<text x="{width / 2:.1f}" y="{top + 16}" text-anchor="middle" fill="{MUTED}">无数据 No data</text>')
    for i, note in enumerate(notes):
        out.append(f'<text x="16" y="{height - 8 - 16 * (len(notes) - 1 - i):.1f}" font-size="11" '
                   f'fill="{MUTED}">{_x(note)}</text>')
    out.append("</svg>")
    return "".join(p for p in out if p) + "\n"


# --- the statistics charts -------------------------------------------------------------------------

def scope_title(scope: stats.Scope) -> str:
    """Where and when a statistics drawing is about: "region · GI · years"."""
    years = str(scope.from_year) if scope.from_year == scope.to_year else f"{scope.from_year}–{scope.to_year}"
    gi = f" · {scope.gi.name_zh}" if scope.gi else ""
    return f"{scope.region.name}{gi} · {years}"


def _group_label(group: dict[str, Any]) -> Label:
    key = group["key"]
    if "year" in key:
        return Label(str(key["year"]))
    if "gi" in key:
        gi = key["gi"]
        return Label(gi["name_zh"], gi.get("name_en") or "") if gi else stats.NO_GI
    if key.get("region") is None:
        return stats.UNPLACED
    if key.get("direct"):
        return Label(key["region"]["name"], stats.DIRECT.en)
    return Label(key["region"]["name"], key["region"]["adcode"])


def statistics_chart_svg(session: Session, scope: stats.Scope, name: str, *, group_by: str | None = None) -> str:
    """One of the statistics' CHARTS as an SVG document."""
    stats.require_chart(name)
    where = scope_title(scope)
    ident = f"gi-chart-{name}"
    if name == "coverage":
        group_by = group_by or "gi"
        data = stats.compute(session, scope, group_by)
        groups = [g for g in data.groups if g["figures"]["coverage"]["eligible"]]
        cats = [_group_label(g) for g in groups]
        values = tuple(float(g["figures"]["coverage"]["percent"]) for g in groups)
        shares = "; ".join(f"{c.text()}: {g['figures']['coverage']['users']}/{g['figures']['coverage']['eligible']}"
                           for c, g in zip(cats, groups))
        total = data.total["coverage"]
        overall = (f"合计 total {total['percent']}% ({total['users']}/{total['eligible']})"
                   if total["eligible"] else "无应覆盖主体 no eligible entities")
        return bar_chart(
            ident=ident, title=Label(f"专用标志覆盖率 · {where}", "Coverage of the GI special mark"),
            description=f"Share of eligible authorized entities that used marks, per {group_by}, against the 90% "
                        f"target. {overall}. Users/eligible: {shares or 'none'}.",
            categories=cats, series=[Series(Label("覆盖率", "coverage"), values, PALETTE[0])],
            target=stats.TARGET * 100, target_label=Label("目标 90%", "target"), percent=True, decimals=1,
            y_label=Label("覆盖率", "coverage %"), notes=[overall])
    if name == "marks-by-month":
        months = stats.marks_by_month(session, scope)
        kinds = stats.CHART_MARK_KINDS
        series = [Series(stats.MARK_LABELS[k], tuple(float(months[m][k]) for m in range(1, 13)), PALETTE[i])
                  for i, k in enumerate(kinds)]
        totals = ", ".join(f"{stats.MARK_LABELS[k].text()} {sum(months[m][k] for m in months):,}" for k in kinds)
        return bar_chart(
            ident=ident, title=Label(f"专用标志月度台账 · {where}", "Special marks per month"),
            description=f"Marks per month (China time) by ledger kind. Year totals: {totals}.",
            categories=[Label(f"{m}月", f"{m:02d}") for m in range(1, 13)], series=series,
            y_label=Label("枚", "marks"), notes=[f"合计 totals: {totals}"])
    data = stats.compute(session, scope)
    if name == "findings-by-violation":
        f = data.total["findings"]
        labels = stats.VIOLATION_LABELS
        return hbar_chart(
            ident=ident, title=Label(f"执法检查发现（按违法类型） · {where}", "Findings by violation kind"),
            description=f"{f['total']} findings, {f['with_violations']} with violations, {f['without_violations']} "
                        "clean inspections; a finding with several kinds counts once for each.",
            categories=[labels[k] for k in labels], values=[float(f["by_violation"][k]) for k in labels],
            notes=[f"发现 findings {f['total']}，其中合规 clean {f['without_violations']}"])
    c = data.total["checks"]
    labels = stats.VERDICT_LABELS
    return bar_chart(
        ident=ident, title=Label(f"消费者查询（按结论） · {where}", "Consumer checks by verdict"),
        description=f"{c['total']} checks by verdict; {c['bots']} visits by bots not counted.",
        categories=[labels[k] for k in labels],
        series=[Series(Label("查询", "checks"), tuple(float(c["by_verdict"][k]) for k in labels), PALETTE[0])],
        y_label=Label("次", "checks"), notes=[f"查询 checks {c['total']}；机器人 bots {c['bots']}（不计入 not counted）"])
