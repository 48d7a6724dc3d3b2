"""Label images and print files over the API: who gets them, what they hold, and that they scan."""
from __future__ import annotations

import csv
import io
import zipfile

import zxingcpp
from PIL import Image

from gi_service.codes import verify_code
from tests.factories import LedgerWorld


def _world(factory, client, n=20):
    w = LedgerWorld(factory, client)
    batch = w.approve(w.request(n)["id"])
    return w, batch


def _issued(factory, client, n=20):
    w = LedgerWorld(factory, client)
    return w, w.printed_and_issued(n)


def test_a_producer_gets_its_mark_label_as_png_and_svg_that_scans(client, factory, app):
    """Does the producer get its issued mark's label as PNG (QR decodes to the /v/ URL) and as SVG?"""
    w, batch = _issued(factory, client)
    serial = batch["first_serial"]
    r = client.get(f"/api/v1/marks/{serial}/label?preset=30x30&dpi=300", headers=w.producer.headers)
    assert r.status_code == 200 and r.mimetype == "image/png", r.data[:200]
    image = Image.open(io.BytesIO(r.data))
    assert image.size == (354, 354)
    decoded = [res.text for res in zxingcpp.read_barcodes(image)]
    assert len(decoded) == 1 and decoded[0].startswith("http://gi.test/v/")
    code = decoded[0].rsplit("/", 1)[1]
    assert verify_code(app.extensions["gi_keyring"], code).serial.text == serial
    r = client.get(f"/api/v1/marks/{serial}/label?format=svg&preset=40x60", headers=w.printer.headers)
    assert r.status_code == 200 and r.mimetype == "image/svg+xml" and b"<svg" in r.data


def test_producers_get_no_labels_before_the_marks_are_issued_to_them(client, factory):
    """Before the printer has printed and issued them, does a producer get no label images (the printer does)?"""
    w, batch = _world(factory, client)
    r = client.get(f"/api/v1/marks/{batch['first_serial']}/label", headers=w.producer.headers)
    assert r.status_code == 403 and r.json["error"] == "not_issued_yet"
    assert client.get(f"/api/v1/marks/{batch['first_serial']}/label", headers=w.printer.headers).status_code == 200


def test_head_on_a_print_file_records_nothing(client, factory):
    """Is a HEAD request on a print file answered without counting as a download?"""
    w, batch = _world(factory, client)
    r = client.head(f"/api/v1/batches/{batch['id']}/print-file?format=csv", headers=w.printer.headers)
    assert r.status_code == 200
    detail = client.get(f"/api/v1/batches/{batch['id']}", headers=w.authority.headers).json
    assert detail["print_downloads"] == 0


def test_label_access_and_size_refusals(client, factory):
    """Are other producers refused, and a size whose QR modules would be under 0.25 mm refused with 422?"""
    w, batch = _issued(factory, client)
    stranger = factory.producer("341602")
    serial = batch["first_serial"]
    assert client.get(f"/api/v1/marks/{serial}/label", headers=stranger.headers).status_code == 404
    assert client.get(f"/api/v1/marks/{serial}/label").status_code == 401
    r = client.get(f"/api/v1/marks/{serial}/label?width_mm=15&height_mm=15", headers=w.producer.headers)
    assert r.status_code == 422 and r.json["error"] == "module_too_small", r.json
    r = client.get(f"/api/v1/marks/{serial}/label?preset=30x30&width_mm=40&height_mm=40", headers=w.producer.headers)
    assert r.status_code == 422 and r.json["error"] == "bad_label_size"


def test_print_files_go_only_to_the_printer_and_authority_and_repeats_are_flagged(client, factory, app):
    """Does the order's printer get a variable-data CSV whose codes verify, and is a second download flagged?"""
    w, batch = _world(factory, client, n=25)
    url = f"/api/v1/batches/{batch['id']}/print-file?format=csv"
    assert client.get(url, headers=w.producer.headers).status_code == 403
    assert client.get(url, headers=factory.printer().headers).status_code == 403
    r = client.get(url, headers=w.printer.headers)
    assert r.status_code == 200 and r.mimetype == "text/csv" and "X-Repeated-Download" not in r.headers
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0] == ["serial", "serial_display", "code", "url"] and len(rows) == 26
    assert rows[1][0] == batch["first_serial"] and rows[-1][0] == batch["last_serial"]
    keyring = app.extensions["gi_keyring"]
    assert all(verify_code(keyring, row[2]).serial.text == row[0] for row in rows[1:])
    again = client.get(url, headers=w.authority.headers)
    assert again.status_code == 200 and again.headers["X-Repeated-Download"] == "true"
    detail = client.get(f"/api/v1/batches/{batch['id']}", headers=w.authority.headers).json
    assert detail["print_downloads"] == 2


def test_png_zip_print_file_holds_one_scannable_png_per_mark(client, factory):
    """Does the PNG zip hold one PNG per serial whose QR decodes?"""
    w, batch = _world(factory, client, n=4)
    r = client.get(f"/api/v1/batches/{batch['id']}/print-file?format=png-zip&preset=20x20", headers=w.printer.headers)
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as zf:
        names = sorted(zf.namelist())
        assert len(names) == 4
        image = Image.open(io.BytesIO(zf.read(names[0])))
        assert len(zxingcpp.read_barcodes(image)) == 1


def test_pdf_print_file_has_a_cover_and_sheets_whose_codes_decode(client, factory, app):
    """Is the PDF print file a cover page plus sheets whose every QR decodes to that order's codes?"""
    import pypdfium2

    w, batch = _world(factory, client, n=12)
    r = client.get(f"/api/v1/batches/{batch['id']}/print-file?format=pdf&preset=40x60&paper=A4",
                   headers=w.printer.headers)
    assert r.status_code == 200 and r.mimetype == "application/pdf" and r.data.startswith(b"%PDF")
    pdf = pypdfium2.PdfDocument(r.data)
    cover_text = pdf[0].get_textpage().get_text_range()
    assert batch["first_serial"] in cover_text.replace("-", "") or batch["first_serial"] in cover_text
    keyring = app.extensions["gi_keyring"]
    found = set()
    for i in range(1, len(pdf)):
        image = pdf[i].render(scale=600 / 72).to_pil()
        for res in zxingcpp.read_barcodes(image):
            code = res.text.rsplit("/", 1)[1]
            found.add(verify_code(keyring, code).serial.text)
    assert len(found) == 12


def test_a_print_file_that_cannot_be_made_counts_as_no_download(client, factory, monkeypatch):
    """If the writer fails before its first chunk, is the answer a 500 error with no download recorded?"""
    from gi_service.services import labels as label_service

    w, batch = _world(factory, client)

    def broken(*args, **kwargs):
        raise RuntimeError("font file vanished")

    monkeypatch.setattr(label_service, "write_print_file", broken)
    r = client.get(f"/api/v1/batches/{batch['id']}/print-file?format=pdf", headers=w.printer.headers)
    assert r.status_code == 500 and r.json["error"] == "internal_error", r.get_data(as_text=True)[:300]
    detail = client.get(f"/api/v1/batches/{batch['id']}", headers=w.authority.headers).json
    assert detail["print_downloads"] == 0
    events = client.get("/api/v1/ledger/events?limit=1000", headers=w.authority.headers)
    assert events.status_code == 200
    assert all(e["kind"] != "print_file_downloaded" for e in events.json["events"]), events.json
