"""File answers every face gives alike: downloads, SVG drawings, stored photos and their thumbnails, and the
media type of each value of a ``format`` query parameter (format negotiation)."""
from __future__ import annotations

import base64
import hashlib
import io
from typing import BinaryIO, Iterator

from flask import Response, make_response, request
from PIL import Image

from ..render.tables import Table
from ..render.xlsx import MEDIA_TYPE as XLSX, xlsx_file

# The media type of each value of a `format` query parameter (/openapi.json lists them per operation).
FORMAT_TYPES = {"json": "application/json", "csv": "text/csv", "pdf": "application/pdf", "png": "image/png",
                "svg": "image/svg+xml", "png-zip": "application/zip", "xlsx": XLSX}

# A drawing needs nothing from elsewhere: forbid everything but its own inline styles.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def download(body: bytes | str, mimetype: str, filename: str) -> Response:
    """A file to save (CSV, PDF), private to its caller and never cached."""
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                      "Cache-Control": "private, no-store"})


class FileChunks:
    """A response body read from an open file in chunks; closed by the server when the response ends, even if
    it was never read (a HEAD request, a client gone before the first byte)."""

    def __init__(self, handle: BinaryIO, size: int = 64 * 1024):
        self.handle, self.size = handle, size

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.handle.read(self.size):
            yield chunk

    def close(self) -> None:
        self.handle.close()


def file_download(handle: BinaryIO, size: int, mimetype: str, filename: str) -> Response:
    """A file written to `handle` (rewound; `size` bytes) to save, streamed from it and closed (a temporary file:
    deleted) when the answer ends."""
    return Response(FileChunks(handle), mimetype=mimetype, direct_passthrough=True,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Content-Length": str(size)})


def spreadsheet(table: Table, filename: str) -> Response:
    """A table as an Excel workbook to save: written to a temporary file in constant memory, then streamed from it,
    private to its caller and never cached."""
    resp = file_download(*xlsx_file(table), XLSX, filename)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def svg_drawing(body: str) -> Response:
    """A self-contained SVG drawing (a chart, a map), revalidated by its ETag."""
    resp = Response(body, mimetype="image/svg+xml")
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.headers["Content-Security-Policy"] = SVG_CSP
    # The drawing is deterministic: the same figures give the same bytes, so a dashboard can revalidate.
    resp.set_etag(hashlib.sha256(body.encode()).hexdigest()[:32])
    return resp.make_conditional(request)


def stored_photo(data: bytes, sha256_hex: str, *, filename: str | None = None) -> Response:
    """An evidence photo as stored (re-encoded JPEG without EXIF), with the digest its record lists."""
    resp = Response(data, mimetype="image/jpeg")
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    if filename is not None:
        resp.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    # RFC 9530: the stored bytes' SHA-256, the value the record lists (there in hex).
    resp.headers["Repr-Digest"] = f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
    return resp


THUMB_PX = 320


def photo_thumbnail(data: bytes) -> Response:
    """A small JPEG copy of a stored photo, for lists and pages."""
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((THUMB_PX, THUMB_PX))
        out = io.BytesIO()
        image.convert("RGB").save(out, "JPEG", quality=80)
    resp = make_response(out.getvalue())
    resp.mimetype = "image/jpeg"
    return resp
