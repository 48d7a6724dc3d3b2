"""Helpers for the label library tests: label data as the service makes it, QR decoding, PDF rasterizing.

Label data is made the way the service makes it -- real serials and HMAC codes
from gi_service.codes with a fixed test key -- so URLs have production length.
Every QR check decodes with zxing-cpp, a decoder independent of the encoder.
"""
from __future__ import annotations

import io

import numpy as np
import pypdfium2 as pdfium
import zxingcpp
from PIL import Image

from gi_service.codes import (
    MarkKeyring,
    code_url,
    display_serial,
    format_serial,
    make_code,
)
from labels import LabelContent

BASE_URL = "https://gi.cnipa.gov.cn"
KEYRING = MarkKeyring({"A": bytes(range(32))}, "A")
GI_NAME = "亳白芍"
USCC = "91341600MA2N1X2Y3Z"
NUMBER = "国家知识产权局公告第354号"


def make_items(n: int, *, start: int = 1, prefix: str = "BBSH", gi_name: str = GI_NAME, artwork: bytes | None = None,
               base_url: str = BASE_URL):
    """A generator of n labels with real serials and codes, in serial order."""
    for seq in range(start, start + n):
        serial = format_serial(prefix, 2026, seq)
        code = make_code(KEYRING, serial)
        yield LabelContent(gi_name, USCC, NUMBER, serial, code_url(base_url, code), display_serial(serial), artwork)


def decode(image) -> list[str]:
    """Texts of every QR code zxing-cpp finds in a PIL image."""
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def png_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def render_pdf(data: bytes, page: int, dpi: int) -> Image.Image:
    """One page of a PDF rasterized by pdfium at a resolution."""
    doc = pdfium.PdfDocument(data)
    try:
        return doc[page].render(scale=dpi / 72).to_pil().convert("L")
    finally:
        doc.close()


def pdf_pages(data: bytes) -> int:
    doc = pdfium.PdfDocument(data)
    try:
        return len(doc)
    finally:
        doc.close()


def pdf_text(data: bytes, page: int) -> str:
    doc = pdfium.PdfDocument(data)
    try:
        return doc[page].get_textpage().get_text_range()
    finally:
        doc.close()


def solid_png(color: tuple[int, int, int, int], size: tuple[int, int] = (120, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, "PNG")
    return buf.getvalue()


def ink(image: Image.Image, threshold: int = 128) -> np.ndarray:
    """Boolean array: where a grayscale image is dark."""
    return np.asarray(image.convert("L")) < threshold


def build_truetype_font(path, chars: str, family: str = "Test Blocks SC") -> None:
    """A small TrueType (glyf) font drawing every character as its own block pattern, for the TrueType path."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    chars = sorted(set(chars) - {" "})
    names = [".notdef", "space"] + [f"uni{ord(c):04X}" for c in chars]
    glyphs = {}
    for name in names:
        pen = TTGlyphPen(None)
        if name.startswith("uni"):
            cp = int(name[3:], 16)
            for i in range(4):                     # four bars whose heights spell the code point
                h = 150 + ((cp >> (3 * i)) & 7) * 90
                x = 80 + i * 210
                pen.moveTo((x, 0))
                pen.lineTo((x, h))
                pen.lineTo((x + 150, h))
                pen.lineTo((x + 150, 0))
                pen.closePath()
        elif name == ".notdef":
            for (x0, y0, x1, y1) in ((50, 0, 950, 800), (120, 70, 880, 730)):   # a hollow box
                pen.moveTo((x0, y0))
                pen.lineTo((x1, y0) if x0 == 120 else (x0, y1))
                pen.lineTo((x1, y1))
                pen.lineTo((x0, y1) if x0 == 120 else (x1, y0))
                pen.closePath()
        glyphs[name] = pen.glyph()
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(names)
    fb.setupCharacterMap({ord(" "): "space", **{ord(c): f"uni{ord(c):04X}" for c in chars}})
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({n: (1000 if n.startswith("uni") and int(n[3:], 16) > 0x2E80 else 600, 0)
                               for n in names})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": family, "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120, sCapHeight=700)
    fb.setupPost()
    fb.save(str(path))
