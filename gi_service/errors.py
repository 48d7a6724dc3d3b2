"""Domain errors that carry their HTTP status and a stable machine code.

One app-level handler (``register_error_handlers``) turns them, and every
werkzeug HTTP error under ``/api``, into ``{"error", "message", "details"}``.
"""
from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("gi_service")


class GIError(Exception):
    status: int = HTTPStatus.BAD_REQUEST
    code: str = "bad_request"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class ValidationFailed(GIError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "validation_failed"


class MalformedRequest(GIError):
    status = HTTPStatus.BAD_REQUEST
    code = "malformed_request"


class Unauthenticated(GIError):
    status = HTTPStatus.UNAUTHORIZED
    code = "unauthenticated"


class Forbidden(GIError):
    status = HTTPStatus.FORBIDDEN
    code = "forbidden"


class NotFound(GIError):
    status = HTTPStatus.NOT_FOUND
    code = "not_found"


class Conflict(GIError):
    status = HTTPStatus.CONFLICT
    code = "conflict"


class InvalidGeometry(GIError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_geometry"


class PlotOutsideArea(GIError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "plot_outside_area"


class InvalidUSCC(GIError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "invalid_uscc"


class InvalidTransition(GIError):
    status = HTTPStatus.CONFLICT
    code = "invalid_transition"


class ServiceUnavailable(GIError):
    """Not now, but soon: answered 503 with ``Retry-After`` (seconds)."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


# Stable codes for the werkzeug errors the API can produce.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
}


# OGC API - Features paths: answered as JSON (with JSON errors) unless the client prefers HTML.
OGC_PATHS = ("/collections", "/conformance")


def _wants_json() -> bool:
    if request.path.startswith("/api/") or request.path in ("/openapi.json",):
        return True
    accept = request.accept_mimetypes
    if request.path.startswith(OGC_PATHS):
        return not (accept.best_match(["application/json", "text/html"]) == "text/html"
                    and accept["text/html"] > accept["application/json"])
    best = accept.best_match(["application/json", "text/html"])
    return best == "application/json" and accept[best] > accept["text/html"]


def error_response(status: int, code: str, message: str, details: Any = None):
    body = {"error": code, "message": message, "details": details}
    rid = getattr(g, "request_id", None)
    if rid:
        body["request_id"] = rid
    resp = jsonify(body)
    resp.status_code = status
    return resp


def _size(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    if n % 1024 == 0:
        return f"{n // 1024} KB"
    return f"{n} bytes"


def register_error_handlers(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(resp):
        if getattr(g, "request_id", None):
            resp.headers["X-Request-Id"] = g.request_id
        return resp

    @app.errorhandler(GIError)
    def _gi_error(exc: GIError):
        resp = error_response(int(exc.status), exc.code, exc.message, exc.details)
        if int(exc.status) == 401:
            challenge = 'Bearer realm="gi-service"'
            if exc.code != "unauthenticated":
                challenge += f', error="invalid_token", error_description="{exc.code}"'
            resp.headers["WWW-Authenticate"] = challenge
        if getattr(exc, "retry_after", None) is not None:  # 503 not now; 429 account locked
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if not _wants_json():
            return exc
        code = HTTP_CODES.get(status, "http_error")
        messages = {
            404: f"no resource at {request.path}; see /openapi.json for the API",
            405: f"{request.method} is not allowed on {request.path}; allowed: "
                 + ", ".join(sorted(getattr(exc, "valid_methods", None) or [])),
            413: f"the request body is larger than the limit of {_size(app.config['MAX_CONTENT_LENGTH'])}",
        }
        message = messages.get(status) or exc.description or HTTPStatus(status).phrase
        resp = error_response(status, code, message)
        if status == 405 and getattr(exc, "valid_methods", None):
            resp.headers["Allow"] = ", ".join(exc.valid_methods)
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - handled above
            return _http_error(exc)
        log.exception("unhandled error in request %s %s (request id %s)",
                      request.method, request.path, getattr(g, "request_id", "-"))
        return error_response(500, "internal_error",
                              "an unexpected error occurred; quote the request id when reporting it")
