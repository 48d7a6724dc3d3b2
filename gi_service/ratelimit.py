"""Rate limits per client on the consumer pages and on fake reports (flask-limiter).

Which endpoints are limited, by which setting, is declared once, in ``LIMITED_ENDPOINTS``:

* the consumer checks — ``GET /v/{code}`` and the GS1 resolver ``GET /01/…`` — share one bucket
  per client (``GI_RATELIMIT_VERIFY``), so the enumeration bound in the README holds whichever
  form the guesses take; a GS1 scan that is redirected to its ``/v/`` page counts twice;
* ``POST /v/{code}/location`` has its own bucket with the same limit, so sharing a location does
  not use up checks;
* ``POST /v/{code}/report`` has its own, much smaller limit (``GI_RATELIMIT_REPORT``).

HEAD on the consumer checks counts like GET (its status code is the verdict); OPTIONS (CORS
preflight) is never limited. The client is ``request.remote_addr`` as Flask sees it
(``GI_TRUSTED_PROXIES`` makes that the X-Forwarded-For client); an IPv6 client is counted by its
/64, the block one subscriber gets, or rotating addresses would escape the limit. Storage keys hold
a keyed hash of that address, never the address itself (the verification page promises that IP
addresses are not stored).

Counting is fixed-window: a client's window starts at its first request and its count resets
when the window ends. Storage is ``GI_RATELIMIT_STORAGE_URL``: ``memory://`` (one process; the
embedded default) or Redis (production, shared by every worker). When Redis cannot be reached the
limiter logs a warning and counts in memory until Redis answers again: verification keeps working.

A refused request gets 429 with ``Retry-After`` (seconds), ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (Unix time); allowed answers carry none (reading
the window back would cost two more storage round trips on every consumer check). The body is JSON in the error contract (``rate_limited``, details
``limit`` and ``retry_after``) for API and JSON clients, and a small bilingual page for browsers.

Storage keys start with the Flask setting ``RATELIMIT_KEY_PREFIX`` (default ``gi``; the tests use one
prefix per run and delete only their own keys).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

import limits
from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from markupsafe import escape

from .config import ConfigError, Settings
from .errors import error_response

log = logging.getLogger("gi_service.ratelimit")

EXTENSION = "gi_limiter"
DEFAULT_KEY_PREFIX = "gi"
# A Redis that does not answer must not hold up a consumer's check for long.
REDIS_TIMEOUT_S = 0.5
EXPOSED_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True)
class Rule:
    setting: str                 # the Settings field holding the limit, e.g. "60/minute;1000/hour"
    scope: str                   # endpoints with the same scope count in one bucket per client
    methods: tuple[str, ...]     # only these methods count (never OPTIONS)
    kind: str                    # "checks", "reports" or "logins": the wording of the 429 page


# The one table of limited endpoints (tests/verify/test_ratelimit.py checks every name is registered).
LIMITED_ENDPOINTS: dict[str, Rule] = {
    # HEAD counts too: its status code alone (200 vs 404) would answer a guess without limit.
    "verify.verify_code_page": Rule("ratelimit_verify", "verify", ("GET", "HEAD"), "checks"),
    "verify.gs1_resolve": Rule("ratelimit_verify", "verify", ("GET", "HEAD"), "checks"),
    "verify.record_location": Rule("ratelimit_verify", "verify-location", ("POST",), "checks"),
    "verify.report_fake": Rule("ratelimit_report", "report", ("POST",), "reports"),
    # Password guessing: the API's and the web page's sign-in share one bucket per client.
    "api.login": Rule("ratelimit_login", "login", ("POST",), "logins"),
    "web.login": Rule("ratelimit_login", "login", ("POST",), "logins"),
}

_ENV_NAMES = {"ratelimit_verify": "GI_RATELIMIT_VERIFY", "ratelimit_report": "GI_RATELIMIT_REPORT",
              "ratelimit_login": "GI_RATELIMIT_LOGIN"}


def client_address() -> str:
    """The address a client is counted by: IPv4 as is, IPv6 by its /64 (IPv4-mapped as IPv4)."""
    addr = request.remote_addr or ""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _key_func(secret: bytes):
    def client_key() -> str:
        addr = client_address()
        if not addr:
            return ""          # flask-limiter skips a limit with an empty key (and logs it)
        return hmac.new(secret, b"gi-ratelimit|" + addr.encode(), hashlib.sha256).hexdigest()[:32]
    return client_key


def _check_limits(settings: Settings) -> None:
    for field, env in _ENV_NAMES.items():
        value = getattr(settings, field)
        try:
            limits.parse_many(value)
        except ValueError:
            raise ConfigError(f"{env}: {value!r} is not a rate limit; write e.g. '60/minute;1000/hour'") from None


def init_app(app: Flask, settings: Settings) -> Limiter | None:
    """Limit the endpoints of LIMITED_ENDPOINTS; call after the blueprints are registered."""
    missing = sorted(name for name in LIMITED_ENDPOINTS if name not in app.view_functions)
    if missing:
        log.warning("rate limits: no endpoint named %s is registered; its limit is not applied", ", ".join(missing))
    if not settings.ratelimit_enabled:
        log.info("rate limits are disabled (GI_RATELIMIT_ENABLED=false)")
        return None
    _check_limits(settings)
    url = settings.ratelimit_storage_url
    options: dict = {}
    if url.split(":", 1)[0] in ("redis", "rediss", "redis+unix", "valkey", "valkeys", "valkey+unix"):
        options = {"socket_connect_timeout": REDIS_TIMEOUT_S, "socket_timeout": REDIS_TIMEOUT_S}
    limiter = Limiter(
        _key_func(settings.secret_key.encode()),
        storage_uri=url,
        storage_options=options,
        strategy="fixed-window",
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or DEFAULT_KEY_PREFIX,
        headers_enabled=False,            # set below, so Retry-After and the body always agree
        swallow_errors=True,              # a storage failure never fails a request ...
        in_memory_fallback_enabled=True,  # ... and counting goes on in memory until Redis is back
    )
    limiter.init_app(app)
    for name, rule in LIMITED_ENDPOINTS.items():
        view = app.view_functions.get(name)
        if view is None:
            continue
        limit = limiter.shared_limit(getattr(settings, rule.setting), scope=rule.scope, methods=list(rule.methods))
        app.view_functions[name] = limit(view)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    app.after_request(_limit_headers)
    app.extensions[EXTENSION] = limiter
    log.info("rate limits: checks %s, reports %s, sign-ins %s per client (storage %s)", settings.ratelimit_verify,
             settings.ratelimit_report, settings.ratelimit_login, url.split("://", 1)[0])
    return limiter


def _current() -> RequestLimit | None:
    limiter = current_app.extensions.get(EXTENSION)
    return limiter.current_limit if limiter is not None else None


def _seconds_until(reset_at: float) -> int:
    return max(1, math.ceil(reset_at - time.time()))


def _retry_after(exc: RateLimitExceeded) -> int:
    current = _current()
    if current is not None:
        try:
            return _seconds_until(current.window[0])
        except Exception:  # storage gone between the count and now
            log.warning("rate limit storage unreachable while answering 429", exc_info=True)
    return exc.limit.limit.get_expiry()


def _wants_html() -> bool:
    if request.is_json or request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "application/linkset+json"])
    return best in (None, "text/html")


PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title_zh} · {title_en}</title>
<style>body{{font-family:system-ui,-apple-system,"Noto Sans CJK SC",sans-serif;max-width:34rem;margin:2rem auto;
padding:0 1rem;line-height:1.6;color:#222}}h1{{font-size:1.3rem}}h2{{font-size:1.1rem;margin-top:2rem}}
.small{{color:#666;font-size:.9rem}}</style>
</head>
<body>
<main>
<h1>{title_zh}</h1>
<p>{what_zh}，请在 {seconds} 秒后再试。</p>
<p class="small">为防止批量猜测{guess_zh}，同一网络的{noun_zh}次数有上限（{limit}）。</p>
<section lang="en">
<h2>{title_en}</h2>
<p>Too many {kind} from your network; try again in {seconds} seconds.</p>
<p class="small">To keep {guess_en} from being guessed in bulk, {kind} from one network are limited ({limit}).</p>
</section>
</main>
</body>
</html>
"""

_WORDING = {
    "checks": {"title_zh": "查询过于频繁，请稍后再试", "what_zh": "您所在网络的查询次数过多", "noun_zh": "查询",
               "title_en": "Too many checks", "guess_zh": "验证码", "guess_en": "codes"},
    "reports": {"title_zh": "举报过于频繁，请稍后再试", "what_zh": "您所在网络的举报次数过多", "noun_zh": "举报",
                "title_en": "Too many reports", "guess_zh": "验证码", "guess_en": "codes"},
    "logins": {"title_zh": "登录尝试过于频繁，请稍后再试", "what_zh": "您所在网络的登录尝试次数过多", "noun_zh": "登录",
               "title_en": "Too many sign-in attempts", "guess_zh": "密码", "guess_en": "passwords"},
}


def _too_many_requests(exc: RateLimitExceeded):
    seconds = _retry_after(exc)
    limit = str(exc.limit.limit)
    rule = LIMITED_ENDPOINTS.get(request.endpoint or "")
    kind = rule.kind if rule else "checks"
    if _wants_html():
        html = PAGE.format(seconds=seconds, limit=escape(limit), kind=kind, **_WORDING[kind])
        resp = Response(html, status=429, mimetype="text/html")
        resp.headers["Content-Language"] = "zh-CN, en"
    else:
        resp = error_response(429, "rate_limited",
                              f"too many {kind} from your network (at most {limit}); try again in {seconds} seconds",
                              {"limit": limit, "retry_after": seconds})
    resp.headers["Retry-After"] = str(seconds)
    return resp


def _limit_headers(resp: Response) -> Response:
    # Only refusals carry the X-RateLimit-* headers: reading the window back costs two storage
    # round trips, which would double the limiter's share of every consumer check.
    if resp.status_code != 429:
        return resp
    current = _current()
    if current is None:
        return resp
    try:
        reset_at, remaining = current.window
    except Exception:
        log.warning("rate limit storage unreachable while adding X-RateLimit headers", exc_info=True)
        return resp
    resp.headers["X-RateLimit-Limit"] = str(current.limit.amount)
    resp.headers["X-RateLimit-Remaining"] = str(remaining)
    resp.headers["X-RateLimit-Reset"] = str(math.ceil(reset_at))
    exposed = resp.headers.get("Access-Control-Expose-Headers")
    if exposed:
        have = {h.strip().lower() for h in exposed.split(",")}
        extra = [h for h in EXPOSED_HEADERS if h.lower() not in have]
        if extra:
            resp.headers["Access-Control-Expose-Headers"] = ", ".join([exposed, *extra])
    return resp
