"""Evidence photos (consumer reports now, inspectors' findings later): checked, re-encoded, hashed, stored.

An upload is accepted only if Pillow can decode it as JPEG or PNG within the size and pixel
limits. It is then turned upright by its EXIF orientation and re-encoded as a fresh JPEG, so
nothing of the original file survives but the pixels: no EXIF (GPS position, camera serial,
owner name), no XMP or ICC payloads, no trailing data. The capture time, useful as evidence,
is read from EXIF before it is dropped and kept as data. The stored bytes' SHA-256 (and the
original's, to match a copy the sender kept) are recorded; the file goes to the FileStore,
never into a database row.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import GIError, ValidationFailed
from .storage import FileStore

ACCEPTED_FORMATS = ("JPEG", "PNG")
MAX_PIXELS = 50_000_000        # a 50-megapixel phone photo; beyond that a "photo" is a decompression bomb
MAX_SIDE = 4096                # stored photos are scaled down to this long side (enough to read a label)
JPEG_QUALITY = 88
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132


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
    except (ValueError, TypeError, KeyError, OSError):
        return None


def read_photo(data: bytes, *, max_bytes: int, field: str = "photo") -> tuple[bytes, int, int, str | None]:
    """Check an upload and re-encode it: (jpeg bytes, width, height, capture time); 4xx saying what is wrong."""
    if len(data) > max_bytes:
        raise GIError(f"{field}: the photo is larger than {max_bytes // (1024 * 1024)} MB; send a smaller one",
                      code="photo_too_large", status=413, details={"field": field, "max_bytes": max_bytes})
    if not data:
        raise ValidationFailed(f"{field}: the file is empty", code="not_an_image",
                               details=[{"field": field, "problem": "empty file"}])
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise ValidationFailed(f"{field}: {width}×{height} px is more than {MAX_PIXELS // 1_000_000} "
                                       "megapixels", code="image_too_large",
                                       details=[{"field": field, "problem": "too many pixels"}])
            probe.verify()
        if fmt not in ACCEPTED_FORMATS:
            raise ValidationFailed(f"{field}: photos must be JPEG or PNG, not {fmt}", code="not_an_image",
                                   details=[{"field": field, "problem": f"format {fmt}"}])
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            taken_at = _capture_time(image)
            upright = ImageOps.exif_transpose(image)
            if upright.mode not in ("RGB", "L"):
                background = Image.new("RGB", upright.size, "white")
                rgba = upright.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                upright = background
            upright.thumbnail((MAX_SIDE, MAX_SIDE))
            out = io.BytesIO()
            # No exif=, icc_profile= or comment: the new file carries pixels only.
            upright.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
            return out.getvalue(), upright.width, upright.height, taken_at
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationFailed(f"{field}: the file is not a readable JPEG or PNG image", code="not_an_image",
                               details=[{"field": field, "problem": "not a readable image"}]) from None


def store_photo(store: FileStore, folder: str, data: bytes, *, max_bytes: int, field: str = "photo",
                now: dt.datetime | None = None) -> StoredPhoto:
    """Check, re-encode and store an uploaded photo under `folder/YYYY/MM/<uuid>.jpg`."""
    jpeg, width, height, taken_at = read_photo(data, max_bytes=max_bytes, field=field)
    now = now or dt.datetime.now(dt.timezone.utc)
    key = f"{folder}/{now:%Y/%m}/{uuid.uuid4().hex}.jpg"
    store.put(key, jpeg)
    return StoredPhoto(key=key, sha256=hashlib.sha256(jpeg).hexdigest(),
                       original_sha256=hashlib.sha256(data).hexdigest(), bytes=len(jpeg), width=width,
                       height=height, taken_at=taken_at)
