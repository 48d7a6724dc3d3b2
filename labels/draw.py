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


def _two_digits(values: np.ndarray) -> np.ndarray:
    """Numbers 0-99 as two ASCII bytes, space-padded (PDF allows any run of white space between tokens)."""
    tens, ones = np.divmod(values, 10)
    return np.column_stack((np.where(tens == 0, 32, 48 + tens), 48 + ones)).astype(np.uint8)


_RE_TAIL = np.frombuffer(b" 1 re\n", dtype=np.uint8)


def pdf_run_paths(matrices: np.ndarray) -> list[bytes]:
    """For each matrix of a (k, n, n) stack, its dark runs as PDF ``x y len 1 re`` operators (module units).

    Formatted for the whole stack in a few array operations: every run is a
    fixed-width record ``"xx yy ll 1 re\n"`` with space-padded numbers.
    """
    k, n, _ = matrices.shape
    if n > 99:
        raise ValueError("run formatting handles symbols up to 99 modules")
    padded = np.zeros((k, n, n + 2), dtype=np.int8)
    padded[:, :, 1:-1] = matrices
    d = np.diff(padded, axis=2)
    label, row, start = np.nonzero(d == 1)
    end = np.nonzero(d == -1)[2]
    count = label.size
    rec = np.empty((count, 14), dtype=np.uint8)
    rec[:, 0:2] = _two_digits(start)
    rec[:, 2] = 32
    rec[:, 3:5] = _two_digits(row)
    rec[:, 5] = 32
    rec[:, 6:8] = _two_digits(end - start)
    rec[:, 8:14] = _RE_TAIL
    data = rec.tobytes()
    bounds = np.concatenate(([0], np.cumsum(np.bincount(label, minlength=k)))) * 14
    return [data[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


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
