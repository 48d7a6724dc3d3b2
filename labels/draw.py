"""Helpers shared by the PNG, SVG and PDF renderers: QR module runs, artwork decoding, number formatting."""
from __future__ import annotations

import io

import numpy as np

from .errors import LabelError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def module_runs(matrix: np.ndarray) -> np.ndarray:
    """Horizontal runs of dark modules as an (n, 3) int array of (column, row, length), row by row."""
    m = np.asarray(matrix, dtype=np.int8)
    padded = np.zeros((m.shape[0], m.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = m
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return np.column_stack((starts, rows, ends - starts))


def num(x: float, places: int = 3) -> str:
    """A short decimal for PDF/SVG: no exponent, no trailing zeros, no negative zero."""
    s = f"{x:.{places}f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def open_artwork(png: bytes):
    """The artwork as an RGBA Pillow image, or LabelError('artwork_invalid')."""
    from PIL import Image, UnidentifiedImageError
    if not isinstance(png, (bytes, bytearray)) or not bytes(png[:8]) == PNG_SIGNATURE:
        raise LabelError("artwork_invalid", "the special-mark artwork must be a PNG file (bytes starting with the "
                                            "PNG signature)")
    try:
        image = Image.open(io.BytesIO(png))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise LabelError("artwork_invalid", f"the special-mark artwork is not a readable PNG: {exc}") from None
    return image.convert("RGBA")


def fit_inside(img_w: int, img_h: int, box_w: float, box_h: float) -> tuple[float, float]:
    """The largest (w, h) with the image's aspect ratio inside a box."""
    scale = min(box_w / img_w, box_h / img_h)
    return img_w * scale, img_h * scale
