"""Filing a finding: codes verified on the spot, producer and GI derived, jurisdiction, and every bad field."""
from __future__ import annotations

import pytest

from gi_service.codes import make_code

from .conftest import API, BOZHOU, DONGCHENG, PACIFIC, TIANHE, at, body, consumer_checks, forged, written

GTIN = "09506000134352"
BASE = "http://gi.test"        # the tests' GI_PUBLIC_BASE_URL


def test_codes_of_a_real_batch_get_their_verdicts_and_name_the_producer(fw, client, session):
    """Does a finding in a Guangzhou shop verify each code read there (genuine, not activated, forged, never
    issued, not a code; bare or as the label's link), derive the GI and the producer from the genuine ones,
    derive the county from the point, and log no consumer check?"""
    b = fw.batch(10)
    fw.activate(b, 1, 3)
    never_issued = make_code(fw.keyring, b.serial(500))
    codes = [b.code(1), f"{BASE}/v/{b.code(2)}", b.code(5).lower(), forged(b.code(3)), never_issued, "仿冒标签-无码"]
    r = fw.file(body(codes=codes, violations=["forged_or_copied_label"], notes="五盒茶叶同一标签"))
    f = r.json
    assert r.headers["Location"] == f"/api/v1/findings/{f['id']}"
    assert [(c["verdict"], c["detail"]) for c in f["codes"]] == [
        ("genuine", None), ("genuine", None), ("genuine_not_activated", "issued"), ("unknown", "bad_mac"),
        ("unknown", "never_issued"), ("malformed", "malformed")]
    assert [c["code"] for c in f["codes"]] == [b.code(1), b.code(2), b.code(5), forged(b.code(3)), never_issued,
                                               "仿冒标签-无码"]
    assert [c["verified"] for c in f["codes"]] == [True, True, True, False, False, False]
    assert {c["producer_id"] for c in f["codes"][:3]} == {fw.producer.org.id}
    assert f["codes"][0]["serial"] == b.data["first_serial"][:4] + "-" + b.serial(1)[4:6] + "-" + \
        b.serial(1)[6:15] + "-" + b.serial(1)[15]
    assert f["codes"][3]["serial"] is not None and f["codes"][3]["batch_id"] is None   # claimed, not verified
    assert f["verdicts"] == {"genuine": 2, "genuine_not_activated": 1, "unknown": 2, "malformed": 1}
    assert f["producer"]["id"] == fw.producer.org.id and f["gi"] == {"id": fw.gi.id, "name": "亳白芍"}
    assert f["location"]["adcode"] == "440106" and f["location"]["place"]["county"]["name"] == "天河区"
    assert (f["location"]["lat"], f["location"]["lon"]) == TIANHE
    assert f["organisation"]["id"] == fw.places.tianhe.org.id
    assert f["violations"] == ["forged_or_copied_label"] and f["violation_found"] is True
    assert consumer_checks(session) == (0, 0), "an inspector's check is not a consumer's"
    again = client.get(f"{API}/findings/{f['id']}", headers=fw.places.tianhe.headers)
    assert again.status_code == 200 and again.json == f


def test_a_gs1_link_is_verified_with_its_gtin(fw):
    """Is a label's GS1 Digital Link verified like the consumer resolver does, GTIN included?"""
    b = fw.batch(5, gtin=GTIN)
    fw.activate(b, 1, 5)
    good = f"{BASE}/01/{GTIN}/21/{b.serial(1)}?v={b.tag(1)}"
    other_gtin = f"{BASE}/01/00000096385074/21/{b.serial(2)}?v={b.tag(2)}"
    f = fw.file(body(codes=[good, other_gtin])).json
    assert [(c["verdict"], c["detail"]) for c in f["codes"]] == [("genuine", None), ("unknown", "gtin_mismatch")]
    assert f["codes"][0]["code"] == b.code(1)


def test_no_violation_found_is_a_result_too(fw):
    """Is an inspection with an empty violation list filed as 'no violation found'?"""
    b = fw.batch(3)
    fw.activate(b, 1, 3)
    f = fw.file(body(codes=[b.code(1)], violations=[])).json
    assert f["violations"] == [] and f["violation_found"] is False and f["verdicts"] == {"genuine": 1}


def test_explicit_gi_and_producer_are_kept(fw, factory):
    """Are an explicitly named GI and producer stored as given, even with no codes at all?"""
    other = factory.producer("341602")
    f = fw.file(body(gi_id=fw.gi.id, producer_id=other.org.id, violations=["look_alike"])).json
    assert f["gi"]["id"] == fw.gi.id and f["producer"]["id"] == other.org.id and f["codes"] == []


def test_an_authority_files_in_its_own_jurisdiction(fw):
    """May an authority (not only an inspection unit) file a finding inside its jurisdiction?"""
    r = fw.file(body(gi_id=fw.gi.id), by=fw.places.guangzhou)
    assert r.json["organisation"]["id"] == fw.places.guangzhou.org.id


@pytest.mark.parametrize("who, point, expected", [
    ("tianhe", DONGCHENG, (403, "outside_jurisdiction")),
    ("beijing", TIANHE, (403, "outside_jurisdiction")),
    ("qiaocheng", TIANHE, (403, "outside_jurisdiction")),
    ("tianhe", PACIFIC, (422, "point_outside_china")),
    ("producer", TIANHE, (403, "wrong_role")),
    ("printer", TIANHE, (403, "wrong_role")),
    ("anonymous", TIANHE, (401, "unauthenticated")),
])
def test_who_may_file_where(fw, client, session, who, point, expected):
    """Is a finding refused outside the caller's jurisdiction, outside China, and from producers, printers and the
    public, with nothing written?"""
    actors = {"tianhe": fw.places.tianhe, "beijing": fw.places.beijing, "qiaocheng": fw.places.qiaocheng,
              "producer": fw.producer, "printer": fw.printer}
    headers = actors[who].headers if who in actors else {}
    r = client.post(f"{API}/findings", headers=headers, json=body(point=point, gi_id=fw.gi.id))
    assert (r.status_code, r.json["error"]) == expected, r.json
    assert written(session) == (0, 0, 0)


def test_the_producers_county_inspection_files_there(fw):
    """Does an inspection of the production place itself (谯城区) work, its point inside its county?"""
    f = fw.file(body(point=BOZHOU, gi_id=fw.gi.id, premises={"name": "某药材基地", "kind": "production"}),
                by=fw.places.qiaocheng).json
    assert f["location"]["adcode"] == "341602" and f["premises"]["kind"] == "production"


def _bad(fw, printer_id):
    ok = body(gi_id=fw.gi.id)
    shop = ok["premises"]
    cases = {
        "client_id missing": ({k: v for k, v in ok.items() if k != "client_id"}, "validation_failed", "client_id"),
        "client_id with a space": ({**ok, "client_id": "dev 1"}, "validation_failed", "client_id"),
        "client_id too long": ({**ok, "client_id": "x" * 65}, "validation_failed", "client_id"),
        "observed_at without zone": ({**ok, "observed_at": "2026-05-01T10:00:00"}, "validation_failed",
                                     "observed_at"),
        "observed_at not a time": ({**ok, "observed_at": "yesterday"}, "validation_failed", "observed_at"),
        "observed_at in the future": ({**ok, "observed_at": at(-1)}, "validation_failed", "observed_at"),
        "observed_at two years ago": ({**ok, "observed_at": at(2 * 366 * 24)}, "validation_failed", "observed_at"),
        "lat out of range": ({**ok, "lat": 91}, "validation_failed", "lat"),
        "lat as text": ({**ok, "lat": "23.1"}, "validation_failed", "lat"),
        "lon missing": ({k: v for k, v in ok.items() if k != "lon"}, "validation_failed", "lon"),
        "premises missing": ({k: v for k, v in ok.items() if k != "premises"}, "validation_failed", "premises"),
        "premises name empty": ({**ok, "premises": {**shop, "name": " "}}, "validation_failed", "premises.name"),
        "premises kind unknown": ({**ok, "premises": {**shop, "kind": "market"}}, "validation_failed",
                                  "premises.kind"),
        "e_commerce without url": ({**ok, "premises": {"name": "某网店", "kind": "e_commerce"}}, "validation_failed",
                                   "premises.url"),
        "url not http": ({**ok, "premises": {**shop, "kind": "e_commerce", "url": "ftp://shop.example/1"}},
                         "validation_failed", "premises.url"),
        "uscc check character": ({**ok, "premises": {**shop, "uscc": "91440106MA5CXXXX1X"}}, "invalid_uscc",
                                 "premises.uscc"),
        "uscc too short": ({**ok, "premises": {**shop, "uscc": "9144"}}, "validation_failed", "premises.uscc"),
        "gi does not exist": ({**ok, "gi_id": 999999}, "gi_not_found", "gi_id"),
        "gi id zero": ({**ok, "gi_id": 0}, "validation_failed", "gi_id"),
        "producer is a printer": ({**ok, "producer_id": printer_id}, "producer_not_found", "producer_id"),
        "no gi and no code naming one": ({**body(), "codes": ["NOT-A-CODE"]}, "gi_required", "gi_id"),
        "201 codes": ({**ok, "codes": ["X"] * 201}, "validation_failed", "codes"),
        "an empty code": ({**ok, "codes": [" "]}, "validation_failed", "codes.0"),
        "a code not a string": ({**ok, "codes": [123]}, "validation_failed", "codes.0"),
        "a foreign text too long": ({**ok, "codes": ["http://fake.example/" + "a" * 60]}, "code_too_long",
                                    "codes.0"),
        "violations missing": ({k: v for k, v in ok.items() if k != "violations"}, "validation_failed",
                               "violations"),
        "violation unknown": ({**ok, "violations": ["bad_taste"]}, "validation_failed", "violations.0"),
        "violation twice": ({**ok, "violations": ["look_alike", "look_alike"]}, "validation_failed", "violations"),
        "notes too long": ({**ok, "notes": "x" * 4001}, "validation_failed", "notes"),
        "unknown field": ({**ok, "photo_url": "http://x"}, "validation_failed", "photo_url"),
    }
    return cases


BAD = ["client_id missing", "client_id with a space", "client_id too long", "observed_at without zone",
       "observed_at not a time", "observed_at in the future", "observed_at two years ago", "lat out of range",
       "lat as text", "lon missing", "premises missing", "premises name empty", "premises kind unknown",
       "e_commerce without url", "url not http", "uscc check character", "uscc too short", "gi does not exist",
       "gi id zero", "producer is a printer", "no gi and no code naming one", "201 codes", "an empty code",
       "a code not a string", "a foreign text too long", "violations missing", "violation unknown",
       "violation twice", "notes too long", "unknown field"]


@pytest.mark.parametrize("case", BAD)
def test_each_bad_field_is_refused_with_nothing_written(fw, client, session, case):
    """Is each invalid field answered 422 with a stable code naming the field, and nothing written?"""
    data, code, field = _bad(fw, fw.printer.org.id)[case]
    r = client.post(f"{API}/findings", headers=fw.places.tianhe.headers, json=data)
    assert r.status_code == 422, r.json
    assert r.json["error"] == code, r.json
    fields = [d.get("field") for d in r.json["details"]] if isinstance(r.json["details"], list) else []
    assert field in fields, r.json
    assert written(session) == (0, 0, 0)


def test_the_request_itself_must_be_json(fw, client, session):
    """Are a non-JSON body (415) and broken JSON (400) refused with nothing written?"""
    h = fw.places.tianhe.headers
    r = client.post(f"{API}/findings", headers=h, data="client_id=1", content_type="application/x-www-form-urlencoded")
    assert (r.status_code, r.json["error"]) == (415, "unsupported_media_type")
    r = client.post(f"{API}/findings", headers=h, data="{not json", content_type="application/json")
    assert (r.status_code, r.json["error"]) == (400, "malformed_json")
    assert written(session) == (0, 0, 0)


def test_a_web_shop_is_recorded_with_its_url_and_the_sellers_uscc(fw, factory):
    """Is an e-commerce finding stored with its URL and the seller's USCC in canonical form?"""
    uscc = factory.uscc("440106")
    shop = {"name": "某某旗舰店", "kind": "e_commerce", "url": "https://shop.example.com/item/123",
            "uscc": uscc.lower()}
    f = fw.file(body(premises=shop, gi_id=fw.gi.id, violations=["look_alike", "mark_without_uscc"])).json
    assert f["premises"] == {"name": "某某旗舰店", "kind": "e_commerce", "url": "https://shop.example.com/item/123",
                             "address": None, "uscc": uscc}
    assert f["violations"] == ["look_alike", "mark_without_uscc"]


def test_an_unactivated_label_on_sale_has_its_own_violation_kind(fw, client):
    """Can an inspector who finds a genuine label that was never activated on product for sale file it as its own
    violation kind (`unactivated_label`), filter findings by it, and is the kind in the API schema and named in
    Chinese and English wherever kinds are shown (finding pages, statistics)?"""
    from gi_service.services.statistics import VIOLATION_LABELS
    from gi_service.i18n import TEXTS

    b = fw.batch(5)                                          # issued to the producer, none activated
    f = fw.file(body(codes=[b.code(2)], violations=["unactivated_label"], notes="未激活标志的白芍在售")).json
    assert f["violations"] == ["unactivated_label"] and f["violation_found"] is True
    assert [c["verdict"] for c in f["codes"]] == ["genuine_not_activated"]
    fw.file(body("dev1:0002", violations=["look_alike"], gi_id=fw.gi.id))
    listed = client.get(f"{API}/findings", headers=fw.places.tianhe.headers,
                        query_string={"violation": "unactivated_label"})
    assert listed.status_code == 200 and [x["id"] for x in listed.json["items"]] == [f["id"]]

    spec = client.get("/openapi.json").json
    assert "unactivated_label" in spec["components"]["schemas"]["ViolationKind"]["enum"]
    zh, en = TEXTS["violation_unactivated_label"]
    assert "未激活" in zh and "unactivated" in en
    label = VIOLATION_LABELS["unactivated_label"]
    assert (label.zh, label.en) == ("未激活标志上市销售", "unactivated label on sale")
