"""The OpenAPI 3 document, generated from the declared endpoints of every face (``SPECS``).

``public/docs.py`` serves it as ``/openapi.json`` and renders it as ``/docs``.
"""
from __future__ import annotations

import re
import typing
from typing import Any

from flask import current_app, has_app_context
from pydantic.json_schema import models_json_schema

from .. import __version__
from .access import PUBLIC
from .contract import SPECS, EndpointSpec
from .files import FORMAT_TYPES

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


def _path(rule: str, schemas: dict[str, dict[str, Any]] | None = None) -> tuple[str, list[dict[str, Any]]]:
    params = []

    def repl(m: re.Match) -> str:
        converter, name = m.group(1), m.group(2)
        schema = ({"type": "integer", "minimum": 1, "maximum": 2**31 - 1} if converter in ("int", "id")
                  else {"type": "string"})
        if converter == "int" and name == "year":
            schema = {"type": "integer", "minimum": 2000, "maximum": 2099}
        if schemas and name in schemas:
            schema = schemas[name]
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
        return "{" + name + "}"

    return re.sub(r"<(?:(\w+):)?(\w+)>", repl, rule), params


def _operation(spec: EndpointSpec, method: str, schemas: dict[str, Any], refs: dict) -> dict[str, Any]:
    path, params = _path(spec.rule, spec.path_schemas)
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
    for name, desc in spec.query_params.items():
        desc, schema, *rest = desc if isinstance(desc, tuple) else (desc, {"type": "string"})
        op["parameters"].append({"name": name, "in": "query", "required": bool(rest and rest[0]), "schema": schema,
                                 "description": desc})
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(spec.body, "validation")]}}}
    elif _is_page(spec) and spec.form_schema is not None:
        # A page's form: the fields its view reads (unknown fields are ignored, as browsers' forms expect).
        op["requestBody"] = {"required": bool(spec.form_schema.get("required")),
                             "content": {spec.body_content_type: {"schema": spec.form_schema}}}
    elif spec.body_content_type == "multipart/form-data":
        form = spec.form_schema or {
            "type": "object", "required": ["file", "reason"], "additionalProperties": False,
            "properties": {"file": {"type": "string", "format": "binary"},
                           "reason": {"type": "string", "minLength": 2, "maxLength": 1000,
                                      "pattern": r"\S[\s\S]*\S"},  # 2+ characters once stripped
                           "description": {"type": "string"}}}
        # The upload handlers refuse fields they do not read.
        form = {"additionalProperties": False, **form}
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    op["responses"] = _responses(spec, has_path_params=bool(params))
    if _is_page(spec):
        op["security"] = [] if spec.access.level == PUBLIC else [{"bearerAuth": []}, {"sessionCookie": []}]
    return op


def _is_page(spec: EndpointSpec) -> bool:
    return "web pages" in spec.tags


def _content(media_type: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is None:
        schema = {"type": "object"} if media_type.endswith("json") else {"type": "string"}
    return {media_type: {"schema": schema}}


def _format_types(spec: EndpointSpec) -> tuple[str, ...]:
    """The media types a `format` query parameter of the operation can choose."""
    field_info = spec.query.model_fields.get("format") if spec.query is not None else None
    if field_info is None:
        return ()
    return tuple(FORMAT_TYPES[v] for v in typing.get_args(field_info.annotation) if v in FORMAT_TYPES)


def _responses(spec: EndpointSpec, *, has_path_params: bool) -> dict[str, Any]:
    """What an operation answers: its success (with every media type it may have), the other successes it
    declares (2xx/3xx in `responses`), and every error it can give, in the media type it is given in.

    API errors are JSON. A web page's errors are HTML pages (JSON for the pages' own scripts), a signed-in
    HTML page sends a signed-out visitor to /login (303), and a write to a page path with a malformed id
    meets the GET-only /app catch-all (405)."""
    page = _is_page(spec)
    html_errors = page and spec.success_content_type != "application/json"
    success_schema = spec.response_schema if spec.success_content_type.endswith("json") else None
    success = {"description": "success", "content": {}}
    for media_type in dict.fromkeys((spec.success_content_type, *spec.alt_content_types, *_format_types(spec))):
        success["content"].update(_content(media_type, success_schema if media_type == spec.success_content_type
                                           else None))
    if spec.success_status in (303, 304, 204):
        success.pop("content")
    responses: dict[str, Any] = {str(spec.success_status): success}
    errors: dict[int, str] = {}
    if spec.input_errors and (spec.body is not None or spec.query is not None
                              or spec.body_content_type != "application/json" or getattr(spec, "query_params", None)):
        errors.update({k: COMMON_ERRORS[k] for k in (400, 413, 415, 422)})
    if spec.access.level != PUBLIC:
        errors.update({k: COMMON_ERRORS[k] for k in (401, 403)})
    if has_path_params or spec.body is not None:
        errors[404] = "no such resource: the path or a referenced id names nothing"
    if page:
        # Pages show a service's refusal (conflict, invalid values, not found) as a page with its status.
        errors.update({400: "malformed request, or (a write) a missing or wrong CSRF token",
                       404: "no such page or object", 409: "the object's state does not allow this",
                       422: "invalid values (the page says which)"})
        if spec.access.level != PUBLIC:
            errors[403] = "signed in, but not allowed to see or do this"
            if html_errors:
                errors.pop(401, None)
                if spec.success_status != 303:
                    responses["303"] = {"description": "not signed in: redirected to /login?next=…"}
            else:
                errors[401] = COMMON_ERRORS[401]
        elif spec.methods == ("GET",) and spec.success_status != 303:
            responses["303"] = {"description": "already signed in: redirected onwards"}
        if has_path_params and spec.methods != ("GET",):
            errors[405] = "a malformed id in the path: the path is another page's, which only answers GET"
    errors.update({k: v for k, v in spec.responses.items() if k >= 400})
    errors[500] = COMMON_ERRORS[500]
    for status, desc in sorted(spec.responses.items()):
        if status < 400 and str(status) != str(spec.success_status):
            extra: dict[str, Any] = {"description": desc}
            if 200 <= status < 300:
                extra["content"] = success["content"]
            responses[str(status)] = extra
    error_content = ({"text/html": {"schema": {"type": "string"}}} if html_errors else
                     {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
    for status, desc in sorted(errors.items()):
        # The /app catch-all's 405 is werkzeug's HTML page, even for the pages' JSON endpoints.
        content = {"text/html": {"schema": {"type": "string"}}} if page and status == 405 else error_content
        if status in spec.error_content:
            content = {media: {"schema": schema} for media, schema in spec.error_content[status].items()}
        responses[str(status)] = {"description": desc, "content": content}
        if page and status != 405:
            responses[str(status)]["headers"] = {"X-Error-Code": ERROR_CODE_HEADER}
    return responses


# Every error answer of a web page names its stable code (the API's JSON `error`) in a header, so a script
# driving the pages can tell a CSRF refusal from a wrong check character without reading the HTML.
ERROR_CODE_HEADER = {"description": "the stable machine-readable error code, as the API's `error` field "
                                    "(validation_failed, csrf_failed, invalid_serial, ...)",
                     "schema": {"type": "string", "pattern": "^[a-z0-9_]+$"}}


# What pydantic strips from strings before checking their length (str_strip_whitespace: Unicode White_Space).
_SPACE = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"


def _stripped_lengths(node: Any) -> Any:
    """Make each string's minLength count what the service counts: the string stripped of surrounding
    whitespace. A pattern says it: n characters from the first non-space one to the last."""
    if isinstance(node, list):
        return [_stripped_lengths(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _stripped_lengths(v) for k, v in node.items()}
    n = node.get("minLength")
    if node.get("type") == "string" and isinstance(n, int) and n >= 1:
        solid = f"[^{_SPACE}]"
        rule = solid if n == 1 else f"{solid}[\\s\\S]{{{n - 2},}}{solid}"
        if "pattern" in node:
            node["allOf"] = [*node.get("allOf", []), {"pattern": rule}]
        else:
            node["pattern"] = rule
    return node


def _session_cookie_name() -> str:
    return current_app.config.get("SESSION_COOKIE_NAME") or "session" if has_app_context() else "session"


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
    # Bodies and query strings are validated stripped of surrounding whitespace (schemas.Strict, Query).
    schemas = {name: (schema if name == "Error" else _stripped_lengths(schema)) for name, schema in schemas.items()}
    for item in paths.values():
        for op in item.values():
            for param in op["parameters"]:
                if param["in"] == "query":
                    param["schema"] = _stripped_lengths(param["schema"])
    return {
        "openapi": "3.1.0",
        "info": {"title": "gi-service API", "version": __version__,
                 "description": "Geographical-indication registry, production areas, producers and authorizations. "
                                "Errors are JSON: {error, message, details}."},
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "a token from POST /api/v1/auth/login or `gi-service tokens create`"},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": _session_cookie_name(),
                              "description": "web pages only: the session cookie set by POST /login; a write "
                                             "with it also needs the session's CSRF token (the form field "
                                             "csrf_token or the X-CSRF-Token header) and, if it sends Origin, "
                                             "this site's. On a page a usable bearer token identifies the "
                                             "caller too, and a write it names needs no CSRF token (a browser "
                                             "never sends the header by itself); any other Authorization "
                                             "header is ignored: the session decides and the CSRF check "
                                             "applies"}}},
    }

