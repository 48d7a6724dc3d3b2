"""Label images, print files for printers, and the special-mark artwork."""
from __future__ import annotations

import io
import itertools

from flask import Response, current_app, request
from PIL import Image, UnidentifiedImageError

from labels.errors import LabelError
from labels.qr import url_qr_version
from labels.raster import render_png
from labels.spec import layout
from labels.svg import render_svg

from ..codes import SerialError, parse_serial
from ..db import get_session
from ..errors import Forbidden, GIError, MalformedRequest, NotFound, ValidationFailed
from ..http.access import public, signed_in
from ..http.contract import endpoint
from ..http.streaming import stream_writer
from ..models import MarkState, OrgKind
from ..services import labels as label_service
from ..services import marks
from ..services.registry import get_gi, require_manage
from . import bp
from .schemas import LabelQuery, PrintFileQuery

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

def _label_error(exc) -> GIError:
    return GIError(exc.message, code=exc.code, status=422)


@endpoint(bp, "/marks/<serial>/label", access=signed_in(note="the mark's producer, its printer or the GI's authority"),
          query=LabelQuery, tags=TAG, content_type="image/png",
          summary="One mark's label as PNG or SVG (preset 20x20, 30x30, 40x60 or custom mm; 300 or 600 dpi)",
          responses={404: "unknown serial", 422: "malformed serial, or a size whose QR module would be < 0.25 mm"})
def mark_label(principal, serial: str, query: LabelQuery):
    session = get_session()
    try:
        parsed = parse_serial(serial)
    except SerialError as exc:
        raise ValidationFailed(str(exc), code="invalid_serial") from None
    status = marks.find_mark(session, parsed)
    if status is None or not label_service.can_see_labels(session, principal, status.batch):
        raise NotFound(f"serial {parsed.display} was never issued", code="unknown_serial")
    if principal.org_kind == OrgKind.producer and status.state in (MarkState.allocated, MarkState.printed,
                                                                   MarkState.spoiled):
        # A producer sees the labels it holds; before issue they exist only at the authorized printer.
        raise Forbidden(f"serial {parsed.display} is {status.state.value}: a producer gets the label images of "
                        "marks issued to it; print files go to the order's printer", code="not_issued_yet")
    keyring = current_app.extensions["gi_keyring"]
    base = current_app.config["GI_SETTINGS"].public_base_url
    mark = label_service.one_mark(status.batch, keyring, base, parsed)
    facts = label_service.label_facts(session, status.batch, _store())
    try:
        spec = label_service.label_spec(preset=query.preset, width_mm=query.width_mm, height_mm=query.height_mm,
                                        dpi=query.dpi, ec=query.ec)
        content = next(label_service.contents(facts, iter([mark])))
        if query.format == "svg":
            return Response(render_svg(content, spec), mimetype="image/svg+xml")
        return Response(render_png(content, spec), mimetype="image/png")
    except LabelError as exc:
        raise _label_error(exc) from None


PRINT_TYPES = {"pdf": ("application/pdf", "pdf"), "csv": ("text/csv", "csv"), "png-zip": ("application/zip", "zip")}


@endpoint(bp, "/batches/<id:batch_id>/print-file", query=PrintFileQuery, tags=TAG, content_type="application/pdf",
          access=signed_in(OrgKind.printer, OrgKind.authority, note="only the printer the order was placed with "
                                                                    "and the GI's authority"),
          summary="The order's print file: PDF sheets (A4/A3, N-up, bleed, crop marks, cover page with checksum), "
                  "a variable-data CSV (serial, code, URL) or a zip of PNGs. Each download is a ledger event; a "
                  "repeated download is flagged on the order (X-Repeated-Download)",
          responses={403: "not the order's printer", 404: "no such batch", 409: "no print order yet",
                     422: "label size refused"})
def print_file(principal, batch_id: int, query: PrintFileQuery):
    mimetype, ext = PRINT_TYPES[query.format]
    if request.method == "HEAD":  # headers only: a HEAD is not a download and records nothing
        return Response(status=200, mimetype=mimetype)
    session = get_session()
    keyring = current_app.extensions["gi_keyring"]
    base = current_app.config["GI_SETTINGS"].public_base_url
    batch, repeated = label_service.record_print_download(session, batch_id, by=principal, fmt=query.format)
    try:  # refuse a bad size before the download is recorded (the rollback undoes it)
        spec = label_service.label_spec(preset=query.preset, width_mm=query.width_mm, height_mm=query.height_mm,
                                        dpi=query.dpi, ec=query.ec)
        first = next(label_service.iter_batch_marks(batch, keyring, base, batch.seq_start, batch.seq_start))
        layout(spec, url_qr_version(first.url, query.ec))
    except LabelError as exc:
        raise _label_error(exc) from None
    facts = label_service.label_facts(session, batch, _store())
    marks_iter = label_service.iter_batch_marks(batch, keyring, base)

    def write(out):
        label_service.write_print_file(query.format, out, batch=batch, facts=facts, marks=marks_iter, spec=spec,
                                       paper=query.paper, bleed_mm=query.bleed_mm, workers=1)

    # The download is recorded only once the writer has produced its first chunk (cover page, first
    # sheets): a file that cannot be made answers an error and counts as no download. A failure after
    # that can only cut the stream short, which the client sees as a truncated file.
    chunks = stream_writer(write)
    first_chunk = next(chunks, b"")
    session.commit()
    resp = Response(itertools.chain((first_chunk,), chunks), mimetype=mimetype)
    resp.headers["Content-Disposition"] = f"attachment; filename=order-{batch.id}.{ext}"
    resp.headers["X-Print-Downloads"] = str(batch.print_downloads)
    if repeated:
        resp.headers["X-Repeated-Download"] = "true"
    return resp
