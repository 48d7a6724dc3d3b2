"""Label images and print files: one mark's label (PNG or SVG) and an order's print file (PDF sheets, a
variable-data CSV or a zip of PNGs), with the label options they read.

``GET /api/v1/marks/{serial}/label`` and ``/app/labels/{serial}.{fmt}`` answer the label,
``GET /api/v1/batches/{id}/print-file`` and ``POST /app/batches/{id}/print-file`` the print file; who may
have which is checked here, once for both faces, with the services' rules.
"""
from __future__ import annotations

import itertools
from typing import Literal, Optional

from flask import Response, current_app, request
from pydantic import Field, field_validator

from labels.errors import LabelError
from labels.qr import url_qr_version
from labels.raster import render_png
from labels.spec import layout
from labels.svg import render_svg

from ...codes import SerialError, parse_serial
from ...db import get_session
from ...errors import Forbidden, GIError, NotFound, ValidationFailed
from ...models import MarkState, OrgKind
from ...services import labels as label_service
from ...services import marks
from ..schemas import Query
from ..streaming import stream_writer


class LabelQuery(Query):
    format: Literal["png", "svg"] = "png"
    preset: Optional[Literal["20x20", "30x30", "40x60"]] = Field(default=None, description="default 30x30")
    width_mm: Optional[float] = Field(default=None, ge=15, le=300, description="custom size (with height_mm)")
    height_mm: Optional[float] = Field(default=None, ge=15, le=300)
    dpi: int = Field(default=300, description="print resolution: 300 or 600", json_schema_extra={"enum": [300, 600]})
    ec: Literal["M", "Q"] = Field(default="M", description="QR error correction")

    @field_validator("dpi")
    @classmethod
    def _dpi(cls, value: int) -> int:
        if value not in (300, 600):
            raise ValueError("dpi must be 300 or 600")
        return value


class PrintFileQuery(LabelQuery):
    format: Literal["pdf", "csv", "png-zip"] = "pdf"
    paper: Literal["A4", "A3"] = "A4"
    bleed_mm: float = Field(default=2.0, ge=0, le=5)


def _store():
    return current_app.extensions["gi_storage"]


def _label_error(exc) -> GIError:
    return GIError(exc.message, code=exc.code, status=422)


def mark_label(principal, serial: str, query: LabelQuery) -> Response:
    """One mark's label, for its producer once issued, its printer or the GI's authority."""
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


def print_file(principal, batch_id: int, query: PrintFileQuery) -> Response:
    """The order's print file, streamed; the download is a ledger event, committed once the file has begun."""
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
