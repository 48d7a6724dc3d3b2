"""Pure label making for GI special marks: QR matrices, label images and print files.

Plain values in, bytes out: no Flask, no database, nothing from ``gi_service``.
The caller (the labels service) supplies the texts, the serials and the URLs
the QR codes hold (``{base}/v/{code}`` or a GS1 Digital Link).

What a label shows (2020 trial Measures, CNIPA Announcement No. 354)
------------------------------------------------------------------
The special-mark artwork (``LabelContent.artwork_png``: the authority's
uploaded PNG, or ``None`` for a neutral placeholder -- an outlined box saying
地理标志专用标志, never a copy of the official logo), the GI name in Chinese,
the user's USCC, the announcement or standard number, the serial as text, and
the QR code (error correction M, or Q on request; quiet zone 4 modules).

API
---
``LabelSpec(width_mm, height_mm, dpi=300, error_correction="M")``
    ``PRESETS`` "20x20", "30x30", "40x60"; ``LabelSpec.preset(name, dpi, ec)``,
    ``LabelSpec.custom(w, h, dpi, ec)`` (15-300 mm a side, 150-2400 dpi).
``validate(spec, qr_version) -> module_mm``
    ``LabelError('module_too_small')`` if a module would be under 0.25 mm,
    naming the presets (or size) that would do.
``LabelContent(gi_name_zh, uscc, registration_or_standard_no, serial, url, serial_display=None, artwork_png=None)``
``qr_matrix(url, version=None, error_correction="M", mask=DEFAULT_MASK) -> bool ndarray``
``batch_qr_version(urls=None, *, max_length=None, error_correction="M") -> int``
    One version per batch: the smallest holding the longest URL.
``render_png(content, spec, *, qr_version=None) -> bytes``  (dpi in the file)
``render_svg(content, spec, *, qr_version=None) -> bytes``  (mm units, text as outlines)
``write_pdf_sheets(items, spec, out, *, cover, paper="A4", bleed_mm=2.0, gap_mm=None, qr_version=None,
workers=1, progress=None) -> SheetResult``
    A4/A3 N-up sheets with bleed and crop marks, a cover page first (order,
    GI, serial range, counts, SHA-256 of the serial list); items stream in,
    bytes stream out; ``workers=0`` uses every core. See ``labels.pdf``.
``CoverInfo(order_id, gi_name, producer_name="", printer_name="", created="", notes="", count=None,
first_serial=None, last_serial=None, sha256=None)``
``serial_list_sha256(serials) -> hex``  (the cover's checksum, recomputable by anyone)
``sheet_layout(spec, paper, bleed_mm, gap_mm) -> SheetLayout``  (grid, cells, crop marks)
``write_csv(rows, out) -> int``  (serial, code, url; the printers' variable-data file)
``write_png_zip(items, spec, out) -> int``  (one ``{serial}.png`` per label, streamed)
``find_font() / default_font()``  (Noto Sans CJK SC; ``$GI_LABEL_FONT`` first)

Every refusal is a ``LabelError(ValueError)`` with a stable ``.code`` and a
message that says what to do instead.

Workers are processes started with ``spawn`` (safe inside a threaded server);
a script that calls ``write_pdf_sheets(..., workers>1)`` must do so under
``if __name__ == "__main__":``.
"""
from .errors import LabelError
from .fonts import default_font, find_font, load_font
from .pdf import (
    CoverInfo,
    SheetLayout,
    SheetResult,
    serial_list_sha256,
    sheet_layout,
    write_pdf_sheets,
)
from .qr import DEFAULT_MASK, batch_qr_version, qr_matrix, url_qr_version
from .raster import render_png, write_png_zip
from .spec import (
    MIN_MODULE_MM,
    PRESETS,
    QUIET_ZONE,
    LabelContent,
    LabelSpec,
    layout,
    validate,
)
from .svg import render_svg
from .variable_data import CSV_HEADER, write_csv

__all__ = [
    "CSV_HEADER", "DEFAULT_MASK", "MIN_MODULE_MM", "PRESETS", "QUIET_ZONE",
    "CoverInfo", "LabelContent", "LabelError", "LabelSpec", "SheetLayout", "SheetResult",
    "batch_qr_version", "default_font", "find_font", "layout", "load_font", "qr_matrix", "render_png",
    "render_svg", "serial_list_sha256", "sheet_layout", "url_qr_version", "validate", "write_csv",
    "write_pdf_sheets", "write_png_zip",
]
