"""Label images, print files for printers, and the special-mark artwork."""
from __future__ import annotations

import io

from flask import Response, current_app, request
from PIL import Image, UnidentifiedImageError

from ..db import get_session
from ..errors import Forbidden, GIError, MalformedRequest, ValidationFailed
from ..http.access import public, signed_in
from ..http.answers import labels as answers
from ..http.answers.labels import LabelQuery, PrintFileQuery
from ..http.contract import endpoint
from ..models import OrgKind
from ..services import labels as label_service
from ..services.registry import get_gi, require_manage
from . import bp

TAG = ["labels"]
MAX_ARTWORK_BYTES = 5 * 1024 * 1024
MAX_ARTWORK_PIXELS = 4000


def _store():
    return current_app.extensions["gi_storage"]


def _read_artwork() -> bytes:
    """The uploaded artwork, checked to be an image and re-encoded as PNG (metadata dropped)."""
    if not request.mimetype.startswith("multipart/form-data"):
        raise MalformedRequest("upload the artwork as multipart/form-data with a `file` field",
                               code="unsupported_media_type", status=415)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed("invalid upload: file: required field is missing",
                               details=[{"field": "file", "problem": "required"}])
    data = upload.read(MAX_ARTWORK_BYTES + 1)
    if len(data) > MAX_ARTWORK_BYTES:
        raise GIError(f"the artwork is larger than {MAX_ARTWORK_BYTES // (1024 * 1024)} MB", code="payload_too_large",
                      status=413)
    try:
        image = Image.open(io.BytesIO(data))
        image.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationFailed("the file is not a readable PNG or JPEG image", code="not_an_image") from None
    if image.format not in ("PNG", "JPEG"):
        raise ValidationFailed(f"artwork must be PNG or JPEG, not {image.format}", code="not_an_image")
    if max(image.size) > MAX_ARTWORK_PIXELS:
        raise ValidationFailed(f"artwork is {image.size[0]}×{image.size[1]} px; at most {MAX_ARTWORK_PIXELS} px a side",
                               code="image_too_large")
    out = io.BytesIO()
    image.convert("RGBA").save(out, "PNG", optimize=True)
    return out.getvalue()


@endpoint(bp, "/special-mark/artwork", methods=["PUT"], body_content_type="multipart/form-data", tags=TAG,
          access=signed_in(OrgKind.authority, note="the national authority (adcode 100000) only"),
          summary="Upload the official special-mark artwork (PNG/JPEG, re-encoded); labels use it instead of the "
                  "neutral placeholder", responses={413: "larger than 5 MB", 422: "not a PNG/JPEG image"})
def put_national_artwork(principal):
    if principal.adcode != "100000":
        raise Forbidden("only the national authority uploads the official special-mark artwork",
                        code="outside_jurisdiction")
    png = _read_artwork()
    _store().put(label_service.artwork_key(None), png)
    return {"stored": True, "bytes": len(png)}


@endpoint(bp, "/gis/<id:gi_id>/artwork", methods=["PUT"], body_content_type="multipart/form-data", tags=TAG,
          access=signed_in(OrgKind.authority, note="the GI's managing authority"),
          summary="Upload artwork for one GI's labels (e.g. its collective or certification mark)",
          responses={404: "no such GI", 413: "larger than 5 MB", 422: "not a PNG/JPEG image"})
def put_gi_artwork(principal, gi_id: int):
    session = get_session()
    require_manage(session, principal, get_gi(session, gi_id))
    png = _read_artwork()
    _store().put(label_service.artwork_key(gi_id), png)
    return {"stored": True, "bytes": len(png), "gi_id": gi_id}


@endpoint(bp, "/special-mark/artwork", access=public(), tags=TAG, content_type="image/png",
          summary="The special-mark artwork labels use (404 while only the placeholder is in use)",
          responses={404: "no artwork uploaded"})
def get_national_artwork(principal):
    png = _store().get(label_service.artwork_key(None))
    if png is None:
        raise GIError("no official artwork uploaded; labels show the neutral placeholder", code="no_artwork",
                      status=404)
    return Response(png, mimetype="image/png")


# --- label images and print files --------------------------------------------------------------

@endpoint(bp, "/marks/<serial>/label", access=signed_in(note="the mark's producer, its printer or the GI's authority"),
          query=LabelQuery, tags=TAG, content_type="image/png",
          summary="One mark's label as PNG or SVG (preset 20x20, 30x30, 40x60 or custom mm; 300 or 600 dpi)",
          responses={404: "unknown serial", 422: "malformed serial, or a size whose QR module would be < 0.25 mm"})
def mark_label(principal, serial: str, query: LabelQuery):
    return answers.mark_label(principal, serial, query)


@endpoint(bp, "/batches/<id:batch_id>/print-file", query=PrintFileQuery, tags=TAG, content_type="application/pdf",
          access=signed_in(OrgKind.printer, OrgKind.authority, note="only the printer the order was placed with "
                                                                    "and the GI's authority"),
          summary="The order's print file: PDF sheets (A4/A3, N-up, bleed, crop marks, cover page with checksum), "
                  "a variable-data CSV (serial, code, URL) or a zip of PNGs. Each download is a ledger event; a "
                  "repeated download is flagged on the order (X-Repeated-Download)",
          responses={403: "not the order's printer", 404: "no such batch", 409: "no print order yet",
                     422: "label size refused"})
def print_file(principal, batch_id: int, query: PrintFileQuery):
    return answers.print_file(principal, batch_id, query)
