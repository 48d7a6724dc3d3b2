"""Single labels as PNG and SVG: print size and resolution, scannable QR with its quiet zone, artwork or placeholder."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import resvg_py

from labels import (
    PRESETS,
    QUIET_ZONE,
    LabelError,
    LabelSpec,
    layout,
    render_png,
    render_svg,
)
from labels.fonts import default_font
from labels.raster import _Rasterizer
from tests.labels.helpers import decode, ink, make_items, png_image, solid_png

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("dpi", [300, 600])
@pytest.mark.parametrize("name", PRESETS)
def test_png_is_print_size_and_its_qr_decodes_to_the_url(name, dpi):
    """At each preset and resolution, is the PNG the label's size in pixels, tagged with its dpi, and does it scan?"""
    item = next(make_items(1, start=4321))
    spec = LabelSpec.preset(name, dpi)
    image = png_image(render_png(item, spec))
    assert image.size == (round(spec.width_mm * dpi / 25.4), round(spec.height_mm * dpi / 25.4))
    assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)
    assert decode(image) == [item.url]


@pytest.mark.parametrize("name", PRESETS)
def test_png_quiet_zone_is_four_clear_modules(name):
    """Is there a white band of at least 4 modules around the symbol, and modules of at least 0.25 mm?"""
    spec = LabelSpec.preset(name, 600)
    item = next(make_items(1))
    r = _Rasterizer(spec, 4, 2, default_font())
    dark = ink(png_image(render_png(item, spec)))
    k, n = r.module_px, r.layout.modules
    x, y = r.symbol_px
    assert k * 25.4 / spec.dpi >= 0.25
    quiet = dark[y - QUIET_ZONE * k:y + (n + QUIET_ZONE) * k, x - QUIET_ZONE * k:x + (n + QUIET_ZONE) * k].copy()
    symbol = quiet[QUIET_ZONE * k:-QUIET_ZONE * k, QUIET_ZONE * k:-QUIET_ZONE * k]
    assert symbol[:7 * k, :7 * k].all(axis=0).any()           # the top-left finder is where the layout says
    quiet[QUIET_ZONE * k:-QUIET_ZONE * k, QUIET_ZONE * k:-QUIET_ZONE * k] = False
    assert not quiet.any()


def test_uploaded_artwork_replaces_the_placeholder():
    """With artwork PNG bytes, is the artwork drawn in its box (and no placeholder), and still scannable?"""
    spec = LabelSpec.preset("40x60", 300)
    lay = layout(spec, 4)
    px = spec.dpi / 25.4
    red = solid_png((220, 20, 20, 255))
    item = next(make_items(1, artwork=red))
    image = png_image(render_png(item, spec)).convert("RGB")
    cx, cy = (lay.artwork.x + lay.artwork.w / 2) * px, (lay.artwork.y + lay.artwork.h / 2) * px
    assert image.getpixel((round(cx), round(cy))) == pytest.approx((220, 20, 20), abs=3)
    assert decode(image) == [item.url]
    plain = png_image(render_png(next(make_items(1)), spec)).convert("RGB")
    assert np.asarray(plain).std(axis=2).max() < 1e-9              # placeholder labels are pure grey levels
    edge = ink(plain)[round(lay.artwork.y * px) + 1, round(lay.artwork.x * px):round((lay.artwork.x + lay.artwork.w) * px)]
    assert edge.mean() > 0.95                                     # the placeholder's outline


@pytest.mark.parametrize("bad", [b"not a png", b"\xff\xd8\xff\xe0 jpeg", b"\x89PNG\r\n\x1a\n truncated"])
def test_artwork_that_is_not_a_png_is_refused(bad):
    """Is artwork that is not a readable PNG refused with artwork_invalid in every output?"""
    item = next(make_items(1, artwork=bad))
    for render in (render_png, render_svg):
        with pytest.raises(LabelError) as err:
            render(item, LabelSpec.preset("30x30"))
        assert err.value.code == "artwork_invalid"


def test_too_small_a_label_for_the_url_is_refused_before_drawing():
    """Is a label whose QR modules would be under 0.25 mm refused (module_too_small) by the single renderers?"""
    item = next(make_items(1))
    for render in (render_png, render_svg):
        with pytest.raises(LabelError) as err:
            render(item, LabelSpec.preset("20x20", error_correction="Q"))
        assert err.value.code == "module_too_small"


def svg_tree(data: bytes) -> ET.Element:
    return ET.fromstring(data)


@pytest.mark.parametrize("name", PRESETS)
def test_svg_is_millimetre_sized_and_scans_when_rendered(name):
    """Is the SVG sized in mm, text drawn as outlines (no font needed), and does resvg's rendering scan?"""
    item = next(make_items(1, start=99))
    spec = LabelSpec.preset(name)
    data = render_svg(item, spec)
    root = svg_tree(data)
    assert root.get("width") == f"{spec.width_mm:g}mm" and root.get("height") == f"{spec.height_mm:g}mm"
    assert root.find(f".//{SVG}text") is None
    labels = [g.get("aria-label") for g in root.iter(f"{SVG}g")]
    assert item.gi_name_zh in labels and item.printed_serial in labels and "地理标志" in labels
    png = bytes(resvg_py.svg_to_bytes(svg_string=data.decode(), dpi=600, skip_system_fonts=True,
                                      background="#ffffff"))
    assert decode(png_image(png)) == [item.url]


def test_svg_embeds_uploaded_artwork():
    """Does the SVG carry the uploaded artwork as a PNG data URI instead of the placeholder box?"""
    art = solid_png((20, 120, 20, 255))
    root = svg_tree(render_svg(next(make_items(1, artwork=art)), LabelSpec.preset("30x30")))
    images = list(root.iter(f"{SVG}image"))
    assert len(images) == 1 and images[0].get("href").startswith("data:image/png;base64,")
    assert "地理标志" not in [g.get("aria-label") for g in root.iter(f"{SVG}g")]


def test_png_zip_streams_one_scannable_png_per_label():
    """Does the zip stream, to an unseekable writer, hold one {serial}.png per label that scans to its URL?"""
    import zipfile

    from labels import write_png_zip

    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.buf = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.buf += b
            return len(b)

    items = list(make_items(6))
    sink = Unseekable()
    seen = []
    assert write_png_zip(iter(items), LabelSpec.preset("30x30"), sink, progress=seen.append) == 6
    assert seen == [1, 2, 3, 4, 5, 6]
    archive = zipfile.ZipFile(io.BytesIO(bytes(sink.buf)))
    assert archive.namelist() == [f"{i.serial}.png" for i in items]
    for item in items:
        assert decode(png_image(archive.read(f"{item.serial}.png"))) == [item.url]
    with pytest.raises(LabelError) as err:
        write_png_zip(iter(items[:2] + items[:1]), LabelSpec.preset("30x30"), io.BytesIO())
    assert err.value.code == "duplicate_serial"
    with pytest.raises(LabelError) as err:
        write_png_zip(iter([]), LabelSpec.preset("30x30"), io.BytesIO())
    assert err.value.code == "empty_batch"
