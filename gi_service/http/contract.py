"""How an endpoint is declared: who may call it, what it takes, what it answers.

``endpoint(...)`` registers a view on a blueprint and records its contract, which
is enforced on every request (authentication, the caller's kind, strict body and
query parsing) and published in ``/openapi.json``. A view cannot exist without
declaring its access rule: the tests check every URL rule has one. The pages
(``web.framework.page``) and the public faces record their entries in the same
``SPECS``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel

from ..errors import MalformedRequest
from . import idempotency
from .access import Access, enforce
from .parsing import json_body_text, parse_model, read_json_body


@dataclass
class EndpointSpec:
    rule: str
    methods: tuple[str, ...]
    endpoint: str
    summary: str
    access: Access
    tags: tuple[str, ...]
    body: type[BaseModel] | None = None
    body_content_type: str = "application/json"
    query: type[BaseModel] | None = None
    responses: dict[int, str] = field(default_factory=dict)
    response_schema: dict[str, Any] | None = None
    success_status: int = 200
    success_content_type: str = "application/json"
    idempotent: bool = False
    # The fields of a multipart/form-data body, as a JSON Schema object (OpenAPI); None: an upload's
    # `file` with its `reason` and `description` (the artwork and area uploads).
    form_schema: dict[str, Any] | None = None
    # Other media types the success answer may have (chosen by a `format` query parameter: CSV, PDF, ...).
    alt_content_types: tuple[str, ...] = ()
    # What an error status answers when it is not the error contract in JSON: {status: {media type: schema}}
    # (the consumer check answers its verdict document, or a page, with every verdict's status).
    error_content: dict[int, dict[str, Any]] = field(default_factory=dict)
    # JSON Schemas of path parameters that are more than any string ({code}, {gtin}).
    path_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    # False: the operation's input never yields the generic 400/413/415/422 (a page whose query parameters
    # are hints it ignores when wrong); the statuses it does answer are in `responses`.
    input_errors: bool = True
    # Query parameters not read through a `query` model: {name: description, or (description, JSON Schema),
    # or (description, JSON Schema, required)} (the OGC `f`, the consumer page's, the web pages').
    query_params: dict[str, Any] = field(default_factory=dict)


SPECS: list[EndpointSpec] = []


def endpoint(bp: Blueprint, rule: str, *, methods: Iterable[str] = ("GET",), access: Access, summary: str,
             tags: Iterable[str] = (), body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             responses: dict[int, str] | None = None, status: int = 200, response_schema: dict | None = None,
             body_content_type: str = "application/json", content_type: str | tuple[str, ...] = "application/json",
             idempotent: bool = False, form_schema: dict[str, Any] | None = None):
    """Declare and register an API endpoint (see module docstring).

    Writes are committed here after the view returns (views may also commit themselves).
    With `idempotent=True` an `Idempotency-Key` header makes retries return the first answer.
    `content_type` may list several media types when a query parameter chooses the format (the first is
    the default).
    """
    methods = tuple(m.upper() for m in methods)
    content_types = (content_type,) if isinstance(content_type, str) else tuple(content_type)

    def decorate(view: Callable[..., Any]):
        name = view.__name__

        @functools.wraps(view)
        def wrapper(**kwargs):
            kwargs["principal"] = enforce(access)
            if idempotent and request.headers.get("Idempotency-Key"):
                return idempotency.run(kwargs["principal"], lambda: _call(view, kwargs, commit=False))
            return _call(view, kwargs)

        def _call(view, kwargs, commit: bool = True):
            if query is not None:
                unknown = sorted(set(request.args) - set(query.model_fields))
                if unknown:
                    raise MalformedRequest(f"unknown query parameter(s): {', '.join(unknown)}; supported: "
                                           f"{', '.join(query.model_fields)}", code="unknown_parameter",
                                           details=[{"field": u, "problem": "unknown parameter"} for u in unknown])
                kwargs["query"] = parse_model(query, request.args.to_dict(flat=True), "query string")
            if body is not None and body_content_type == "application/json":
                read_json_body()
                kwargs["body"] = parse_model(body, None, "request body", json_text=json_body_text())
            result = view(**kwargs)
            if commit and request.method not in ("GET", "HEAD") and "db_session" in g:
                g.db_session.commit()
            if isinstance(result, Response):
                return result
            resp = jsonify(result)
            resp.status_code = status
            return resp

        wrapper.gi_access = access  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=name, view_func=wrapper, methods=list(methods))
        prefix = bp.url_prefix or ""
        SPECS.append(EndpointSpec(
            rule=prefix + rule, methods=methods, endpoint=f"{bp.name}.{name}", summary=summary, access=access,
            tags=tuple(tags) or (bp.name,), body=body, body_content_type=body_content_type, query=query,
            responses=dict(responses or {}), response_schema=response_schema, success_status=status,
            success_content_type=content_types[0], idempotent=idempotent, form_schema=form_schema,
            alt_content_types=content_types[1:]))
        return wrapper

    return decorate


