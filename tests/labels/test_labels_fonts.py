"""The CJK font: found where the project installs it, chosen as Simplified Chinese, and its glyphs really drawn."""
from __future__ import annotations

import io
import itertools
import logging
import string

import numpy as np
import pytest
from PIL import Image

from labels import (
    CoverInfo,
    LabelContent,
    LabelError,
    LabelSpec,
    fonts,
    render_png,
    write_pdf_sheets,
)
from labels.fonts import FONT_ENV, PROBE_TEXT, LabelFont, find_font
from labels.pdf import COVER_LABELS, COVER_TITLE, footer_text
from labels.spec import PLACEHOLDER_TEXT, layout
from tests.labels.helpers import (
    GI_NAME,
    NUMBER,
    USCC,
    build_truetype_font,
    decode,
    ink,
    make_items,
    pdf_text,
    png_image,
    render_pdf,
)

SAMPLES = "亳白芍五常大米"
UNASSIGNED = "\u0378"          # no character is assigned here, so every font draws its .notdef box


@pytest.fixture
def no_font_cache():
    fonts._find_font.cache_clear()
    yield
    fonts._find_font.cache_clear()


def glyph_bitmap(font, ch: str, px: int = 64) -> np.ndarray:
    mask = font.pillow(px).getmask(ch)
    return np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0]) > 127


def test_the_project_font_is_noto_sans_cjk_sc(font):
    """Is the installed font Noto Sans CJK, its Simplified Chinese face, with CID-keyed CFF outlines?"""
    path, index = find_font()
    assert path.endswith("NotoSansCJK-Regular.ttc") and index == 2
    assert font.family == "Noto Sans CJK SC" and font.kind == "cff" and font.ros == ("Adobe", "Identity", 0)


def test_pillow_draws_the_cjk_glyphs_not_the_notdef_box(font):
    """Does each of 亳白芍五常大米 draw ink that differs from the box drawn for an unassigned code point?"""
    notdef = glyph_bitmap(font, UNASSIGNED)
    assert np.array_equal(notdef, glyph_bitmap(font, "\u0379"))   # the baseline really is the .notdef box
    assert not font.has(UNASSIGNED)
    bitmaps = {}
    for ch in SAMPLES:
        bitmap = glyph_bitmap(font, ch)
        assert bitmap.sum() > 50, ch
        assert bitmap.shape != notdef.shape or not np.array_equal(bitmap, notdef), ch
        bitmaps[ch] = bitmap
    for a, b in itertools.combinations(SAMPLES, 2):
        assert bitmaps[a].shape != bitmaps[b].shape or not np.array_equal(bitmaps[a], bitmaps[b]), (a, b)


def test_svg_outlines_are_the_glyphs_not_the_notdef_box(font):
    """Are the SVG outlines of the sample characters non-empty and different from the .notdef outline?"""
    notdef = font.notdef_outline()
    outlines = {font.outline(ch) for ch in SAMPLES}
    assert len(outlines) == len(SAMPLES) and notdef not in outlines and "" not in outlines


def test_label_png_has_ink_where_the_gi_name_is(font):
    """In a rendered label, is the GI name line inked, and does 五常大米 ink differently from 亳白芍?"""
    spec = LabelSpec.preset("30x30", 600)
    lay = layout(spec, 4)
    px = spec.dpi / 25.4
    box = tuple(round(v * px) for v in (lay.name.x, lay.name.y, lay.name.x + lay.name.w, lay.name.y + lay.name.h))
    crops = []
    for name in ("亳白芍", "五常大米"):
        item = next(make_items(1, gi_name=name))
        crops.append(ink(png_image(render_png(item, spec)).crop(box)))
    assert all(c.sum() > 500 for c in crops)
    assert not np.array_equal(*crops)


def _iou(a: np.ndarray, b: np.ndarray, size: int = 40) -> float:
    def norm(m: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(m)
        crop = m[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        return np.asarray(Image.fromarray(crop.astype(np.uint8) * 255).resize((size, size))) > 127
    a, b = norm(a), norm(b)
    return (a & b).sum() / (a | b).sum()


def assert_pdf_draws_glyphs(data: bytes, page: int, chars: str, font, dpi: int = 600) -> None:
    """Each of ``chars`` on the page, cut out by pdfium's character box, matches its glyph, not .notdef."""
    import pypdfium2 as pdfium
    page_image = render_pdf(data, page, dpi)
    doc = pdfium.PdfDocument(data)
    try:
        text = doc[page].get_textpage()
        page_h = doc[page].get_height()
        notdef = glyph_bitmap(font, UNASSIGNED, 120)
        seen = set()
        for i in range(text.count_chars()):
            ch = text.get_text_range(i, 1)
            if not ch or ch not in chars:
                continue
            left, bottom, right, top = text.get_charbox(i)
            k = dpi / 72
            crop = ink(page_image.crop((int(left * k), int((page_h - top) * k), int(right * k) + 1,
                                        int((page_h - bottom) * k) + 1)))
            assert crop.sum() > 100, ch
            same = _iou(crop, glyph_bitmap(font, ch, 120))
            assert same > 0.6 and same > _iou(crop, notdef) + 0.2, (ch, same)
            seen.add(ch)
        assert seen == set(chars)
    finally:
        doc.close()


def test_pdf_embeds_and_draws_the_glyphs_not_the_notdef_box(font):
    """In a PDF sheet rasterized by pdfium, does each GI-name character look like its glyph, not like .notdef?"""
    import io
    out = io.BytesIO()
    write_pdf_sheets(make_items(3, gi_name="五常大米"), LabelSpec.preset("40x60"), out,
                     cover=CoverInfo("PO-1", "五常大米"))
    data = out.getvalue()
    assert "五常大米" in pdf_text(data, 1)                    # ToUnicode maps the codes back to the text
    assert_pdf_draws_glyphs(data, 1, "五常大米", font)
    assert_pdf_draws_glyphs(data, 0, "五常大米", font)     # the cover names the GI too


def test_a_character_the_font_lacks_is_refused():
    """Is a GI name with a character the font cannot draw refused, naming it, instead of printing a box?"""
    item = LabelContent("五常" + UNASSIGNED, USCC, NUMBER, "BBSH26000000001R", "https://gi.cnipa.gov.cn/v/X")
    with pytest.raises(LabelError) as err:
        render_png(item, LabelSpec.preset("30x30"))
    assert err.value.code == "glyph_missing" and "U+0378" in err.value.message


def test_font_env_var_is_looked_at_first(monkeypatch, tmp_path, no_font_cache):
    """Does $GI_LABEL_FONT win over the installed Noto font?"""
    path = tmp_path / "blocks.ttf"
    build_truetype_font(path, PROBE_TEXT + string.printable)
    monkeypatch.setenv(FONT_ENV, str(path))
    assert find_font() == (str(path), 0)


def test_a_wrong_font_env_var_is_an_error_not_a_fallback(monkeypatch, tmp_path, no_font_cache):
    """Does a $GI_LABEL_FONT pointing nowhere, or at a font without Chinese, stop with font_missing?"""
    monkeypatch.setenv(FONT_ENV, str(tmp_path / "nope.ttc"))
    with pytest.raises(LabelError) as err:
        find_font()
    assert err.value.code == "font_missing" and FONT_ENV in err.value.message
    latin = tmp_path / "latin.ttf"
    build_truetype_font(latin, string.ascii_letters)
    monkeypatch.setenv(FONT_ENV, str(latin))
    with pytest.raises(LabelError) as err:
        find_font()
    assert err.value.code == "font_missing" and PROBE_TEXT in err.value.message


def test_no_font_anywhere_says_how_to_install_it(monkeypatch, no_font_cache):
    """With no env var, no Noto file and no fontconfig answer, is the error font_missing with the apt command?"""
    monkeypatch.delenv(FONT_ENV, raising=False)
    monkeypatch.setattr(fonts, "DEFAULT_FONT_PATHS", ("/nonexistent/NotoSansCJK-Regular.ttc",))
    monkeypatch.setattr(fonts, "_fc_match", lambda: None)
    with pytest.raises(LabelError) as err:
        find_font()
    assert err.value.code == "font_missing"
    assert "apt-get install fonts-noto-cjk" in err.value.message and FONT_ENV in err.value.message


def test_a_truetype_font_is_embedded_as_cidfonttype2_and_scans(tmp_path):
    """Does a TrueType font (glyf outlines) work end to end: PDF text extractable, glyphs drawn, QR decodes?"""
    import io
    path = tmp_path / "blocks.ttf"
    cover = CoverInfo("PO-7", GI_NAME)
    chars = (COVER_TITLE + "".join(COVER_LABELS.values()) + GI_NAME + USCC + NUMBER + "".join(PLACEHOLDER_TEXT)
             + string.printable + footer_text("", 0, "", "", 0))
    build_truetype_font(path, chars)
    tt = LabelFont(str(path))
    assert tt.kind == "truetype"
    out = io.BytesIO()
    items = list(make_items(5))
    write_pdf_sheets(iter(items), LabelSpec.preset("30x30"), out, cover=cover, font=tt)
    data = out.getvalue()
    assert b"/CIDFontType2" in data and b"/FontFile2" in data
    assert GI_NAME in pdf_text(data, 1) and items[0].printed_serial in pdf_text(data, 1)
    assert_pdf_draws_glyphs(data, 1, GI_NAME, tt)
    image = render_pdf(data, 1, 300)
    assert sorted(decode(image)) == sorted(i.url for i in items)
    png = render_png(items[0], LabelSpec.preset("30x30"), font=tt)
    assert decode(Image.open(io.BytesIO(png))) == [items[0].url]


def test_a_pdf_render_logs_nothing_from_fonttools_at_info(caplog):
    """With the service logging at INFO, does rendering a PDF (a fresh font subset included) leave fontTools'
    step-by-step INFO lines out of the log?"""
    fresh = LabelFont(*find_font())          # not the cached font: its subset is really made here
    with caplog.at_level(logging.INFO):
        write_pdf_sheets(make_items(2, gi_name="五常大米"), LabelSpec.preset("30x30"), io.BytesIO(),
                         cover=CoverInfo("PO-9", "五常大米"), font=fresh)
    chatter = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.name.startswith("fontTools")]
    assert chatter == []
