"""How an API endpoint is declared: who may call it, what it takes, what it answers.

``endpoint(...)`` registers a view on a blueprint and records its contract, which
is enforced on every request (authentication, the caller's kind, strict body and
query parsing) and published in ``/openapi.json``. A view cannot exist without
declaring its access rule: the tests check every URL rule has one.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from sqlalchemy import update

from .. import clock
from ..db import write_session
from ..models import ApiToken
from ..errors import Forbidden, MalformedRequest, Unauthenticated, ValidationFailed
from ..models import OrgKind
from ..services.accounts import Principal, principal_for, resolve_token
from . import idempotency

PUBLIC = "public"
AUTHENTICATED = "authenticated"


@dataclass(frozen=True)
class Access:
    """Who may call an endpoint: the public, any signed-in user, or some organisation kinds."""

    level: str
    kinds: tuple[OrgKind, ...] = ()
    note: str = ""

    def describe(self) -> str:
        if self.level == PUBLIC:
            text = "public"
        elif self.kinds:
            text = "signed-in " + " or ".join(k.value for k in self.kinds)
        else:
            text = "any signed-in user"
        return f"{text}; {self.note}" if self.note else text


def public(note: str = "") -> Access:
    return Access(PUBLIC, note=note)


def signed_in(*kinds: OrgKind, note: str = "") -> Access:
    return Access(AUTHENTICATED, tuple(kinds), note)


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


SPECS: list[EndpointSpec] = []


def _error_details(exc: ValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        problem = err["msg"]
        if err["type"] == "extra_forbidden":
            problem = "unknown field; remove it"
        elif err["type"] == "missing":
            problem = "required field is missing"
        details.append({"field": loc, "problem": problem, "type": err["type"]})
    return details


# How deeply a JSON body may nest objects and arrays. pydantic's parser stops at about 200 levels and
# Python's json module at the interpreter's recursion limit (a RecursionError); every level beyond this
# is refused alike with 400 malformed_json, on every JSON body (the consumer's report form included).
MAX_JSON_DEPTH = 128


def _too_deep() -> MalformedRequest:
    return MalformedRequest(f"the request body nests objects or arrays more than {MAX_JSON_DEPTH} levels deep; "
                            "send a flatter JSON document", code="malformed_json",
                            details={"max_depth": MAX_JSON_DEPTH})


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests containers more than `limit` levels (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_model(model: type[BaseModel], data: Any, where: str, *, json_text: bytes | None = None) -> BaseModel:
    """Validate query data (lax: strings become numbers) or a JSON body (strict types).

    A JSON text that does not parse (malformed, or nested too deeply) is a 400 malformed_json, not a
    422: nothing in it could be validated."""
    try:
        if json_text is not None:
            return model.model_validate_json(json_text, strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        invalid_json = [e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"]
        if json_text is not None and invalid_json:
            if "recursion limit" in invalid_json[0]["msg"]:
                raise _too_deep() from None
            raise MalformedRequest(f"the {where} is not valid JSON: {invalid_json[0]['msg']}",
                                   code="malformed_json") from None
        details = _error_details(exc)
        first = details[0]
        raise ValidationFailed(f"invalid {where}: {first['field']}: {first['problem']}"
                               + (f" (and {len(details) - 1} more)" if len(details) > 1 else ""),
                               details=details) from None


def read_json_body() -> Any:
    if not request.mimetype or request.mimetype != "application/json":
        raise MalformedRequest(
            f"send the body as JSON with Content-Type: application/json (got {request.mimetype or 'none'})",
            code="unsupported_media_type", status=415)
    raw = request.get_data(cache=True)
    if not raw:
        raise MalformedRequest("the request body is empty; send a JSON object", code="malformed_json")
    whole: list[bool] = []
    try:
        data = json.loads(raw, parse_float=functools.partial(_parse_float, whole))
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"the request body is not valid JSON: {exc}", code="malformed_json") from None
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise _too_deep()
    # A number like 437.0 is an integer in JSON Schema (and so in /openapi.json); the strict validation of
    # the body reads the text again, so it gets the text with such numbers written as integers.
    g.json_body_text = json.dumps(data, ensure_ascii=True).encode() if whole else raw
    return data


def _parse_float(whole: list[bool], text: str) -> float | int:
    value = float(text)
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
        whole.append(True)
        return int(value)
    return value


def json_body_text() -> bytes:
    """The JSON body as validated: after `read_json_body`, with whole numbers written as integers."""
    return g.get("json_body_text") or request.get_data(cache=True)


def is_web_page() -> bool:
    """Whether this request is for a page people sign in to with the session cookie: the web pages
    (``/login``, ``/app/…``) and the HTML landing page."""
    return request.blueprint == "web" or request.endpoint == "ogc.landing"


def _bearer_principal(header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use `Authorization: Bearer <token>`", code="invalid_token")
    # Its own short session, before the request's: committing last_used_at must not end the
    # request's transaction (on SQLite that would drop the write lock a writer took at BEGIN).
    with current_app.extensions["gi_sessionmaker"]() as session:
        row = resolve_token(session, token.strip())
        principal = principal_for(row.user, token_id=row.id)
        last_used = row.last_used_at
    now = clock.now()
    # Recording every use would turn each read into a write; a 5-minute resolution is enough.
    if last_used is None or now - last_used > dt.timedelta(minutes=5):
        with write_session(current_app.extensions["gi_engine"]) as session:
            session.execute(update(ApiToken).where(ApiToken.id == principal.token_id).values(last_used_at=now))
            session.commit()
    return principal


def current_principal() -> Principal | None:
    """The caller resolved from `Authorization: Bearer …` (or the web session), cached per request.

    On the API an `Authorization` header must be a usable bearer token, or the request is refused
    (401). On the web pages (`is_web_page`) a valid bearer token identifies the caller too, but a
    header the pages cannot use — another scheme (a proxy's `Basic`), an unknown, expired or revoked
    token — is ignored: the page reads the session cookie as if no header had been sent, so a signed-in
    person behind such a proxy keeps working and a signed-out one is sent to /login once, never in a
    loop (/login itself never redirects because of a header)."""
    if "principal" in g:
        return g.principal
    principal = None
    header = request.headers.get("Authorization", "")
    if header:
        try:
            principal = _bearer_principal(header)
        except Unauthenticated:
            if not is_web_page():
                raise
    if principal is None:
        loader = current_app.extensions.get("gi_session_principal")
        if loader is not None:
            principal = loader()
    g.principal = principal
    return principal


def enforce(access: Access) -> Principal | None:
    principal = current_principal()
    if access.level == PUBLIC:
        return principal
    if principal is None:
        raise Unauthenticated("sign in first: send `Authorization: Bearer <token>`")
    if access.kinds and principal.org_kind not in access.kinds:
        raise Forbidden(f"this action is for {' or '.join(k.value for k in access.kinds)} accounts; "
                        f"you are signed in as a {principal.kind}", code="wrong_role")
    return principal


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


def require(condition: bool, message: str, *, code: str = "forbidden") -> None:
    """Refuse with 403 unless `condition` holds."""
    if not condition:
        raise Forbidden(message, code=code)
