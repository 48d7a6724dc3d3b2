"""Single labels as PNG images at print resolution, and a zip stream of one PNG per label."""
from __future__ import annotations

import io
import itertools
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import BinaryIO

import numpy as np

from .draw import fit_inside, open_artwork
from .errors import LabelError
from .fonts import LabelFont, default_font
from .qr import DEFAULT_MASK, plan, url_qr_version
from .spec import (
    QUIET_ZONE,
    LabelContent,
    LabelSpec,
    Layout,
    check_content,
    layout,
    placeholder_runs,
    placeholder_stroke,
    serial_run,
    static_runs,
)


class _Rasterizer:
    """Draws labels of one spec and QR plan; the part every label of a batch shares is drawn once."""

    def __init__(self, spec: LabelSpec, qr_version: int, mask: int, font: LabelFont):
        self.spec = spec
        self.layout: Layout = layout(spec, qr_version)
        self.plan = plan(qr_version, spec.error_correction, mask)
        self.font = font
        self.px = spec.dpi / 25.4
        self._bases: OrderedDict[tuple, object] = OrderedDict()
        lay = self.layout
        self.module_px = lay.module_px()
        across = (lay.modules + 2 * QUIET_ZONE) * self.module_px
        cx = (lay.qr_area.x + lay.qr_area.w / 2) * self.px
        cy = (lay.qr_area.y + lay.qr_area.h / 2) * self.px
        self.symbol_px = (round(cx - across / 2) + QUIET_ZONE * self.module_px,
                          round(cy - across / 2) + QUIET_ZONE * self.module_px)

    def _text(self, draw, run) -> None:
        px = self.px
        draw.text((run.x * px, run.baseline * px), run.text, font=self.font.pillow(run.size * px), fill=0,
                  anchor="ls")

    def base(self, content: LabelContent):
        """The label without QR and serial, for this content's GI, USCC, number and artwork (cached)."""
        key = content.static_key
        image = self._bases.get(key)
        if image is not None:
            self._bases.move_to_end(key)
            return image
        from PIL import Image, ImageDraw
        lay, px = self.layout, self.px
        mode = "L" if content.artwork_png is None else "RGB"
        image = Image.new(mode, (self.spec.width_px, self.spec.height_px), 255 if mode == "L" else (255, 255, 255))
        draw = ImageDraw.Draw(image)
        box = lay.artwork
        if content.artwork_png is None:
            stroke = max(1, round(placeholder_stroke(lay) * px))
            draw.rectangle([round(box.x * px), round(box.y * px), round((box.x + box.w) * px) - 1,
                            round((box.y + box.h) * px) - 1], outline=0, width=stroke)
            for run in placeholder_runs(lay, self.font):
                self._text(draw, run)
        else:
            art = open_artwork(content.artwork_png)
            w, h = fit_inside(art.width, art.height, box.w * px, box.h * px)
            w, h = max(1, round(w)), max(1, round(h))
            art = art.resize((w, h), Image.LANCZOS)
            image.paste(art, (round(box.x * px + (box.w * px - w) / 2), round(box.y * px + (box.h * px - h) / 2)),
                        art)
        for run in static_runs(lay, content, self.font):
            self._text(draw, run)
        self._bases[key] = image
        if len(self._bases) > 4:
            self._bases.popitem(last=False)
        return image

    def image(self, content: LabelContent):
        """The whole label as a Pillow image."""
        from PIL import Image, ImageDraw
        check_content(content)
        image = self.base(content).copy()
        matrix = self.plan.matrix(content.url)
        k = self.module_px
        symbol = np.where(matrix.astype(bool), 0, 255).astype(np.uint8).repeat(k, axis=0).repeat(k, axis=1)
        image.paste(Image.fromarray(symbol, "L"), self.symbol_px)
        self._text(ImageDraw.Draw(image), serial_run(self.layout, content.printed_serial, self.font))
        return image

    def png(self, content: LabelContent, compress_level: int = 6) -> bytes:
        buf = io.BytesIO()
        self.image(content).save(buf, "PNG", dpi=(self.spec.dpi, self.spec.dpi), compress_level=compress_level)
        return buf.getvalue()


def render_png(content: LabelContent, spec: LabelSpec, *, qr_version: int | None = None, mask: int = DEFAULT_MASK,
               font: LabelFont | None = None) -> bytes:
    """One label as a PNG at the spec's dpi (dpi recorded in the file); the QR version fits the URL unless given."""
    check_content(content)
    version = qr_version or url_qr_version(content.url, spec.error_correction)
    return _Rasterizer(spec, version, mask, font or default_font()).png(content)


def write_png_zip(items: Iterable[LabelContent], spec: LabelSpec, out: BinaryIO, *, qr_version: int | None = None,
                  mask: int = DEFAULT_MASK, font: LabelFont | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Stream a zip of one PNG per label (``{serial}.png``, stored, not deflated) to ``out``; returns the count.

    ``out`` may be unseekable (an HTTP response): zip data descriptors make that work.
    The batch uses one QR version: ``qr_version``, or the one the first URL needs.
    """
    font = font or default_font()
    iterator = iter(items)
    first = next(iterator, None)
    if first is None:
        raise LabelError("empty_batch", "no labels to write")
    check_content(first)
    rasterizer = _Rasterizer(spec, qr_version or url_qr_version(first.url, spec.error_correction), mask, font)
    count = 0
    # The zip's central directory (written last) keeps one small entry per label in memory.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for content in itertools.chain((first,), iterator):
            check_content(content)
            name = f"{content.serial}.png"
            try:
                archive.getinfo(name)
            except KeyError:
                pass
            else:
                raise LabelError("duplicate_serial", f"serial {content.serial} appears twice in the batch")
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, rasterizer.png(content))
            count += 1
            if progress is not None:
                progress(count)
    return count
