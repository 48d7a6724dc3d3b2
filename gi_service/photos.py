"""Evidence photos (consumer reports and inspectors' findings): checked, re-encoded, hashed, stored.

An upload is accepted only if it is a JPEG or PNG that Pillow can decode within the size, pixel
and structure limits below. It is then turned upright by its EXIF orientation and re-encoded as a
fresh JPEG made from the pixels alone: no EXIF (GPS position, camera serial, owner name, MakerNote),
no XMP, IPTC, ICC profile, comment, PNG text chunk, second picture (MPF) or trailing data. The
capture time, useful as evidence, is read from EXIF before it is dropped and kept as data. The stored
bytes' SHA-256 (and the original's, to match a copy the sender kept) are recorded; the file goes to
the FileStore, never into a database row.

Decoding cost is bounded before a pixel is decoded, since the report form is public:

* A camera JPEG (one scan) is decoded scaled down by libjpeg itself (``Image.draft``): at 1/2, 1/4
  or 1/8 of its size, the smallest of these that still leaves a long side of DRAFT_SIDE. A 48 MP
  photo decodes at 12 MP, a 200 MP one at 12.5 MP; none decodes to more than (2 × DRAFT_SIDE)²
  pixels. Such JPEGs are accepted up to JPEG_MAX_PIXELS (phones make up to 200 MP).
* What cannot be decoded scaled is capped at BUFFERED_MAX_PIXELS: PNGs (evidence photos are JPEGs;
  a PNG that large is a screenshot or an attack) and JPEGs of several scans (progressive ones, for
  which libjpeg keeps every coefficient of the whole image and passes over it once per scan).
* Files built to make the decoder loop are refused from their structure, read here without Pillow:
  more than MAX_SCANS scans in a JPEG, or more than MAX_BLOCKS segments or chunks (Pillow parses
  those one by one in Python: 10 MB of empty ones cost it seconds).

The files are opened with Pillow's JPEG and PNG plugins directly rather than ``Image.open``, so
Pillow's process-wide decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``: a warning above 89 MP,
an error above 179 MP) neither refuses a 200 MP photo nor has to be changed for the rest of the
service; the limits above take its place and are far lower for whatever is decoded whole. A file
over them is refused 422 ``image_too_large``, saying what to send instead.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import struct
import uuid
from dataclasses import dataclass

from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from . import clock
from .errors import GIError, ValidationFailed
from .storage import FileStore

# Stored photos are at most 4096 px on their long side: more than the 4032 px of a 12 MP phone photo,
# the default output of nearly every phone (48-200 MP sensors bin to it), so an inspector zooming into
# a label sees what the phone's own gallery shows; a serial printed 2 mm high on a label photographed
# across a 60 cm shelf is still ~13 px high. Larger photos add size, not legible detail.
MAX_SIDE = 4096
# A JPEG is decoded at the smallest of 1/2, 1/4, 1/8 that keeps this long side (7/8 of MAX_SIDE): a
# 48 MP (8064 px) photo decodes at 1/2 = 4032 px and is stored as is; a 200 MP one at 1/4 = 4080 px.
# Aiming at MAX_SIDE itself would decode 48 MP photos whole (4× the work) to gain 64 px.
DRAFT_SIDE = 3584
JPEG_MAX_PIXELS = 250_000_000      # single-scan JPEGs, decoded scaled: the largest phone sensors make 200 MP
BUFFERED_MAX_PIXELS = 24_000_000   # PNGs and multi-scan JPEGs, decoded whole: a 6K screenshot is 20 MP
MAX_SCANS = 20                     # libjpeg's progressive JPEGs have 10 scans (18 for CMYK)
MAX_BLOCKS = 10_000                # JPEG segments / PNG chunks; libpng's 8 KB IDATs are ~1,300 in 10 MB
JPEG_QUALITY = 88
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_OTHER_FORMATS = (  # (magic at offset 0, offset 4 or 8, name): named in the refusal so the sender knows
    (b"GIF87a", 0, "GIF"), (b"GIF89a", 0, "GIF"), (b"WEBP", 8, "WebP"), (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"), (b"ftypmif1", 4, "HEIF"), (b"ftypavif", 4, "AVIF"), (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"), (b"BM", 0, "BMP"),
)
# The end of a JPEG scan's entropy-coded data: a marker other than a stuffed 0xFF00 or a restart marker.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class StoredPhoto:
    key: str
    sha256: str
    original_sha256: str
    bytes: int
    width: int
    height: int
    taken_at: str | None       # EXIF capture time as the camera wrote it (local time, no zone), ISO format


def _capture_time(image: Image.Image) -> str | None:
    try:
        exif = image.getexif()
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
        if not raw:
            return None
        return dt.datetime.strptime(str(raw).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except (ValueError, TypeError, KeyError, OSError, SyntaxError, struct.error):
        return None


def _unreadable(field: str, problem: str = "not a readable image", message: str | None = None) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message or 'the file is not a readable JPEG or PNG image'}",
                            code="not_an_image", details=[{"field": field, "problem": problem}])


def _too_complex(field: str, problem: str, what: str) -> ValidationFailed:
    return _unreadable(field, problem, f"{what}, which no camera or ordinary tool writes and which costs too "
                                       "much to decode; send the photo as the camera wrote it")


def _too_many_pixels(field: str, fmt: str, width: int, height: int, cap: int, instead: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: this {fmt} is {width}×{height} px, more than the {cap // 1_000_000} "
                            f"megapixels such a file may have; {instead}", code="image_too_large",
                            details=[{"field": field, "problem": "too many pixels", "format": fmt, "width": width,
                                      "height": height, "max_pixels": cap}])


def _jpeg_scans(data: bytes, field: str) -> int:
    """The number of scans of a JPEG up to its EOI, read from its markers; 422 past MAX_SCANS or MAX_BLOCKS.

    Fill bytes (0xFF before a marker) and junk between segments count as blocks too: Pillow skips them
    one by one in Python, and libjpeg reads on past junk, so the count must too. What does not make a
    valid JPEG is left for the decoder to refuse."""
    pos, blocks, scans, end = 2, 0, 0, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:                               # junk before a marker: skipped byte by byte
            following = data.find(b"\xff", pos)
            if following < 0:
                break
            blocks += following - pos
            pos = following
        blocks += 1
        if blocks > MAX_BLOCKS:
            raise _too_complex(field, "too many blocks", f"the JPEG has more than {MAX_BLOCKS:,} segments")
        marker = data[pos + 1]
        if marker == 0xFF:                                  # a fill byte
            pos += 1
            continue
        if marker == 0xD9:                                  # EOI: what follows (an MPF picture...) is not decoded
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:        # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:
            scans += 1
            if scans > MAX_SCANS:
                raise _too_complex(field, "too many scans", f"the JPEG has more than {MAX_SCANS} scans")
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return scans


def _png_chunks(data: bytes, field: str) -> None:
    """422 if the PNG has more than MAX_BLOCKS chunks up to its IEND."""
    pos, chunks, end = len(_PNG_SIGNATURE), 0, len(data)
    while pos + 8 <= end:
        chunks += 1
        if chunks > MAX_BLOCKS:
            raise _too_complex(field, "too many blocks", f"the PNG has more than {MAX_BLOCKS:,} chunks")
        if data[pos + 4:pos + 8] == b"IEND":
            break
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")


def _open(data: bytes, field: str) -> Image.Image:
    """The upload opened (header read, nothing decoded) once its format, structure and pixel count pass."""
    if data.startswith(b"\xff\xd8\xff"):
        scans = _jpeg_scans(data, field)
        try:
            # The JPEG plugin itself: a multi-picture JPEG (MPF: Ultra HDR, depth maps) opens as its first
            # picture instead of as "MPO", and Pillow's process-wide bomb limit, which would refuse a 200 MP
            # photo, is not applied (the limits below replace it).
            image = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
        except (SyntaxError, IndexError, TypeError, struct.error, OSError, ValueError):
            raise _unreadable(field) from None
        width, height = image.size
        if scans > 1 and width * height > BUFFERED_MAX_PIXELS:
            image.close()
            raise _too_many_pixels(field, "progressive JPEG", width, height, BUFFERED_MAX_PIXELS,
                                   "send the photo as the camera wrote it, or a smaller copy")
        if width * height > JPEG_MAX_PIXELS:
            image.close()
            raise _too_many_pixels(field, "JPEG", width, height, JPEG_MAX_PIXELS, "send a smaller copy of the photo")
        return image
    if data.startswith(_PNG_SIGNATURE):
        _png_chunks(data, field)
        try:
            image = PngImagePlugin.PngImageFile(io.BytesIO(data))
        except (SyntaxError, IndexError, TypeError, struct.error, OSError, ValueError):
            raise _unreadable(field) from None
        width, height = image.size
        if width * height > BUFFERED_MAX_PIXELS:
            image.close()
            raise _too_many_pixels(field, "PNG", width, height, BUFFERED_MAX_PIXELS,
                                   "send the photo as the camera's JPEG, or crop the screenshot to what matters")
        return image
    for magic, offset, name in _OTHER_FORMATS:
        if data[offset:offset + len(magic)] == magic:
            hint = " (on an iPhone: Settings > Camera > Formats > Most Compatible)" if name in ("HEIC", "HEIF") else ""
            raise _unreadable(field, f"format {name}", f"photos must be JPEG or PNG, not {name}; send it as a "
                                                       f"JPEG{hint}")
    raise _unreadable(field)


def _draft_target(width: int, height: int) -> tuple[int, int] | None:
    """The size to ask libjpeg for: the image scaled to a long side of DRAFT_SIDE (None if already smaller)."""
    long_side = max(width, height)
    if long_side <= DRAFT_SIDE:
        return None
    return max(1, width * DRAFT_SIDE // long_side), max(1, height * DRAFT_SIDE // long_side)


def read_photo(data: bytes, *, max_bytes: int, field: str = "photo") -> tuple[bytes, int, int, str | None]:
    """Check an upload and re-encode it: (jpeg bytes, width, height, capture time); 4xx saying what is wrong."""
    if len(data) > max_bytes:
        raise GIError(f"{field}: the photo is larger than {max_bytes // (1024 * 1024)} MB; send a smaller one",
                      code="photo_too_large", status=413, details={"field": field, "max_bytes": max_bytes})
    if not data:
        raise ValidationFailed(f"{field}: the file is empty", code="not_an_image",
                               details=[{"field": field, "problem": "empty file"}])
    image = _open(data, field)
    try:
        if image.format == "PNG":
            with image:
                image.verify()                              # chunk CRCs; a verified image must be reopened
            image = PngImagePlugin.PngImageFile(io.BytesIO(data))
        elif target := _draft_target(*image.size):
            image.draft("RGB", target)                      # libjpeg decodes at 1/2, 1/4 or 1/8 scale
        image.load()
        taken_at = _capture_time(image)
        ImageOps.exif_transpose(image, in_place=True)       # in place: no second copy of the decoded pixels
        if image.mode not in ("RGB", "L"):
            background = Image.new("RGB", image.size, "white")
            rgba = image.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            image.close()
            image = background
        image.thumbnail((MAX_SIDE, MAX_SIDE))
        pixels = image.convert("RGB")
        # Pixels only: Pillow's JPEG writer copies a comment from `info` unless told otherwise, so `info` is
        # emptied, and no exif=, icc_profile=, xmp= or comment= is given.
        pixels.info = {}
        out = io.BytesIO()
        pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        return out.getvalue(), pixels.width, pixels.height, taken_at
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # unreached past the caps above
        raise ValidationFailed(f"{field}: the image has too many pixels to be decoded safely; send the photo as "
                               "the camera wrote it, or a smaller copy", code="image_too_large",
                               details=[{"field": field, "problem": "too many pixels"}]) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            struct.error):
        raise _unreadable(field) from None
    finally:
        image.close()


def store_photo(store: FileStore, folder: str, data: bytes, *, max_bytes: int, field: str = "photo",
                now: dt.datetime | None = None) -> StoredPhoto:
    """Check, re-encode and store an uploaded photo under `folder/YYYY/MM/<uuid>.jpg`."""
    jpeg, width, height, taken_at = read_photo(data, max_bytes=max_bytes, field=field)
    now = now or clock.now()
    key = f"{folder}/{now:%Y/%m}/{uuid.uuid4().hex}.jpg"
    store.put(key, jpeg)
    return StoredPhoto(key=key, sha256=hashlib.sha256(jpeg).hexdigest(),
                       original_sha256=hashlib.sha256(data).hexdigest(), bytes=len(jpeg), width=width,
                       height=height, taken_at=taken_at)
