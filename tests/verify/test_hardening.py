"""What the public verification answers must never give away or get wrong."""
from __future__ import annotations

from gi_service.codes import make_code
from tests.factories import LedgerWorld

JSON = {"Accept": "application/json"}


def _code(app, serial: str) -> str:
    return make_code(app.extensions["gi_keyring"], serial)


def test_a_revoked_gi_never_verifies_as_genuine(client, factory, app):
    """After its GI is revoked, does an activated mark stop answering 'genuine'?"""
    w = LedgerWorld(factory, client)
    batch = w.printed_and_issued(5)
    first = batch["first_serial"]
    r = client.post("/api/v1/activations", headers=w.producer.headers,
                    json={"ranges": [{"first": first}], "lot": w.lot()})
    assert r.status_code == 201, r.json
    code = _code(app, first)
    assert client.get(f"/v/{code}", headers=JSON).status_code == 200
    client.patch(f"/api/v1/gis/{w.gi.id}", json={"status": "revoked", "reason": "撤销公告"}, headers=w.authority.headers)
    r = client.get(f"/v/{code}", headers=JSON)
    assert r.status_code == 451 and r.json["detail"] == "gi_revoked"


def test_a_never_printed_serial_is_unknown_and_reveals_nothing(client, factory, app):
    """Does a valid code for a serial approved but never printed answer 'unknown' without producer details?"""
    w = LedgerWorld(factory, client)
    batch = w.approve(w.request(5)["id"], printer=False)
    r = client.get(f"/v/{_code(app, batch['first_serial'])}", headers=JSON)
    assert r.status_code == 404 and r.json["error"] == "unknown"
    assert "producer" not in r.json or r.json["producer"] is None


def test_forged_codes_do_not_tell_which_key_ids_exist(client, factory, app):
    """Do a code with an unknown key id and one with a bad tag give the same public detail?"""
    w = LedgerWorld(factory, client)
    batch = w.printed_and_issued(2)
    good = _code(app, batch["first_serial"])
    unknown_key = ("Z" if good[0] != "Z" else "Y") + good[1:]
    bad_tag = good[:-1] + ("A" if good[-1] != "A" else "B")
    a = client.get(f"/v/{unknown_key}", headers=JSON).json
    b = client.get(f"/v/{bad_tag}", headers=JSON).json
    assert a["detail"] == b["detail"] == "bad_mac" and a["reason"] == b["reason"]


def test_public_answer_keeps_private_lot_and_authorization_figures_out(client, factory, app):
    """Does the genuine answer omit the lot's size and the authorization's internal announcement number?"""
    w = LedgerWorld(factory, client)
    batch = w.printed_and_issued(3)
    client.post("/api/v1/activations", headers=w.producer.headers,
                json={"ranges": [{"first": batch["first_serial"]}], "lot": w.lot(quantity=97_654_321)})
    doc = client.get(f"/v/{_code(app, batch['first_serial'])}", headers=JSON).json
    # Eight digits: "4321" (the size it had) turned up now and then inside a code, a digest or a time.
    assert "quantity" not in doc["lot"] and "97654321" not in str(doc)
    assert "announcement_no" not in doc["authorization"]
