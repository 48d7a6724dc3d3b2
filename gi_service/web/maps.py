"""Inline SVG maps for the web pages, drawn from the stored geometries: no tiles, no CDN, no script.

The projection and simplification are the verification page's (`services.verification.outline`):
equirectangular on the bounding box, simplified to about a pixel. Signed-in pages may show a
producer's plots as outlines (the consumer page shows only coarse dots); a plot smaller than a
few pixels at the map's scale is drawn as a numbered marker so it can still be found.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import shapely
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import OriginArea, Plot
from ..services.verification import outline

MIN_PLOT_PX = 6.0
DETAIL_PAD_DEG = 0.004  # ~400 m around the plots on the detail map

_lock = threading.Lock()
_cache: OrderedDict[int, tuple[tuple[float, ...], str]] = OrderedDict()
_CACHE_SIZE = 64


def _project(frame: tuple[float, ...], lon: float, lat: float) -> tuple[float, float]:
    x0, y1, sx, sy = frame[:4]
    return (lon - x0) * sx, (y1 - lat) * sy


def _area_outline(session: Session, area: OriginArea) -> tuple[tuple[float, ...], str]:
    """The whole area in its own frame; areas never change, so the drawing is cached by id."""
    with _lock:
        hit = _cache.get(area.id)
        if hit is not None:
            _cache.move_to_end(area.id)
            return hit
    geom = session.scalar(select(OriginArea.geom).where(OriginArea.id == area.id))
    value = outline(geom, (area.min_x, area.min_y, area.max_x, area.max_y))
    with _lock:
        _cache[area.id] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _plot_shapes(frame: tuple[float, ...], plots: Sequence[Plot], *, numbered: bool = True) -> str:
    """Plots as outlines numbered like the table; one too small to see becomes a marker. Without
    numbers (the whole-area map, where nearby plots overlap) every plot is a plain dot."""
    parts = []
    for n, plot in enumerate(plots, start=1):
        geom = plot.geom
        minx, miny, maxx, maxy = geom.bounds
        (ax, ay), (bx, by) = _project(frame, minx, maxy), _project(frame, maxx, miny)
        label = escape(f"{n}. {plot.name} ({plot.area_mu:.1f} mu)")
        c = geom.representative_point()
        x, y = _project(frame, c.x, c.y)
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
                pts = [_project(frame, px, py) for px, py in ring.coords]
                d.append("M" + "L".join(f"{px:.1f} {py:.1f}" for px, py in pts[:-1]) + "Z")
        parts.append(f'<g class="plot"><title>{label}</title><path d="{"".join(d)}" fill="#c0392b" '
                     f'fill-opacity=".45" stroke="#c0392b" stroke-width="1.5" fill-rule="evenodd"/>'
                     f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="12" fill="#7a1f14">{n}</text>'
                     f'</g>')
    return "".join(parts)


def _svg(frame: tuple[float, ...], area_path: str, plots_svg: str, title: str, css_class: str,
         stroke: str = "#24553a") -> Markup:
    width, height = frame[4], frame[5]
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
                  f'aria-label="{escape(title)}" class="map {css_class}"><title>{escape(title)}</title>'
                  f'<path d="{area_path}" fill="#dfe8dc" stroke="{stroke}" stroke-width="1" fill-rule="evenodd"/>'
                  f'{plots_svg}</svg>')


def area_map(session: Session, area_id: int | None, *, title: str, plots: Sequence[Plot] = ()) -> Markup | None:
    """The production area with `plots` drawn on it (numbered as listed); None without an area."""
    area = session.get(OriginArea, area_id) if area_id else None
    if area is None:
        return None
    frame, path = _area_outline(session, area)
    return _svg(frame, path, _plot_shapes(frame, plots, numbered=False), title, "area-map")


def plots_map(session: Session, area_id: int | None, plots: Sequence[Plot], *, title: str) -> Markup | None:
    """A close-up fitted to the plots, numbered like the table, on the part of the area around them."""
    if not plots:
        return None
    minx, miny, maxx, maxy = shapely.union_all([p.geom for p in plots]).bounds
    bounds = (minx - DETAIL_PAD_DEG, miny - DETAIL_PAD_DEG, maxx + DETAIL_PAD_DEG, maxy + DETAIL_PAD_DEG)
    frame, _ = outline(shapely.box(*bounds), bounds)
    area_path = ""
    area = session.get(OriginArea, area_id) if area_id else None
    if area is not None:
        geom = session.scalar(select(OriginArea.geom).where(OriginArea.id == area.id))
        # Cut the area a little wider than the map (the map clips it), so the cut never shows as an edge.
        w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
        near = shapely.clip_by_rect(geom, bounds[0] - w, bounds[1] - h, bounds[2] + w, bounds[3] + h)
        if not near.is_empty:
            _, area_path = outline(near, bounds)
    return _svg(frame, area_path, _plot_shapes(frame, plots), title, "plots-map")
