"""What goes on a batch's labels, who may fetch them, and the ledger record of print files.

The label data of a batch is computed from its serial range (no row per mark), so a
print file streams in constant memory. Every print-file download is a ledger event;
a second download of the same order is flagged on the order.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Iterator

from sqlalchemy.orm import Session

from labels.pdf import CoverInfo, write_pdf_sheets
from labels.raster import write_png_zip
from labels.spec import LabelContent, LabelSpec

from .. import clock
from ..codes import MarkKeyring, Serial, code_url, display_serial, format_serial, make_code
from ..errors import Forbidden, GIError
from ..models import BatchStatus, GIProduct, MarkBatch, OrgKind, Organisation
from . import ledger
from .accounts import Principal
from .marks import get_batch
from .registry import can_manage_gi

ARTWORK_NATIONAL = "artwork/special-mark.png"


def artwork_key(gi_id: int | None) -> str:
    return ARTWORK_NATIONAL if gi_id is None else f"artwork/gi-{gi_id}.png"


@dataclass(frozen=True)
class MarkLabel:
    """One mark's variable data: what a printer's data file and a label image need."""

    serial: str        # 16 characters, as stored
    display: str       # BBSH-26-000001234-E, as printed
    code: str          # the 30-character verification code
    url: str           # what the QR encodes


def mark_url(base_url: str, code: str, serial: str, gtin: str | None) -> str:
    """The QR payload: `{base}/v/{code}`, or its GS1 Digital Link form when the product has a GTIN.

    The GS1 form carries the key id and MAC tag in `?v=` so it is as unguessable as the
    short form (GS1 resolvers pass unknown query parameters on).
    """
    if gtin:
        return f"{base_url.rstrip('/')}/01/{gtin}/21/{serial}?v={code[0]}{code[16:]}"
    return code_url(base_url, code)


def iter_batch_marks(batch: MarkBatch, keyring: MarkKeyring, base_url: str,
                     first: int | None = None, last: int | None = None) -> Iterator[MarkLabel]:
    """The labels of a batch (or part of it) in serial order, computed, never loaded."""
    prefix, year = batch.series[:4], 2000 + int(batch.series[4:])
    lo = batch.seq_start if first is None else max(first, batch.seq_start)
    hi = batch.seq_end if last is None else min(last, batch.seq_end)
    for seq in range(lo, hi + 1):
        serial = format_serial(prefix, year, seq)
        code = make_code(keyring, serial, kid=batch.key_id)
        yield MarkLabel(serial, display_serial(serial), code, mark_url(base_url, code, serial, batch.gtin))


def one_mark(batch: MarkBatch, keyring: MarkKeyring, base_url: str, serial: Serial) -> MarkLabel:
    return next(iter_batch_marks(batch, keyring, base_url, serial.seq, serial.seq))


@dataclass(frozen=True)
class LabelFacts:
    """The fixed part of every label of a batch (per the 2020 Measures)."""

    gi_name_zh: str
    uscc: str
    registration_or_standard: str
    producer_name: str
    printer_name: str | None
    artwork_png: bytes | None


def label_facts(session: Session, batch: MarkBatch, store) -> LabelFacts:
    gi = session.get(GIProduct, batch.gi_id)
    producer = session.get(Organisation, batch.producer_id)
    printer = session.get(Organisation, batch.printer_id) if batch.printer_id else None
    number = gi.registration_no or gi.standard or ""
    artwork = store.get(artwork_key(gi.id)) or store.get(artwork_key(None))
    return LabelFacts(gi.name_zh, producer.uscc or "", number, producer.name, printer.name if printer else None,
                      artwork)


def can_see_labels(session: Session, by: Principal, batch: MarkBatch) -> bool:
    """A mark's label: its producer, its printer, or an authority managing the GI."""
    return (by.organisation_id in (batch.producer_id, batch.printer_id)
            or (by.org_kind == OrgKind.authority and can_manage_gi(session, by, batch.gi)))


def record_print_download(session: Session, batch_id: int, *, by: Principal | None, fmt: str) -> tuple[MarkBatch, bool]:
    """Only the order's printer and the GI's authority get print files; each download is a ledger event.

    Returns the batch and whether this download repeats an earlier one (flagged on the order).
    `by=None` is the operator's command line.
    """
    batch = get_batch(session, batch_id, lock=True)
    if by is not None and not ((by.org_kind == OrgKind.printer and by.organisation_id == batch.printer_id) or
                               (by.org_kind == OrgKind.authority and can_manage_gi(session, by, batch.gi))):
        raise Forbidden("print files go only to the printer the order was placed with and the GI's authority",
                        code="not_your_order")
    if batch.printer_id is None or batch.status == BatchStatus.approved:
        raise GIError(f"batch {batch_id} has no print order yet; order it from a printer first",
                      code="not_ordered", status=409)
    batch.print_downloads += 1
    batch.last_download_at = clock.now()
    repeated = batch.print_downloads > 1
    ledger.append(session, "print_file_downloaded", by=by, producer_id=batch.producer_id, gi_id=batch.gi_id,
                  printer_id=batch.printer_id, batch_id=batch.id, series=batch.series,
                  ranges=[(batch.seq_start, batch.seq_end)], count=batch.quantity,
                  reason="repeated download" if repeated else None,
                  data={"format": fmt, "download_no": batch.print_downloads})
    session.flush()
    return batch, repeated


def label_spec(*, preset: str | None, width_mm: float | None, height_mm: float | None, dpi: int, ec: str):
    """The label size asked for: a preset, or a custom width and height."""
    if width_mm is not None or height_mm is not None:
        if preset is not None or width_mm is None or height_mm is None:
            raise GIError("give either a preset or both width_mm and height_mm", code="bad_label_size", status=422)
        return LabelSpec.custom(width_mm, height_mm, dpi, ec)
    return LabelSpec.preset(preset or "30x30", dpi, ec)


def contents(facts: LabelFacts, marks: Iterator[MarkLabel]):
    """Label contents for the label library, the fixed facts joined to each mark."""
    for m in marks:
        yield LabelContent(gi_name_zh=facts.gi_name_zh, uscc=facts.uscc,
                           registration_or_standard_no=facts.registration_or_standard, serial=m.serial, url=m.url,
                           serial_display=m.display, artwork_png=facts.artwork_png)


def cover_info(batch: MarkBatch, facts: LabelFacts):
    first, last = (format_serial(batch.series[:4], 2000 + int(batch.series[4:]), s)
                   for s in (batch.seq_start, batch.seq_end))
    return CoverInfo(order_id=f"{batch.id}", gi_name=facts.gi_name_zh, producer_name=facts.producer_name,
                     printer_name=facts.printer_name or "", created=clock.now().strftime("%Y-%m-%d %H:%M UTC"),
                     notes=f"{batch.quantity} × {batch.pack_size_g} g", count=batch.quantity,
                     first_serial=first, last_serial=last)


def write_print_file(fmt: str, out, *, batch: MarkBatch, facts: LabelFacts, marks: Iterator[MarkLabel], spec,
                     paper: str = "A4", bleed_mm: float = 2.0, workers: int = 1, progress=None) -> None:
    """Write a batch's print file (PDF sheets, variable-data CSV or a zip of PNGs) to `out`."""
    if fmt == "csv":
        class _Text:  # csv writes text; the file takes UTF-8 bytes
            def write(self, chunk: str) -> int:
                return out.write(chunk.encode("utf-8"))

        writer = csv.writer(_Text())
        writer.writerow(["serial", "serial_display", "code", "url"])
        done = 0
        for m in marks:
            writer.writerow([m.serial, m.display, m.code, m.url])
            done += 1
            if progress and done % 1000 == 0:
                progress(1000)
        if progress:
            progress(done % 1000)
    elif fmt == "png-zip":
        write_png_zip(contents(facts, marks), spec, out, progress=progress)
    elif fmt == "pdf":
        write_pdf_sheets(contents(facts, marks), spec, out, cover=cover_info(batch, facts), paper=paper,
                         bleed_mm=bleed_mm, workers=workers, progress=progress)
    else:  # pragma: no cover - validated by the callers
        raise ValueError(fmt)
