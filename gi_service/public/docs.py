"""``/openapi.json`` and ``/docs``: the OpenAPI document of every face (``http/openapi.py``) and its HTML
rendering, open to anyone."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from ..http.access import public
from ..http.contract import SPECS, EndpointSpec
from ..http.openapi import build_document

bp = Blueprint("openapi", __name__)


def _openapi_json():
    return jsonify(build_document())


def _docs():
    doc = build_document()
    return render_template("docs.html", doc=doc)


bp.add_url_rule("/openapi.json", endpoint="openapi_json", view_func=_openapi_json)
bp.add_url_rule("/docs", endpoint="docs", view_func=_docs)
_openapi_json.gi_access = public()
_docs.gi_access = public()
SPECS.append(EndpointSpec(rule="/openapi.json", methods=("GET",), endpoint="openapi.openapi_json",
                          summary="This OpenAPI 3 document", access=public(), tags=("meta",)))
SPECS.append(EndpointSpec(rule="/docs", methods=("GET",), endpoint="openapi.docs", summary="HTML API documentation",
                          access=public(), tags=("meta",), success_content_type="text/html"))
