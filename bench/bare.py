"""The bare verdict (issue 14 §5): the JSON verdict of `GET /v/{code}` as a plain WSGI callable.

Bench-only: the production app never mounts it. bench.load serves it with the production
gunicorn configuration, beside the app itself, and drives it exactly like the JSON verdict:

    gunicorn -c python:gi_service.gunicorn_conf bench.bare:application

It answers the same JSON document as the JSON verdict (every verdict at the top level, `?lot=` compared
with the mark's lot), built by the same service functions —
the MAC check, the ledger lookup, the rate limiter, the buffered check log and the description,
through `verification.consumer_check` and `verification.json_body` — with no Flask in between:
no request or app context, no routing, no before/after-request hooks, no content negotiation.
The difference in cost between the two is the framework and the view.

The configured objects come from the production app (`gi_service.wsgi.app`, built by
`gi_service.create_app()` from the GI_* variables): its engine (`gi_engine`) and session factory,
its mark keyring (`gi_keyring`), its rate limiter (`gi_limiter`), its check log (`gi_checklog`)
and its settings (`GI_SETTINGS`). So the server's post_fork hook (gunicorn_conf.py) drops the
engine's inherited connections in each worker, as it does for the app.

`import bench.bare` has no side effect: `application` is built on first access (gunicorn's,
in the master, with preload_app), and bench.load builds its own with `make_application(app)` to
call it in-process.
"""
from __future__ import annotations

import json
from functools import partial
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from sqlalchemy.orm import Session

from gi_service.services import verification

PREFIX = "/v/"
SERVICE_FUNCTIONS = ("consumer_check", "json_body")

_JSON = ("Content-Type", "application/json")
_NO_STORE = ("Cache-Control", "no-store")
_REASONS = {200: "OK", 400: "BAD REQUEST", 404: "NOT FOUND", 405: "METHOD NOT ALLOWED", 409: "CONFLICT",
            410: "GONE", 429: "TOO MANY REQUESTS", 451: "UNAVAILABLE FOR LEGAL REASONS"}


def missing_service_functions() -> list[str]:
    """The service functions the bare verdict needs that gi_service does not have (none: it can run)."""
    return [f"gi_service.services.verification.{name}" for name in SERVICE_FUNCTIONS
            if not hasattr(verification, name)]


def _dumps(body: Any) -> bytes:
    # What Flask's jsonify sends in production: compact, UTF-8 as is, keys in their order, a newline.
    return (json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _send(start_response, status: int, body: Any, extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:
    data = _dumps(body)
    start_response(f"{status} {_REASONS.get(status, 'UNKNOWN')}",
                   [_JSON, _NO_STORE, ("Content-Length", str(len(data))), *extra])
    return [data]


def make_application(app) -> Callable:
    """The bare WSGI callable over the configured objects of a Flask app built by create_app()."""
    missing = missing_service_functions()
    if missing:
        raise RuntimeError("the bare verdict needs " + " and ".join(missing) + " (issue 14)")
    consumer_check, json_body = verification.consumer_check, verification.json_body
    ext = app.extensions
    engine, keyring = ext["gi_engine"], ext["gi_keyring"]
    limiter, checklog = ext.get("gi_limiter"), ext.get("gi_checklog")
    settings = app.config["GI_SETTINGS"]
    base_url = settings.public_base_url.rstrip("/")
    # The view's own session factory (expire_on_commit=False), so both sides load the same way.
    new_session = ext.get("gi_sessionmaker") or partial(Session, engine, expire_on_commit=False)

    def application(environ: dict, start_response) -> list[bytes]:
        path = environ.get("PATH_INFO") or ""
        code = path[len(PREFIX):]
        if not path.startswith(PREFIX) or not code or "/" in code:
            return _send(start_response, 404, {"error": "not_found", "message": "the bare verdict answers /v/{code}"})
        if environ.get("REQUEST_METHOD") != "GET":
            return _send(start_response, 405, {"error": "method_not_allowed", "message": "GET only"},
                         [("Allow", "GET")])
        # WSGI carries the path as latin-1 text; Flask decodes it as UTF-8 (codes are ASCII anyway).
        code = code.encode("latin-1").decode("utf-8", "replace")
        ip = environ.get("REMOTE_ADDR")
        if limiter is not None:
            refusal = limiter.hit("verify", ip)
            if refusal is not None:
                seconds = refusal.retry_after
                return _send(start_response, 429,
                             {"error": "rate_limited", "message": f"too many checks from your network; try again "
                              f"in {seconds} seconds", "details": {"retry_after": seconds}},
                             [("Retry-After", str(seconds))])
        query = environ.get("QUERY_STRING")
        # The lot on the package, as the view reads it (its first `lot`; Flask decodes the query as UTF-8).
        lot = verification.package_lot(parse_qs(query, errors="replace").get("lot", [None])[0]) if query else None
        with new_session() as session:      # closed (and anything uncommitted rolled back) on the way out
            result = consumer_check(session, keyring=keyring, settings=settings, checklog=checklog, code=code, ip=ip,
                                    user_agent=environ.get("HTTP_USER_AGENT"), base_url=base_url, lot=lot)
            body = json_body(result)
        return _send(start_response, result.check.status, body)

    return application


def __getattr__(name: str):
    # `application` for gunicorn: built from the production app on first access, not on import.
    if name == "application":
        from gi_service.wsgi import app

        globals()["application"] = application = make_application(app)
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
