"""A single label as SVG: millimetre units, text as glyph outlines (no font needed to view it), the QR as one path."""
from __future__ import annotations

import base64
from xml.sax.saxutils import escape, quoteattr

from .draw import fit_inside, module_runs, num, open_artwork
from .fonts import LabelFont, default_font
from .qr import DEFAULT_MASK, plan, url_qr_version
from .spec import (
    LabelContent,
    LabelSpec,
    TextRun,
    check_content,
    layout,
    placeholder_runs,
    placeholder_stroke,
    serial_run,
    static_runs,
)


def _text(run: TextRun, font: LabelFont) -> str:
    """A text line as glyph outline paths, with its text in aria-label for search and screen readers."""
    scale = run.size / font.units_per_em
    x = run.x
    parts = [f"<g aria-label={quoteattr(run.text)}>"]
    for ch in run.text:
        d = font.outline(ch)
        if d:
            parts.append(f'<path transform="matrix({num(scale, 6)} 0 0 {num(-scale, 6)} {num(x, 4)} '
                         f'{num(run.baseline, 4)})" d="{d}"/>')
        x += font.advance(ch) * run.size
    parts.append("</g>")
    return "".join(parts)


def render_svg(content: LabelContent, spec: LabelSpec, *, qr_version: int | None = None, mask: int = DEFAULT_MASK,
               font: LabelFont | None = None) -> bytes:
    """One label as an SVG document (UTF-8 bytes), sized in millimetres."""
    check_content(content)
    font = font or default_font()
    version = qr_version or url_qr_version(content.url, spec.error_correction)
    lay = layout(spec, version)
    w, h = num(spec.width_mm), num(spec.height_mm)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n',
           (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" '
            f'width="{w}mm" height="{h}mm" viewBox="0 0 {w} {h}">'),
           f"<title>{escape(content.gi_name_zh)} {escape(content.printed_serial)}</title>",
           f'<rect width="{w}" height="{h}" fill="#fff"/>']
    box = lay.artwork
    if content.artwork_png is None:
        stroke = placeholder_stroke(lay)
        out.append(f'<rect x="{num(box.x + stroke / 2)}" y="{num(box.y + stroke / 2)}" width="{num(box.w - stroke)}" '
                   f'height="{num(box.h - stroke)}" fill="none" stroke="#000" stroke-width="{num(stroke)}"/>')
        out.extend(_text(run, font) for run in placeholder_runs(lay, font))
    else:
        art = open_artwork(content.artwork_png)           # refuses what is not a PNG
        aw, ah = fit_inside(art.width, art.height, box.w, box.h)
        uri = "data:image/png;base64," + base64.b64encode(bytes(content.artwork_png)).decode("ascii")
        out.append(f'<image x="{num(box.x + (box.w - aw) / 2)}" y="{num(box.y + (box.h - ah) / 2)}" '
                   f'width="{num(aw)}" height="{num(ah)}" href="{uri}" xlink:href="{uri}"/>')
    out.extend(_text(run, font) for run in static_runs(lay, content, font))
    out.append(_text(serial_run(lay, content.printed_serial, font), font))
    runs = module_runs(plan(version, spec.error_correction, mask).matrix(content.url))
    x0, y0 = lay.symbol_origin
    d = "".join(f"M{c} {r}h{n}v1h-{n}z" for c, r, n in runs.tolist())
    out.append(f'<path fill="#000" shape-rendering="crispEdges" transform="matrix({num(lay.module_mm, 6)} 0 0 '
               f'{num(lay.module_mm, 6)} {num(x0, 4)} {num(y0, 4)})" d="{d}"/>')
    out.append("</svg>\n")
    return "".join(out).encode("utf-8")
