"""What a label is: its size and resolution (LabelSpec), what it says (LabelContent), and where things go (Layout).

All lengths are millimetres with the origin at the top-left corner of the
trimmed label; renderers convert to pixels, SVG user units or PDF points.

Layout
------
A label shows, per the 2020 trial Measures (CNIPA Announcement No. 354): the
special-mark artwork (or the neutral placeholder), the GI name in Chinese, the
QR code, the user's unified social credit code (USCC), the announcement or
standard number, and the serial as text.

* Square and landscape labels (height < 1.25 x width, e.g. 20x20, 30x30): the
  GI name across the top; artwork left and QR right below it; then three lines:
  USCC, announcement/standard number, serial.
* Tall labels (e.g. 40x60): artwork, GI name, QR and the three lines stacked.

The QR area always includes a quiet zone of 4 modules on every side
(``QUIET_ZONE``), kept clear of everything else. A module smaller than
0.25 mm (``MIN_MODULE_MM``) prints unreliably, so such a size is refused with
``LabelError('module_too_small')`` naming the sizes that would work. Text is
shrunk to fit its line, but never below ``MIN_TEXT_MM`` (1.0 mm em, about
2.8 pt); text that would need to be smaller is refused (``text_too_long``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .errors import LabelError
from .fonts import LabelFont

MIN_MODULE_MM = 0.25
QUIET_ZONE = 4
MIN_TEXT_MM = 1.0
MIN_LABEL_MM = 15.0
MAX_LABEL_MM = 300.0
DPI_RANGE = (150, 2400)
LINE_LEADING = 1.15            # a text line's box is this many ems tall
PLACEHOLDER_TEXT = ("地理标志", "专用标志")


@dataclass(frozen=True)
class LabelSpec:
    """A label's trimmed size in millimetres, raster resolution and QR error correction ('M' or 'Q')."""

    width_mm: float
    height_mm: float
    dpi: int = 300
    error_correction: str = "M"
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        for what, value in (("width", self.width_mm), ("height", self.height_mm)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not MIN_LABEL_MM <= value <= MAX_LABEL_MM:
                raise LabelError("bad_size", f"label {what} must be {MIN_LABEL_MM:g}-{MAX_LABEL_MM:g} mm, "
                                             f"got {value!r}")
        if isinstance(self.dpi, bool) or not isinstance(self.dpi, int) or not DPI_RANGE[0] <= self.dpi <= DPI_RANGE[1]:
            raise LabelError("bad_dpi", f"resolution must be a whole number of dpi from {DPI_RANGE[0]} to "
                                        f"{DPI_RANGE[1]} (print: 300 or 600), got {self.dpi!r}")
        ec = self.error_correction.upper() if isinstance(self.error_correction, str) else self.error_correction
        if ec not in ("M", "Q"):
            raise LabelError("bad_error_correction",
                             f"labels use QR error correction M (default) or Q, got {self.error_correction!r}")
        object.__setattr__(self, "error_correction", ec)

    @classmethod
    def custom(cls, width_mm: float, height_mm: float, dpi: int = 300, error_correction: str = "M") -> LabelSpec:
        """A label of any size from 15 to 300 mm a side."""
        return cls(width_mm, height_mm, dpi, error_correction, f"{width_mm:g}x{height_mm:g}")

    @classmethod
    def preset(cls, name: str, dpi: int = 300, error_correction: str = "M") -> LabelSpec:
        """One of PRESETS ('20x20', '30x30', '40x60') at a resolution and error correction."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise LabelError("bad_preset", f"unknown label preset {name!r}; choose one of "
                                           f"{', '.join(PRESETS)} or a custom size") from None
        return replace(base, dpi=dpi, error_correction=error_correction)

    @property
    def width_px(self) -> int:
        return round(self.width_mm * self.dpi / 25.4)

    @property
    def height_px(self) -> int:
        return round(self.height_mm * self.dpi / 25.4)


PRESETS: dict[str, LabelSpec] = {
    "20x20": LabelSpec(20, 20, name="20x20"),
    "30x30": LabelSpec(30, 30, name="30x30"),
    "40x60": LabelSpec(40, 60, name="40x60"),
}


@dataclass(frozen=True, slots=True)
class LabelContent:
    """What one label says. ``serial`` is the canonical serial; ``serial_display`` how it is printed."""

    gi_name_zh: str
    uscc: str
    registration_or_standard_no: str
    serial: str
    url: str
    serial_display: str | None = None
    artwork_png: bytes | None = None

    @property
    def printed_serial(self) -> str:
        return self.serial_display or self.serial

    @property
    def static_key(self) -> tuple:
        """The part shared by every label of a batch (drawn once per batch, not per label)."""
        return (self.gi_name_zh, self.uscc, self.registration_or_standard_no, self.artwork_png)


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle in millimetres from the label's top-left corner."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class TextRun:
    """One line of text placed on a label: left end of the baseline and em size, in millimetres."""

    text: str
    x: float
    baseline: float
    size: float


@dataclass(frozen=True)
class Layout:
    """Where everything goes on a label of one spec with one QR version."""

    spec: LabelSpec
    qr_version: int
    qr_area: Box                 # the symbol plus its quiet zone (square)
    module_mm: float
    artwork: Box
    name: Box
    uscc: Box
    standard: Box
    serial: Box

    @property
    def modules(self) -> int:
        """Modules across the symbol, without the quiet zone."""
        return 17 + 4 * self.qr_version

    @property
    def symbol_origin(self) -> tuple[float, float]:
        """Top-left corner of the symbol's first module (inside the quiet zone)."""
        return self.qr_area.x + QUIET_ZONE * self.module_mm, self.qr_area.y + QUIET_ZONE * self.module_mm

    def module_px(self) -> int:
        """Whole pixels per module for raster output at the spec's dpi (never below 0.25 mm)."""
        px_per_mm = self.spec.dpi / 25.4
        across = self.modules + 2 * QUIET_ZONE
        return max(math.floor(self.qr_area.w * px_per_mm / across), math.ceil(MIN_MODULE_MM * px_per_mm - 1e-9))


def _suggest(version: int, error_correction: str) -> str:
    need = MIN_MODULE_MM * (17 + 4 * version + 2 * QUIET_ZONE)
    fitting = [name for name, spec in PRESETS.items()
               if _qr_side(spec.width_mm, spec.height_mm) >= need - 1e-9]
    choose = f"choose the {' or '.join(fitting)} preset" if fitting else "choose a larger custom size"
    return (f"{choose} (the QR area needs {need:.2f} mm with its quiet zone), or make the URL shorter so it fits "
            f"a smaller QR version{', or use error correction M' if error_correction == 'Q' else ''}")


def _metrics(w: float, h: float) -> dict[str, float]:
    """The layout's raw numbers for a w x h label (mm)."""
    tall = h >= 1.25 * w
    m = min(max(0.04 * min(w, h), 0.6), 3.0)
    W, H = w - 2 * m, h - 2 * m
    g = 0.02 * H
    if tall:
        name_h, line_h = 0.11 * W, 0.065 * W
        rest = H - name_h - 3 * line_h - 3 * g
        q = min(0.55 * W, 0.5 * rest)
        a = min(W, rest - q)
        spare = rest - q - a
    else:
        name_h, line_h = 0.13 * H, 0.085 * H
        mid = H - name_h - 3 * line_h - 2 * g
        q = min(mid, 0.62 * W)
        a = min(mid, W - q - g)
        spare = 0.0
    return {"tall": tall, "m": m, "W": W, "H": H, "g": g, "name_h": name_h, "line_h": line_h, "q": q, "a": a,
            "spare": spare}


def _qr_side(w: float, h: float) -> float:
    return _metrics(w, h)["q"]


def validate(spec: LabelSpec, qr_version: int) -> float:
    """The module size in mm for this spec and QR version, or LabelError('module_too_small')."""
    if isinstance(qr_version, bool) or not isinstance(qr_version, int) or not 1 <= qr_version <= 40:
        raise LabelError("bad_qr_version", f"QR version must be 1-40, got {qr_version!r}")
    across = 17 + 4 * qr_version + 2 * QUIET_ZONE
    module = _qr_side(spec.width_mm, spec.height_mm) / across
    if module < MIN_MODULE_MM - 1e-9:
        raise LabelError("module_too_small",
                         f"a {spec.width_mm:g}x{spec.height_mm:g} mm label leaves {module:.3f} mm per QR module "
                         f"for QR version {qr_version}-{spec.error_correction} ({across - 2 * QUIET_ZONE} modules "
                         f"+ {2 * QUIET_ZONE} quiet-zone modules), below the {MIN_MODULE_MM} mm that prints "
                         f"reliably: {_suggest(qr_version, spec.error_correction)}")
    return module


def layout(spec: LabelSpec, qr_version: int) -> Layout:
    """Where the artwork, texts and QR go on a label (refuses a module under 0.25 mm)."""
    module = validate(spec, qr_version)
    w, h = spec.width_mm, spec.height_mm
    k = _metrics(w, h)
    m, W, g, name_h, line_h, q, a = k["m"], k["W"], k["g"], k["name_h"], k["line_h"], k["q"], k["a"]
    if k["tall"]:
        g += k["spare"] / 3                       # a taller label spreads out, it does not grow a blank foot
        artwork = Box(m + (W - a) / 2, m, a, a)
        name = Box(m, m + a + g, W, name_h)
        qr = Box(m + (W - q) / 2, name.y + name_h + g, q, q)
        y0 = qr.y + q + g
    else:
        mid_y = m + name_h + g
        mid = k["H"] - name_h - 3 * line_h - 2 * g
        name = Box(m, m, W, name_h)
        qr = Box(m + W - q, mid_y + (mid - q) / 2, q, q)
        free = W - q - g
        artwork = Box(m + (free - a) / 2, mid_y + (mid - a) / 2, a, a)
        y0 = mid_y + mid + g
    return Layout(spec, qr_version, qr, module, artwork, name,
                  Box(m, y0, W, line_h), Box(m, y0 + line_h, W, line_h), Box(m, y0 + 2 * line_h, W, line_h))


def fit_text(font: LabelFont, text: str, box: Box, what: str, *, align: str = "center",
             max_size: float | None = None) -> TextRun:
    """Place one line of text in a box: as large as the box allows, shrunk to its width, never below MIN_TEXT_MM."""
    font.check(text, what)
    size = box.h / LINE_LEADING if max_size is None else min(max_size, box.h / LINE_LEADING)
    width = font.width(text)
    if width * size > box.w:
        size = box.w / width
        if size < MIN_TEXT_MM - 1e-9:
            raise LabelError("text_too_long",
                             f"the {what} {text!r} needs {width * MIN_TEXT_MM:.1f} mm at the smallest legible "
                             f"size ({MIN_TEXT_MM} mm) but its line is {box.w:.1f} mm wide: shorten it or choose "
                             f"a larger label")
    x = box.x + (box.w - width * size) / 2 if align == "center" else box.x
    baseline = box.y + box.h / 2 + (font.ascent + font.descent) / 2 * size
    return TextRun(text, x, baseline, size)


def static_runs(lay: Layout, content: LabelContent, font: LabelFont) -> list[TextRun]:
    """The text that is the same on every label of a batch: GI name, USCC, announcement/standard number."""
    runs = []
    for text, box, what in ((content.gi_name_zh, lay.name, "GI name"), (content.uscc, lay.uscc, "USCC"),
                            (content.registration_or_standard_no, lay.standard, "announcement/standard number")):
        if not isinstance(text, str):
            raise LabelError("bad_content", f"the {what} must be text, got {type(text).__name__}")
        if text.strip():
            runs.append(fit_text(font, text.strip(), box, what))
    return runs


def serial_run(lay: Layout, text: str, font: LabelFont) -> TextRun:
    """The serial line of one label."""
    if not isinstance(text, str) or not text:
        raise LabelError("bad_content", "every label needs its serial")
    return fit_text(font, text, lay.serial, "serial")


def placeholder_runs(lay: Layout, font: LabelFont) -> list[TextRun]:
    """The neutral placeholder's two lines 地理标志 / 专用标志, centred in the artwork box."""
    box = lay.artwork
    inner = box.w * 0.8
    size = min(inner / font.width(PLACEHOLDER_TEXT[0]), box.h * 0.3 / LINE_LEADING)
    line = size * LINE_LEADING
    top = box.y + (box.h - 2 * line) / 2
    return [fit_text(font, t, Box(box.x, top + i * line, box.w, line), "placeholder", max_size=size)
            for i, t in enumerate(PLACEHOLDER_TEXT)]


def placeholder_stroke(lay: Layout) -> float:
    """Line width (mm) of the placeholder's outline."""
    return max(0.15, lay.artwork.w * 0.015)


def check_content(content: LabelContent) -> None:
    """Refuse content that cannot make a label (wrong types, empty serial or URL)."""
    if not isinstance(content, LabelContent):
        raise LabelError("bad_content", f"expected LabelContent, got {type(content).__name__}")
    if not isinstance(content.serial, str) or not content.serial:
        raise LabelError("bad_content", "every label needs its serial")
    if content.artwork_png is not None and not isinstance(content.artwork_png, (bytes, bytearray)):
        raise LabelError("artwork_invalid", "the artwork must be PNG bytes or None")
