"""QR Code symbols (ISO/IEC 18004) for label URLs: one fixed version and mask for a whole batch.

A print run encodes thousands of URLs of the same length (``{base}/v/{code}``,
or a GS1 Digital Link of fixed shape), so everything but the data is the same
for every label. ``QRPlan`` computes that once per (version, error
correction, mask) -- the function patterns, format and version information,
the order in which data bits are placed, the mask over those places, and
Reed-Solomon tables -- and ``QRPlan.matrix(url)`` then only encodes the data
codewords, adds error correction with table look-ups and scatters the bits.
That is roughly 30 times faster than a general encoder that also picks the
version and tries all 8 masks for every label.

Choices
-------
* **Version**: the smallest that holds the longest URL of the batch in one
  segment (``batch_qr_version``), the same rule as ``gi_service.codes.qr_version``:
  alphanumeric mode when every character is in the QR alphanumeric set
  (``0-9 A-Z space $%*+-./:``), else byte mode. URLs must be ASCII
  (percent-encode anything else): byte mode carries no character set.
* **Error correction**: M (15% of codewords recoverable) by default, Q (25%)
  on request. L and H are available to ``qr_matrix`` but not offered for labels.
* **Mask**: ``DEFAULT_MASK`` = 2 (inverts every third column of data modules),
  fixed for every label instead of scoring all 8 masks per label. The
  standard's score (penalty rules N1-N4) only steers away from patterns that
  trouble weak decoders; any mask decodes. Measured with qrcode's
  ``lost_point`` over 2,000 code URLs of each of two shapes
  (``https://gi.cnipa.gov.cn/v/`` + code, version 4-M; a 38-character base,
  version 5-M): mask 2 had the lowest mean penalty in both (mask 3 +4%/+8%,
  mask 6 +9%/+22%, the others +16% to +36%) and was the mask the per-label
  search itself picked for 53% and 79% of the URLs. ``python -m bench.labels``
  reprints that table.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .errors import LabelError

__all__ = ["DEFAULT_MASK", "QRPlan", "batch_qr_version", "qr_matrix", "qr_mode", "url_qr_version"]

DEFAULT_MASK = 2
MAX_VERSION = 10
ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_ALNUM_VALUE = {c: i for i, c in enumerate(ALPHANUMERIC)}
_ALNUM_SET = frozenset(ALPHANUMERIC)

# ISO/IEC 18004 Table 9, versions 1-10: (EC codewords per block, ((blocks, data codewords per block), ...)).
_BLOCKS = {
    "L": ((7, ((1, 19),)), (10, ((1, 34),)), (15, ((1, 55),)), (20, ((1, 80),)), (26, ((1, 108),)),
          (18, ((2, 68),)), (20, ((2, 78),)), (24, ((2, 97),)), (30, ((2, 116),)), (18, ((2, 68), (2, 69)))),
    "M": ((10, ((1, 16),)), (16, ((1, 28),)), (26, ((1, 44),)), (18, ((2, 32),)), (24, ((2, 43),)),
          (16, ((4, 27),)), (18, ((4, 31),)), (22, ((2, 38), (2, 39))), (22, ((3, 36), (2, 37))),
          (26, ((4, 43), (1, 44)))),
    "Q": ((13, ((1, 13),)), (22, ((1, 22),)), (18, ((2, 17),)), (26, ((2, 24),)), (18, ((2, 15), (2, 16))),
          (24, ((4, 19),)), (18, ((2, 14), (4, 15))), (22, ((4, 18), (2, 19))), (20, ((4, 16), (4, 17))),
          (24, ((6, 19), (2, 20)))),
    "H": ((17, ((1, 9),)), (28, ((1, 16),)), (22, ((2, 13),)), (16, ((4, 9),)), (22, ((2, 11), (2, 12))),
          (28, ((4, 15),)), (26, ((4, 13), (1, 14))), (26, ((4, 14), (2, 15))), (24, ((4, 12), (4, 13))),
          (28, ((6, 15), (2, 16)))),
}
_FORMAT_EC_BITS = {"L": 1, "M": 0, "Q": 3, "H": 2}
_ALIGNMENT = ((), (6, 18), (6, 22), (6, 26), (6, 30), (6, 34), (6, 22, 38), (6, 24, 42), (6, 26, 46),
              (6, 28, 50))

# GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1.
_EXP = [0] * 512
_LOG = [0] * 256
_v = 1
for _i in range(255):
    _EXP[_i] = _v
    _LOG[_v] = _i
    _v <<= 1
    if _v & 0x100:
        _v ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]


def _gf_mul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else _EXP[_LOG[a] + _LOG[b]]


def _generator(degree: int) -> list[int]:
    """Coefficients (highest first, leading 1 dropped) of prod_{i<degree} (x - a^i)."""
    poly = [1]
    for i in range(degree):
        poly = [c ^ _gf_mul(p, _EXP[i]) for c, p in zip(poly + [0], [0] + poly)]
    return poly[1:]


def _rs_remainder(data: list[int], gen: list[int]) -> list[int]:
    rem = [0] * len(gen)
    for byte in data:
        factor = byte ^ rem[0]
        rem = rem[1:] + [0]
        if factor:
            rem = [r ^ _gf_mul(g, factor) for r, g in zip(rem, gen)]
    return rem


def _ec_table(k: int, ec: int) -> np.ndarray:
    """T[i, v] = error-correction codewords of a k-byte block holding v at position i, zero elsewhere.

    Reed-Solomon is linear over GF(2), so a block's codewords are the XOR of T[i, data[i]] over i.
    """
    gen = _generator(ec)
    table = np.zeros((k, 256, ec), dtype=np.uint8)
    log = np.array(_LOG, dtype=np.int64)
    exp = np.array(_EXP, dtype=np.uint8)
    values = np.arange(1, 256)
    for i in range(k):
        unit = np.array(_rs_remainder([0] * i + [1] + [0] * (k - i - 1), gen), dtype=np.int64)
        nonzero = unit != 0
        row = np.zeros((255, ec), dtype=np.uint8)
        row[:, nonzero] = exp[(log[values][:, None] + log[unit[nonzero]][None, :]) % 255]
        table[i, 1:] = row
    return table


def qr_mode(url: str) -> str:
    """'alphanumeric' if every character is in the QR alphanumeric set, else 'byte' (URLs must be ASCII)."""
    if not isinstance(url, str) or not url:
        raise LabelError("url_invalid", "a label needs a non-empty URL for its QR code")
    if not url.isascii():
        raise LabelError("url_invalid", f"the QR URL must be ASCII (percent-encode other characters): {url!r}")
    return "alphanumeric" if _ALNUM_SET.issuperset(url) else "byte"


def _check_level(error_correction: str) -> str:
    level = error_correction.upper() if isinstance(error_correction, str) else error_correction
    if level not in _BLOCKS:
        raise LabelError("bad_error_correction", f"error correction must be L, M, Q or H, got {error_correction!r}")
    return level


def _count_bits(mode: str, version: int) -> int:
    if mode == "byte":
        return 8 if version <= 9 else 16
    return 9 if version <= 9 else 11


def _data_codewords(version: int, level: str) -> int:
    return sum(n * k for n, k in _BLOCKS[level][version - 1][1])


def _fits(length: int, mode: str, version: int, level: str) -> bool:
    bits = _data_codewords(version, level) * 8 - 4 - _count_bits(mode, version)
    need = 8 * length if mode == "byte" else 11 * (length // 2) + 6 * (length % 2)
    return need <= bits


def url_qr_version(url: str, error_correction: str = "M") -> int:
    """The smallest QR version (1-10) that holds ``url`` in one segment at this error correction."""
    level = _check_level(error_correction)
    mode = qr_mode(url)
    for version in range(1, MAX_VERSION + 1):
        if _fits(len(url), mode, version, level):
            return version
    raise LabelError("url_too_long", f"the URL has {len(url)} characters and does not fit QR version "
                                     f"{MAX_VERSION} at error correction {level}: use a shorter base URL")


def batch_qr_version(urls: Iterable[str] | None = None, *, max_length: int | None = None,
                     error_correction: str = "M", alphanumeric: bool = False) -> int:
    """The one QR version for a batch: the smallest that holds its longest URL (or ``max_length`` characters).

    With ``max_length`` the URLs are assumed to be in byte mode unless ``alphanumeric`` is true.
    """
    level = _check_level(error_correction)
    version = 1
    if urls is not None:
        for url in urls:
            version = max(version, url_qr_version(url, level))
    if max_length is not None:
        mode = "alphanumeric" if alphanumeric else "byte"
        for v in range(version, MAX_VERSION + 1):
            if _fits(max_length, mode, v, level):
                version = v
                break
        else:
            raise LabelError("url_too_long", f"{max_length} characters do not fit QR version {MAX_VERSION} "
                                             f"at error correction {level}")
    return version


def _format_bits(level: str, mask: int) -> int:
    data = _FORMAT_EC_BITS[level] << 3 | mask
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return (data << 10 | rem) ^ 0x5412


def _version_bits(version: int) -> int:
    rem = version
    for _ in range(12):
        rem = (rem << 1) ^ ((rem >> 11) * 0x1F25)
    return version << 12 | rem


_MASKS = (
    lambda x, y: (x + y) % 2 == 0,
    lambda x, y: y % 2 == 0,
    lambda x, y: x % 3 == 0,
    lambda x, y: (x + y) % 3 == 0,
    lambda x, y: (x // 3 + y // 2) % 2 == 0,
    lambda x, y: x * y % 2 + x * y % 3 == 0,
    lambda x, y: (x * y % 2 + x * y % 3) % 2 == 0,
    lambda x, y: ((x + y) % 2 + x * y % 3) % 2 == 0,
)


@dataclass(frozen=True, eq=False)
class QRPlan:
    """Everything about a QR symbol that does not depend on its data, for one version, level and mask."""

    version: int
    error_correction: str = "M"
    mask: int = DEFAULT_MASK
    size: int = field(init=False)
    _template: np.ndarray = field(init=False, repr=False)
    _places: np.ndarray = field(init=False, repr=False)
    _mask_bits: np.ndarray = field(init=False, repr=False)
    _order: np.ndarray = field(init=False, repr=False)
    _blocks: tuple = field(init=False, repr=False)
    _data_total: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        version = self.version
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
            raise LabelError("bad_qr_version", f"QR version must be 1-{MAX_VERSION}, got {version!r}")
        level = _check_level(self.error_correction)
        set_(self, "error_correction", level)
        if isinstance(self.mask, bool) or self.mask not in range(8):
            raise LabelError("bad_mask", f"QR mask must be 0-7, got {self.mask!r}")
        size = 17 + 4 * version
        set_(self, "size", size)
        dark = np.zeros((size, size), dtype=np.uint8)
        function = np.zeros((size, size), dtype=bool)

        def put(x: int, y: int, value: int) -> None:
            dark[y, x] = value
            function[y, x] = True

        for i in range(size):                                  # timing patterns
            put(6, i, int(i % 2 == 0))
            put(i, 6, int(i % 2 == 0))
        for cx, cy in ((3, 3), (size - 4, 3), (3, size - 4)):   # finder patterns with separators
            for dy in range(-4, 5):
                for dx in range(-4, 5):
                    x, y = cx + dx, cy + dy
                    if 0 <= x < size and 0 <= y < size:
                        d = max(abs(dx), abs(dy))
                        put(x, y, int(d not in (2, 4)))
        centres = _ALIGNMENT[version - 1]
        last = len(centres) - 1
        for i, cx in enumerate(centres):                        # alignment patterns
            for j, cy in enumerate(centres):
                if (i, j) in ((0, 0), (0, last), (last, 0)):
                    continue
                for dy in range(-2, 3):
                    for dx in range(-2, 3):
                        put(cx + dx, cy + dy, int(max(abs(dx), abs(dy)) != 1))
        fmt = _format_bits(level, self.mask)                   # format information, twice
        bit = lambda value, i: (value >> i) & 1
        for i in range(6):
            put(8, i, bit(fmt, i))
        put(8, 7, bit(fmt, 6))
        put(8, 8, bit(fmt, 7))
        put(7, 8, bit(fmt, 8))
        for i in range(9, 15):
            put(14 - i, 8, bit(fmt, i))
        for i in range(8):
            put(size - 1 - i, 8, bit(fmt, i))
        for i in range(8, 15):
            put(8, size - 15 + i, bit(fmt, i))
        put(8, size - 8, 1)                                     # the dark module
        if version >= 7:                                        # version information, twice
            vbits = _version_bits(version)
            for i in range(18):
                a, b = size - 11 + i % 3, i // 3
                put(a, b, bit(vbits, i))
                put(b, a, bit(vbits, i))

        places: list[int] = []                                  # data module order: two-column zigzag
        right = size - 1
        while right >= 1:
            if right == 6:
                right = 5
            upward = ((right + 1) & 2) == 0
            for vert in range(size):
                y = size - 1 - vert if upward else vert
                for x in (right, right - 1):
                    if not function[y, x]:
                        places.append(y * size + x)
            right -= 2
        ec, groups = _BLOCKS[level][version - 1]
        blocks = [k for n, k in groups for _ in range(n)]
        data_total = sum(blocks)
        total = data_total + ec * len(blocks)
        if len(places) < total * 8:
            raise AssertionError("codeword count exceeds the data area")  # the tables above are wrong
        place_arr = np.array(places, dtype=np.intp)
        xs, ys = place_arr % size, place_arr // size
        mask_fn = _MASKS[self.mask]
        mask_bits = np.array([int(mask_fn(int(x), int(y))) for x, y in zip(xs, ys)], dtype=np.uint8)

        # Interleaving: codeword j of the final sequence comes from position order[j] of
        # (all data codewords block by block, then all EC codewords block by block).
        order: list[int] = []
        starts = np.cumsum([0] + blocks[:-1]).tolist()
        for i in range(max(blocks)):
            for b, k in enumerate(blocks):
                if i < k:
                    order.append(starts[b] + i)
        for i in range(ec):
            for b in range(len(blocks)):
                order.append(data_total + b * ec + i)
        tables = {k: _ec_table(k, ec) for k in set(blocks)}
        set_(self, "_template", dark.reshape(-1))
        set_(self, "_places", place_arr)
        set_(self, "_mask_bits", mask_bits)
        set_(self, "_order", np.array(order, dtype=np.intp))
        set_(self, "_blocks", tuple((start, k, tables[k], np.arange(k)) for start, k in zip(starts, blocks)))
        set_(self, "_data_total", data_total)

    def capacity(self, mode: str = "byte") -> int:
        """Characters (alphanumeric) or bytes (byte mode) this plan holds in one segment."""
        n = 0
        while _fits(n + 1, mode, self.version, self.error_correction):
            n += 1
        return n

    def codewords(self, url: str) -> bytes:
        """The data codewords for ``url``: one byte or alphanumeric segment, terminator and padding."""
        mode = qr_mode(url)
        n = len(url)
        version = self.version
        if not _fits(n, mode, version, self.error_correction):
            raise LabelError("url_too_long",
                             f"the URL {url!r} ({n} characters, {mode} mode) does not fit QR version {version}-"
                             f"{self.error_correction} that this batch uses; give the batch's QR version as "
                             f"{url_qr_version(url, self.error_correction)} or shorten the base URL")
        if mode == "byte":
            value = ((0b0100 << 8 if version <= 9 else 0b0100 << 16) | n) << (8 * n) | int.from_bytes(
                url.encode("ascii"), "big")
            nbits = 4 + _count_bits(mode, version) + 8 * n
        else:
            value = 0b0010 << _count_bits(mode, version) | n
            av = _ALNUM_VALUE
            for i in range(0, n - 1, 2):
                value = value << 11 | (av[url[i]] * 45 + av[url[i + 1]])
            if n % 2:
                value = value << 6 | av[url[-1]]
            nbits = 4 + _count_bits(mode, version) + 11 * (n // 2) + 6 * (n % 2)
        capacity_bits = self._data_total * 8
        pad = min(4, capacity_bits - nbits)                 # terminator
        pad += (-(nbits + pad)) % 8                         # to a byte boundary
        value <<= pad
        nbytes = (nbits + pad) // 8
        fill = self._data_total - nbytes
        return value.to_bytes(nbytes, "big") + (b"\xec\x11" * (fill // 2 + 1))[:fill]

    @property
    def function_patterns(self) -> np.ndarray:
        """The modules every symbol of this plan shares (finder, timing, alignment, format, version), 1 = dark.

        Data modules are 0 here; ``matrices(..., function_patterns=False)`` gives the complement.
        """
        return self._template.reshape(self.size, self.size).copy()

    def matrices(self, urls: list[str], function_patterns: bool = True) -> np.ndarray:
        """Symbols for many URLs at once as a (len(urls), size, size) uint8 array, 1 = dark.

        With ``function_patterns=False`` only the data modules are set, for drawing the
        shared patterns once (see ``function_patterns``) and the data per label.
        """
        n_urls = len(urls)
        data = np.frombuffer(b"".join(self.codewords(url) for url in urls), dtype=np.uint8)
        data = data.reshape(n_urls, self._data_total)
        parts = [data]
        for start, k, table, rows in self._blocks:
            parts.append(np.bitwise_xor.reduce(table[rows, data[:, start:start + k]], axis=1))
        stream = np.concatenate(parts, axis=1)[:, self._order]
        bits = np.unpackbits(stream, axis=1)
        n = bits.shape[1]
        if function_patterns:
            out = np.repeat(self._template[None, :], n_urls, axis=0)
        else:
            out = np.zeros((n_urls, self.size * self.size), dtype=np.uint8)
        places = self._places
        out[:, places[:n]] = bits ^ self._mask_bits[:n]
        out[:, places[n:]] = self._mask_bits[n:]
        return out.reshape(n_urls, self.size, self.size)

    def matrix(self, url: str) -> np.ndarray:
        """The symbol for ``url`` as a (size, size) uint8 array, 1 = dark, without the quiet zone."""
        data = np.frombuffer(self.codewords(url), dtype=np.uint8)
        parts = [data]
        for start, k, table, rows in self._blocks:
            parts.append(np.bitwise_xor.reduce(table[rows, data[start:start + k]], axis=0))
        stream = np.concatenate(parts)[self._order]
        bits = np.unpackbits(stream)
        out = self._template.copy()
        places = self._places
        n = bits.size
        out[places[:n]] = bits ^ self._mask_bits[:n]
        out[places[n:]] = self._mask_bits[n:]               # remainder bits: zero, masked
        return out.reshape(self.size, self.size)


@lru_cache(maxsize=32)
def plan(version: int, error_correction: str = "M", mask: int = DEFAULT_MASK) -> QRPlan:
    """The QRPlan for a version, level and mask, built once per process."""
    return QRPlan(version, error_correction, mask)


def qr_matrix(url: str, version: int | None = None, error_correction: str = "M",
              mask: int = DEFAULT_MASK) -> np.ndarray:
    """The QR symbol for ``url`` as a boolean array (True = dark, no quiet zone).

    ``version`` defaults to the smallest that holds the URL; a batch should pass
    its one ``batch_qr_version`` so every label has the same size.
    """
    level = _check_level(error_correction)
    if version is None:
        version = url_qr_version(url, level)
    return plan(version, level, mask).matrix(url).astype(bool)
