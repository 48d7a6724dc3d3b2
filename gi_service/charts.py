"""Small, accessible SVG charts and maps: pure functions of plain values, no database, no Flask.

Every drawing is a complete standalone SVG document that

* names itself for assistive technology (``role="img"``, ``<title>`` and ``<desc>`` referenced by
  ``aria-labelledby``; the description lists the figures drawn, so nothing is only visual);
* labels in Chinese with English (``Label(zh, en)``), drawn as text, with the system's sans-serif
  fonts (no web fonts, no scripts, no external references of any kind: the only URL in the file is
  the SVG namespace);
* is deterministic: the same input gives the same bytes (no timestamps, no random ids; numbers
  are formatted with fixed rules), so the HTTP layer can answer with an ETag and caches hold.

Charts: ``bar_chart`` (vertical, grouped series, an optional target line such as the 90 %
coverage line) and ``hbar_chart`` (one series with long category names). Maps: ``MapFrame``
projects lon/lat to pixels (equirectangular, corrected for latitude, as on the verification
page), ``outline_path`` draws a boundary simplified to about a pixel, and ``map_svg`` puts
boundaries, points and a legend together.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Sequence

import shapely

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
PALETTE = ("#1f6f8b", "#e07a1f", "#3c9d4e", "#b8323a", "#7a5aa6", "#8c6d31", "#d45d9e", "#5f6b73")
TEXT = "#1d2327"
MUTED = "#5f6b73"
GRID = "#d9dee2"
TARGET = "#b8323a"


@dataclass(frozen=True)
class Label:
    """A label in Chinese with its English."""

    zh: str
    en: str = ""

    def text(self) -> str:
        return f"{self.zh} {self.en}".strip() if self.en and self.en != self.zh else self.zh


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


# --- maps ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapFrame:
    """An equirectangular projection of a lon/lat box onto a `width` × `height` pixel map."""

    x0: float
    y1: float
    sx: float
    sy: float
    width: float
    height: float

    @classmethod
    def fit(cls, bounds: tuple[float, float, float, float], *, width: float = 800.0,
            max_height: float = 640.0) -> "MapFrame":
        min_x, min_y, max_x, max_y = bounds
        pad_x, pad_y = (max_x - min_x) * 0.03 or 0.01, (max_y - min_y) * 0.03 or 0.01
        x0, x1, y0, y1 = min_x - pad_x, max_x + pad_x, min_y - pad_y, max_y + pad_y
        k = math.cos(math.radians((y0 + y1) / 2))  # a degree of longitude shrinks with latitude
        scale = width / ((x1 - x0) * k)
        if (y1 - y0) * scale > max_height:
            scale = max_height / (y1 - y0)
        return cls(x0, y1, k * scale, scale, round((x1 - x0) * k * scale, 1), round((y1 - y0) * scale, 1))

    def project(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.x0) * self.sx, (self.y1 - lat) * self.sy

    @property
    def pixel_degrees(self) -> float:
        """About one pixel, in degrees of latitude (the simplification tolerance)."""
        return 1.0 / self.sy


def outline_path(geom, frame: MapFrame) -> str:
    """The SVG path of a (multi)polygon's rings, simplified to about a pixel; rings under a pixel dropped."""
    if geom is None or geom.is_empty:
        return ""
    # Without topology: outlines are only drawn, and keeping topology costs seconds on a country's rings.
    simplified = shapely.simplify(geom, frame.pixel_degrees, preserve_topology=False)
    parts = []
    for poly in getattr(simplified, "geoms", [simplified]):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            pts = [frame.project(x, y) for x, y in ring.coords]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            if max(xs) - min(xs) < 1.0 and max(ys) - min(ys) < 1.0:
                continue
            parts.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in pts[:-1]) + "Z")
    return "".join(parts)


@dataclass(frozen=True)
class MapPart:
    """A unit drawn inside the region (a city of a province, a county of a city), with its name."""

    label: Label
    path: str
    anchor: tuple[float, float] | None = None   # where its name goes (pixels); None: too small to name


@dataclass(frozen=True)
class MapLayer:
    key: str
    label: Label
    colour: str
    shape: str = "circle"      # circle | triangle
    hollow: bool = False
    total: int = 0             # what the legend says it counts (may exceed the points drawn)


@dataclass(frozen=True)
class MapPoint:
    layer: str
    x: float                   # pixels (project with the map's frame)
    y: float
    count: int = 1             # > 1: an aggregate (e.g. a county's findings), drawn bigger with its count
    title: str = ""


def _marker(layer: MapLayer, p: MapPoint) -> str:
    r = 5.0 if p.count <= 1 else min(22.0, 7.0 + 3.0 * math.sqrt(p.count))
    fill = "none" if layer.hollow else layer.colour
    stroke = layer.colour if layer.hollow else "#ffffff"
    title = f"<title>{_x(p.title)}</title>" if p.title else ""
    if layer.shape == "triangle":
        h = r * 1.8
        shape = (f'<path d="M{p.x:.1f} {p.y - h * 0.6:.1f}L{p.x + r:.1f} {p.y + h * 0.4:.1f}'
                 f'L{p.x - r:.1f} {p.y + h * 0.4:.1f}Z" fill="{fill}" stroke="{stroke}" '
                 f'stroke-width="1.5">{title}</path>')
    else:
        shape = (f'<circle cx="{p.x:.1f}" cy="{p.y:.1f}" r="{r:.1f}" fill="{fill}" stroke="{stroke}" '
                 f'stroke-width="1.5">{title}</circle>')
    if p.count > 1:
        shape += (f'<text x="{p.x:.1f}" y="{p.y + 4:.1f}" font-size="10" text-anchor="middle" '
                  f'fill="{"#ffffff" if not layer.hollow else layer.colour}">{p.count}</text>')
    return shape


def map_svg(*, ident: str, title: Label, description: str, frame: MapFrame, region_path: str,
            parts: Sequence[MapPart] = (), layers: Sequence[MapLayer] = (), points: Sequence[MapPoint] = (),
            notes: Sequence[Label] = ()) -> str:
    """A map of a region: its outline, the units inside it named, points per layer and a legend below.

    Each note is written as two lines, Chinese then English, so a narrow map does not cut it off.
    """
    top = 52.0
    width, map_h = frame.width, frame.height
    width_all = max(width, 480.0)
    legend_items = []
    for layer in layers:
        legend_items.append((layer, f"{layer.label.text()}: {layer.total}"))
    legend_h = 20.0 * len(legend_items) + 30.0 * len(notes) + (12 if legend_items or notes else 0)
    height = top + map_h + 12 + legend_h
    out = _svg_open(ident, width_all, height, title, description)
    out.append(f'<g transform="translate(0 {top:g})">')
    out.append(f'<g class="units" fill="#eef2ee" stroke="#9aa7a0" stroke-width="0.6" fill-rule="evenodd">')
    for part in parts:
        out.append(f'<path d="{part.path}"><title>{_x(part.label.text())}</title></path>')
    out.append("</g>")
    out.append(f'<path class="region" d="{region_path}" fill="{"none" if parts else "#eef2ee"}" stroke="#24553a" '
               f'stroke-width="1.5" fill-rule="evenodd"/>')
    named = [p for p in parts if p.anchor is not None]
    if named:
        out.append(f'<g class="names" font-size="10" fill="{MUTED}" text-anchor="middle">')
        for part in named:
            out.append(f'<text x="{part.anchor[0]:.1f}" y="{part.anchor[1]:.1f}">{_x(part.label.zh)}</text>')
        out.append("</g>")
    by_key = {layer.key: layer for layer in layers}
    for layer in layers:
        mine = [p for p in points if p.layer == layer.key]
        out.append(f'<g class="layer-{_x(layer.key)}">')
        out.extend(_marker(by_key[layer.key], p) for p in mine)
        out.append("</g>")
    out.append("</g>")
    y = top + map_h + 24
    for layer, text in legend_items:
        out.append(_marker(layer, MapPoint(layer.key, 24, y - 4)))
        out.append(f'<text x="38" y="{y:.1f}">{_x(text)}</text>')
        y += 20
    for note in notes:
        out.append(f'<text x="16" y="{y:.1f}" font-size="11" fill="{MUTED}">{_x(note.zh)}</text>')
        if note.en:
            out.append(f'<text x="16" y="{y + 14:.1f}" font-size="10" fill="{MUTED}">{_x(note.en)}</text>')
        y += 30
    out.append("</svg>")
    return "".join(p for p in out if p) + "\n"
