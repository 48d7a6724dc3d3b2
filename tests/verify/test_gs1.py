"""The GS1 Digital Link resolver: `/01/{gtin}/21/{serial}?v={kid}{tag}` resolves like `/v/{code}`, and behaves
as a GS1-Conformant resolver (syntax → 400, default link → 307, linkType, RFC 9264 linksets, query strings
passed on, trailing slash, HEAD/OPTIONS, CORS, `/.well-known/gs1resolver`); a URI without a serial walks up to
its GTIN's product page, one with a serial never does; the lot a URI names reaches the verdict.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from gi_service.codes import format_serial, make_code
from gi_service.models import Authorization, Lot, Scan, Verdict
from gi_service.services.labels import mark_url
from gi_service.public.verify import gtin14, normalise_link_type, parse_digital_link

from .conftest import Batch, forged, verify_world

GTIN = "09506000134352"
BASE = "http://gi.test"
VOC = "https://gs1.org/voc/"


@pytest.fixture
def gs1(factory, client, app, reused_world):
    """The ledger world (`world` of tests/verify/conftest.py) with `item`, its batch of 20 marks with a GTIN, 1-10
    activated: built once per test process and database on the restored ledger world, then restored for each test
    (the building makes no check, so the check log has nothing of it to flush)."""
    def build():
        w = verify_world(factory, client, app, reused_world)
        w.item = w.batch(20, gtin=GTIN)
        w.activate(w.item, 1, 10)
        return w

    def rebind(w) -> None:
        w.rebind(factory, client, app=app)
        w.item = Batch(w.item.data, w.keyring)

    return reused_world("verify-gs1", build, rebind)


@pytest.fixture
def world(gs1):
    """This module's tests that read the world also read `item`: the world is the one `item` was made in."""
    return gs1


@pytest.fixture
def item(gs1):
    """An activated mark of a batch with a GTIN: (batch, its GS1 path without the query)."""
    return gs1.item


def dl(b, n: int = 1, **query) -> str:
    query.setdefault("v", b.tag(n))
    qs = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return f"/01/{GTIN}/21/{b.serial(n)}" + (f"?{qs}" if qs else "")


def links_of(header: str) -> list[dict[str, str]]:
    out = []
    for part in header.split(", <"):
        href, _, params = part.lstrip("<").partition(">")
        attrs = {}
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k:
                attrs.setdefault(k, v.strip('"'))
        out.append({"href": href, **attrs})
    return out


def test_label_url_redirects_to_its_verification_answer(world, client, item):
    """Does the URL printed on a GS1 label (labels.mark_url) answer 307 to /v/{code}, which says genuine?"""
    url = mark_url(BASE, item.code(1), item.serial(1), GTIN)
    r = client.get(url.removeprefix(BASE))
    assert r.status_code == 307
    assert r.headers["Location"].startswith(f"{BASE}/v/{item.code(1)}")
    target = urlsplit(r.headers["Location"])
    r = client.get(target.path, query_string=target.query, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json["verdict"] == "genuine" and r.json["serial"] == item.serial(1)


def test_default_link_is_one_of_the_links_and_every_link_type_redirects_to_its_href(client, item):
    """Is the default redirect one of the Link header's links, and does linkType=<rel> reach each link's href?"""
    r = client.get(dl(item))
    links = links_of(r.headers["Link"])
    gs1 = [link for link in links if link["rel"].startswith(VOC)]
    assert r.headers["Location"] in {link["href"] for link in gs1}
    assert {link["rel"] for link in gs1} == {VOC + n for n in ("defaultLink", "verificationService", "pip",
                                                                 "traceability")}
    for link in gs1:
        assert link["title"] and link["type"] and link["hreflang"], link
        r = client.get(dl(item, linkType=link["rel"]))
        assert r.status_code == 307 and r.headers["Location"].split("?")[0] == link["href"], link
    [linkset] = [link for link in links if link["rel"] == "linkset"]
    assert urlsplit(linkset["href"]).path == f"/01/{GTIN}/21/{item.serial(1)}"
    assert parse_qs(urlsplit(linkset["href"]).query) == {"v": [item.tag(1)], "linkType": ["linkset"]}


@pytest.mark.parametrize("link_type, fragment", [
    ("gs1:pip", "#product"), ("https://gs1.org/voc/traceability", "#timeline"), ("gs1:verificationService", ""),
    ("https://ref.gs1.org/voc/defaultLink", ""), ("gs1:defaultLink", ""),
])
def test_link_types(client, item, link_type, fragment):
    """Does each offered linkType (CURIE or either GS1 namespace) redirect to its part of the answer?"""
    r = client.get(dl(item, linkType=link_type))
    assert r.status_code == 307
    assert r.headers["Location"] == f"{BASE}/v/{item.code(1)}{fragment}"


def test_unavailable_link_type_is_404(client, item):
    """Is a linkType this item has no link for answered 404 in the error contract, listing what is available?"""
    for link_type in ("gs1:recipeInfo", "https://example.org/voc/pip", "nonsense"):
        r = client.get(dl(item, linkType=link_type), headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.json["error"] == "link_type_unavailable", link_type
        assert "gs1:pip" in r.json["details"]["available"] and isinstance(r.json["message"], str)
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_query_string_is_passed_on(client, item):
    """Are the request's key=value pairs passed on when redirecting (not linkType and v, which the resolver used)?"""
    r = client.get(dl(item, foo="bar", lang="en", linkType="gs1:pip"))
    location = urlsplit(r.headers["Location"])
    assert parse_qs(location.query) == {"foo": ["bar"], "lang": ["en"]}
    assert location.fragment == "product"


def test_trailing_slash_is_tolerated(client, item):
    """Does a trailing slash get exactly the same answer?"""
    plain = client.get(dl(item))
    slash = client.get(f"/01/{GTIN}/21/{item.serial(1)}/?v={item.tag(1)}")
    assert (slash.status_code, slash.headers["Location"]) == (plain.status_code, plain.headers["Location"])


def test_linkset(client, item):
    """Does linkType=linkset (or all, or Accept: application/linkset+json) return an RFC 9264 linkset?"""
    for kwargs in ({"path": dl(item, linkType="linkset")}, {"path": dl(item, linkType="all")},
                   {"path": dl(item), "headers": {"Accept": "application/linkset+json"}}):
        r = client.get(kwargs["path"], headers=kwargs.get("headers", {}))
        assert r.status_code == 200 and r.mimetype == "application/linkset+json", kwargs
        [entry] = r.json["linkset"]
        assert entry["anchor"] == f"{BASE}/01/{GTIN}/21/{item.serial(1)}"
        assert [entry[VOC + "defaultLink"][0]["href"]] == [f"{BASE}/v/{item.code(1)}"]
        for rel in ("defaultLink", "verificationService", "pip", "traceability"):
            for link in entry[VOC + rel]:
                assert link["href"].startswith(f"{BASE}/v/{item.code(1)}")
                assert link["title"] and link["type"] and link["hreflang"] == ["zh", "en"]
        assert {link["type"] for link in entry[VOC + "verificationService"]} == {"text/html", "application/json"}
        assert "Link" in r.headers and r.headers["Access-Control-Allow-Origin"] == "*"
    r = client.get(dl(item, linkType="linkset"), headers={"Accept": "application/ld+json"})
    assert r.mimetype == "application/ld+json" and r.json["@context"].startswith("https://ref.gs1.org/")
    r = client.get(dl(item, linkType="linkset"), headers={"Accept": "application/json"})
    assert r.mimetype == "application/json" and "linkset" in r.json


@pytest.mark.parametrize("path, problem", [
    ("/01/09506000134353/21/X", "check digit should be 2"),
    ("/01/95060001343/21/X", "8, 12, 13 or 14 digits"),
    ("/01/95060001343A2/21/X", "8, 12, 13 or 14 digits"),
    (f"/01/{GTIN}/21/X/foo", "nothing may follow"),
    (f"/01/{GTIN}/99/X", "not a key qualifier"),
    (f"/01/{GTIN}/21/X/10/L1", "order 22, 10, 21"),
    (f"/01/{GTIN}/21/X/21/Y", "order 22, 10, 21"),
    (f"/01/{GTIN}/21/{'X' * 21}", "1-20 characters"),
    (f"/01/{GTIN}/21/a%20b", "1-20 characters"),
])
def test_bad_uri_syntax_is_400(client, path, problem):
    """Is a URI that is not GS1 Digital Link syntax answered 400 (never 200) with the malformed verdict — its
    document at the top level, the reason saying what is wrong — and, for a browser, the malformed verdict's page?"""
    r = client.get(path, headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json["verdict"] == r.json["error"] == "malformed"
    assert r.json["detail"] == "invalid_digital_link" and r.json["genuine"] is False
    assert problem in r.json["reason"], r.json["reason"]
    assert r.json["message"]["zh"] and r.json["message"]["en"]
    r = client.get(path)
    assert r.status_code == 400 and r.mimetype == "text/html"
    assert "无法识别的验证码" in r.get_data(as_text=True) and "GS1" in r.get_data(as_text=True)


def test_gtin_forms_and_qualifiers():
    """Are GTIN-8/12/13 padded to 14 digits and the 22/10/21 qualifiers read in order?"""
    assert gtin14("9506000134352") == GTIN and gtin14("96385074") == "00000096385074"
    assert parse_digital_link(f"{GTIN}/22/2A/10/ABC-1/21/SER1/") == (GTIN, {"22": "2A", "10": "ABC-1", "21": "SER1"})
    assert normalise_link_type("gs1:pip") == normalise_link_type("https://gs1.org/voc/pip") == "pip"
    assert normalise_link_type("https://schema.org/url") is None


def test_a_lot_qualifier_is_accepted_and_kept_in_the_anchor(client, item):
    """Does /01/{gtin}/10/{lot}/21/{serial} resolve too, with the lot in the linkset anchor?"""
    r = client.get(f"/01/{GTIN}/10/L-1/21/{item.serial(1)}?v={item.tag(1)}&linkType=linkset")
    assert r.status_code == 200 and r.json["linkset"][0]["anchor"].endswith(f"/10/L-1/21/{item.serial(1)}")


@pytest.mark.parametrize("case", ["no_tag", "wrong_tag", "other_serials_tag", "bad_tag_shape", "other_gtin",
                                  "never_issued", "not_a_serial", "lot_no_tag", "lot_wrong_tag"])
def test_labels_that_do_not_verify_are_answered_unknown_not_redirected(world, client, session, item, case):
    """Without ?v=, with a wrong one, for another GTIN or a serial never issued — with or without a lot in the URI —
    404 'unknown' with the verdict document, never genuine, never redirected nor walked up to the product page?"""
    other_gtin = "00000096385074"
    path = {
        "no_tag": dl(item, v=None),
        "wrong_tag": dl(item, v=forged(item.code(1))[0] + forged(item.code(1))[16:]),
        "other_serials_tag": dl(item, v=item.tag(2)),
        "bad_tag_shape": dl(item, v="A123"),
        "other_gtin": f"/01/{other_gtin}/21/{item.serial(1)}?v={item.tag(1)}",
        "never_issued": f"/01/{GTIN}/21/{_serial(999_999)}?v={_tag_for(world, _serial(999_999))}",
        "not_a_serial": f"/01/{GTIN}/21/SER-1?v={item.tag(1)}",
        "lot_no_tag": f"/01/{GTIN}/10/L-1/21/{item.serial(1)}",
        "lot_wrong_tag": f"/01/{GTIN}/10/L-1/21/{item.serial(1)}?v={item.tag(2)}",
    }[case]
    r = client.get(path)
    assert r.status_code == 404 and "Location" not in r.headers
    html = r.get_data(as_text=True)
    assert "无法验证" in html and "正品：地理标志专用标志有效" not in html
    r = client.get(path, headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["verdict"] == r.json["error"] == "unknown"
    assert r.json["genuine"] is False and "gi" not in r.json and "producer" not in r.json
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    scans = list(session.scalars(select(Scan)))
    session.commit()
    assert len(scans) == 2 and {s.verdict for s in scans} == {Verdict.unknown}
    for link_type in ("linkset", "gs1:pip", "gs1:defaultLink"):
        r = client.get(path + ("&" if "?" in path else "?") + "linkType=" + link_type)
        assert r.status_code == 404 and "Location" not in r.headers and "/p/" not in r.headers.get("Link", ""), \
            link_type


def _serial(seq: int) -> str:
    return format_serial("BBSH", 2026, seq)


def _tag_for(world, serial: str) -> str:
    code = make_code(world.keyring, serial)
    return code[0] + code[16:]


def test_a_voided_label_redirects_to_its_voided_answer(world, client, item):
    """Does a real but voided label still resolve (it has links) to a /v/ answer that says 410 voided?"""
    world.void(item, 2)
    r = client.get(dl(item, 2))
    assert r.status_code == 307
    target = urlsplit(r.headers["Location"])
    r = client.get(target.path, query_string=target.query, headers={"Accept": "application/json"})
    assert r.status_code == 410 and r.json["error"] == "voided"


def test_head_options_and_cors(client, item, session):
    """Do HEAD (same status and headers, no body, nothing logged) and OPTIONS (Allow, CORS) work?"""
    head = client.head(dl(item))
    assert head.status_code == 307 and head.data == b"" and head.headers["Location"] and head.headers["Link"]
    head = client.head(dl(item, v=None))
    assert head.status_code == 404 and head.data == b""
    assert session.scalar(select(func.count()).select_from(Scan)) == 0
    session.commit()
    r = client.options(dl(item))
    assert r.status_code == 200 and {"GET", "HEAD", "OPTIONS"} <= set(r.headers["Allow"].split(", "))
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert {"GET", "HEAD", "OPTIONS"} <= set(r.headers["Access-Control-Allow-Methods"].split(", "))
    assert client.get(dl(item)).headers["Access-Control-Allow-Origin"] == "*"


def test_resolver_description_file(client):
    """Does /.well-known/gs1resolver describe the resolver (root, primary keys, link types, linkset context)?"""
    r = client.get("/.well-known/gs1resolver")
    assert r.status_code == 200 and r.mimetype == "application/json"
    doc = r.json
    assert doc["resolverRoot"] == BASE and doc["supportedPrimaryKeys"] == ["01"]
    assert doc["supportedLinkType"] == [{"namespace": VOC, "prefix": "gs1:"}]
    assert doc["linkTypeDefaultCanBeLinkset"] is False and doc["name"]
    assert "gs1:verificationService" in doc["activeLinkTypes"]["en"]
    assert r.headers["Access-Control-Allow-Origin"] == "*"


# --- RFC 9264 -----------------------------------------------------------------------------------------

def _conforms_to_rfc_9264(body: dict) -> None:
    for context in body["linkset"]:
        assert isinstance(context["anchor"], str)
        for member, targets in context.items():
            if member == "anchor":
                continue
            assert member.startswith("https://"), member      # a relation type (an extension relation is a URI)
            assert isinstance(targets, list) and targets, member
            for target in targets:
                assert isinstance(target, dict) and isinstance(target["href"], str), (member, target)
                assert isinstance(target["hreflang"], list)
                assert all(set(t) == {"value", "language"} for t in target["title*"])


def test_the_linkset_context_object_holds_only_the_anchor_and_relations(client, item):
    """Does every member of a linkset's context object other than `anchor` hold an array of target objects, as
    RFC 9264 reads it (no plain-string `description`), for a label's linkset and for a GTIN's?"""
    for path in (dl(item, linkType="linkset"), f"/01/{GTIN}?linkType=linkset", f"/01/{GTIN}/10/L-1?linkType=all"):
        r = client.get(path)
        assert r.status_code == 200 and r.mimetype == "application/linkset+json", path
        assert "description" not in r.json["linkset"][0]
        _conforms_to_rfc_9264(r.json)


# --- walk-up: a GTIN, or a lot of it, has its own links ---------------------------------------------------

def test_a_gtin_walks_up_to_its_product_page(world, client, session, item):
    """Does /01/{gtin} (a product, not a label) answer 307 to its product page /p/{gtin} — the default link and
    gs1:pip, listed in the Link header and in a linkset on request — while the other label link types are 404?"""
    r = client.get(f"/01/{GTIN}")
    assert r.status_code == 307 and r.headers["Location"] == f"{BASE}/p/{GTIN}"
    links = links_of(r.headers["Link"])
    assert {(link["rel"], link["href"]) for link in links if link["rel"].startswith(VOC)} == {
        (VOC + "defaultLink", f"{BASE}/p/{GTIN}"), (VOC + "pip", f"{BASE}/p/{GTIN}")}
    assert client.get(f"/01/{GTIN}?linkType=gs1:pip").headers["Location"] == f"{BASE}/p/{GTIN}"
    assert client.get("/01/9506000134352/").headers["Location"] == f"{BASE}/p/{GTIN}"      # GTIN-13, slash
    r = client.get(f"/01/{GTIN}?linkType=linkset")
    [entry] = r.json["linkset"]
    assert entry["anchor"] == f"{BASE}/01/{GTIN}"
    assert {t["type"] for t in entry[VOC + "pip"]} == {"text/html", "application/json"}
    r = client.get(f"/01/{GTIN}?linkType=gs1:traceability", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["error"] == "link_type_unavailable"
    assert r.json["details"]["available"] == ["gs1:defaultLink", "gs1:pip"]
    assert session.scalars(select(Scan)).all() == []             # not a check
    session.commit()


def test_a_lot_walks_up_with_its_lot(client, item):
    """Does /01/{gtin}/10/{lot} answer 307 to the product page with the lot (?lot=), keep the lot in the linkset's
    anchor and in its links, and pass the rest of the query string on?"""
    r = client.get(f"/01/{GTIN}/10/L-1?lang=en")
    assert r.status_code == 307
    location = urlsplit(r.headers["Location"])
    assert location.path == f"/p/{GTIN}" and parse_qs(location.query) == {"lot": ["L-1"], "lang": ["en"]}
    r = client.get(f"/01/{GTIN}/10/L-1", headers={"Accept": "application/linkset+json"})
    [entry] = r.json["linkset"]
    assert entry["anchor"] == f"{BASE}/01/{GTIN}/10/L-1"
    assert entry[VOC + "pip"][0]["href"] == f"{BASE}/p/{GTIN}?lot=L-1"


def test_a_gtin_no_batch_carries_has_no_links(client, item):
    """Is /01/{gtin} for a GTIN no batch carries 404 — no_links in JSON, a page saying so for a browser?"""
    r = client.get("/01/96385074", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["error"] == "no_links"
    r = client.get("/01/96385074")
    assert r.status_code == 404 and "Location" not in r.headers
    assert "没有使用此商品条码（GTIN）的地理标志产品" in r.get_data(as_text=True)


def test_the_product_page_shows_the_gi_producer_area_standard_and_lot(world, client, session, item):
    """Does /p/{gtin} show the GI (name, kind, standard), its producer and USCC, its area as an inline map with the
    producer's plot, and for ?lot= that lot's test — in Chinese, English and JSON — without logging a check?"""
    r = client.patch(f"/api/v1/gis/{world.gi.id}", headers=world.authority.headers,
                     json={"standard": "DB34/T 0000", "reason": "standard recorded"})
    assert r.status_code == 200, r.json
    r = client.get(f"/p/{GTIN}?lot=L-1")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    for text in ("亳白芍", "地理标志保护产品", "DB34/T 0000", world.producer.org.name, world.producer.org.uscc,
                 "L-1", "2026-04-10", "R-2026-001", world.testing_body, "不能验证某一件商品的真伪"):
        assert text in html, text
    assert '<svg' in html and html.count("<circle") == 1
    assert "This page describes the GI product" in client.get(f"/p/{GTIN}?lang=en").get_data(as_text=True)
    doc = client.get("/p/9506000134352", headers={"Accept": "application/json"}).json
    assert doc["gtin"] == GTIN and "lot" not in doc
    [product] = doc["products"]
    assert product["gi"]["id"] == world.gi.id and product["producer"]["uscc"] == world.producer.org.uscc
    assert product["authorization"]["in_force"] is True and product["gi"]["standard"] == "DB34/T 0000"
    doc = client.get(f"/p/{GTIN}?lot=L-404", headers={"Accept": "application/json"}).json
    assert doc["lot"] is None and "L-404" in doc["lot_warning"]["en"]
    assert session.scalars(select(Scan)).all() == []
    session.commit()
    r = client.get("/p/96385074", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["error"] == "unknown_gtin"
    r = client.get("/p/96385075", headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json["error"] == "invalid_gtin"


def test_the_product_page_warns_of_a_recalled_lot_and_a_suspended_producer(world, client, item):
    """Does the product page say that the lot asked for was recalled, and that the producer may not use the mark
    while its authorization is suspended?"""
    lot_id = world.factory.session.scalar(select(Lot.id).where(Lot.lot_no == "L-1"))
    r = client.post(f"/api/v1/lots/{lot_id}/recall", headers=world.producer.headers, json={"reason": "residue"})
    assert r.status_code == 200, r.json
    doc = client.get(f"/p/{GTIN}?lot=L-1", headers={"Accept": "application/json"}).json
    assert doc["lot"]["status"] == "recalled" and doc["lot_warning"]["zh"].startswith("该批次已被召回")
    assert "该批次已被召回" in client.get(f"/p/{GTIN}?lot=L-1").get_data(as_text=True)
    auth_id = world.factory.session.scalar(select(Authorization.id).where(
        Authorization.producer_id == world.producer.org.id, Authorization.gi_id == world.gi.id))
    r = client.post(f"/api/v1/authorizations/{auth_id}/transitions", headers=world.authority.headers,
                    json={"to": "suspended", "reason": "serious violation found"})
    assert r.status_code == 200, r.json
    [product] = client.get(f"/p/{GTIN}", headers={"Accept": "application/json"}).json["products"]
    assert product["authorization"]["in_force"] is False and product["authorization"]["status"] == "suspended"
    assert "授权已暂停、撤销或失效" in client.get(f"/p/{GTIN}").get_data(as_text=True)


# --- the lot on the package reaches the verdict -------------------------------------------------------------

def test_a_lot_other_than_the_marks_stays_genuine_warns_and_is_recorded(world, client, session, item):
    """Does /01/{gtin}/10/{other lot}/21/{serial} redirect with the lot (?lot=) to an answer that stays genuine
    (200) but warns that the package's lot differs from the lot the label was activated on — in the page, the
    JSON and its links — and is the check logged genuine with the detail lot_mismatch?"""
    r = client.get(f"/01/{GTIN}/10/L-9/21/{item.serial(1)}?v={item.tag(1)}")
    assert r.status_code == 307
    location = urlsplit(r.headers["Location"])
    assert location.path == f"/v/{item.code(1)}" and parse_qs(location.query) == {"lot": ["L-9"]}
    assert all("lot=L-9" in link["href"] for link in links_of(r.headers["Link"]) if link["rel"].startswith(VOC))
    r = client.get(location.path, query_string=location.query, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json["verdict"] == "genuine" and r.json["genuine"] is True
    assert r.json["detail"] == "lot_mismatch" and "error" not in r.json
    warning = r.json["lot_mismatch"]
    assert (warning["package_lot"], warning["activated_lot"]) == ("L-9", "L-1")
    assert "L-9" in warning["message"]["zh"] and "L-1" in warning["message"]["en"]
    html = client.get(location.path, query_string=location.query).get_data(as_text=True)
    assert "正品：地理标志专用标志有效" in html and "包装上的批次号与此标志激活的批次不一致" in html
    r = client.get(f"/01/{GTIN}/10/L-9/21/{item.serial(1)}?v={item.tag(1)}&linkType=linkset")
    assert r.json["linkset"][0][VOC + "defaultLink"][0]["href"] == f"{BASE}/v/{item.code(1)}?lot=L-9"
    scans = list(session.scalars(select(Scan).order_by(Scan.id)))
    session.commit()
    assert [(s.verdict, s.detail) for s in scans] == [(Verdict.genuine, "lot_mismatch")] * 2


def test_the_marks_own_lot_changes_nothing(world, client, session, item):
    """Does a URI naming the lot the mark was activated on answer exactly genuine, with no warning and no detail?"""
    r = client.get(f"/01/{GTIN}/10/L-1/21/{item.serial(1)}?v={item.tag(1)}")
    location = urlsplit(r.headers["Location"])
    assert parse_qs(location.query) == {"lot": ["L-1"]}
    r = client.get(location.path, query_string=location.query, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json["detail"] is None and "lot_mismatch" not in r.json
    assert "包装上的批次号" not in client.get(location.path, query_string=location.query).get_data(as_text=True)
    scans = session.scalars(select(Scan)).all()
    session.commit()
    assert [(s.verdict, s.detail) for s in scans] == [(Verdict.genuine, None)] * 2


def test_a_lot_mismatch_keeps_a_non_genuine_verdict(world, client, item):
    """Does a voided label named with another lot keep its verdict, status and detail, and still warn of the lot?"""
    world.void(item, 2)
    r = client.get(f"/v/{item.code(2)}?lot=L-9", headers={"Accept": "application/json"})
    assert r.status_code == 410 and r.json["verdict"] == "voided" and r.json["detail"] == "voided"
    assert r.json["lot_mismatch"]["package_lot"] == "L-9"


def test_a_lot_that_is_not_a_gs1_lot_is_not_repeated(client, item):
    """Is a ?lot= that no Digital Link could carry (not 1-20 characters of GS1 set 82) ignored, never echoed?"""
    for lot in ("CALL%2012345", "x" * 21, "批次1"):
        r = client.get(f"/v/{item.code(1)}?lot={lot}", headers={"Accept": "application/json"})
        assert r.status_code == 200 and r.json["detail"] is None and "lot_mismatch" not in r.json, lot
