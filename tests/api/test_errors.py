"""The error contract: every failure is JSON `{"error", "message", "details"}` with the right status,
says what to fix, leaks nothing, and leaves nothing half-written."""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import pytest
import shapely
import shapely.geometry
from sqlalchemy import func, select

from geodata.areas import AreaError
from gi_service.http.geojson import area_from_json
from gi_service.models import AuthorizationEvent, GIProduct, GIVersion, Organisation, OrgKind, OriginArea, Plot
from gi_service.services import registry
from gi_service.services.uscc import make_uscc
from tests.factories import Actor, square

HUGE = 10**20  # beyond every integer column of both backends
GI_BODY = {"name_zh": "亳白芍", "kind": "protected_product", "category": "herbal_medicine",
           "area_adcodes": ["341602"]}


def assert_error(resp, status: int, code: str):
    """The response is a JSON error with this status and code, and the whole envelope; returns the body."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert body["error"] == code, body
    assert {"error", "message", "details", "request_id"} <= set(body)
    assert body["message"]
    assert body["request_id"] == resp.headers["X-Request-Id"]
    return body


def problem_fields(body) -> list[str]:
    return [d["field"] for d in body["details"]]


def count(session, model, *where) -> int:
    """Rows as committed now (end the factory session's transaction so no old snapshot is read)."""
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


def geojson(geom) -> dict:
    return shapely.geometry.mapping(geom)


def metres_to_lon(m: float, lat: float) -> float:
    """Degrees of longitude spanning `m` metres at `lat` (the same rule factories.square uses)."""
    return m / (111_320.0 * math.cos(math.radians(lat)))


@pytest.fixture
def authority(factory) -> Actor:
    return factory.authority("341600")


@dataclass
class BoxedGI:
    gi_id: int
    east: float   # longitude of the area's straight east edge
    lat: float    # a latitude in the middle of that edge
    producer: Actor

    @property
    def plots_url(self) -> str:
        return f"/api/v1/producers/{self.producer.org.id}/plots"

    def plot_body(self, geom, **extra) -> dict:
        return {"gi_id": self.gi_id, "name": "东地块", "survey_year": 2024, "geometry": geojson(geom), **extra}

    def square_over_east_edge(self, side_m: float, beyond_m: float):
        """A square whose east side lies `beyond_m` metres east of the area's east edge."""
        centre = self.east + metres_to_lon(beyond_m - side_m / 2, self.lat)
        return square(centre, self.lat, side_m)


@pytest.fixture
def boxed(factory, authority) -> BoxedGI:
    """A GI whose production area is a 4 km square in 谯城区: straight edges make 'outside' exact."""
    gi = factory.gi(authority)
    p = factory.inside_point(gi)
    registry.replace_area(factory.session, gi.id, area_from_json(geojson(square(p.x, p.y, 4000))),
                          by=authority.principal, reason="surveyed box")
    factory.session.commit()
    area = registry.area_by_id(factory.session, gi.origin_area_id)
    return BoxedGI(gi.id, area.max_x, (area.min_y + area.max_y) / 2, factory.producer("341602"))


# --- the body: JSON, content type, shape ----------------------------------------------------------

@pytest.mark.parametrize("raw", [
    pytest.param(b'{"name_zh": ', id="truncated"),
    pytest.param(b"{'name_zh': 'x'}", id="single-quotes"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"name_zh": "\xff"}', id="not-utf8"),
])
def test_malformed_json_body(client, session, authority, raw):
    """Is a body that is not JSON refused with 400 malformed_json, writing nothing?"""
    resp = client.post("/api/v1/gis", data=raw, content_type="application/json", headers=authority.headers)
    assert_error(resp, 400, "malformed_json")
    assert count(session, GIProduct) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type(client, session, authority, content_type):
    """Is a JSON body sent without Content-Type: application/json refused with 415?"""
    kwargs = {"content_type": content_type} if content_type else {}
    resp = client.post("/api/v1/gis", data=json.dumps(GI_BODY), headers=authority.headers, **kwargs)
    body = assert_error(resp, 415, "unsupported_media_type")
    assert "application/json" in body["message"]
    assert count(session, GIProduct) == 0


@pytest.mark.parametrize("raw", ["[]", '["亳白芍"]', '"亳白芍"', "42", "null", "true"])
def test_body_not_an_object(client, authority, raw):
    """Is valid JSON that is not an object refused with 422, naming the body itself?"""
    resp = client.post("/api/v1/gis", data=raw, content_type="application/json", headers=authority.headers)
    body = assert_error(resp, 422, "validation_failed")
    assert problem_fields(body) == ["(body)"]


@pytest.mark.parametrize("field, value", [
    ("name_zh", 123),                       # number for a string
    ("standard_yield_kg_per_mu", "350"),    # string for a number: no silent coercion in a JSON body
    ("area_adcodes", "341602"),             # string for a list
    ("registration_date", 20240101),        # number for a date
    ("quality_requirements", "good"),       # string for an object
])
def test_wrong_type_in_gi_body(client, session, authority, field, value):
    """Is a value of the wrong JSON type refused with 422 naming the field?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, field: value}, headers=authority.headers)
    body = assert_error(resp, 422, "validation_failed")
    assert problem_fields(body) == [field]
    assert field in body["message"]
    assert count(session, GIProduct) == 0


@pytest.mark.parametrize("field, value", [("survey_year", "2024"), ("gi_id", "1"), ("name", 5),
                                          ("geometry", "POLYGON((0 0, 1 0, 1 1, 0 0))")])
def test_wrong_type_in_plot_body(client, session, boxed, field, value):
    """Is a plot field of the wrong JSON type refused with 422 naming it?"""
    body = boxed.plot_body(square(boxed.east - 0.01, boxed.lat, 50))
    resp = client.post(boxed.plots_url, json={**body, field: value}, headers=boxed.producer.headers)
    assert problem_fields(assert_error(resp, 422, "validation_failed")) == [field]
    assert count(session, Plot) == 0


@pytest.mark.parametrize("extra, field", [
    ({"colour": "red"}, "colour"),
    ({"quality_requirements": {"smell": "fragrant"}}, "quality_requirements.smell"),
])
def test_unknown_field(client, authority, extra, field):
    """Is an unknown field (top level or nested) refused with 422 naming it, not silently dropped?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, **extra}, headers=authority.headers)
    body = assert_error(resp, 422, "validation_failed")
    assert body["details"] == [{"field": field, "problem": "unknown field; remove it", "type": "extra_forbidden"}]


@pytest.mark.parametrize("field, length", [("name_zh", 101), ("managing_body", 201), ("reason", 1001)])
def test_overlong_string(client, authority, field, length):
    """Is a string longer than its limit refused with 422 naming the field?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, field: "亳" * length}, headers=authority.headers)
    body = assert_error(resp, 422, "validation_failed")
    assert body["details"][0]["field"] == field
    assert body["details"][0]["type"] == "string_too_long"


def test_missing_required_fields(client, authority):
    """Are missing required fields each named, and the message counts the rest?"""
    resp = client.post("/api/v1/gis", json={"area_adcodes": ["341602"]}, headers=authority.headers)
    body = assert_error(resp, 422, "validation_failed")
    assert sorted(problem_fields(body)) == ["category", "kind", "name_zh"]
    assert {d["problem"] for d in body["details"]} == {"required field is missing"}
    assert "(and 2 more)" in body["message"]


@pytest.mark.parametrize("field, value", [("kind", "trademark"), ("category", "tobacco"), ("status", "REGISTERED")])
def test_bad_enum_value(client, authority, field, value):
    """Is a value outside an enumeration refused with 422 naming the field and its allowed values?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, field: value}, headers=authority.headers)
    body = assert_error(resp, 422, "validation_failed")
    assert problem_fields(body) == [field]
    assert body["details"][0]["type"] == "enum"


@pytest.mark.parametrize("adcode", [
    "34160",
    "3416020",
    "34160A",
    pytest.param("３４１６０２", id="fullwidth-digits"),
])
def test_bad_adcode_pattern(client, session, authority, adcode):
    """Is an adcode that is not six ASCII digits refused by the format check, naming its position in the list?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, "area_adcodes": ["341602", adcode]}, headers=authority.headers)
    assert count(session, GIProduct) == 0
    body = assert_error(resp, 422, "validation_failed")
    assert problem_fields(body) == ["area_adcodes.1"]
    assert body["details"][0]["type"] == "string_pattern_mismatch"


def test_unknown_adcode_in_area(client, session, authority):
    """Is a well-formed but unknown adcode refused with 422 unknown_adcode naming it, with no GI written?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, "area_adcodes": ["341602", "999999"]},
                       headers=authority.headers)
    body = assert_error(resp, 422, "unknown_adcode")
    assert body["details"] == [{"field": "area_adcodes", "problem": "999999 is not a known division"}]
    assert (count(session, GIProduct), count(session, GIVersion), count(session, OriginArea)) == (0, 0, 0)


def test_area_failure_after_the_gi_row_is_flushed_leaves_nothing(client, session, authority, monkeypatch):
    """If building the area fails after the GI row was flushed, is the whole registration rolled back?"""
    def broken_boundary(adcodes):
        raise AreaError("self_intersection", "the boundary crosses itself", {"location": [115.8, 33.8]})

    monkeypatch.setattr(registry, "area_from_adcodes", broken_boundary)
    resp = client.post("/api/v1/gis", json=GI_BODY, headers=authority.headers)
    body = assert_error(resp, 422, "invalid_geometry")
    assert body["details"]["reason"] == "self_intersection"
    assert (count(session, GIProduct), count(session, GIVersion), count(session, OriginArea)) == (0, 0, 0)


# --- geometry --------------------------------------------------------------------------------

@pytest.mark.parametrize("geometry, reason", [
    pytest.param({"type": "Point", "coordinates": [115.78, 33.85]}, "wrong_type", id="point"),
    pytest.param({"type": "LineString", "coordinates": [[115.78, 33.85], [115.79, 33.86]]}, "wrong_type",
                 id="line"),
    pytest.param({"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [115.78, 33.85]}},
                 "wrong_type", id="feature-of-point"),
    pytest.param({"type": "Polygon", "coordinates": [["a", "b"]]}, "bad_geojson", id="letters"),
    pytest.param({"type": "Polygon", "coordinates": 5}, "bad_geojson", id="number"),
    pytest.param({"type": "Polygon", "coordinates": [[[115.78, 33.85], [115.79]]]}, "bad_geojson", id="ragged"),
    pytest.param({"type": "Polygon", "coordinates": []}, "empty", id="empty"),
])
def test_plot_geometry_refused(client, session, boxed, geometry, reason):
    """Is a plot geometry that is not a readable polygon refused with 422 invalid_geometry and its reason?"""
    resp = client.post(boxed.plots_url, json={**boxed.plot_body(square(boxed.east, boxed.lat, 10)),
                                              "geometry": geometry}, headers=boxed.producer.headers)
    body = assert_error(resp, 422, "invalid_geometry")
    assert body["details"]["reason"] == reason
    assert count(session, Plot) == 0


def test_plot_with_latitude_first_is_refused_with_a_hint(client, session, boxed):
    """Is a plot given as lat,lon refused with reason not_lonlat and the swapped axes pointed out?"""
    plot = square(boxed.east - 0.01, boxed.lat, 100)
    swapped = shapely.transform(plot, lambda c: c[:, ::-1])
    resp = client.post(boxed.plots_url, json=boxed.plot_body(swapped), headers=boxed.producer.headers)
    body = assert_error(resp, 422, "invalid_geometry")
    assert body["details"]["reason"] == "not_lonlat"
    assert body["details"]["axis_order_swapped"] is True
    assert count(session, Plot) == 0


def test_plot_half_outside_the_area(client, session, boxed):
    """Is a 100 m square half outside refused with plot_outside_area and ~7.35 mu outside (4,900 m² beyond 1 m)?"""
    resp = client.post(boxed.plots_url, json=boxed.plot_body(boxed.square_over_east_edge(100, 50)),
                       headers=boxed.producer.headers)
    body = assert_error(resp, 422, "plot_outside_area")
    details = body["details"]
    assert details["gi_id"] == boxed.gi_id
    assert 14.5 < details["plot_mu"] < 15.5            # 10,000 m²
    assert 7.0 < details["outside_mu"] < 7.6            # (50 m - 1 m tolerance) x 100 m
    assert 4_700 < details["outside_m2"] < 5_050
    assert count(session, Plot) == 0


def test_plot_over_the_edge_by_less_than_a_metre_is_accepted(client, session, boxed):
    """Is a plot poking 0.5 m over the area's edge accepted (survey tolerance 1 m)?"""
    resp = client.post(boxed.plots_url, json=boxed.plot_body(boxed.square_over_east_edge(100, 0.5)),
                       headers=boxed.producer.headers)
    assert resp.status_code == 201, resp.get_json()
    assert count(session, Plot) == 1


def test_plot_over_the_edge_by_three_metres_is_refused(client, session, boxed):
    """Is a plot 3 m over the edge refused, counting only what lies beyond the 1 m tolerance (~200 m²)?"""
    resp = client.post(boxed.plots_url, json=boxed.plot_body(boxed.square_over_east_edge(100, 3)),
                       headers=boxed.producer.headers)
    details = assert_error(resp, 422, "plot_outside_area")["details"]
    assert 150 < details["outside_m2"] < 250
    assert count(session, Plot) == 0


def test_moving_a_plot_outside_leaves_it_where_it_was(client, session, boxed):
    """Is a PATCH moving a plot half outside refused, the stored name, geometry and area unchanged?"""
    inside = boxed.square_over_east_edge(100, -200)
    created = client.post(boxed.plots_url, json=boxed.plot_body(inside), headers=boxed.producer.headers)
    assert created.status_code == 201, created.get_json()
    plot_id, area_m2 = created.get_json()["id"], created.get_json()["area_m2"]
    resp = client.patch(f"/api/v1/plots/{plot_id}", headers=boxed.producer.headers,
                        json={"name": "moved", "geometry": geojson(boxed.square_over_east_edge(100, 50))})
    assert_error(resp, 422, "plot_outside_area")
    session.rollback()
    plot = session.get(Plot, plot_id)
    assert plot.name == "东地块"
    assert round(plot.area_m2, 1) == area_m2
    assert plot.geom.bounds == pytest.approx(inside.bounds, abs=1e-7)


# --- size, routing, methods ---------------------------------------------------------------------

def test_oversized_json_body(app, client):
    """Is a body over MAX_CONTENT_LENGTH refused with a JSON 413 payload_too_large?"""
    app.config["MAX_CONTENT_LENGTH"] = 1024
    resp = client.post("/api/v1/jurisdiction", json={"points": [[115.78, 33.85]] * 200})
    assert_error(resp, 413, "payload_too_large")


def test_oversized_upload(app, client, session, boxed, authority):
    """Is an area file over MAX_CONTENT_LENGTH refused with a JSON 413, the area unchanged?"""
    app.config["MAX_CONTENT_LENGTH"] = 1024
    areas = count(session, OriginArea)
    data = json.dumps({"type": "Polygon", "coordinates": [[[115.78 + i * 1e-5, 33.85] for i in range(200)]]})
    resp = client.post(f"/api/v1/gis/{boxed.gi_id}/area/upload", headers=authority.headers,
                       data={"file": (io.BytesIO(data.encode()), "area.geojson"), "reason": "resurveyed"},
                       content_type="multipart/form-data")
    assert_error(resp, 413, "payload_too_large")
    assert count(session, OriginArea) == areas


def test_413_message_states_the_real_limit(app, client):
    """Does the 413 message state the limit actually in force (here 1024 bytes)?"""
    app.config["MAX_CONTENT_LENGTH"] = 1024
    resp = client.post("/api/v1/jurisdiction", json={"points": [[115.78, 33.85]] * 200})
    message = resp.get_json()["message"]
    assert "0 MB" not in message
    assert any(limit in message for limit in ("1024 bytes", "1,024 bytes", "1 KB", "1 KiB", "1.0 KiB"))


@pytest.mark.parametrize("url", ["/api/v1/nothing", "/api/v1/gis/abc", "/api/v2/gis", "/api/v1/gis/1/nothing"])
def test_unknown_api_route(client, url):
    """Is an unknown URL under /api answered with a JSON 404, not an HTML page?"""
    body = assert_error(client.get(url), 404, "not_found")
    assert "/openapi.json" in body["message"]


@pytest.mark.parametrize("url, code", [
    ("/api/v1/gis/4242", "gi_not_found"),
    ("/api/v1/gis/4242/versions/1", "gi_not_found"),
    ("/api/v1/producers/4242", "producer_not_found"),
    ("/api/v1/authorizations/4242", "authorization_not_found"),
    ("/api/v1/admin-units/999999", "unknown_adcode"),
    ("/collections/origin-areas/items/4242", "feature_not_found"),
    ("/collections/roads", "no_collection"),
])
def test_missing_resource(client, url, code):
    """Is a well-formed URL naming nothing answered with a JSON 404 and a specific code?"""
    assert_error(client.get(url), 404, code)


@pytest.mark.parametrize("method, url, allowed", [
    ("DELETE", "/api/v1/gis", {"GET", "POST"}),
    ("PUT", "/api/v1/gis/1", {"GET", "PATCH"}),
    ("POST", "/api/v1/me", {"GET"}),
    ("PATCH", "/api/v1/authorizations/1/transitions", {"POST"}),
])
def test_wrong_method(client, method, url, allowed):
    """Is a wrong method answered with a JSON 405 and an Allow header listing the right ones?"""
    resp = client.open(url, method=method)
    body = assert_error(resp, 405, "method_not_allowed")
    allow = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert allowed <= allow and allow - allowed <= {"HEAD", "OPTIONS"}
    assert method in body["message"]


# --- OGC API - Features -------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "/collections/origin-areas/items?colour=red",
    "/collections/origin-areas/items?limit=5&filter=name_zh='x'",
    "/collections?bbox=115,33,116,34",
    "/conformance?x=1",
])
def test_ogc_unknown_query_parameter(client, url):
    """Is an unknown OGC query parameter refused with 400 naming it, not ignored?"""
    body = assert_error(client.get(url), 400, "unknown_parameter")
    assert "supported:" in body["message"]


@pytest.mark.parametrize("bbox", [
    "115,33,116",            # three numbers
    "115,33,116,34,0,10",    # 3-D
    "a,b,c,d",
    "115,34,116,33",         # minLat > maxLat
    "115,-95,116,34",        # latitude out of range
    "181,33,182,34",         # longitude out of range
    "",
])
def test_ogc_bad_bbox(client, bbox):
    """Is a malformed bbox refused with 400 bad_bbox?"""
    assert_error(client.get(f"/collections/origin-areas/items?bbox={bbox}"), 400, "bad_bbox")


@pytest.mark.parametrize("query, code, status", [
    ("limit=abc", "bad_limit", 400),
    ("limit=0", "bad_limit", 400),
    ("offset=-1", "bad_offset", 400),
    ("f=xml", "not_acceptable", 406),
    ("f=html", "not_acceptable", 406),
])
def test_ogc_bad_paging_or_format(client, query, code, status):
    """Are a bad limit/offset (400) and an unoffered format (406: the items have no HTML view, they answered
    GeoJSON to f=html before) refused with JSON errors?"""
    assert_error(client.get(f"/collections/origin-areas/items?{query}"), status, code)


# --- the unexpected ------------------------------------------------------------------------------

def test_unexpected_exception_leaks_nothing(app, client, caplog):
    """Is an unexpected exception a JSON 500 internal_error without its detail, traceback or type, with a request id?"""
    def explode():
        raise RuntimeError("secret-detail")

    # Routes can only be added before the app's first request.
    app.add_url_rule("/api/v1/_test/explode", endpoint="test_explode", view_func=explode)
    resp = client.get("/api/v1/_test/explode", headers={"X-Request-Id": "client-req-000123"})
    body = assert_error(resp, 500, "internal_error")
    text = resp.get_data(as_text=True)
    for leak in ("secret-detail", "Traceback", "RuntimeError", "explode", ".py"):
        assert leak not in text
    assert body["request_id"] == "client-req-000123"
    assert body["details"] is None
    # ...but the operator's log has it, under the same request id.
    logged = [r for r in caplog.records if "client-req-000123" in r.getMessage()]
    assert logged and "secret-detail" in str(logged[0].exc_info[1])


def test_request_id_is_generated_when_absent_or_unusable(client):
    """Does every error carry a fresh request id when the client sends none or an unusable one?"""
    first = assert_error(client.get("/api/v1/nothing"), 404, "not_found")["request_id"]
    second = assert_error(client.get("/api/v1/nothing", headers={"X-Request-Id": "short"}), 404,
                          "not_found")["request_id"]
    assert len(first) == len(second) == 32 and first != second


@pytest.mark.parametrize("url", [
    f"/api/v1/gis/{HUGE}",
    f"/api/v1/gis/1/versions/{HUGE}",
    f"/api/v1/organisations/{HUGE}",
    f"/api/v1/gis?offset={HUGE}",
    f"/api/v1/producers?offset={HUGE}",
    f"/api/v1/authorizations?producer_id={HUGE}",
])
def test_out_of_range_integer_is_a_client_error(client, url):
    """Is an integer too large for any id or offset answered with a 4xx, never a 500?"""
    resp = client.get(url)
    assert resp.status_code < 500, resp.get_json()


def test_out_of_range_gi_id_in_plot_body_is_a_client_error(client, boxed):
    """Is a plot naming a gi_id too large for the database refused with a 4xx, never a 500?"""
    body = {**boxed.plot_body(boxed.square_over_east_edge(100, -200)), "gi_id": HUGE}
    resp = client.post(boxed.plots_url, json=body, headers=boxed.producer.headers)
    assert resp.status_code < 500, resp.get_json()


def test_unknown_adcode_filter_on_producers(client):
    """Is /producers?adcode=<unknown> refused with 422 unknown_adcode, like /gis?region=<unknown>?"""
    assert_error(client.get("/api/v1/gis?region=999999"), 422, "unknown_adcode")
    assert_error(client.get("/api/v1/producers?adcode=999999"), 422, "unknown_adcode")


# --- domain refusals ---------------------------------------------------------------------------

def test_amendment_that_changes_nothing(client, session, factory, authority):
    """Is an amendment repeating current values refused with 422 no_change, making no version?"""
    gi = factory.gi(authority)
    for change in ({"name_zh": "亳白芍"}, {"area_adcodes": ["341602"]}, {"standard_yield_kg_per_mu": 350}, {}):
        resp = client.patch(f"/api/v1/gis/{gi.id}", json={"reason": "check", **change}, headers=authority.headers)
        assert_error(resp, 422, "no_change")
    assert count(session, GIVersion, GIVersion.gi_id == gi.id) == 1
    session.rollback()
    assert session.get(GIProduct, gi.id).version == 1


def test_stale_expected_version(client, session, factory, authority):
    """Is an amendment based on an old version refused with 409 version_conflict naming the current one?"""
    gi = factory.gi(authority)
    url = f"/api/v1/gis/{gi.id}"
    first = client.patch(url, json={"reason": "typo", "managing_body": "协会", "expected_version": 1},
                         headers=authority.headers)
    assert first.status_code == 200 and first.get_json()["version"] == 2
    resp = client.patch(url, json={"reason": "other edit", "standard": "GB/T 1", "expected_version": 1},
                        headers=authority.headers)
    body = assert_error(resp, 409, "version_conflict")
    assert body["details"] == {"current_version": 2}
    session.rollback()
    assert session.get(GIProduct, gi.id).standard is None
    assert count(session, GIVersion, GIVersion.gi_id == gi.id) == 2


@pytest.mark.parametrize("spelling", [str, str.lower, lambda u: f"  {u} "])
def test_duplicate_uscc(client, session, authority, spelling):
    """Is a second organisation with the same USCC (however spelled) refused with 409 duplicate_uscc?"""
    uscc = make_uscc("9", "1", "341602", "TE000123")
    first = client.post("/api/v1/producers", json={"name": "白芍合作社", "uscc": uscc}, headers=authority.headers)
    assert first.status_code == 201, first.get_json()
    before = count(session, Organisation)
    resp = client.post("/api/v1/producers", json={"name": "另一家", "uscc": spelling(uscc)}, headers=authority.headers)
    assert_error(resp, 409, "duplicate_uscc")
    assert count(session, Organisation) == before


def test_uscc_with_wrong_check_character(client, session, authority):
    """Is a USCC with a wrong 18th character refused with 422 invalid_uscc at position 18, giving the right one?"""
    uscc = make_uscc("9", "1", "341602", "TE000124")
    wrong = uscc[:17] + ("0" if uscc[17] != "0" else "1")
    resp = client.post("/api/v1/producers", json={"name": "白芍合作社", "uscc": wrong}, headers=authority.headers)
    body = assert_error(resp, 422, "invalid_uscc")
    assert body["details"]["position"] == 18
    assert body["details"]["expected"] == uscc[17]
    assert count(session, Organisation, Organisation.kind == OrgKind.producer) == 0


@pytest.mark.parametrize("position, char", [(10, "I"), (12, "O"), (5, "Z"), (16, "S"), (18, "V")])
def test_uscc_with_illegal_character(client, authority, position, char):
    """Is a character never used in USCCs (I, O, Z, S, V) refused with its 1-based position?"""
    uscc = make_uscc("9", "1", "341602", "TE000125")
    bad = uscc[:position - 1] + char + uscc[position:]
    resp = client.post("/api/v1/producers", json={"name": "白芍合作社", "uscc": bad}, headers=authority.headers)
    body = assert_error(resp, 422, "invalid_uscc")
    assert body["details"]["position"] == position
    assert body["details"]["character"] == char


def test_invalid_authorization_transition(client, session, factory, authority):
    """Is reinstating a revoked authorization refused with 409 invalid_transition, its history unchanged?"""
    gi = factory.gi(authority)
    producer = factory.producer("341602")
    auth = factory.authorization(producer, gi, by=authority, approve=True)
    url = f"/api/v1/authorizations/{auth.id}/transitions"
    revoked = client.post(url, json={"to": "revoked", "reason": "counterfeit labels"}, headers=authority.headers)
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    resp = client.post(url, json={"to": "approved", "reason": "appeal", "announcement_no": "亳知〔2025〕9号"},
                       headers=authority.headers)
    body = assert_error(resp, 409, "invalid_transition")
    assert body["details"] == {"from": "revoked", "to": "approved"}
    assert "none (final)" in body["message"]
    assert count(session, AuthorizationEvent, AuthorizationEvent.authorization_id == auth.id) == 2


# --- issue 15: inputs that answered 500 --------------------------------------------------------------

def nested(depth: int) -> bytes:
    """A JSON value nesting `depth` arrays: [[[...]]]."""
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("depth", [129, 250, 1_000, 100_000])
def test_deeply_nested_json_body_is_a_400(client, session, authority, depth):
    """Is a JSON body nested deeper than 128 levels (RecursionError while parsing at ~1,000) refused with
    400 malformed_json saying how deep it may go, writing nothing?"""
    raw = '{"name_zh": "亳白芍", "kind": "protected_product", "category": "herbal_medicine", "managing_body": '.encode() \
          + nested(depth) + b"}"
    resp = client.post("/api/v1/gis", data=raw, content_type="application/json", headers=authority.headers)
    body = assert_error(resp, 400, "malformed_json")
    assert "128 levels" in body["message"]
    assert count(session, GIProduct) == 0


def test_json_nested_within_the_limit_is_parsed(client, authority):
    """Is a body nested 128 levels deep still parsed and judged by its content (422 for the wrong type)?"""
    raw = '{"name_zh": "亳白芍", "kind": "protected_product", "category": "herbal_medicine", "managing_body": '.encode() \
          + nested(127) + b"}"
    resp = client.post("/api/v1/gis", data=raw, content_type="application/json", headers=authority.headers)
    assert problem_fields(assert_error(resp, 422, "validation_failed")) == ["managing_body"]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_on_the_public_report_form_is_a_400(client, session, depth):
    """Is the consumer's report form (JSON, no sign-in) answered 400 malformed_json for a deeply nested body,
    where the same shallow body gets as far as its scan token (403)?"""
    from gi_service.models import Clue, ConsumerReport

    url = "/v/A" + "0" * 29 + "/report"
    shallow = {"token": "1.9999999999.AAAA", "description": "同一个标签出现在五盒茶叶上", "shop_name": "A12"}
    resp = client.post(url, json=shallow, headers={"Accept": "application/json"})
    assert (resp.status_code, resp.get_json()["error"]) == (403, "invalid_scan_token")
    raw = json.dumps(shallow)[:-1].encode() + b', "shop_address": ' + nested(depth) + b"}"
    resp = client.post(url, data=raw, content_type="application/json", headers={"Accept": "application/json"})
    assert_error(resp, 400, "malformed_json")
    assert (count(session, Clue), count(session, ConsumerReport)) == (0, 0)


def test_json_that_pydantic_cannot_parse_is_a_400_not_a_422(app, client):
    """Does a view that validates raw JSON text itself (no read_json_body first) answer unparsable JSON
    with 400 malformed_json too?"""
    from gi_service.http.parsing import parse_model
    from gi_service.api.schemas import TokenBody
    from gi_service.errors import MalformedRequest

    for raw in (b'{"name": ', b'{"name": ' + nested(300) + b"}"):
        with pytest.raises(MalformedRequest) as caught:
            parse_model(TokenBody, None, "request body", json_text=raw)
        assert caught.value.code == "malformed_json"


@pytest.mark.parametrize("patch, field", [
    ({"geometry": None}, "geometry"),
    ({"name": None}, "name"),
    ({"survey_year": None}, "survey_year"),
])
def test_plot_patch_with_null_is_a_422(client, session, boxed, patch, field):
    """Is a plot PATCH setting geometry, name or survey year to null (a 500 before) refused with 422 naming
    the field, the plot unchanged?"""
    created = client.post(boxed.plots_url, json=boxed.plot_body(boxed.square_over_east_edge(100, -200)),
                          headers=boxed.producer.headers)
    assert created.status_code == 201, created.get_json()
    plot_id = created.get_json()["id"]
    resp = client.patch(f"/api/v1/plots/{plot_id}", json=patch, headers=boxed.producer.headers)
    assert problem_fields(assert_error(resp, 422, "validation_failed")) == [field]
    session.rollback()
    plot = session.get(Plot, plot_id)
    assert (plot.name, plot.survey_year) == ("东地块", 2024)


@pytest.mark.parametrize("field", ["status", "origin_country", "quality_requirements", "area_adcodes",
                                   "sales_adcodes"])
def test_gi_created_with_null_is_a_422(client, session, authority, field):
    """Is a GI created with `"status": null` (a 500 before) — or another field that cannot be empty — refused
    with 422 naming the field, writing nothing?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, field: None}, headers=authority.headers)
    assert problem_fields(assert_error(resp, 422, "validation_failed")) == [field]
    assert (count(session, GIProduct), count(session, GIVersion)) == (0, 0)


def test_gi_amended_with_null_status_is_a_422(client, session, factory, authority):
    """Is an amendment setting status to null refused with 422 (it was silently ignored), the GI unchanged?"""
    gi = factory.gi(authority)
    resp = client.patch(f"/api/v1/gis/{gi.id}", json={"status": None, "reason": "clear it"},
                        headers=authority.headers)
    assert problem_fields(assert_error(resp, 422, "validation_failed")) == ["status"]
    assert count(session, GIVersion, GIVersion.gi_id == gi.id) == 1


@pytest.mark.parametrize("names", [
    {"name_pinyin": "亳白芍"},
    {"name_pinyin": "---"},
    {"name_en": "ワイン", "origin_country": "JP", "kind": "foreign_gi"},
    {"name_pinyin": "亳白芍", "name_en": "白芍"},
])
def test_gi_without_latin_letters_for_its_serial_prefix_is_a_422(client, session, authority, names):
    """Is a GI whose name_pinyin (or, without one, name_en) has no Latin letters — so no serial prefix can be
    made (a 500 before) — refused with 422 saying to send pinyin or an English name, writing nothing?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, **names}, headers=authority.headers)
    assert resp.status_code == 422, resp.get_json()
    body = resp.get_json()
    assert body["error"] in ("validation_failed", "no_serial_prefix")
    assert "name_pinyin" in body["message"] or "name_en" in body["message"]
    assert (count(session, GIProduct), count(session, GIVersion), count(session, OriginArea)) == (0, 0, 0)


def test_gi_prefix_comes_from_the_name_with_latin_letters(client, session, authority):
    """Does a GI with pinyin in tone marks get its serial prefix from it, and a foreign GI without pinyin
    one from its English name?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, "name_pinyin": "Bó Bái Sháo"}, headers=authority.headers)
    assert resp.status_code == 201, resp.get_json()
    foreign = {"name_zh": "香槟", "name_en": "Champagne", "kind": "foreign_gi", "origin_country": "FR",
               "category": "wine"}
    resp2 = client.post("/api/v1/gis", json=foreign, headers=authority.headers)
    assert resp2.status_code == 201, resp2.get_json()
    session.rollback()
    prefixes = [session.get(GIProduct, r.get_json()["id"]).mark_prefix for r in (resp, resp2)]
    assert prefixes[0] == "BBSH" and prefixes[1][0] == "C"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_id_beyond_32_bits_is_a_404_for_every_method(client, factory, method):
    """Is a row id beyond 32 bits answered 404 whatever the method (PATCH and DELETE answered 405 before,
    because another method of the same path exists)?"""
    producer = factory.producer("341602")
    for url in (f"/api/v1/plots/{2**31}", f"/api/v1/plots/{HUGE}", f"/api/v1/gis/{HUGE}"):
        resp = client.open(url, method=method, json={}, headers=producer.headers)
        if method == "DELETE" and url.startswith("/api/v1/gis"):
            continue  # no DELETE on GIs at all
        assert_error(resp, 404, "not_found")
    assert client.get(f"/api/v1/plots/{2**31 - 1}", headers=producer.headers).status_code == 404


# --- the NUL character (U+0000): PostgreSQL's text cannot hold it ----------------------------------------

def test_a_nul_character_in_a_json_body_is_a_422_and_writes_nothing(client, session, authority):
    """Is a GI whose name holds U+0000 (valid JSON, a driver error on PostgreSQL: it was a 500) refused with
    422 invalid_character, alike on both backends, leaving nothing written?"""
    resp = client.post("/api/v1/gis", json={**GI_BODY, "name_zh": "亳\u0000白芍"}, headers=authority.headers)
    body = assert_error(resp, 422, "invalid_character")
    assert "U+0000" in body["message"]
    assert count(session, GIProduct) == 0


def test_a_nul_character_in_a_query_is_a_422(client, authority):
    """Is a search for text holding U+0000 refused with 422 invalid_character (not a 500, not an empty list)?"""
    assert_error(client.get("/api/v1/gis?q=%E4%BA%B3%00", headers=authority.headers), 422, "invalid_character")


def test_a_nul_character_in_a_web_form_is_a_422_page(client, authority):
    """Does the sign-in page answer a username holding U+0000 with its 422 error page naming the code in
    X-Error-Code, instead of a 500?"""
    client.get("/login")
    with client.session_transaction() as s:
        token = s.get("csrf") or "t"
        s["csrf"] = token
    resp = client.post("/login", data={"username": "admin\x00", "password": "x" * 12, "csrf_token": token})
    assert resp.status_code == 422
    assert resp.headers["X-Error-Code"] == "invalid_character"
    assert resp.mimetype == "text/html"
