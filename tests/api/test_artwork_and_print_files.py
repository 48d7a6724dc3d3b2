"""Special-mark artwork uploads and the ledger record of print-file downloads."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from gi_service.codes import parse_serial, verify_code
from gi_service.errors import Forbidden
from gi_service.models import LedgerEvent, MarkBatch
from gi_service.services import labels as label_service
from gi_service.services import ledger


def _png(size=(64, 64), exif: bool = False) -> bytes:
    buf = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    if exif:
        ex = Image.Exif()
        ex[0x010F] = "SecretCameraMaker"
        image.save(buf, "JPEG", exif=ex)
    else:
        image.save(buf, "PNG")
    return buf.getvalue()


def _put(client, path, actor, data, name="art.png"):
    return client.put(path, headers=actor.headers, data={"file": (io.BytesIO(data), name)},
                      content_type="multipart/form-data")


def test_only_the_national_authority_uploads_the_official_artwork(client, factory):
    """Is the national artwork accepted from the national authority only, re-encoded, and served back?"""
    city, nation = factory.authority("341600"), factory.authority("100000")
    assert client.get("/api/v1/special-mark/artwork").status_code == 404
    r = _put(client, "/api/v1/special-mark/artwork", city, _png())
    assert r.status_code == 403 and r.json["error"] == "outside_jurisdiction"
    r = _put(client, "/api/v1/special-mark/artwork", nation, _png(exif=True), "logo.jpg")
    assert r.status_code == 200, r.json
    served = client.get("/api/v1/special-mark/artwork")
    assert served.mimetype == "image/png"
    assert b"SecretCameraMaker" not in served.data
    assert Image.open(io.BytesIO(served.data)).size == (64, 64)


def test_artwork_that_is_not_an_image_is_refused(client, factory):
    """Is a file that is not a PNG/JPEG image refused with 422, and a GI's artwork only from its authority?"""
    a, other = factory.authority("341600"), factory.authority("330100")
    gi = factory.gi(a)
    r = _put(client, f"/api/v1/gis/{gi.id}/artwork", a, b"%PDF-1.4 not an image", "x.png")
    assert r.status_code == 422 and r.json["error"] == "not_an_image"
    assert _put(client, f"/api/v1/gis/{gi.id}/artwork", other, _png()).status_code == 403
    assert _put(client, f"/api/v1/gis/{gi.id}/artwork", a, _png()).status_code == 200


def test_batch_label_data_is_computed_and_verifies(client, factory, app, session, ledger_world):
    """Does every label of a batch carry its serial, a code that verifies to it, and the /v/ URL?"""
    w = ledger_world()
    batch_json = w.approve(w.request(50)["id"])
    batch = session.get(MarkBatch, batch_json["id"])
    keyring = app.extensions["gi_keyring"]
    items = list(label_service.iter_batch_marks(batch, keyring, "https://gi.example.org"))
    assert len(items) == 50 and items[0].serial == batch_json["first_serial"]
    assert items[-1].serial == batch_json["last_serial"]
    for item in items[:5]:
        check = verify_code(keyring, item.code)
        assert check.status == "valid" and check.serial == parse_serial(item.serial)
        assert item.url == f"https://gi.example.org/v/{item.code}"


def test_gtin_labels_carry_the_gs1_digital_link_with_the_mac(client, factory, app, session, ledger_world):
    """Does a batch with a GTIN get GS1 Digital Link URLs that still carry the key id and MAC tag?"""
    w = ledger_world()
    batch_json = w.approve(w.request(3, gtin="6901234567892")["id"])
    batch = session.get(MarkBatch, batch_json["id"])
    item = next(label_service.iter_batch_marks(batch, app.extensions["gi_keyring"], "https://gi.example.org"))
    assert item.url == f"https://gi.example.org/01/06901234567892/21/{item.serial}?v={item.code[0]}{item.code[16:]}"


def test_print_file_downloads_are_ledger_events_and_repeats_are_flagged(client, factory, app, session, ledger_world):
    """Do only the order's printer and the authority get print files, each download a ledger event, the second flagged?"""
    w = ledger_world()
    batch_json = w.approve(w.request(10)["id"])
    other_printer = factory.printer()
    with pytest.raises(Forbidden):
        label_service.record_print_download(session, batch_json["id"], by=other_printer.principal, fmt="pdf")
    session.rollback()
    batch, repeated = label_service.record_print_download(session, batch_json["id"], by=w.printer.principal,
                                                          fmt="pdf")
    assert not repeated and batch.print_downloads == 1
    batch, repeated = label_service.record_print_download(session, batch_json["id"], by=w.authority.principal,
                                                          fmt="csv")
    assert repeated and batch.print_downloads == 2
    session.commit()
    events = list(session.scalars(select(LedgerEvent).where(LedgerEvent.kind == "print_file_downloaded")))
    assert [e.data["format"] for e in events] == ["pdf", "csv"]
    assert events[1].reason == "repeated download"
    assert ledger.verify(session).ok
