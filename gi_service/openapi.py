"""The OpenAPI 3 document, generated from the declared endpoints, and its HTML docs page."""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, render_template
from pydantic.json_schema import models_json_schema

from . import __version__
from .api.framework import PUBLIC, SPECS, EndpointSpec, public

bp = Blueprint("openapi", __name__)

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "stable machine-readable code, e.g. validation_failed"},
        "message": {"type": "string", "description": "what went wrong and what to fix"},
        "details": {"description": "structured details (field problems, positions, ...)"},
        "request_id": {"type": "string"},
    },
}
COMMON_ERRORS = {
    400: "malformed request (bad JSON, unknown query parameter)",
    401: "not signed in, or the token is invalid, revoked or expired",
    403: "signed in, but not allowed to do this",
    405: "method not allowed on this path",
    413: "request body too large",
    415: "wrong content type",
    422: "the request is well-formed but its values are invalid",
    500: "unexpected error (quote the request_id)",
}


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []

    def repl(m: re.Match) -> str:
        converter, name = m.group(1), m.group(2)
        schema = ({"type": "integer", "minimum": 1, "maximum": 2**31 - 1} if converter in ("int", "id")
                  else {"type": "string"})
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule), params


def _operation(spec: EndpointSpec, method: str, schemas: dict[str, Any], refs: dict) -> dict[str, Any]:
    path, params = _path(spec.rule)
    op: dict[str, Any] = {
        "operationId": spec.endpoint.replace(".", "_") + ("" if len(spec.methods) == 1 else "_" + method.lower()),
        "summary": spec.summary,
        "tags": list(spec.tags),
        "x-access": spec.access.describe(),
        "description": f"**Who may call it:** {spec.access.describe()}.",
        "parameters": params,
    }
    if spec.access.level != PUBLIC:
        op["security"] = [{"bearerAuth": []}]
    if spec.query is not None:
        qschema = spec.query.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, prop in qschema.get("properties", {}).items():
            schemas.update(qschema.get("$defs", {}))
            op["parameters"].append({"name": name, "in": "query", "required": name in qschema.get("required", []),
                                     "schema": {k: v for k, v in prop.items() if k != "title"},
                                     "description": prop.get("description", "")})
    for name, desc in getattr(spec, "query_params", {}).items():
        op["parameters"].append({"name": name, "in": "query", "required": False, "schema": {"type": "string"},
                                 "description": desc})
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(spec.body, "validation")]}}}
    elif spec.body_content_type == "multipart/form-data":
        form = spec.form_schema or {
            "type": "object", "required": ["file", "reason"],
            "properties": {"file": {"type": "string", "format": "binary"}, "reason": {"type": "string"},
                           "description": {"type": "string"}}}
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    responses: dict[str, Any] = {str(spec.success_status): {
        "description": "success",
        "content": {spec.success_content_type: {"schema": spec.response_schema or {"type": "object"}}}}}
    errors = {}
    if spec.body is not None or spec.query is not None or spec.body_content_type != "application/json":
        errors.update({k: COMMON_ERRORS[k] for k in (400, 413, 415, 422)})
    if spec.access.level != PUBLIC:
        errors.update({k: COMMON_ERRORS[k] for k in (401, 403)})
    errors.update(spec.responses)
    errors[500] = COMMON_ERRORS[500]
    for status, desc in sorted(errors.items()):
        responses[str(status)] = {"description": desc, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    return op


def build_document(server_url: str = "/") -> dict[str, Any]:
    bodies = sorted({s.body for s in SPECS if s.body is not None}, key=lambda m: m.__name__)
    refs, defs = models_json_schema([(m, "validation") for m in bodies],
                                    ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA, **defs.get("$defs", {})}
    paths: dict[str, Any] = {}
    for spec in SPECS:
        path, _ = _path(spec.rule)
        item = paths.setdefault(path, {})
        for method in spec.methods:
            item[method.lower()] = _operation(spec, method, schemas, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "gi-service API", "version": __version__,
                 "description": "Geographical-indication registry, production areas, producers and authorizations. "
                                "Errors are JSON: {error, message, details}."},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "a token from POST /api/v1/auth/login or `gi-service tokens create`"}}},
    }


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
