"""The CJK font labels are drawn with: where it is found, its metrics, and its glyphs for PNG, SVG and PDF.

The project installs Noto Sans CJK (SIL Open Font License) from Debian's
``fonts-noto-cjk`` package. ``find_font`` looks, in order, at:

1. ``$GI_LABEL_FONT`` (a path to a .ttc, .otf or .ttf; a wrong path is an
   error, never silently replaced by another font);
2. the paths Debian/Ubuntu (and Fedora, Arch) install Noto Sans CJK to;
3. ``fc-match "Noto Sans CJK SC"`` when fontconfig is installed.

A font is accepted only if it has glyphs for 地理标志专用标志; in a collection
(.ttc) the Simplified Chinese face (family name ending in ``SC``, not the
Mono one) is used -- index 2 in Debian's ``NotoSansCJK-Regular.ttc``.

How each output draws text
--------------------------
* PNG: Pillow's FreeType renderer (``ImageFont.truetype(path, size, index=...)``).
* SVG: the glyph outlines as ``<path>`` elements (from fontTools), so an SVG
  shows the same shapes on a machine without the font.
* PDF: the font embedded as a subset. reportlab's ``TTFont`` cannot embed
  Noto Sans CJK (``postscript outlines are not supported``: its outlines are
  CFF, not TrueType ``glyf``), so the PDF writer embeds the CFF program itself:
  fontTools subsets the face to the characters used and the bare CID-keyed CFF
  table goes in as ``/FontFile3 /Subtype /CIDFontType0C`` under a Type0 font
  with ``Identity-H`` encoding (PDF 1.3; every viewer and RIP reads it). Text
  stays text: selectable, searchable, with a ``ToUnicode`` map, and the glyph
  shapes are the font's own, not an approximation. A TrueType font given via
  ``$GI_LABEL_FONT`` is embedded as ``CIDFontType2`` with its glyph ids kept.
  Character codes in the content streams are CIDs (CFF) or glyph ids
  (TrueType) of the *full* font, so pages can be written before the subset is
  known; the subset is made once, at the end of the file.
"""
from __future__ import annotations

import abc

import io
import logging
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from .errors import LabelError

FONT_ENV = "GI_LABEL_FONT"

# fonts-noto-cjk on Debian/Ubuntu first; then where Fedora (google-noto-*-cjk-fonts) and Arch (noto-fonts-cjk) put it.
DEFAULT_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)

INSTALL_HINT = ("install Noto Sans CJK (SIL Open Font License): `sudo apt-get install fonts-noto-cjk` on "
                "Debian/Ubuntu (`make install` and .ci/run do this), or set GI_LABEL_FONT to the path of a "
                "CJK .ttc/.otf/.ttf font")

# Characters every label font must draw (the placeholder's text).
PROBE_TEXT = "地理标志专用标志"


def find_font() -> tuple[str, int]:
    """The path and face index of the CJK font to draw labels with, or LabelError('font_missing')."""
    return _find_font(os.environ.get(FONT_ENV, "").strip())


@lru_cache(maxsize=8)          # a failure is not cached: installing the font later is picked up
def _find_font(env: str) -> tuple[str, int]:
    if env:
        path = Path(env)
        if not path.is_file():
            raise LabelError("font_missing", f"{FONT_ENV}={env} is not a font file; point it at an existing "
                                             f".ttc/.otf/.ttf or unset it to use Noto Sans CJK ({INSTALL_HINT})")
        index = _pick_face(str(path))
        if index is None:
            raise LabelError("font_missing", f"{FONT_ENV}={env} has no face that draws {PROBE_TEXT}; "
                                             f"use a Chinese font ({INSTALL_HINT})")
        return str(path), index
    for candidate in DEFAULT_FONT_PATHS:
        if os.path.isfile(candidate):
            index = _pick_face(candidate)
            if index is not None:
                return candidate, index
    found = _fc_match()
    if found is not None:
        return found
    raise LabelError("font_missing", f"no CJK font found for labels: {INSTALL_HINT}")


def _faces(path: str):
    """(index, TTFont) for each face of a font file (lazy: tables load on demand)."""
    from fontTools.ttLib import TTCollection, TTFont
    with open(path, "rb") as fh:
        is_collection = fh.read(4) == b"ttcf"
    if is_collection:
        return list(enumerate(TTCollection(path, lazy=True).fonts))
    return [(0, TTFont(path, lazy=True))]


def _family(font) -> str:
    name = font["name"]
    return str(name.getDebugName(16) or name.getDebugName(1) or "")


def _covers(font, text: str) -> bool:
    cmap = font.getBestCmap() or {}
    return all(ord(ch) in cmap for ch in text)


def _pick_face(path: str) -> int | None:
    """The Simplified Chinese face of a font file (a collection's ``... SC`` face), if it draws PROBE_TEXT."""
    try:
        faces = _faces(path)
        # SC faces first (name tables are cheap to read; character maps of CJK faces are not).
        ranked = sorted(faces, key=lambda face: not (re.search(r"\bSC\b", _family(face[1]))
                                                     and "Mono" not in _family(face[1])))
        for i, font in ranked:
            if _covers(font, PROBE_TEXT):
                return i
    except Exception:  # noqa: BLE001 -- fontTools raises many kinds on a file it cannot read: not a usable font
        return None
    return None


def _fc_match() -> tuple[str, int] | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        result = subprocess.run(["fc-match", "-f", "%{file}\n%{index}", "Noto Sans CJK SC:lang=zh-cn"],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = result.stdout.splitlines()
    if len(lines) < 1 or not os.path.isfile(lines[0]):
        return None
    # fontconfig always answers with some font; keep it only if it draws Chinese.
    index = _pick_face(lines[0])
    return None if index is None else (lines[0], index)


class _CharTable(abc.ABC):
    """Character codes and advances, shared by a loaded font and its picklable metrics.

    Subclasses fill ``_code`` and ``_advance`` and say in ``check`` why a character is missing.
    """

    _code: dict[str, int]
    _advance: dict[str, float]

    @abc.abstractmethod
    def check(self, text: str, what: str = "text") -> None:
        """Raise LabelError('glyph_missing') for the first character of ``text`` that cannot be drawn."""

    def has(self, ch: str) -> bool:
        return ch in self._code

    def code(self, ch: str) -> int:
        """The PDF character code (CID for CFF fonts, glyph id for TrueType) of a character."""
        try:
            return self._code[ch]
        except KeyError:
            self.check(ch)
            raise

    def width(self, text: str) -> float:
        """Advance width of ``text`` in ems (no kerning: labels are short lines)."""
        adv = self._advance
        try:
            return sum(adv[ch] for ch in text)
        except KeyError:
            self.check(text)
            raise

    def advance(self, ch: str) -> float:
        return self._advance[ch]


class GlyphMetrics(_CharTable):
    """Codes and advances of a few characters of a LabelFont: all a page-drawing worker process needs.

    Picklable and small, so worker processes start without loading the font file.
    """

    def __init__(self, family: str, ascent: float, descent: float, glyphs: dict[str, tuple[int, float]]):
        self.family = family
        self.ascent = ascent
        self.descent = descent
        self._code = {ch: code for ch, (code, _) in glyphs.items()}
        self._advance = {ch: adv for ch, (_, adv) in glyphs.items()}

    def __reduce__(self):
        return (GlyphMetrics, (self.family, self.ascent, self.descent,
                               {ch: (self._code[ch], self._advance[ch]) for ch in self._code}))

    def check(self, text: str, what: str = "text") -> None:
        for ch in text:
            if ch not in self._code:
                raise LabelError("glyph_missing", f"the {what} {text!r} has {ch!r} (U+{ord(ch):04X}), which this "
                                                  f"label run cannot draw")



class LabelFont(_CharTable):
    """One face of a CJK font: metrics and character codes for layout and PDF, Pillow fonts, SVG outlines."""

    def __init__(self, path: str, index: int = 0):
        from fontTools.ttLib import TTFont

        self.path = str(path)
        self.index = index
        self._lock = threading.Lock()
        try:
            font = TTFont(self.path, fontNumber=index, lazy=True)
            cmap = font.getBestCmap()
        except Exception as exc:  # noqa: BLE001 -- any parse failure: not a usable font
            raise LabelError("font_unsupported", f"cannot read the font {self.path} (face {index}): {exc}") from None
        if not cmap:
            raise LabelError("font_unsupported", f"the font {self.path} (face {index}) has no Unicode character map")
        self._font = font
        self.family = _family(font)
        self.postscript_name = re.sub(r"[^A-Za-z0-9-]", "", str(font["name"].getDebugName(6) or "LabelFont"))
        head = font["head"]
        self.units_per_em = head.unitsPerEm
        if "CFF " in font:
            top = font["CFF "].cff.topDictIndex[0]
            if not hasattr(top, "ROS"):
                raise LabelError("font_unsupported",
                                 f"{self.path}: name-keyed CFF fonts are not supported; use a CID-keyed OpenType "
                                 f"font such as Noto Sans CJK or Source Han Sans, or a TrueType font")
            self.kind = "cff"
            self.ros = tuple(top.ROS)
        elif "glyf" in font:
            self.kind = "truetype"
            self.ros = ("Adobe", "Identity", 0)
        else:
            raise LabelError("font_unsupported", f"{self.path}: only CFF (OpenType) and TrueType outlines are "
                                                 f"supported (variable CFF2 fonts are not)")
        os2 = font.get("OS/2")
        upm = self.units_per_em
        if os2 is not None and os2.sTypoAscender:
            self.ascent = os2.sTypoAscender / upm
            self.descent = os2.sTypoDescender / upm
        else:
            self.ascent = font["hhea"].ascent / upm
            self.descent = font["hhea"].descent / upm
        self.cap_height = (getattr(os2, "sCapHeight", 0) or 0.7 * upm) / upm
        self.bbox = tuple(v * 1000 / upm for v in (head.xMin, head.yMin, head.xMax, head.yMax))
        hmtx = font["hmtx"]
        glyph_order = font.getGlyphOrder()
        self._cmap = cmap
        self._advance: dict[str, float] = {}
        self._code: dict[str, int] = {}
        for cp, name in cmap.items():
            ch = chr(cp)
            self._advance[ch] = hmtx[name][0] / upm
            if self.kind == "cff":
                self._code[ch] = 0 if name == ".notdef" else int(name[3:]) if name.startswith("cid") else \
                    glyph_order.index(name)
            else:
                self._code[ch] = font.getGlyphID(name)
        self.notdef_advance = hmtx[glyph_order[0]][0] / upm
        self._outlines: dict[int, str] = {}
        self._pillow: dict[float, object] = {}
        self._programs: dict[frozenset[str], bytes] = {}

    def __repr__(self) -> str:
        return f"LabelFont({self.path!r}, index={self.index}, family={self.family!r})"

    # -- characters -------------------------------------------------------

    def check(self, text: str, what: str = "text") -> None:
        """Raise LabelError('glyph_missing') naming the first character of ``text`` the font cannot draw."""
        for ch in text:
            if ch not in self._code:
                raise LabelError("glyph_missing",
                                 f"the label font {self.family or self.path} has no glyph for {ch!r} (U+{ord(ch):04X}) "
                                 f"in the {what} {text!r}; use another character or set {FONT_ENV} to a font "
                                 f"that has it")

    def metrics(self, chars: Iterable[str]) -> GlyphMetrics:
        """A small picklable table of the given characters (those the font has)."""
        return GlyphMetrics(self.family, self.ascent, self.descent,
                            {ch: (self._code[ch], self._advance[ch]) for ch in set(chars) if ch in self._code})

    # -- renderers ----------------------------------------------------------

    def pillow(self, size_px: float):
        """A Pillow FreeType font of this face at ``size_px`` pixels per em (cached)."""
        from PIL import ImageFont
        key = round(size_px * 4) / 4
        font = self._pillow.get(key)
        if font is None:
            font = ImageFont.truetype(self.path, key, index=self.index, layout_engine=ImageFont.Layout.BASIC)
            self._pillow[key] = font
        return font

    def outline(self, ch: str) -> str:
        """The SVG path data of a character's glyph in font units (y up), cached."""
        code = self.code(ch)
        d = self._outlines.get(code)
        if d is None:
            from fontTools.pens.svgPathPen import SVGPathPen
            with self._lock:
                glyphs = self._font.getGlyphSet()
                pen = SVGPathPen(glyphs)
                glyphs[self._cmap[ord(ch)]].draw(pen)
                d = pen.getCommands()
            self._outlines[code] = d
        return d

    def notdef_outline(self) -> str:
        """The SVG path data of the .notdef glyph (what a missing character would look like)."""
        from fontTools.pens.svgPathPen import SVGPathPen
        with self._lock:
            glyphs = self._font.getGlyphSet()
            pen = SVGPathPen(glyphs)
            glyphs[self._font.getGlyphOrder()[0]].draw(pen)
            return pen.getCommands()

    def embedding_program(self, chars: Iterable[str]) -> bytes:
        """The font program to embed in a PDF for ``chars``: a bare CFF table (CFF) or a TrueType file."""
        key = frozenset(chars)
        program = self._programs.get(key)      # the same GI's print files share their subset
        if program is None:
            program = self._subset(key)
            if len(self._programs) >= 16:
                self._programs.clear()
            self._programs[key] = program
        return program

    def _subset(self, chars: frozenset[str]) -> bytes:
        from fontTools import subset
        from fontTools.ttLib import TTFont

        _quiet_subsetter()
        for ch in chars:
            self.code(ch)
        options = subset.Options()
        options.layout_features = []
        options.notdef_outline = True
        options.hinting = False
        options.desubroutinize = True
        options.glyph_names = False
        options.name_IDs = []
        # TrueType: glyph ids are the PDF character codes (CIDToGIDMap /Identity), so keep them.
        # CID-keyed CFF keeps each glyph's CID in its charset whatever its new glyph id.
        options.retain_gids = self.kind == "truetype"
        font = TTFont(self.path, fontNumber=self.index, lazy=True)     # a fresh copy: subsetting edits it
        # Only the outline tables go into the PDF; not decoding the rest (cmap, layout) saves most of the time.
        keep = {"CFF ", "head", "hhea", "hmtx", "maxp"} if self.kind == "cff" else \
            {"glyf", "loca", "head", "hhea", "hmtx", "maxp", "post", "OS/2", "name", "cmap"}
        for tag in list(font.keys()):
            if tag not in keep and tag != "GlyphOrder":
                del font[tag]
        subsetter = subset.Subsetter(options)
        subsetter.populate(glyphs=sorted({self._cmap[ord(ch)] for ch in chars}))
        subsetter.subset(font)
        buf = io.BytesIO()
        if self.kind == "cff":
            font["CFF "].cff.compile(buf, font)
        else:
            font.save(buf)
        return buf.getvalue()


def _quiet_subsetter() -> None:
    """Keep fontTools' subsetter to warnings unless its log level was chosen on purpose.

    It reports every step at INFO (a dozen lines per subset: tables pruned, glyph names and ids), and a
    service logging at INFO wrote them all to its console on every PDF render.
    """
    log = logging.getLogger("fontTools.subset")
    if log.level == logging.NOTSET:
        log.setLevel(logging.WARNING)


@lru_cache(maxsize=4)
def load_font(path: str, index: int = 0) -> LabelFont:
    """A LabelFont for a font file and face, loaded once per process."""
    return LabelFont(path, index)


def default_font() -> LabelFont:
    """The label font ``find_font`` picks, loaded once per process (per path)."""
    return load_font(*find_font())
