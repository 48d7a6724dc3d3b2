"""The GS1 Digital Link resolver: `/01/{gtin}/21/{serial}?v={kid}{tag}` resolves like `/v/{code}`, and behaves
as a GS1-Conformant resolver (syntax → 400, default link → 307, linkType, RFC 9264 linksets, query strings
passed on, trailing slash, HEAD/OPTIONS, CORS, `/.well-known/gs1resolver`).
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from gi_service.codes import format_serial, make_code
from gi_service.models import Scan, Verdict
from gi_service.services.labels import mark_url
from gi_service.verify import gtin14, normalise_link_type, parse_digital_link

from .conftest import forged

GTIN = "09506000134352"
BASE = "http://gi.test"
VOC = "https://gs1.org/voc/"


@pytest.fixture
def item(world):
    """An activated mark of a batch with a GTIN: (batch, its GS1 path without the query)."""
    b = world.batch(20, gtin=GTIN)
    world.activate(b, 1, 10)
    return b


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
        assert "gs1:pip" in r.json["details"]["available"]
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
    """Is a URI that is not GS1 Digital Link syntax answered 400 (never 200) saying what is wrong?"""
    r = client.get(path, headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json["error"] == "invalid_digital_link"
    assert problem in r.json["message"], r.json["message"]


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


def test_gtin_without_serial_has_no_links(client, item):
    """Is a bare /01/{gtin} (a product class, not a label) answered 404?"""
    r = client.get(f"/01/{GTIN}", headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["error"] == "no_links"


@pytest.mark.parametrize("case", ["no_tag", "wrong_tag", "other_serials_tag", "bad_tag_shape", "other_gtin",
                                  "never_issued", "not_a_serial"])
def test_labels_that_do_not_verify_are_answered_unknown_not_redirected(world, client, session, item, case):
    """Without ?v=, with a wrong one, for another GTIN or a serial never issued: 404 'unknown', never genuine?"""
    other_gtin = "00000096385074"
    path = {
        "no_tag": dl(item, v=None),
        "wrong_tag": dl(item, v=forged(item.code(1))[0] + forged(item.code(1))[16:]),
        "other_serials_tag": dl(item, v=item.tag(2)),
        "bad_tag_shape": dl(item, v="A123"),
        "other_gtin": f"/01/{other_gtin}/21/{item.serial(1)}?v={item.tag(1)}",
        "never_issued": f"/01/{GTIN}/21/{_serial(999_999)}?v={_tag_for(world, _serial(999_999))}",
        "not_a_serial": f"/01/{GTIN}/21/SER-1?v={item.tag(1)}",
    }[case]
    r = client.get(path)
    assert r.status_code == 404 and "Location" not in r.headers
    html = r.get_data(as_text=True)
    assert "无法验证" in html and "正品：地理标志专用标志有效" not in html
    r = client.get(path, headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.json["error"] == "unknown" and r.json["details"]["genuine"] is False
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    scans = list(session.scalars(select(Scan)))
    session.commit()
    assert len(scans) == 2 and {s.verdict for s in scans} == {Verdict.unknown}
    r = client.get(path + ("&" if "?" in path else "?") + "linkType=linkset")
    assert r.status_code == 404


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
