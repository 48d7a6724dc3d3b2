"""Print sheets as PDF, streamed: labels in, pages out, in constant memory, on one core or all of them.

File layout
-----------
The writer emits PDF objects as it goes and never seeks, so ``out`` can be a
pipe or an HTTP response. Each sheet page is one content stream that draws,
per label: the label's static part (artwork or placeholder, GI name, USCC,
number) as a *form XObject* drawn once per batch and placed with ``Do``; the
QR code as one path of merged module runs (in module units under one ``cm``);
the serial as text. Crop marks are one more form per sheet. The font subset,
the shared resources, the cover page and the page tree come last: the cover is
the last page *written* but the first page *listed* in the page tree, so it is
the first page printed, yet it can state the count, the serial range and the
SHA-256 of the serial list computed while the labels streamed by.

Sheets
------
A4 (210 x 297 mm) or A3 (297 x 420 mm), portrait, labels in an N-up grid
centred on the page. ``bleed_mm`` (default 2 mm) is kept clear around every
label; neighbouring labels are ``gap_mm`` apart trim-to-trim (default twice
the bleed, so bleeds meet). Crop marks (0.25 pt, registration colour) extend
every trim line outward into the page margin, starting 1 mm beyond the bleed.
Each sheet's foot names the order, the sheet number and its serial range.

Checksum on the cover: SHA-256 over the labels' canonical serials in print
order, UTF-8, joined with a line feed, no final line feed -- the same as
``serial_list_sha256``, so a printer or the ledger can recompute it from a
serial list.

Parallel: ``workers`` > 1 renders page content streams in that many processes
(``workers=0``: every core this process may use); the main process reads the
labels, hashes serials and writes pages in order, with a bounded number of
pages in flight so memory stays flat. The output is byte-for-byte the same
whatever the worker count.
"""
from __future__ import annotations

import array
import hashlib
import itertools
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .draw import fit_inside, num, open_artwork, pdf_run_paths
from .errors import LabelError
from .fonts import GlyphMetrics, LabelFont, default_font
from .qr import DEFAULT_MASK, plan, url_qr_version
from .spec import (
    LabelContent,
    LabelSpec,
    Layout,
    TextRun,
    check_content,
    layout,
    placeholder_runs,
    placeholder_stroke,
    serial_run,
    static_runs,
)

PAPERS = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}
PT_PER_MM = 72 / 25.4
PAGE_MARGIN_MM = 14.0
MARK_OFFSET_MM = 1.0           # crop marks start this far beyond the bleed
MARK_LENGTH_MM = 4.0
MARK_WIDTH_MM = 0.25 / PT_PER_MM
MAX_BLEED_MM = 5.0
FOOTER_SIZE_MM = 2.2
CHUNK_PAGES = 2                 # pages per task handed to a worker
WRITE_BUFFER_BYTES = 256 * 1024  # output is handed to ``out`` in pieces of about this size
COVER_TITLE = "地理标志专用标志 印制文件 / GI special-mark print file"
COVER_LABELS = {
    "order": "订单 Order", "gi": "地理标志 GI", "number": "公告/标准号 Announcement/standard",
    "producer": "生产者 Producer", "uscc": "统一社会信用代码 USCC", "printer": "印制单位 Printer",
    "label": "标签 Label", "sheet": "纸张 Sheet", "serials": "序列号 Serials", "count": "数量 Count",
    "sha256": "序列号清单 SHA-256", "created": "日期 Created", "notes": "备注 Notes",
}


def serial_list_sha256(serials: Iterable[str]) -> str:
    """SHA-256 (hex) of the serials joined with line feeds, UTF-8, no final line feed: the cover's checksum."""
    digest = hashlib.sha256()
    first = True
    for serial in serials:
        digest.update(serial.encode("utf-8") if first else b"\n" + serial.encode("utf-8"))
        first = False
    return digest.hexdigest()


@dataclass(frozen=True)
class CoverInfo:
    """What the cover page says about the print order. ``count``, ``first_serial``, ``last_serial`` and
    ``sha256`` are optional expectations: if given, they are checked against the labels actually written
    and a difference raises LabelError('cover_mismatch') (discard the partial output)."""

    order_id: str
    gi_name: str
    producer_name: str = ""
    printer_name: str = ""
    created: str = ""
    notes: str = ""
    count: int | None = None
    first_serial: str | None = None
    last_serial: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class SheetResult:
    """What was written: label and sheet counts, serial range, the serial-list checksum, the QR choice."""

    count: int
    sheets: int
    labels_per_sheet: int
    first_serial: str
    last_serial: str
    sha256: str
    qr_version: int
    mask: int
    bytes_written: int


@dataclass(frozen=True)
class SheetLayout:
    """Where labels go on a sheet (mm from the page's top-left corner)."""

    paper: str
    page_w: float
    page_h: float
    label_w: float
    label_h: float
    cols: int
    rows: int
    x0: float
    y0: float
    pitch_x: float
    pitch_y: float
    bleed: float

    @property
    def per_sheet(self) -> int:
        return self.cols * self.rows

    def cell(self, i: int) -> tuple[float, float]:
        """Top-left trim corner of label ``i`` on a sheet (row by row)."""
        r, c = divmod(i, self.cols)
        return self.x0 + c * self.pitch_x, self.y0 + r * self.pitch_y

    def crop_marks(self) -> list[tuple[float, float, float, float]]:
        """Crop-mark segments (x1, y1, x2, y2) in mm from the top-left, outside the grid's bleed."""
        start = self.bleed + MARK_OFFSET_MM
        xs = sorted({round(self.x0 + c * self.pitch_x + d, 4) for c in range(self.cols) for d in (0, self.label_w)})
        ys = sorted({round(self.y0 + r * self.pitch_y + d, 4) for r in range(self.rows) for d in (0, self.label_h)})
        top, bottom = ys[0], ys[-1]
        left, right = xs[0], xs[-1]
        marks = []
        for x in xs:
            marks.append((x, top - start, x, top - start - MARK_LENGTH_MM))
            marks.append((x, bottom + start, x, bottom + start + MARK_LENGTH_MM))
        for y in ys:
            marks.append((left - start, y, left - start - MARK_LENGTH_MM, y))
            marks.append((right + start, y, right + start + MARK_LENGTH_MM, y))
        return marks


def sheet_layout(spec: LabelSpec, paper: str = "A4", bleed_mm: float = 2.0, gap_mm: float | None = None) -> SheetLayout:
    """The N-up grid for a label on A4 or A3, or LabelError saying why it cannot be made."""
    if paper not in PAPERS:
        raise LabelError("bad_paper", f"paper must be one of {', '.join(PAPERS)}, got {paper!r}")
    if isinstance(bleed_mm, bool) or not isinstance(bleed_mm, (int, float)) or not 0 <= bleed_mm <= MAX_BLEED_MM:
        raise LabelError("bad_bleed", f"bleed must be 0-{MAX_BLEED_MM:g} mm, got {bleed_mm!r}")
    gap = 2 * bleed_mm if gap_mm is None else gap_mm
    if isinstance(gap, bool) or not isinstance(gap, (int, float)) or gap < 2 * bleed_mm - 1e-9 or gap > 50:
        raise LabelError("bad_gap", f"the gap between labels must be at least twice the bleed "
                                    f"({2 * bleed_mm:g} mm) and at most 50 mm, got {gap!r}")
    page_w, page_h = PAPERS[paper]
    avail_w = page_w - 2 * PAGE_MARGIN_MM - 2 * bleed_mm
    avail_h = page_h - 2 * PAGE_MARGIN_MM - 2 * bleed_mm
    w, h = spec.width_mm, spec.height_mm
    cols = int((avail_w + gap + 1e-9) // (w + gap))
    rows = int((avail_h + gap + 1e-9) // (h + gap))
    if cols < 1 or rows < 1:
        raise LabelError("label_too_large", f"a {w:g}x{h:g} mm label with {bleed_mm:g} mm bleed does not fit "
                                            f"{paper} inside its {PAGE_MARGIN_MM:g} mm margins; choose A3 or a "
                                            f"smaller label")
    grid_w = cols * w + (cols - 1) * gap
    grid_h = rows * h + (rows - 1) * gap
    return SheetLayout(paper, page_w, page_h, w, h, cols, rows, (page_w - grid_w) / 2, (page_h - grid_h) / 2,
                       w + gap, h + gap, float(bleed_mm))


# ---------------------------------------------------------------------------
# Drawing operators
# ---------------------------------------------------------------------------

class _TextEncoder:
    """Text as PDF operators with the embedded Type0 font /F1 (hex CIDs or glyph ids)."""

    def __init__(self, font: LabelFont | GlyphMetrics):
        self.font = font
        self._hex: dict[str, str] = {}

    def hex(self, text: str) -> str:
        table = self._hex
        try:
            return "".join([table[ch] for ch in text])
        except KeyError:
            for ch in text:
                if ch not in table:
                    table[ch] = f"{self.font.code(ch):04X}"
            return "".join([table[ch] for ch in text])

    def show(self, run: TextRun, height: float) -> str:
        """A text run placed in a box of ``height`` mm whose y axis points up (PDF)."""
        return (f"BT /F1 {num(run.size, 4)} Tf {num(run.x, 4)} {num(height - run.baseline, 4)} Td "
                f"<{self.hex(run.text)}> Tj ET\n")


class _PageRenderer:
    """Content streams of sheet pages: what the workers run. Needs only plain, picklable settings."""

    def __init__(self, spec: LabelSpec, qr_version: int, mask: int, glyphs: GlyphMetrics,
                 sheet: SheetLayout, order_id: str, compress_level: int = 3):
        self.spec = spec
        self.sheet = sheet
        self.layout = layout(spec, qr_version)
        self.plan = plan(qr_version, spec.error_correction, mask)
        self.font = glyphs
        self.text = _TextEncoder(glyphs)
        self.order_id = order_id
        self.compress_level = compress_level
        self.qr_prefix = qr_transform(self.layout, spec.height_mm).encode("ascii")
        self.cells = []
        for i in range(sheet.per_sheet):
            x, y = sheet.cell(i)
            self.cells.append(f"q 1 0 0 1 {num(x, 4)} {num(sheet.page_h - y - sheet.label_h, 4)} cm\n".encode())
        self._serial_prefix: dict[float, str] = {}

    def serial(self, text: str) -> str:
        """The serial line; its placement depends only on the text's width, so it is computed once per width."""
        width = self.font.width(text)
        prefix = self._serial_prefix.get(width)
        if prefix is None:
            run = serial_run(self.layout, text, self.font)
            prefix = (f"BT /F1 {num(run.size, 4)} Tf {num(run.x, 4)} {num(self.spec.height_mm - run.baseline, 4)} "
                      f"Td <")
            self._serial_prefix[width] = prefix
        return prefix + self.text.hex(text) + "> Tj ET\n"

    def page(self, sheet_no: int, labels: list[tuple[str, str, str, str]]) -> bytes:
        """One sheet's content stream (compressed): labels are (form name, url, printed serial, serial).

        The QR function patterns are in the label's form; here each label adds only its data modules.
        """
        sheet = self.sheet
        paths = pdf_run_paths(self.plan.matrices([url for _, url, _, _ in labels], function_patterns=False))
        qr_prefix = self.qr_prefix
        parts = [b"q %s 0 0 %s 0 0 cm /CM Do 0 g\n" % ((num(PT_PER_MM, 6).encode(),) * 2)]
        for i, (form, _url, printed, _serial) in enumerate(labels):
            parts += (self.cells[i], b"/%s Do\n" % form.encode(), qr_prefix, paths[i], b"f Q\n",
                      self.serial(printed).encode("ascii"), b"Q\n")
        footer = footer_text(self.order_id, sheet_no, labels[0][3], labels[-1][3], len(labels))
        run = TextRun(footer, sheet.x0, sheet.page_h - 4.0, FOOTER_SIZE_MM)
        parts.append(self.text.show(run, sheet.page_h).encode("ascii"))
        parts.append(b"Q\n")
        return zlib.compress(b"".join(parts), self.compress_level)


def qr_transform(lay: Layout, height_mm: float) -> str:
    """``q ... cm`` that makes one unit one module, y pointing down, origin at the symbol's top-left module."""
    x0, y0 = lay.symbol_origin
    s = num(lay.module_mm, 6)
    return f"q {s} 0 0 -{s} {num(x0, 4)} {num(height_mm - y0, 4)} cm\n"


def footer_text(order_id: str, sheet_no: int, first: str, last: str, count: int) -> str:
    return f"{order_id}   sheet {sheet_no}   {first} .. {last}   {count} labels"


FOOTER_CHARS = frozenset(footer_text("", 0, "", "", 0)) | frozenset("0123456789")
# What workers can draw: serials and the sheet footer are printable ASCII.
WORKER_CHARS = frozenset(chr(c) for c in range(32, 127))

_WORKER: _PageRenderer | None = None


def _init_worker(*args) -> None:
    global _WORKER
    _WORKER = _PageRenderer(*args)


def _render_task(task: list[tuple[int, list]]) -> list[bytes]:
    assert _WORKER is not None
    return [_WORKER.page(sheet_no, labels) for sheet_no, labels in task]


def _ordered(tasks: Iterator, workers: int, init_args: tuple) -> Iterator[list[bytes]]:
    """Results of _render_task in task order; at most 2 x workers tasks in flight."""
    if workers <= 1:
        renderer = _PageRenderer(*init_args)
        for task in tasks:
            yield [renderer.page(sheet_no, labels) for sheet_no, labels in task]
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    # spawn, not fork: forking a threaded web server process can deadlock its children.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=init_args)
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(_render_task, task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------

class _PDFFile:
    """Writes numbered objects to a stream, remembering offsets for the cross-reference table."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.pos = 0
        self.offsets = array.array("Q", [0])          # object 0 is the free-list head
        self._buf: list[bytes] = []
        self._buffered = 0
        self.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    def write(self, data: bytes) -> None:
        self._buf.append(data)
        self.pos += len(data)
        self._buffered += len(data)
        if self._buffered >= WRITE_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self.out.write(b"".join(self._buf))
            self._buf.clear()
            self._buffered = 0

    def reserve(self) -> int:
        self.offsets.append(0)
        return len(self.offsets) - 1

    def obj(self, number: int, body: bytes | str) -> int:
        if isinstance(body, str):
            body = body.encode("latin-1")
        self.offsets[number] = self.pos
        self.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
        return number

    def stream(self, number: int, data: bytes, extra: str = "", *, compressed: bool = False,
               compress: bool = True) -> int:
        if compress and not compressed:
            data = zlib.compress(data, 6)
        flt = " /Filter /FlateDecode" if compress or compressed else ""
        self.offsets[number] = self.pos
        self.write(b"%d 0 obj\n<< /Length %d%s %s >>\nstream\n" % (number, len(data), flt.encode(), extra.encode())
                   + data + b"\nendstream\nendobj\n")
        return number

    def finish(self, root: int, info: int) -> None:
        xref = self.pos
        n = len(self.offsets)
        lines = [b"xref\n0 %d\n0000000000 65535 f \n" % n]
        lines.extend(b"%010d 00000 n \n" % off for off in itertools.islice(self.offsets, 1, None))
        self.write(b"".join(lines))
        self.write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                   % (n, root, info, xref))
        self.flush()


def _pdf_text_string(text: str) -> str:
    """A PDF text string: literal if plain ASCII, else UTF-16BE hex with a byte-order mark."""
    if text.isascii() and text.isprintable():
        return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


class _SheetWriter:
    def __init__(self, out: BinaryIO, spec: LabelSpec, sheet: SheetLayout, font: LabelFont, qr_version: int,
                 mask: int, cover: CoverInfo):
        self.pdf = _PDFFile(out)
        self.spec = spec
        self.sheet = sheet
        self.font = font
        self.text = _TextEncoder(font)
        self.layout: Layout = layout(spec, qr_version)
        self.qr_version = qr_version
        self.mask = mask
        self.cover = cover
        self.chars: set[str] = set(FOOTER_CHARS) | set(cover.order_id)
        self.font_obj = self.pdf.reserve()
        self.resources_obj = self.pdf.reserve()
        self.form_resources_obj = self.pdf.reserve()
        self.pages_obj = self.pdf.reserve()
        self.xobjects: dict[str, int] = {}
        self.forms: dict[tuple, str] = {}
        self.page_objs = array.array("Q")
        self.first_content: LabelContent | None = None
        self._crop_marks()

    def _crop_marks(self) -> None:
        s = self.sheet
        ops = [f"q {num(MARK_WIDTH_MM, 4)} w 1 1 1 1 K\n"]
        for x1, y1, x2, y2 in s.crop_marks():
            ops.append(f"{num(x1)} {num(s.page_h - y1)} m {num(x2)} {num(s.page_h - y2)} l\n")
        ops.append("S Q\n")
        number = self.pdf.reserve()
        self.pdf.stream(number, "".join(ops).encode("ascii"),
                        f"/Type /XObject /Subtype /Form /BBox [0 0 {num(s.page_w)} {num(s.page_h)}] "
                        f"/Resources {self.form_resources_obj} 0 R")
        self.xobjects["CM"] = number

    def form_for(self, content: LabelContent) -> str:
        """The name of the form XObject with this label's static part, written on first use."""
        key = content.static_key
        name = self.forms.get(key)
        if name is not None:
            return name
        if self.first_content is None:
            self.first_content = content
        lay, h, pdf = self.layout, self.spec.height_mm, self.pdf
        ops = ["0 g\n"]
        resources = f"{self.form_resources_obj} 0 R"
        runs = static_runs(lay, content, self.font)
        box = lay.artwork
        if content.artwork_png is None:
            stroke = placeholder_stroke(lay)
            ops.append(f"q {num(stroke, 4)} w 0 G {num(box.x + stroke / 2, 4)} {num(h - box.y - box.h + stroke / 2, 4)} "
                       f"{num(box.w - stroke, 4)} {num(box.h - stroke, 4)} re S Q\n")
            runs += placeholder_runs(lay, self.font)
        else:
            image_obj = self._image(content.artwork_png, box.w, box.h)
            art = open_artwork(content.artwork_png)
            aw, ah = fit_inside(art.width, art.height, box.w, box.h)
            ops.append(f"q {num(aw, 4)} 0 0 {num(ah, 4)} {num(box.x + (box.w - aw) / 2, 4)} "
                       f"{num(h - box.y - (box.h + ah) / 2, 4)} cm /Im Do Q\n")
            resources = f"<< /Font << /F1 {self.font_obj} 0 R >> /XObject << /Im {image_obj} 0 R >> >>"
        for run in runs:
            self.chars.update(run.text)
            ops.append(self.text.show(run, h))
        # The QR's function patterns are the same on every label: drawn here once, the data modules per label.
        patterns = plan(self.qr_version, self.spec.error_correction, self.mask).function_patterns
        ops += ["0 g ", qr_transform(lay, h), pdf_run_paths(patterns[None])[0].decode("ascii"), "f Q\n"]
        number = pdf.reserve()
        pdf.stream(number, "".join(ops).encode("ascii"),
                   f"/Type /XObject /Subtype /Form /BBox [0 0 {num(self.spec.width_mm)} {num(h)}] "
                   f"/Resources {resources}")
        name = f"L{len(self.forms)}"
        self.forms[key] = name
        self.xobjects[name] = number
        return name

    def _image(self, png: bytes, box_w: float, box_h: float) -> int:
        """The artwork as an image XObject, no larger than the label's dpi needs (alpha as a soft mask)."""
        from PIL import Image
        art = open_artwork(png)
        px = self.spec.dpi / 25.4
        w, h = fit_inside(art.width, art.height, box_w * px, box_h * px)
        if art.width > w * 1.01:
            art = art.resize((max(1, round(w)), max(1, round(h))), Image.LANCZOS)
        rgb = art.convert("RGB")
        alpha = art.getchannel("A")
        smask = ""
        if alpha.getextrema() != (255, 255):
            mask_obj = self.pdf.reserve()
            self.pdf.stream(mask_obj, alpha.tobytes(), f"/Type /XObject /Subtype /Image /Width {art.width} "
                            f"/Height {art.height} /ColorSpace /DeviceGray /BitsPerComponent 8")
            smask = f" /SMask {mask_obj} 0 R"
        number = self.pdf.reserve()
        self.pdf.stream(number, rgb.tobytes(), f"/Type /XObject /Subtype /Image /Width {art.width} "
                        f"/Height {art.height} /ColorSpace /DeviceRGB /BitsPerComponent 8 /Interpolate true{smask}")
        return number

    def page(self, content_stream: bytes) -> None:
        pdf = self.pdf
        stream_obj = pdf.reserve()
        pdf.stream(stream_obj, content_stream, compressed=True)
        page_obj = pdf.reserve()
        pdf.obj(page_obj, self._page_dict(stream_obj))
        self.page_objs.append(page_obj)

    def _page_dict(self, stream_obj: int) -> str:
        return (f"<< /Type /Page /Parent {self.pages_obj} 0 R /MediaBox [0 0 {num(self.sheet.page_w * PT_PER_MM)} "
                f"{num(self.sheet.page_h * PT_PER_MM)}] /Resources {self.resources_obj} 0 R "
                f"/Contents {stream_obj} 0 R >>")

    def finish(self, count: int, first: str, last: str, sha256: str) -> None:
        pdf = self.pdf
        cover_stream = self._cover_stream(count, first, last, sha256)
        stream_obj = pdf.reserve()
        pdf.stream(stream_obj, cover_stream)
        cover_obj = pdf.reserve()
        pdf.obj(cover_obj, self._page_dict(stream_obj))
        self._font_objects()
        xobjects = " ".join(f"/{name} {number} 0 R" for name, number in self.xobjects.items())
        pdf.obj(self.resources_obj, f"<< /Font << /F1 {self.font_obj} 0 R >> /XObject << {xobjects} >> >>")
        pdf.obj(self.form_resources_obj, f"<< /Font << /F1 {self.font_obj} 0 R >> >>")
        kids = " ".join(f"{n} 0 R" for n in itertools.chain((cover_obj,), self.page_objs))
        pdf.obj(self.pages_obj, f"<< /Type /Pages /Count {len(self.page_objs) + 1} /Kids [{kids}] >>")
        root = pdf.reserve()
        pdf.obj(root, f"<< /Type /Catalog /Pages {self.pages_obj} 0 R >>")
        info = pdf.reserve()
        title = f"{self.cover.gi_name} {self.cover.order_id}".strip()
        pdf.obj(info, f"<< /Title {_pdf_text_string(title)} /Producer (gi-service labels) >>".encode("latin-1"))
        pdf.finish(root, info)

    def cover_lines(self, count: int, first: str, last: str, sha256: str) -> list[tuple[str, str]]:
        c, s, lay, sheet = self.cover, self.spec, self.layout, self.sheet
        sheets = -(-count // sheet.per_sheet)
        uscc = self.first_content.uscc if self.first_content else ""
        number = self.first_content.registration_or_standard_no if self.first_content else ""
        return [
            (COVER_LABELS["order"], c.order_id),
            (COVER_LABELS["gi"], c.gi_name),
            (COVER_LABELS["number"], number),
            (COVER_LABELS["producer"], c.producer_name),
            (COVER_LABELS["uscc"], uscc),
            (COVER_LABELS["printer"], c.printer_name),
            (COVER_LABELS["label"], (f"{num(s.width_mm)} x {num(s.height_mm)} mm, QR version {self.qr_version}-"
                           f"{s.error_correction} mask {self.mask}, module {lay.module_mm:.3f} mm")),
            (COVER_LABELS["sheet"], (f"{sheet.paper}, {sheet.cols} x {sheet.rows} = {sheet.per_sheet} labels per sheet, "
                           f"bleed {num(sheet.bleed)} mm, crop marks")),
            (COVER_LABELS["serials"], f"{first} .. {last}"),
            (COVER_LABELS["count"], f"{count:,} labels on {sheets:,} sheets (after this cover)"),
            (COVER_LABELS["sha256"], sha256[:32]),
            ("", sha256[32:]),
            ("", "SHA-256 of the serials in print order, UTF-8, joined by LF, no final LF"),
            (COVER_LABELS["created"], c.created),
            (COVER_LABELS["notes"], c.notes),
        ]

    def _cover_stream(self, count: int, first: str, last: str, sha256: str) -> bytes:
        sheet = self.sheet
        left, top = 20.0, 30.0
        ops = [f"q {num(PT_PER_MM, 6)} 0 0 {num(PT_PER_MM, 6)} 0 0 cm 0 g\n"]
        runs = [TextRun(COVER_TITLE, left, top, 6.0)]
        y = top + 14
        for label, value in self.cover_lines(count, first, last, sha256):
            if label:
                runs.append(TextRun(label, left, y, 3.5))
            if value:
                size = 3.5
                width = self.font.width(value) * size
                limit = sheet.page_w - left - 80 - 10
                if width > limit:
                    size = max(1.5, size * limit / width)
                runs.append(TextRun(value, left + 80, y, size))
            y += 8
        for run in runs:
            self.font.check(run.text, "cover text")
            self.chars.update(run.text)
            ops.append(self.text.show(run, sheet.page_h))
        ops.append("Q\n")
        return "".join(ops).encode("ascii")

    def _font_objects(self) -> None:
        font, pdf = self.font, self.pdf
        chars = {ch for ch in self.chars if not ch.isspace() or ch == " "}
        program = font.embedding_program(frozenset(chars))
        tag = "".join(chr(65 + b % 26) for b in hashlib.sha256(program).digest()[:6])
        base = f"{tag}+{font.postscript_name}"
        codes = sorted({font.code(ch): ch for ch in chars}.items())
        widths = []
        for code, ch in codes:
            widths.append(f"{code} [{round(font.advance(ch) * 1000)}]")
        file_obj = pdf.reserve()
        if font.kind == "cff":
            pdf.stream(file_obj, program, "/Subtype /CIDFontType0C")
            subtype, file_key, extra = "CIDFontType0", "FontFile3", ""
        else:
            pdf.stream(file_obj, program, f"/Length1 {len(program)}")
            subtype, file_key, extra = "CIDFontType2", "FontFile2", " /CIDToGIDMap /Identity"
        descriptor = pdf.reserve()
        bbox = " ".join(str(round(v)) for v in font.bbox)
        pdf.obj(descriptor, f"<< /Type /FontDescriptor /FontName /{base} /Flags 4 /FontBBox [{bbox}] "
                            f"/ItalicAngle 0 /Ascent {round(font.ascent * 1000)} /Descent {round(font.descent * 1000)} "
                            f"/CapHeight {round(font.cap_height * 1000)} /StemV 80 /{file_key} {file_obj} 0 R >>")
        registry, ordering, supplement = font.ros
        cid_font = pdf.reserve()
        pdf.obj(cid_font, f"<< /Type /Font /Subtype /{subtype} /BaseFont /{base} /CIDSystemInfo << /Registry "
                          f"({registry}) /Ordering ({ordering}) /Supplement {supplement} >> /FontDescriptor "
                          f"{descriptor} 0 R /DW 1000 /W [{' '.join(widths)}]{extra} >>")
        to_unicode = pdf.reserve()
        pdf.stream(to_unicode, _to_unicode_cmap(codes).encode("ascii"))
        pdf.obj(self.font_obj, f"<< /Type /Font /Subtype /Type0 /BaseFont /{base} /Encoding /Identity-H "
                               f"/DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>")


def _to_unicode_cmap(codes: list[tuple[int, str]]) -> str:
    lines = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
             "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
             "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
             "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
    for i in range(0, len(codes), 100):
        chunk = codes[i:i + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines.extend(f"<{code:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for code, ch in chunk)
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines) + "\n"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def write_pdf_sheets(items: Iterable[LabelContent], spec: LabelSpec, out: BinaryIO, *, cover: CoverInfo,
                     paper: str = "A4", bleed_mm: float = 2.0, gap_mm: float | None = None,
                     qr_version: int | None = None, mask: int = DEFAULT_MASK, workers: int = 1,
                     progress: Callable[[int], None] | None = None, font: LabelFont | None = None) -> SheetResult:
    """Stream print sheets for ``items`` (in print order) to ``out`` as one PDF with a cover page first.

    The batch uses one QR version: ``qr_version`` or the smallest that holds the first URL (a later URL that
    does not fit raises LabelError('url_too_long')). ``workers``: processes drawing pages (0 = all cores).
    ``progress(n)`` is called with the number of labels written after each sheet.
    """
    if not isinstance(cover, CoverInfo):
        raise LabelError("bad_cover", "cover must be a CoverInfo")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise LabelError("bad_workers", f"workers must be 0 (all cores) or a positive count, got {workers!r}")
    workers = workers or _cpu_count()
    font = font or default_font()
    sheet = sheet_layout(spec, paper, bleed_mm, gap_mm)
    iterator = iter(items)
    first_item = next(iterator, None)
    if first_item is None:
        raise LabelError("empty_batch", "no labels to print")
    check_content(first_item)
    version = qr_version or url_qr_version(first_item.url, spec.error_correction)
    layout(spec, version)                        # refuse a too-small module before writing anything
    writer = _SheetWriter(out, spec, sheet, font, version, mask, cover)
    digest = hashlib.sha256()
    state = {"count": 0, "first": first_item.serial, "last": ""}
    per_sheet = sheet.per_sheet
    worker_glyphs = font.metrics(WORKER_CHARS)
    font.check(cover.order_id, "order id")
    drawable = frozenset(ch for ch in WORKER_CHARS if worker_glyphs.has(ch))
    # All of printable ASCII goes into the font subset (a few kB): serials need no per-label bookkeeping,
    # and every file of the same GI and order texts shares one cached subset.
    writer.chars.update(drawable)
    if not drawable.issuperset(cover.order_id):
        raise LabelError("bad_cover", f"the order id {cover.order_id!r} must be printable ASCII (it is on every sheet)")
    page_sizes: deque[int] = deque()          # labels on each sheet handed out and not yet written

    def tasks() -> Iterator[list]:
        stream = itertools.chain((first_item,), iterator)
        sheet_no = 0
        while True:
            task = []
            for _ in range(CHUNK_PAGES):
                labels = []
                for content in itertools.islice(stream, per_sheet):
                    check_content(content)
                    form = writer.form_for(content)
                    printed = content.printed_serial
                    serial = content.serial
                    if not (drawable.issuperset(printed) and drawable.issuperset(serial)):
                        raise LabelError("bad_serial", f"serials are printed in ASCII letters, digits and "
                                                       f"punctuation; {printed!r} / {serial!r} is not")
                    digest.update(serial.encode("utf-8") if state["count"] == 0 else b"\n" + serial.encode("utf-8"))
                    state["count"] += 1
                    state["last"] = serial
                    labels.append((form, content.url, printed, serial))
                if not labels:
                    break
                sheet_no += 1
                page_sizes.append(len(labels))
                task.append((sheet_no, labels))
            if not task:
                return
            yield task
            if len(task) < CHUNK_PAGES or len(task[-1][1]) < per_sheet:
                return

    init_args = (spec, version, mask, worker_glyphs, sheet, cover.order_id)
    written = 0
    for pages in _ordered(tasks(), workers, init_args):
        for stream in pages:
            writer.page(stream)
            written += page_sizes.popleft()
            if progress is not None:
                progress(written)
    count, sha = state["count"], digest.hexdigest()
    _check_cover(cover, count, state["first"], state["last"], sha)
    writer.finish(count, state["first"], state["last"], sha)
    return SheetResult(count, len(writer.page_objs), per_sheet, state["first"], state["last"], sha, version, mask,
                       writer.pdf.pos)


def _check_cover(cover: CoverInfo, count: int, first: str, last: str, sha: str) -> None:
    for what, expected, actual in (("count", cover.count, count), ("first serial", cover.first_serial, first),
                                   ("last serial", cover.last_serial, last), ("SHA-256", cover.sha256, sha)):
        if expected is not None and expected != actual:
            raise LabelError("cover_mismatch", f"the print order expects {what} {expected} but the labels given "
                                               f"have {actual}; the output is incomplete and must be discarded")
