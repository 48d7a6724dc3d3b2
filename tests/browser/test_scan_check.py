"""What the scan page's verdict endpoint answers for what a camera reads: a label's /v/ link, its GS1 Digital Link
form, a QR pointing to another site — and that none of it is logged as a consumer check."""
from __future__ import annotations

import re
from urllib.parse import quote

from sqlalchemy import func, select

from gi_service.models import MarkCheck, Scan
from tests.verify.conftest import World

from .conftest import fresh

GTIN = "06901234567892"


def _signed_in(client, actor) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": actor.principal.username, "password": "password-123456",
                                    "csrf_token": token})
    assert r.status_code == 303


def _check(client, text: str) -> dict:
    r = client.get("/app/scan/check?code=" + quote(text, safe=""))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_verdict_of_each_kind_of_qr_content_without_a_consumer_check(factory, client, app, session):
    """Does a label's /v/ link, its GS1 Digital Link (?v= carrying the tag) and its bare code give the consumer
    page's verdict with the serial, GI and producer; a link to another site the host named as foreign; and does
    none of these checks appear in the consumer counters?"""
    world = World(factory, client, app)
    plain = world.batch(10)
    world.activate(plain, 1, 3)
    linked = world.batch(10, gtin=GTIN)
    inspector = factory.inspection("440100")
    browser = app.test_client()
    _signed_in(browser, inspector)

    doc = _check(browser, f"http://gi.test/v/{plain.code(2)}")
    assert (doc["verdict"], doc["serial"]) == ("genuine", plain.serial(2))
    assert doc["gi"]["id"] == world.gi.id and doc["producer"]["name"] == world.producer.org.name
    assert doc["mark"]["state_label"] == "已启用" and doc["foreign_host"] is None
    assert _check(browser, plain.code(5))["verdict"] == "genuine_not_activated"

    gs1 = f"http://gi.test/01/{GTIN}/21/{linked.serial(4)}?v={linked.tag(4)}"
    doc = _check(browser, gs1)
    assert (doc["verdict"], doc["serial"], doc["stored_as"]) == ("genuine_not_activated", linked.serial(4),
                                                                 linked.code(4))
    assert _check(browser, f"http://gi.test/01/{GTIN}/21/{linked.serial(4)}")["verdict"] == "unknown"  # no tag

    doc = _check(browser, f"https://gi-verify.example/v/{plain.code(2)}")
    assert doc["foreign_host"] == "gi-verify.example" and doc["verdict"] == "malformed"

    fresh(session)
    assert session.scalar(select(func.count()).select_from(Scan)) == 0
    assert session.scalar(select(func.count()).select_from(MarkCheck)) == 0
