"""Rate limits per client on the consumer pages, fake reports and sign-ins (our own small limiter).

Which endpoints are limited, by which setting, is declared once, in ``LIMITED_ENDPOINTS``:

* the consumer checks — ``GET /v/{code}`` and the GS1 resolver ``GET /01/…`` — share one bucket
  per client (``GI_RATELIMIT_VERIFY``), so the enumeration bound in docs/verification.md holds whichever
  form the guesses take; a GS1 scan that is redirected to its ``/v/`` page counts twice;
* ``POST /v/{code}/location`` has its own bucket with the same limit, so sharing a location does
  not use up checks;
* ``POST /v/{code}/report`` has its own, much smaller limit (``GI_RATELIMIT_REPORT``);
* ``POST /api/v1/auth/login`` and the web sign-in page share one bucket (``GI_RATELIMIT_LOGIN``), with the
  other steps that check a password or a second factor (``POST /api/v1/auth/password``, ``/login/code``,
  ``/login/enrol``).

HEAD on the consumer checks counts like GET (its status code is the verdict); OPTIONS (CORS
preflight) is never limited. The client is ``request.remote_addr`` as Flask sees it
(``GI_TRUSTED_PROXIES`` makes that the X-Forwarded-For client); an IPv6 client is counted by its
/64, the block one subscriber gets, or rotating addresses would escape the limit. Storage keys hold
a keyed hash of that address, never the address itself (the verification page promises that IP
addresses are not stored).

Counting is fixed-window: a client's window starts at its first request and its count resets
when the window ends; every request counts, refused ones too. The limits of one setting
("60/minute;1000/hour") are counted shortest window first, and counting stops at the first limit
that is exceeded (the longer windows are not charged for a refused request). Storage is
``GI_RATELIMIT_STORAGE_URL``: ``memory://`` (one process; the embedded default) or Redis
(``redis://``, ``rediss://``, ``redis+unix://``, ``valkey://``, ``valkeys://``, ``valkey+unix://``;
production, shared by every worker).

**One round trip per check.** With Redis, all the limits of a request are counted by one Lua script
(``_COUNT_SCRIPT``, run with EVALSHA through redis-py's ``register_script``): for each limit it
INCRs the window key, gives a new key its expiry (PEXPIRE: the window starts at the client's first
request) and returns the count and the milliseconds left (PTTL), stopping after the first exceeded
limit. A check therefore costs one network round trip whatever the number of limits (flask-limiter,
used before, made one EVALSHA per limit). Only after Redis lost its script cache (restart,
``SCRIPT FLUSH``) does the first check cost two more (NOSCRIPT → SCRIPT LOAD → EVALSHA).
Why a script rather than one pipeline: a pipeline can be one round trip too (MULTI, then
``SET key 0 PX ms NX``, ``INCR``, ``PTTL`` per limit, EXEC), but it sends three commands per limit
and parses three replies each plus the transaction's, where the script is one command with
two arguments per limit and one flat list of integers back — less work on the client, whose CPU
the limiter is meant to spare; and only a script can stop at the first exceeded limit, as the
limits behaved before. The script is atomic, like the transaction would be. Keys are the ones
flask-limiter wrote (``LIMITS:LIMITER/{prefix}/{client}/{scope}/{amount}/{multiples}/{granularity}``),
so counts survive the upgrade. Redis Cluster and Sentinel URLs are not supported (a script's
keys would have to share one hash slot).

**A Redis that fails never fails a request.** Its client has socket connect and read timeouts of
``REDIS_TIMEOUT_S`` and retries only a refused or dropped connection, once and at once (never a
timeout, and without redis-py's default back-off of seconds). On any Redis error the limiter logs
one WARNING (with "unreachable"; not one per request), counts in memory, and tries Redis again
after ``REDIS_RETRY_S`` seconds — meanwhile a single request probes it, the others stay in
memory. When Redis answers again an INFO line says so, counting returns to Redis and the counts
kept in memory are dropped.

A refused request gets 429 with ``Retry-After`` (seconds until the window of the exceeded limit
ends, at least 1), ``X-RateLimit-Limit`` (that limit's amount), ``X-RateLimit-Remaining`` (0) and
``X-RateLimit-Reset`` (Unix time); allowed answers carry none. The body is JSON in the error
contract (``rate_limited``, details ``limit`` and ``retry_after``) for API and JSON clients, and a
small bilingual page for browsers.

Storage keys start with the Flask setting ``RATELIMIT_KEY_PREFIX`` (default ``gi``; the tests use one
prefix per run and delete only their own keys).

**The framework-free API** (for callers without Flask, e.g. a benchmark's plain WSGI callable)::

    limiter = RateLimiter({"verify": "60/minute;1000/hour"}, "redis://127.0.0.1:6379/0",
                          secret=b"...", key_prefix="gi")
    refusal = limiter.hit("verify", environ["REMOTE_ADDR"])   # counts this request in the scope
    if refusal is not None:          # Refusal(limit="60 per 1 minute", amount=60,
        ...                          #         retry_after=42, reset=1767225600)
    limiter.close()

``RateLimiter(scopes, storage_url="memory://", *, secret, key_prefix="gi")`` takes a mapping
scope → limit string and raises ValueError for a malformed limit or an unsupported storage URL.
``hit(scope, address)`` takes the remote address as a string (IPv4, IPv6 — counted by its /64 — or
IPv4-mapped IPv6; None or "" for none), derives the client key itself (``client_key(address)``, the keyed hash), counts
the request in every limit of the scope and returns None when it is allowed, or a ``Refusal``
naming the exceeded limit (``limit`` text, ``amount``, ``retry_after`` in seconds ≥ 1, ``reset`` as
Unix time). A request without an address is not counted (None; one warning is logged). It is thread-safe; an unknown scope raises
KeyError. ``init_app`` builds one from the settings and ``LIMITED_ENDPOINTS`` and keeps it in
``app.extensions["gi_limiter"]``; its ``before_request`` hook calls ``hit`` before the view runs.
"""
from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import limits
import redis
from flask import Flask, Response, g, request
from markupsafe import escape
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import ConfigError, Settings
from ..errors import error_response

# The logger keeps the name it had before the module moved into http/: log filters select it by name.
log = logging.getLogger("gi_service.ratelimit")

EXTENSION = "gi_limiter"
DEFAULT_KEY_PREFIX = "gi"
# A Redis that does not answer must not hold up a consumer's check for long.
REDIS_TIMEOUT_S = 0.5
# While Redis is failing, it is tried again (by one request) this often.
REDIS_RETRY_S = 5.0
EXPOSED_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
# The namespace flask-limiter's storage used: the same keys keep counting across the upgrade.
KEY_NAMESPACE = "LIMITS:LIMITER"
MEMORY_SCHEMES = ("memory",)
# URL scheme -> the scheme redis-py's from_url understands (Valkey speaks the Redis protocol).
REDIS_SCHEMES = {"redis": "redis", "rediss": "rediss", "redis+unix": "unix",
                 "valkey": "redis", "valkeys": "rediss", "valkey+unix": "unix"}
_REFUSAL = "gi_rate_limit_refusal"     # flask.g attribute of a refused request


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
    # The product page of a GTIN is no check, but anyone may ask it: the same budget as checks.
    "verify.product_page": Rule("ratelimit_verify", "verify", ("GET", "HEAD"), "checks"),
    "verify.record_location": Rule("ratelimit_verify", "verify-location", ("POST",), "checks"),
    "verify.report_fake": Rule("ratelimit_report", "report", ("POST",), "reports"),
    # Password guessing: the API's and the web page's sign-in share one bucket per client.
    "api.login": Rule("ratelimit_login", "login", ("POST",), "logins"),
    "web.login": Rule("ratelimit_login", "login", ("POST",), "logins"),
    # The other steps that check a password or a second factor share it: codes and passwords are guessed alike.
    "api.change_password": Rule("ratelimit_login", "login", ("POST",), "logins"),
    "web.login_code": Rule("ratelimit_login", "login", ("POST",), "logins"),
    "web.login_enrol": Rule("ratelimit_login", "login", ("POST",), "logins"),
}

_ENV_NAMES = {"ratelimit_verify": "GI_RATELIMIT_VERIFY", "ratelimit_report": "GI_RATELIMIT_REPORT",
              "ratelimit_login": "GI_RATELIMIT_LOGIN"}


# --- the client -------------------------------------------------------------------------------------

def normalize_address(addr: str) -> str:
    """The address a client is counted by: IPv4 as is, IPv6 by its /64 (IPv4-mapped as IPv4)."""
    if ":" not in addr:
        return addr            # IPv4 (ip_address accepts only the canonical dotted form) or not an IP
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address() -> str:
    """The current request's client, as counted (see normalize_address)."""
    return normalize_address(request.remote_addr or "")


# --- the limits -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    """A request over its limit: the exceeded limit and when its window ends."""
    limit: str          # the exceeded limit, e.g. "60 per 1 minute"
    amount: int         # its amount (X-RateLimit-Limit)
    retry_after: int    # seconds until its window ends, at least 1 (Retry-After)
    reset: int          # the Unix time its window ends, rounded up (X-RateLimit-Reset)


@dataclass(frozen=True)
class _Limit:
    text: str           # "60 per 1 minute"
    amount: int
    seconds: int        # the window
    suffix: str         # the key's tail: "60/1/minute"


class _Scope:
    __slots__ = ("limits", "args")

    def __init__(self, value: str):
        items = sorted(limits.parse_many(value), key=lambda item: item.GRANULARITY.seconds)   # stable
        self.limits = tuple(_Limit(str(item), item.amount, item.get_expiry(),
                                   f"{item.amount}/{item.multiples}/{item.GRANULARITY.name}") for item in items)
        # The script's ARGV: amount and window in milliseconds for each limit, in order.
        self.args = tuple(n for lim in self.limits for n in (lim.amount, lim.seconds * 1000))


# --- storages: count(keys, scope) -> [(count, ms left), …], one per limit up to the first exceeded ----

class MemoryWindows:
    """Fixed windows in this process (thread-safe); expired windows are dropped as time passes."""

    scheme = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, list] = {}                 # key -> [count, ends (monotonic s)]
        self._ends: list[tuple[float, str]] = []            # heap of (ends, key) to drop them by

    def count(self, keys: Sequence[str], scope: _Scope) -> list[tuple[int, int]]:
        out = []
        now = time.monotonic()
        with self._lock:
            ends, windows = self._ends, self._windows
            while ends and ends[0][0] <= now:
                _, key = heapq.heappop(ends)
                window = windows.get(key)
                if window is not None and window[1] <= now:
                    del windows[key]
            for key, lim in zip(keys, scope.limits):
                window = windows.get(key)
                if window is None:
                    window = windows[key] = [0, now + lim.seconds]
                    heapq.heappush(ends, (window[1], key))
                window[0] += 1
                out.append((window[0], int((window[1] - now) * 1000)))
                if window[0] > lim.amount:
                    break
        return out

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._ends.clear()

    def close(self) -> None:
        self.clear()


# KEYS[i] is the window of limit i, ARGV[2i-1] its amount and ARGV[2i] its length in ms. Returns
# {count, ms left} for each limit, up to and including the first one exceeded.
_COUNT_SCRIPT = """
local out = {}
for i = 1, #KEYS do
  local count = redis.call('INCR', KEYS[i])
  local ttl
  if count == 1 then
    ttl = tonumber(ARGV[2 * i])
    redis.call('PEXPIRE', KEYS[i], ttl)
  else
    ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      ttl = tonumber(ARGV[2 * i])
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
  out[2 * i - 1] = count
  out[2 * i] = ttl
  if count > tonumber(ARGV[2 * i - 1]) then
    break
  end
end
return out
"""


def redis_client(url: str) -> redis.Redis:
    """A client for a Redis (or Valkey) URL with short timeouts and no slow retries."""
    scheme, rest = url.split("://", 1)
    return redis.Redis.from_url(
        f"{REDIS_SCHEMES[scheme]}://{rest}",
        socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S,
        # A refused or dropped connection is retried once, at once; a timeout is not retried.
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)))


class RedisWindows:
    """Fixed windows in Redis, one script call per request; counts in memory while Redis fails."""

    def __init__(self, url: str, retry_s: float = REDIS_RETRY_S) -> None:
        self.scheme = url.split("://", 1)[0]
        self.client = redis_client(url)
        self.script = self.client.register_script(_COUNT_SCRIPT)
        self.fallback = MemoryWindows()
        self.retry_s = retry_s          # while Redis fails, try it again this often
        self.failing = False            # counting in memory since Redis failed
        self._tried_at = 0.0            # monotonic time of the last try while failing
        self._lock = threading.Lock()

    def count(self, keys: Sequence[str], scope: _Scope) -> list[tuple[int, int]]:
        if self.failing:
            with self._lock:
                now = time.monotonic()
                if self.failing and now - self._tried_at < self.retry_s:
                    probe = False
                else:
                    probe = True
                    self._tried_at = now        # the other requests stay in memory meanwhile
            if not probe:
                return self.fallback.count(keys, scope)
        try:
            flat = self.script(keys=keys, args=scope.args)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
            return self.fallback.count(keys, scope)
        if self.failing:
            self._recovered()
        return [(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._tried_at = time.monotonic()
            if self.failing:
                return
            self.failing = True
        log.warning("rate limit storage %s:// unreachable (%s: %s); counting in memory, trying it again every %g s",
                    self.scheme, type(exc).__name__, exc, self.retry_s)

    def _recovered(self) -> None:
        with self._lock:
            if not self.failing:
                return
            self.failing = False
        self.fallback.clear()
        log.info("rate limit storage %s:// answers again; counting there again", self.scheme)

    def close(self) -> None:
        self.client.close()
        self.fallback.close()


# --- the limiter ------------------------------------------------------------------------------------

class RateLimiter:
    """Per-client fixed-window limits by scope; ``hit`` counts a request (see the module docstring)."""

    def __init__(self, scopes: Mapping[str, str], storage_url: str = "memory://", *, secret: bytes | str,
                 key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.scopes = {name: _Scope(value) for name, value in scopes.items()}   # ValueError if malformed
        scheme = storage_url.split("://", 1)[0] if "://" in storage_url else ""
        if scheme in MEMORY_SCHEMES:
            self.storage: MemoryWindows | RedisWindows = MemoryWindows()
        elif scheme in REDIS_SCHEMES:
            self.storage = RedisWindows(storage_url)
        else:
            raise ValueError(f"{storage_url!r} is not a supported storage: use memory:// or "
                             "redis://host:6379/0 (also rediss://, redis+unix://, valkey://)")
        self.key_prefix = key_prefix
        self._key_head = f"{KEY_NAMESPACE}/{key_prefix}/"
        self._mac = hmac.new(secret.encode() if isinstance(secret, str) else secret, b"gi-ratelimit|",
                             hashlib.sha256)
        self._warned_no_address = False

    @property
    def storage_scheme(self) -> str:
        return self.storage.scheme

    def client_key(self, address: str | None) -> str:
        """The keyed hash a client is stored under (never the address itself); "" for no address."""
        addr = normalize_address(address or "")
        if not addr:
            return ""
        mac = self._mac.copy()
        mac.update(addr.encode())
        return mac.hexdigest()[:32]

    def hit(self, scope: str, address: str | None) -> Refusal | None:
        """Count one request of the client at `address` in `scope`; the refusal if it is over a limit."""
        limits_ = self.scopes[scope]
        client = self.client_key(address)
        if not client:
            if not self._warned_no_address:
                self._warned_no_address = True
                log.warning("rate limits: a request without a client address is not counted")
            return None
        head = f"{self._key_head}{client}/{scope}/"
        counted = self.storage.count([head + lim.suffix for lim in limits_.limits], limits_)
        count, ms_left = counted[-1]
        lim = limits_.limits[len(counted) - 1]
        if count <= lim.amount:
            return None
        seconds = ms_left / 1000
        log.info("rate limit %s exceeded in scope %s by client %s", lim.text, scope, client)
        return Refusal(lim.text, lim.amount, max(1, math.ceil(seconds)), math.ceil(time.time() + seconds))

    def close(self) -> None:
        self.storage.close()


# --- Flask ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    scope: str
    methods: frozenset[str]
    kind: str


def _env_name(setting: str) -> str:
    return _ENV_NAMES.get(setting, "GI_" + setting.upper())


def _check_limits(settings: Settings) -> None:
    fields = dict.fromkeys([*_ENV_NAMES, *(rule.setting for rule in LIMITED_ENDPOINTS.values())])
    for field in fields:
        value = getattr(settings, field)
        try:
            limits.parse_many(value)
        except ValueError:
            raise ConfigError(f"{_env_name(field)}: {value!r} is not a rate limit; "
                              "write e.g. '60/minute;1000/hour'") from None


def init_app(app: Flask, settings: Settings) -> RateLimiter | None:
    """Limit the endpoints of LIMITED_ENDPOINTS; call after the blueprints are registered."""
    missing = sorted(name for name in LIMITED_ENDPOINTS if name not in app.view_functions)
    if missing:
        log.warning("rate limits: no endpoint named %s is registered; its limit is not applied", ", ".join(missing))
    if not settings.ratelimit_enabled:
        log.info("rate limits are disabled (GI_RATELIMIT_ENABLED=false)")
        return None
    _check_limits(settings)
    scopes: dict[str, str] = {}
    targets: dict[str, _Target] = {}
    for name, rule in LIMITED_ENDPOINTS.items():
        value = getattr(settings, rule.setting)
        if scopes.setdefault(rule.scope, value) != value:
            raise ConfigError(f"rate limits: scope {rule.scope!r} is given two different limits")
        if name in app.view_functions:
            targets[name] = _Target(rule.scope, frozenset(rule.methods) - {"OPTIONS"}, rule.kind)
    url = settings.ratelimit_storage_url
    try:
        limiter = RateLimiter(scopes, url, secret=settings.secret_key,
                              key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or DEFAULT_KEY_PREFIX)
    except ValueError as exc:
        raise ConfigError(f"GI_RATELIMIT_STORAGE_URL: {exc}") from None

    @app.before_request
    def _rate_limit() -> Response | None:
        target = targets.get(request.endpoint)      # type: ignore[arg-type]
        if target is None or request.method not in target.methods:
            return None
        refusal = limiter.hit(target.scope, request.remote_addr or "")
        if refusal is None:
            return None
        setattr(g, _REFUSAL, refusal)
        return _too_many_requests(refusal, target.kind)

    app.after_request(_limit_headers)
    app.extensions[EXTENSION] = limiter
    log.info("rate limits: checks %s, reports %s, sign-ins %s per client (storage %s)", settings.ratelimit_verify,
             settings.ratelimit_report, settings.ratelimit_login, limiter.storage_scheme)
    return limiter


def _wants_html() -> bool:
    if request.is_json or request.path.startswith("/api/"):
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "application/linkset+json"])
    return best in (None, "text/html")


# The refusal page's one inline stylesheet, and the policy that allows exactly it (by its hash) and nothing
# else: the page carries its policy with it, whichever face it is answered on.
PAGE_CSS = """body{font-family:system-ui,-apple-system,"Noto Sans CJK SC",sans-serif;max-width:34rem;margin:2rem auto;
padding:0 1rem;line-height:1.6;color:#222}h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:2rem}
.small{color:#666;font-size:.9rem}"""
PAGE_POLICY = ("default-src 'none'; style-src 'sha256-" + base64.b64encode(hashlib.sha256(PAGE_CSS.encode()).digest())
               .decode() + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title_zh} · {title_en}</title>
<style>{css}</style>
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


def _too_many_requests(refusal: Refusal, kind: str) -> Response:
    seconds = refusal.retry_after
    limit = refusal.limit
    if _wants_html():
        html = PAGE.format(css=PAGE_CSS, seconds=seconds, limit=escape(limit), kind=kind, **_WORDING[kind])
        resp = Response(html, status=429, mimetype="text/html")
        resp.headers["Content-Language"] = "zh-CN, en"
        resp.headers["Content-Security-Policy"] = PAGE_POLICY
    else:
        resp = error_response(429, "rate_limited",
                              f"too many {kind} from your network (at most {limit}); try again in {seconds} seconds",
                              {"limit": limit, "retry_after": seconds})
    resp.headers["Retry-After"] = str(seconds)
    return resp


def _limit_headers(resp: Response) -> Response:
    # Only refusals carry the X-RateLimit-* headers (an allowed answer would need the window read
    # back). Added here, after the blueprints' hooks, to extend their Access-Control-Expose-Headers.
    refusal: Refusal | None = g.get(_REFUSAL)
    if refusal is None or resp.status_code != 429:
        return resp
    resp.headers["X-RateLimit-Limit"] = str(refusal.amount)
    resp.headers["X-RateLimit-Remaining"] = "0"
    resp.headers["X-RateLimit-Reset"] = str(refusal.reset)
    exposed = resp.headers.get("Access-Control-Expose-Headers")
    if exposed:
        have = {h.strip().lower() for h in exposed.split(",")}
        extra = [h for h in EXPOSED_HEADERS if h.lower() not in have]
        if extra:
            resp.headers["Access-Control-Expose-Headers"] = ", ".join([exposed, *extra])
    return resp
