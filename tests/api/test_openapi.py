"""The OpenAPI document describes every endpoint and its errors; the docs page needs no CDN."""
from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_openapi_document_is_valid_openapi_3(client):
    """Is /openapi.json a valid OpenAPI 3 document?"""
    doc = client.get("/openapi.json").json
    validate(doc)
    assert doc["openapi"].startswith("3.")


def test_every_route_is_documented_with_access_and_errors(app, client):
    """Does every URL rule appear in the document, with who may call it and its error responses?"""
    doc = client.get("/openapi.json").json
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "web.static"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in /openapi.json"
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["x-access"], f"{method} {path} does not say who may call it"
            assert "500" in op["responses"]
            if op.get("security"):
                # Signed-out: 401 from the API (and the pages' scripts), a redirect to /login from an HTML page.
                refusals = set(op["responses"])
                assert "403" in refusals and ("401" in refusals or "303" in refusals), \
                    f"{method} {path} lacks its refusals"
            if "requestBody" in op:
                assert "422" in op["responses"]
    gi_post = doc["paths"]["/api/v1/gis"]["post"]
    schema_name = gi_post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    assert "name_zh" in doc["components"]["schemas"][schema_name]["properties"]


def test_docs_page_loads_nothing_from_elsewhere(client):
    """Is the HTML docs page complete without any external script, stylesheet or font?"""
    r = client.get("/docs")
    assert r.status_code == 200 and "text/html" in r.content_type
    html = r.get_data(as_text=True)
    assert "/api/v1/gis" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_multipart_uploads_document_their_own_fields(client):
    """Does each multipart endpoint describe the form fields it really reads (not a generic upload)?"""
    paths = client.get("/openapi.json").json["paths"]

    def form(path: str, method: str = "post") -> dict:
        return paths[path][method]["requestBody"]["content"]["multipart/form-data"]["schema"]

    photos = form("/api/v1/findings/{finding_id}/photos")
    assert set(photos["properties"]) == {"photo", "client_photo_id", "filename"} and photos["required"] == ["photo"]
    report = form("/v/{code}/report")
    assert {"token", "description", "shop_name", "photo"} <= set(report["properties"])
    assert form("/api/v1/special-mark/artwork", "put")["required"] == ["file", "reason"]


def test_successes_are_documented_as_successes(client):
    """Is every 2xx an operation declares documented with the operation's own body, never the error schema
    (the findings batch documented its 200 with the error schema), and every format a `format` parameter
    picks documented as a content type?"""
    paths = client.get("/openapi.json").json["paths"]
    for path, item in paths.items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                for content in response.get("content", {}).values():
                    if int(status) < 400:
                        assert content["schema"] != {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"
    batch = paths["/api/v1/findings/batch"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert batch != {"$ref": "#/components/schemas/Error"}
    assert {"application/json", "text/csv"} <= set(paths["/api/v1/ledger/report"]["get"]["responses"]["200"]["content"])
    rollup = paths["/api/v1/annual-reports/rollup"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "application/pdf"} <= set(rollup)


def test_web_pages_document_how_they_answer(client):
    """Do the web pages say how they really answer: HTML errors, a redirect to /login when signed out, and the
    session cookie as well as a bearer token?"""
    paths = client.get("/openapi.json").json["paths"]
    plots = paths["/app/plots"]["get"]
    assert "303" in plots["responses"] and "401" not in plots["responses"]
    assert set(plots["responses"]["403"]["content"]) == {"text/html"}
    assert {"sessionCookie": []} in plots["security"]
