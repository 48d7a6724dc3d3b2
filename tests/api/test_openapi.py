"""The OpenAPI document describes every endpoint and its errors; the docs page needs no CDN."""
from __future__ import annotations

import re

import pytest
from flask import g
from openapi_spec_validator import validate

from gi_service.web.framework import F, Form


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


def test_every_web_write_documents_its_form(client):
    """Does every web page write describe what it reads — its form fields (with the optional csrf_token) or its
    JSON body — and does every error of a page name its code in X-Error-Code?"""
    paths = client.get("/openapi.json").json["paths"]
    writes = [(path, op) for path, item in paths.items() for method, op in item.items()
              if "web pages" in op["tags"] and method != "get"]
    assert len(writes) > 30
    for path, op in writes:
        content = op["requestBody"]["content"]
        assert len(content) == 1, path
        (media_type, body), = content.items()
        schema = body["schema"]
        if media_type == "application/json":  # the pages' scripts: the token goes in the X-CSRF-Token header
            assert "$ref" in schema, path
        else:
            assert media_type in ("application/x-www-form-urlencoded", "multipart/form-data"), path
            expects_csrf_field = "application/json" not in op["responses"]["500"]["content"]
            assert ("csrf_token" in schema["properties"]) == expects_csrf_field, path
            assert set(schema.get("required", [])) <= set(schema["properties"]), path
        assert op["responses"]["400"]["headers"]["X-Error-Code"]["schema"]["type"] == "string", path
    request_form = paths["/app/requests/new"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    fields = request_form["schema"]["properties"]
    assert set(request_form["schema"]["required"]) == {"gi_id", "pack_size_g", "quantity"}
    assert fields["pack_size_g"] == {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                                     "description": "grams per pack"}
    assert fields["note"]["maxLength"] == 1000 and "csrf_token" not in request_form["schema"]["required"]
    assert fields["gtin"]["maxLength"] == 14
    activate = paths["/app/marks/activate"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert activate["schema"]["properties"]["production_date"]["format"] == "date"
    assert paths["/login"]["post"]["responses"]["401"]["content"] == {"text/html": {"schema": {"type": "string"}}}


def test_web_pages_state_their_path_and_query_parameters(client):
    """Do the label image and the scan check state what they take: {fmt} png or svg, a serial's pattern, the label
    options, and the required ?code=?"""
    paths = client.get("/openapi.json").json["paths"]
    label = paths["/app/labels/{serial}.{fmt}"]["get"]
    params = {p["name"]: p for p in label["parameters"]}
    assert params["fmt"]["schema"]["enum"] == ["png", "svg"]
    assert re.fullmatch(params["serial"]["schema"]["pattern"].strip("^$"), "BBSH26000001234E")
    assert params["dpi"]["schema"]["enum"] == [300, 600] and not params["dpi"]["required"]
    assert {"image/png", "image/svg+xml"} == set(label["responses"]["200"]["content"])
    code = {p["name"]: p for p in paths["/app/scan/check"]["get"]["parameters"]}["code"]
    assert code["required"] and code["in"] == "query" and code["schema"]["minLength"] == 1


def test_a_view_cannot_read_a_form_field_its_page_does_not_declare(app):
    """Under test, does a view that reads a form field its page does not declare, or with other bounds than
    declared, fail loudly, so the document's form fields cannot drift from what the views read?"""
    with app.test_request_context("/app/x", method="POST", data={"reason": "why", "quantity": "3"}):
        g.web_form_fields = {"reason": F.text(100), "quantity": F.integer(1, 10)}
        form = Form()
        assert form.text("reason", "reason", max_len=100) == "why"
        assert form.integer("quantity", "quantity", lo=1, hi=10) == 3
        with pytest.raises(AssertionError, match="note"):
            form.text("note", "note", required=False)
        with pytest.raises(AssertionError, match="reason"):
            form.text("reason", "reason", max_len=1000)
        with pytest.raises(AssertionError, match="quantity"):
            form.integer("quantity", "quantity", lo=1)
