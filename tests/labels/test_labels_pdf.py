"""Print sheets: every code scans to its URL, the cover states the batch and its checksum, output streams."""
from __future__ import annotations

import hashlib
import io
import itertools
import math
import tracemalloc

import pypdfium2 as pdfium
import pytest

import labels.pdf as pdf_module
from labels import (
    PRESETS,
    CoverInfo,
    LabelContent,
    LabelError,
    LabelSpec,
    serial_list_sha256,
    sheet_layout,
    write_pdf_sheets,
)
from labels.pdf import CHUNK_PAGES, MARK_OFFSET_MM, PAGE_MARGIN_MM
from tests.labels.helpers import (
    GI_NAME,
    NUMBER,
    USCC,
    decode,
    ink,
    make_items,
    pdf_pages,
    pdf_text,
    render_pdf,
    solid_png,
)

COVER = CoverInfo("PO-2026-0042", GI_NAME, producer_name="亳州中药材有限公司", printer_name="安徽省印务有限公司",
                  created="2026-03-01")


def sheets(items, spec, **kwargs) -> tuple[bytes, object]:
    out = io.BytesIO()
    result = write_pdf_sheets(items, spec, out, cover=kwargs.pop("cover", COVER), **kwargs)
    return out.getvalue(), result


def cell_codes(data: bytes, page: int, dpi: int, spec: LabelSpec, count: int, paper: str = "A4") -> list[list[str]]:
    """What zxing-cpp reads in each label cell (trim box plus 1 mm) of a rasterized sheet, in grid order."""
    image = render_pdf(data, page, dpi)
    sheet = sheet_layout(spec, paper)
    k = dpi / 25.4
    found = []
    for i in range(count):
        x, y = sheet.cell(i)
        crop = image.crop((round((x - 1) * k), round((y - 1) * k), round((x + spec.width_mm + 1) * k),
                           round((y + spec.height_mm + 1) * k)))
        found.append(decode(crop))
    return found


@pytest.mark.parametrize("dpi", [300, 600])
@pytest.mark.parametrize("name", PRESETS)
def test_every_code_on_the_sheets_decodes_to_exactly_its_url(name, dpi):
    """Rasterized at print resolution, does every label cell of every sheet decode to exactly its own URL?"""
    spec = LabelSpec.preset(name, dpi)
    per_sheet = sheet_layout(spec).per_sheet
    items = list(make_items(per_sheet + 3, start=1000))
    data, result = sheets(iter(items), spec)
    assert result.sheets == 2 and pdf_pages(data) == 3
    expected = [[i.url] for i in items]
    assert cell_codes(data, 1, dpi, spec, per_sheet) == expected[:per_sheet]
    assert cell_codes(data, 2, dpi, spec, 3) == expected[per_sheet:]


def test_a3_and_error_correction_q_sheets_decode():
    """On A3 with error correction Q, do all codes still decode to their URLs, on an A3-sized page?"""
    spec = LabelSpec.preset("40x60", 300, error_correction="Q")
    sheet = sheet_layout(spec, "A3")
    assert sheet.per_sheet > sheet_layout(spec, "A4").per_sheet
    items = list(make_items(sheet.per_sheet))
    data, result = sheets(iter(items), spec, paper="A3")
    image = render_pdf(data, 1, 72)
    assert image.size == (842, 1191)
    assert cell_codes(data, 1, 300, spec, sheet.per_sheet, "A3") == [[i.url] for i in items]
    assert result.qr_version == 5 and "QR version 5-Q" in pdf_text(data, 0)


def test_cover_is_the_first_page_and_states_the_batch_and_checksum():
    """Is page 1 the cover, naming order, GI, producer, printer, serial range, counts and the serial-list SHA-256?"""
    spec = LabelSpec.preset("30x30")
    items = list(make_items(80, start=7))
    data, result = sheets(iter(items), spec)
    serials = [i.serial for i in items]
    digest = hashlib.sha256("\n".join(serials).encode()).hexdigest()
    assert result.sha256 == digest == serial_list_sha256(serials)
    assert (result.count, result.first_serial, result.last_serial) == (80, serials[0], serials[-1])
    per_sheet = sheet_layout(spec).per_sheet
    assert result.sheets == math.ceil(80 / per_sheet) and pdf_pages(data) == result.sheets + 1
    cover = pdf_text(data, 0).replace("\r", "").replace("\n", " ")
    for text in ("PO-2026-0042", GI_NAME, "亳州中药材有限公司", "安徽省印务有限公司", USCC, NUMBER, serials[0],
                 serials[-1], f"80 labels on {result.sheets} sheets", digest[:32], digest[32:], "2026-03-01"):
        assert text in cover, text
    assert items[0].printed_serial in pdf_text(data, 1) and items[0].printed_serial not in cover
    footer = " ".join(pdf_text(data, 1).split())
    assert f"PO-2026-0042 sheet 1 {serials[0]} .. {serials[per_sheet - 1]} {per_sheet} labels" in footer


def test_cover_expectations_are_checked():
    """If the order states a count, range or checksum the labels do not match, is the file refused?"""
    items = list(make_items(5))
    sha = serial_list_sha256(i.serial for i in items)
    ok = CoverInfo("PO-1", GI_NAME, count=5, first_serial=items[0].serial, last_serial=items[-1].serial, sha256=sha)
    sheets(iter(items), PRESETS["30x30"], cover=ok)
    for wrong in ({"count": 6}, {"last_serial": items[3].serial}, {"sha256": "0" * 64}):
        with pytest.raises(LabelError) as err:
            sheets(iter(items), PRESETS["30x30"], cover=CoverInfo("PO-1", GI_NAME, **wrong))
        assert err.value.code == "cover_mismatch" and "discarded" in err.value.message


def test_parallel_workers_write_the_same_bytes():
    """Does drawing pages in 2 worker processes give byte-for-byte the file one process writes?"""
    spec = LabelSpec.preset("20x20")
    one, _ = sheets(make_items(400), spec, workers=1)
    two, result = sheets(make_items(400), spec, workers=2)
    assert one == two and result.count == 400


def test_labels_stream_through_in_bounded_lookahead(monkeypatch):
    """Are labels pulled only a few sheets ahead of the pages written, and bytes written before input ends?"""
    monkeypatch.setattr(pdf_module, "WRITE_BUFFER_BYTES", 16 * 1024)
    spec = LabelSpec.preset("30x30")
    per_sheet = sheet_layout(spec).per_sheet
    written = [0]
    out_sizes = []
    lead = []

    class Sink:
        size = 0

        def write(self, b):
            self.size += len(b)

    sink = Sink()

    def tracked():
        for n, item in enumerate(make_items(per_sheet * 12), start=1):
            lead.append(n - written[0])
            out_sizes.append(sink.size)
            yield item

    write_pdf_sheets(tracked(), spec, sink, cover=COVER, progress=lambda n: written.__setitem__(0, n))
    assert max(lead) <= 2 * CHUNK_PAGES * per_sheet
    assert out_sizes[-1] > 0                       # pages reached the writer before the last label was read
    assert written[0] == per_sheet * 12


def test_memory_does_not_grow_with_the_range(monkeypatch):
    """Is peak traced memory for 6,000 labels about that for 1,000 (streaming, not accumulating)?"""
    monkeypatch.setattr(pdf_module, "WRITE_BUFFER_BYTES", 64 * 1024)      # both runs fill the output buffer
    spec = LabelSpec.preset("20x20")

    class Null:
        def write(self, b):
            pass

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            write_pdf_sheets(make_items(n), spec, Null(), cover=COVER)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(200)                                        # font, plan and subset loaded once, outside the measurement
    small, large = peak(1000), peak(6000)
    assert large < small * 1.1, (small, large)


def test_progress_reports_labels_written_per_sheet():
    """Is progress called after each sheet with the running count of labels written?"""
    spec = LabelSpec.preset("30x30")
    per_sheet = sheet_layout(spec).per_sheet
    seen = []
    sheets(make_items(2 * per_sheet + 1), spec, progress=seen.append)
    assert seen == [per_sheet, 2 * per_sheet, 2 * per_sheet + 1]


def test_sheet_grid_bleed_and_crop_marks():
    """Do cells keep their bleed apart, fit the page margins, and crop marks lie outside every bleed?"""
    for spec, paper in itertools.product(PRESETS.values(), ("A4", "A3")):
        sheet = sheet_layout(spec, paper, bleed_mm=3)
        cells = [sheet.cell(i) for i in range(sheet.per_sheet)]
        for (x, y) in cells:
            assert x - 3 >= PAGE_MARGIN_MM - 1e-9 and y - 3 >= PAGE_MARGIN_MM - 1e-9
            assert x + spec.width_mm + 3 <= sheet.page_w - PAGE_MARGIN_MM + 1e-9
            assert y + spec.height_mm + 3 <= sheet.page_h - PAGE_MARGIN_MM + 1e-9
        assert sheet.pitch_x >= spec.width_mm + 6 and sheet.pitch_y >= spec.height_mm + 6
        for x1, y1, x2, y2 in sheet.crop_marks():
            for (x, y) in cells:                       # no mark reaches into a label or its bleed
                left, top = x - 3 - MARK_OFFSET_MM, y - 3 - MARK_OFFSET_MM
                right, bottom = x + spec.width_mm + 3 + MARK_OFFSET_MM, y + spec.height_mm + 3 + MARK_OFFSET_MM
                assert max(x1, x2) <= left + 1e-6 or min(x1, x2) >= right - 1e-6 or \
                    max(y1, y2) <= top + 1e-6 or min(y1, y2) >= bottom - 1e-6


def test_crop_marks_are_printed():
    """Are the crop marks drawn on a sheet, where sheet_layout says they are?"""
    spec = LabelSpec.preset("30x30")
    data, _ = sheets(make_items(3), spec)
    image = render_pdf(data, 1, 600)
    k = 600 / 25.4
    dark = ink(image, 200)
    marks = sheet_layout(spec).crop_marks()
    for x1, y1, x2, y2 in marks:
        mx, my = (x1 + x2) / 2 * k, (y1 + y2) / 2 * k
        window = dark[round(my) - 3:round(my) + 4, round(mx) - 3:round(mx) + 4]
        assert window.any(), (x1, y1, x2, y2)


def test_sheet_requests_that_cannot_work_are_refused():
    """Are a label too large for the paper, a bad paper, bleed or gap, an empty batch and bad workers refused?"""
    big = LabelSpec.custom(200, 280)
    with pytest.raises(LabelError) as err:
        sheet_layout(big, "A4")
    assert err.value.code == "label_too_large" and "A3" in err.value.message
    assert sheet_layout(big, "A3").per_sheet == 1
    for kwargs, code in (({"paper": "Letter"}, "bad_paper"), ({"bleed_mm": 9}, "bad_bleed"),
                         ({"bleed_mm": 2, "gap_mm": 1}, "bad_gap")):
        with pytest.raises(LabelError) as err:
            sheet_layout(PRESETS["30x30"], **kwargs)
        assert err.value.code == code
    for items, kwargs, code in (([], {}, "empty_batch"), (make_items(2), {"workers": -1}, "bad_workers")):
        with pytest.raises(LabelError) as err:
            sheets(iter(items), PRESETS["30x30"], **kwargs)
        assert err.value.code == code


def test_a_url_longer_than_the_batch_version_is_refused():
    """When a later URL needs a larger QR version than the batch's, is it refused with the version to use?"""
    items = list(make_items(3))
    long_url = items[2].url + "?v=" + "X" * 20
    items[2] = LabelContent(GI_NAME, USCC, NUMBER, items[2].serial, long_url)
    with pytest.raises(LabelError) as err:
        sheets(iter(items), PRESETS["30x30"])
    assert err.value.code == "url_too_long" and "version as 5" in err.value.message
    data, result = sheets(iter(items), PRESETS["30x30"], qr_version=5)
    assert result.qr_version == 5 and long_url in decode(render_pdf(data, 1, 300))


def test_serials_are_printed_in_ascii():
    """Is a serial with characters other than printable ASCII refused before anything is drawn for it?"""
    items = [LabelContent(GI_NAME, USCC, NUMBER, "BBSH26000000001R", "https://gi.cnipa.gov.cn/v/A", "BBSH—26")]
    with pytest.raises(LabelError) as err:
        sheets(iter(items), PRESETS["30x30"])
    assert err.value.code == "bad_serial"


def test_artwork_and_mixed_batches_on_sheets():
    """Does uploaded artwork print (downsampled to the dpi), and can one file hold labels of two GIs?"""
    art = solid_png((200, 30, 30, 255), (3000, 3000))
    items = list(make_items(2, artwork=art)) + list(make_items(2, start=50, gi_name="五常大米", prefix="WCDM"))
    spec = LabelSpec.preset("40x60", 300)
    data, _ = sheets(iter(items), spec)
    assert data.count(b"/Subtype /Form") == 3                     # crop marks + one form per GI
    assert b"/Width 3000" not in data
    text = pdf_text(data, 1)
    assert GI_NAME in text and "五常大米" in text
    doc = pdfium.PdfDocument(data)
    page = doc[1].render(scale=300 / 72).to_pil().convert("RGB")
    doc.close()
    sheet = sheet_layout(spec)
    x, y = sheet.cell(0)
    k = 300 / 25.4
    assert page.getpixel((round((x + 20) * k), round((y + 12) * k))) == pytest.approx((200, 30, 30), abs=6)
    assert cell_codes(data, 1, 300, spec, 4) == [[i.url] for i in items]
