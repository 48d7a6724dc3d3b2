"""Rate limits per client on the consumer checks, locations and fake reports (gi_service/http/ratelimit.py).

Every storage test runs in memory and, with GI_TEST_REDIS_URL, on that real Redis, under a key prefix
unique to the test run and the test; the test deletes only its own keys afterwards. Limits are
"N/hour" or larger: a fixed window starts at a client's first request, so counts do not depend on
how fast the test runs.
"""
from __future__ import annotations

import logging
import re
import random
import socket
import time
import uuid

import flask
import pytest
import redis as redis_lib

from gi_service import create_app
from gi_service.codes import TAG_ALPHABET, format_serial
from gi_service.config import ConfigError, Settings, finalize
from gi_service.http import ratelimit
from gi_service.http.ratelimit import LIMITED_ENDPOINTS
from gi_service.public.verify import gtin14
from tests.conftest import CACHE_DIR, ratelimit_storages

RUN = uuid.uuid4().hex[:10]          # one key prefix per test run, never shared with another run
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
OTHER = {"REMOTE_ADDR": "203.0.113.7"}
GTIN = gtin14("9506000134352")


def random_code(rng: random.Random) -> str:
    """A well-formed code (key A, prefix BBSH, 2026) for a random serial with a random tag."""
    return f"ABBSH26{rng.randrange(1, 10**9):09d}" + "".join(rng.choices(TAG_ALPHABET, k=14))


class Limited:
    """Builds apps with rate limits on, on the session's database and one storage."""

    def __init__(self, database, tmp_path, storage: str, url: str):
        self.database, self.tmp_path, self.storage, self.url = database, tmp_path, storage, url
        self.prefix = f"gi-test-{RUN}-{uuid.uuid4().hex[:8]}"
        self.apps = []
        self.rng = random.Random()

    def app(self, **overrides):
        fields = dict(env="test", instance_path=self.tmp_path / "instance", database_url=self.database.url,
                      secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                      public_base_url="http://gi.test", ratelimit_storage_url=self.url,
                      extra={"RATELIMIT_KEY_PREFIX": self.prefix})
        fields.update(overrides)
        application = create_app(finalize(Settings(**fields)))
        application.config["TESTING"] = True
        self.apps.append(application)
        return application

    def client(self, **overrides):
        return self.app(**overrides).test_client()

    def code(self) -> str:
        return random_code(self.rng)

    def redis_keys(self) -> list[str]:
        r = redis_lib.Redis.from_url(self.url)
        return [k.decode() for k in r.scan_iter(match=f"*LIMITER/{self.prefix}/*")]

    def close(self) -> None:
        for application in self.apps:
            application.extensions["gi_engine"].dispose()
            if "gi_limiter" in application.extensions:
                application.extensions["gi_limiter"].close()
        if self.apps:
            self.database.clear()
        if self.storage == "redis":
            r = redis_lib.Redis.from_url(self.url)
            keys = list(r.scan_iter(match=f"*LIMITER/{self.prefix}/*"))
            if keys:
                r.delete(*keys)


@pytest.fixture(params=ratelimit_storages())
def limited(request, database, tmp_path):
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "memory://"
    lim = Limited(database, tmp_path, request.param, url)
    yield lim
    lim.close()


def test_every_limited_endpoint_is_registered(app):
    """Does every endpoint named in the table of limits exist, with the methods the table limits?

    (verify.report_fake is written separately; until it lands this test names it.)
    """
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods or ())
    missing = [name for name in LIMITED_ENDPOINTS if name not in app.view_functions]
    assert not missing, f"limited endpoints that are not registered: {missing}"
    for name, rule in LIMITED_ENDPOINTS.items():
        assert set(rule.methods) <= methods[name], (name, rule.methods, methods[name])
        assert "OPTIONS" not in rule.methods
        # A HEAD's status code is the verdict: where GET is limited as a check, HEAD must be too.
        assert ("HEAD" in rule.methods) == (rule.setting == "ratelimit_verify" and "GET" in rule.methods)


def test_checks_are_limited_per_client(limited):
    """After N checks from one client, is the next one refused with 429 while another client is still answered?"""
    client = limited.client(ratelimit_verify="3/hour")
    for _ in range(3):
        r = client.get(f"/v/{limited.code()}", headers=JSON)
        assert r.status_code == 404 and r.json["error"] == "unknown"
        assert "X-RateLimit-Remaining" not in r.headers      # allowed answers carry no window read-back
    r = client.get(f"/v/{limited.code()}", headers=JSON)
    assert r.status_code == 429 and r.json["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) > 0
    assert r.headers["X-RateLimit-Limit"] == "3" and r.headers["X-RateLimit-Remaining"] == "0"

    for _ in range(3):                                       # another client has its own three
        r = client.get(f"/v/{limited.code()}", headers=JSON, environ_base=OTHER)
        assert r.status_code == 404
    assert client.get(f"/v/{limited.code()}", headers=JSON, environ_base=OTHER).status_code == 429
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 429
    if limited.storage == "redis":
        keys = limited.redis_keys()
        assert len(keys) == 2, keys                       # one bucket per client, in Redis
        assert not any("127.0.0.1" in k or "203.0.113.7" in k for k in keys), keys


def test_the_product_page_shares_the_checks_budget(limited):
    """Is the product page of a GTIN (/p/{gtin}, no check but open to anyone) counted in the same per-client
    budget as the checks, so it cannot be asked without limit?"""
    client = limited.client(ratelimit_verify="2/hour")
    assert client.get(f"/p/{GTIN}", headers=JSON).status_code == 404           # no batch carries it
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
    r = client.get(f"/p/{GTIN}", headers=JSON)
    assert r.status_code == 429 and r.json["error"] == "rate_limited" and int(r.headers["Retry-After"]) > 0


def test_the_gs1_resolver_and_the_code_page_share_one_bucket(limited):
    """Do checks through /01/…?v= and /v/ count against the same per-client limit (one enumeration budget)?"""
    client = limited.client(ratelimit_verify="3/hour")
    serial = format_serial("BBSH", 2026, 7)
    gs1 = f"/01/{GTIN}/21/{serial}?v=A" + "".join(random.choices(TAG_ALPHABET, k=14))
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
    assert client.get(gs1, headers=JSON).status_code == 404
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
    r = client.get(gs1, headers=JSON)
    assert r.status_code == 429 and r.json["error"] == "rate_limited"
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 429


def test_429_json_follows_the_error_contract(limited):
    """Does a refused JSON client get error, message, details.limit/retry_after, request_id and the headers?"""
    client = limited.client(ratelimit_verify="2/hour")
    for _ in range(2):
        client.get(f"/v/{limited.code()}", headers=JSON)
    r = client.get(f"/v/{limited.code()}", headers={**JSON, "X-Request-Id": "rl-test-0001"})
    assert r.status_code == 429 and r.mimetype == "application/json"
    body = r.json
    assert set(body) == {"error", "message", "details", "request_id"}
    assert body["error"] == "rate_limited" and body["request_id"] == "rl-test-0001"
    assert body["details"]["limit"] == "2 per 1 hour"
    retry = body["details"]["retry_after"]
    assert isinstance(retry, int) and 1 <= retry <= 3600
    assert r.headers["Retry-After"] == str(retry)
    assert f"{retry} seconds" in body["message"]
    assert r.headers["X-RateLimit-Limit"] == "2" and r.headers["X-RateLimit-Remaining"] == "0"
    assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
    exposed = r.headers["Access-Control-Expose-Headers"]
    assert "Retry-After" in exposed and "X-RateLimit-Remaining" in exposed
    assert r.headers["Cache-Control"] == "no-store"


def test_429_for_a_browser_is_a_bilingual_page(limited):
    """Does a browser get a small self-contained page, Chinese first, saying when to try again?"""
    client = limited.client(ratelimit_verify="1/hour")
    assert client.get(f"/v/{limited.code()}", headers=HTML).status_code == 404
    r = client.get(f"/v/{limited.code()}", headers=HTML)
    assert r.status_code == 429 and r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    seconds = r.headers["Retry-After"]
    zh = page.index("查询过于频繁，请稍后再试")
    en = page.index(f"Too many checks from your network; try again in {seconds} seconds")
    assert zh < en
    assert f"请在 {seconds} 秒后再试" in page
    assert "<script" not in page and "src=" not in page and "<link" not in page
    # A client that asks for nothing in particular (curl) gets the page too, like the verification page.
    r = client.get(f"/v/{limited.code()}")
    assert r.status_code == 429 and r.mimetype == "text/html"


def test_locations_have_their_own_bucket(limited):
    """Is POST /v/{code}/location limited separately from checks, and answered in JSON when refused?"""
    client = limited.client(ratelimit_verify="2/hour")
    code = limited.code()
    for _ in range(2):
        assert client.get(f"/v/{code}", headers=JSON).status_code == 404
    assert client.get(f"/v/{code}", headers=JSON).status_code == 429
    body = {"token": "not-a-token", "lat": 30.25, "lon": 120.15}
    for _ in range(2):
        r = client.post(f"/v/{code}/location", json=body)
        assert r.status_code == 403, r.json       # counted, then refused for its token
    r = client.post(f"/v/{code}/location", json=body, headers={"Accept": "*/*"})
    assert r.status_code == 429 and r.json["error"] == "rate_limited"
    assert r.headers["Retry-After"] == str(r.json["details"]["retry_after"])


def test_reports_are_limited_by_their_own_setting(limited):
    """Is POST /v/{code}/report refused after GI_RATELIMIT_REPORT reports, without touching the check budget?"""
    app = limited.app(ratelimit_verify="100/hour", ratelimit_report="2/hour")
    client = app.test_client()
    code = limited.code()
    assert app.url_map.bind("gi.test").match(f"/v/{code}/report", method="POST")[0] == "verify.report_fake"
    for _ in range(2):
        r = client.post(f"/v/{code}/report", json={}, headers=JSON)
        assert r.status_code != 429, r.json      # whatever the report's own answer to an empty body
    r = client.post(f"/v/{code}/report", json={}, headers=JSON)
    assert r.status_code == 429 and r.json["details"]["limit"] == "2 per 1 hour"
    assert "reports" in r.json["message"]
    r = client.post(f"/v/{code}/report", data={"reason": "x"}, headers=HTML)
    assert r.status_code == 429 and "举报过于频繁，请稍后再试" in r.get_data(as_text=True)
    assert client.get(f"/v/{code}", headers=JSON).status_code == 404


def test_sign_in_attempts_are_limited_across_the_api_and_the_web_page(limited, factory):
    """Do password guesses against POST /api/v1/auth/login and the web sign-in page share one bucket per
    client (GI_RATELIMIT_LOGIN), refused with 429 and a page that says sign-in attempts, not checks?"""
    client = limited.client(ratelimit_login="3/hour", ratelimit_verify="100/hour")
    for _ in range(2):
        r = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong password"},
                        headers=JSON)
        assert r.status_code == 401, r.json
    form = client.get("/login", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    r = client.post("/login", data={"username": "nobody", "password": "wrong password", "csrf_token": token},
                    headers=HTML)
    assert r.status_code != 429 and "登录" in r.get_data(as_text=True)
    r = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong password"}, headers=JSON)
    assert r.status_code == 429 and r.json["details"]["limit"] == "3 per 1 hour"
    page = client.post("/login", data={"username": "x", "password": "y", "csrf_token": token},
                       headers=HTML).get_data(as_text=True)
    assert "登录尝试过于频繁" in page and "passwords" in page
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404     # checks have their own budget


def test_head_counts_as_a_check_and_options_not_at_all(limited):
    """Does a HEAD use up the check budget like a GET (its status code is the verdict: an enumeration oracle
    otherwise), while CORS preflights (OPTIONS) are never counted or refused?"""
    client = limited.client(ratelimit_verify="3/hour")
    code = limited.code()
    for _ in range(5):
        assert client.options(f"/v/{code}").status_code == 200
        assert client.options(f"/v/{code}/location").status_code == 200
    assert client.head(f"/v/{code}").status_code == 404
    assert client.get(f"/v/{code}", headers=JSON).status_code == 404
    assert client.head(f"/v/{code}").status_code == 404
    r = client.head(f"/v/{code}")
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert client.get(f"/v/{code}", headers=JSON).status_code == 429


def test_workers_share_the_count_only_through_redis(limited):
    """Do two app processes (gunicorn workers) count one client together on Redis, and separately in memory?"""
    first = limited.client(ratelimit_verify="3/hour")
    second = limited.client(ratelimit_verify="3/hour")
    for client in (first, second, first):
        assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
    r = second.get(f"/v/{limited.code()}", headers=JSON)
    if limited.storage == "redis":
        assert r.status_code == 429
    else:
        assert r.status_code == 404
        assert second.get(f"/v/{limited.code()}", headers=JSON).status_code == 404       # its 2nd and 3rd
        assert second.get(f"/v/{limited.code()}", headers=JSON).status_code == 429


def test_other_endpoints_are_not_limited(limited):
    """Once a client's checks are refused, do the API and the resolver description still answer it?"""
    client = limited.client(ratelimit_verify="1/hour")
    client.get(f"/v/{limited.code()}", headers=JSON)
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 429
    for path in ("/api/v1/gis", "/.well-known/gs1resolver", "/openapi.json"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert "X-RateLimit-Limit" not in r.headers


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(limited):
    """With GI_TRUSTED_PROXIES=1, are clients told apart by X-Forwarded-For, and without it, not?"""
    proxied = limited.client(ratelimit_verify="1/hour", trusted_proxies=1)
    a, b = {"X-Forwarded-For": "198.51.100.1", **JSON}, {"X-Forwarded-For": "198.51.100.2", **JSON}
    assert proxied.get(f"/v/{limited.code()}", headers=a).status_code == 404
    assert proxied.get(f"/v/{limited.code()}", headers=a).status_code == 429
    assert proxied.get(f"/v/{limited.code()}", headers=b).status_code == 404

    direct = limited.client(ratelimit_verify="1/hour")
    c, d = {"X-Forwarded-For": "198.51.100.3", **JSON}, {"X-Forwarded-For": "198.51.100.4", **JSON}
    assert direct.get(f"/v/{limited.code()}", headers=c, environ_base=OTHER).status_code == 404
    assert direct.get(f"/v/{limited.code()}", headers=d, environ_base=OTHER).status_code == 429


def test_an_ipv6_client_is_counted_by_its_64(limited):
    """Do addresses in one IPv6 /64 share a count, while the next /64 has its own?"""
    client = limited.client(ratelimit_verify="1/hour")
    assert client.get(f"/v/{limited.code()}", headers=JSON,
                      environ_base={"REMOTE_ADDR": "2001:db8:1:2::1"}).status_code == 404
    assert client.get(f"/v/{limited.code()}", headers=JSON,
                      environ_base={"REMOTE_ADDR": "2001:db8:1:2:aaaa:bbbb:cccc:dddd"}).status_code == 429
    assert client.get(f"/v/{limited.code()}", headers=JSON,
                      environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"}).status_code == 404


def test_disabled_rate_limits_never_refuse(limited):
    """With GI_RATELIMIT_ENABLED=false, is a client never refused and given no rate-limit headers?"""
    app = limited.app(ratelimit_enabled=False, ratelimit_verify="1/hour")
    client = app.test_client()
    for _ in range(5):
        r = client.get(f"/v/{limited.code()}", headers=JSON)
        assert r.status_code == 404 and "X-RateLimit-Limit" not in r.headers
    assert "gi_limiter" not in app.extensions


def test_an_unreachable_redis_fails_open(database, tmp_path, caplog):
    """With Redis down, do checks keep their normal answers, a warning get logged, and counting go on in memory?"""
    lim = Limited(database, tmp_path, "redis-down", "redis://127.0.0.1:1/0")
    try:
        client = lim.client(ratelimit_verify="3/hour")
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                r = client.get(f"/v/{lim.code()}", headers=JSON)
                assert r.status_code == 404 and r.json["error"] == "unknown"
        assert any(rec.levelno == logging.WARNING and "unreachable" in rec.getMessage() for rec in caplog.records)
        assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 429
        assert client.get(f"/v/{lim.code()}", headers=JSON, environ_base=OTHER).status_code == 404
    finally:
        lim.close()


def test_a_malformed_limit_is_refused_at_start_up(database, tmp_path):
    """Does a limit that cannot be parsed stop the app from starting, naming the variable?"""
    lim = Limited(database, tmp_path, "memory", "memory://")
    with pytest.raises(ConfigError, match="GI_RATELIMIT_REPORT"):
        lim.app(ratelimit_report="five an hour")


def test_a_missing_endpoint_is_named_at_start_up(limited, monkeypatch, caplog):
    """Does a table entry naming no endpoint get a warning at start-up while the other limits still apply?"""
    table = {**LIMITED_ENDPOINTS, "verify.no_such_view": ratelimit.Rule("ratelimit_verify", "x", ("GET",), "checks")}
    monkeypatch.setattr(ratelimit, "LIMITED_ENDPOINTS", table)
    with caplog.at_level(logging.WARNING, logger="gi_service.ratelimit"):
        client = limited.client(ratelimit_verify="1/hour")
    assert any("verify.no_such_view" in rec.getMessage() for rec in caplog.records)
    client.get(f"/v/{limited.code()}", headers=JSON)
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 429


# --- the limiter itself: round trips, a failing Redis, the framework-free API ---------------------------------

class RedisTraffic:
    """Counts what one Redis client writes to and reads from its connections (other clients of the
    same server, e.g. tests running at the same time, are not seen)."""

    def __init__(self, monkeypatch, client: redis_lib.Redis):
        self.commands: list[str] = []       # one entry per write to a socket: the first command's name
        self.reads = 0                      # replies read
        self.connections = 0                # connections handed out by the pool (attempts)
        self.monkeypatch = monkeypatch
        pool = client.connection_pool
        get_connection = pool.get_connection

        def counted_get_connection(*args, **kwargs):
            self.connections += 1
            conn = get_connection(*args, **kwargs)
            if getattr(conn, "_gi_traffic", None) is not self:
                self._watch(conn)
            return conn

        monkeypatch.setattr(pool, "get_connection", counted_get_connection)

    def _watch(self, conn) -> None:
        send, read = conn.send_packed_command, conn.read_response

        def send_packed_command(command, *args, **kwargs):
            data = command if isinstance(command, bytes) else b"".join(bytes(part) for part in command)
            self.commands.append(data.split(b"\r\n")[2].decode().upper())
            return send(command, *args, **kwargs)

        def read_response(*args, **kwargs):
            self.reads += 1
            return read(*args, **kwargs)

        self.monkeypatch.setattr(conn, "send_packed_command", send_packed_command)
        self.monkeypatch.setattr(conn, "read_response", read_response)
        self.monkeypatch.setattr(conn, "_gi_traffic", self, raising=False)

    def reset(self) -> None:
        self.commands.clear()
        self.reads = self.connections = 0


def test_one_check_costs_one_redis_round_trip(limited, monkeypatch):
    """Does one check under "60/minute;1000/hour" cost exactly one Redis round trip (one EVALSHA written, one
    reply read) that counts both windows — and, in memory, no network call at all?"""
    app = limited.app(ratelimit_verify="60/minute;1000/hour")
    client = app.test_client()
    limiter = app.extensions["gi_limiter"]
    client_key = limiter.client_key("127.0.0.1")
    if limited.storage == "memory":
        def no_network(*args, **kwargs):
            raise AssertionError("the in-memory limiter opened a connection")
        monkeypatch.setattr(socket.socket, "connect", no_network)
        for _ in range(3):
            assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
        windows = {key.rsplit("/", 1)[-1]: count for key, (count, _) in limiter.storage._windows.items()
                   if client_key in key}
        assert windows == {"minute": 3, "hour": 3}, limiter.storage._windows
        return

    # The first check opens the connection (and loads the script if this Redis has not seen it).
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
    traffic = RedisTraffic(monkeypatch, limiter.storage.client)
    assert client.get(f"/v/{limited.code()}", headers=JSON).status_code == 404
    assert traffic.commands == ["EVALSHA"] and traffic.reads == 1, (traffic.commands, traffic.reads)

    r = redis_lib.Redis.from_url(limited.url)
    windows = {k.rsplit("/", 1)[-1]: int(r.get(k)) for k in limited.redis_keys() if client_key in k}
    assert windows == {"minute": 2, "hour": 2}                  # that one round trip counted both windows

    traffic.reset()
    for _ in range(5):                                     # and so on, one per check
        client.get(f"/v/{limited.code()}", headers=JSON)
    assert limiter.hit("verify", "192.0.2.55") is None     # the framework-free API too
    assert traffic.commands == ["EVALSHA"] * 6 and traffic.reads == 6, (traffic.commands, traffic.reads)


@pytest.mark.parametrize("storage", [s for s in ratelimit_storages() if s == "redis"])
def test_redis_going_away_and_coming_back(storage, redis_url, database, tmp_path, monkeypatch, caplog):
    """When Redis stops answering, do checks go on being answered and counted in memory, with one warning (not
    one per request) and Redis tried again only every retry interval; and when it answers again, is that logged
    and does counting go back to Redis?"""
    lim = Limited(database, tmp_path, storage, redis_url)
    caplog.set_level(logging.INFO, logger="gi_service.ratelimit")
    try:
        app = lim.app(ratelimit_verify="3/hour")
        client = app.test_client()
        windows = app.extensions["gi_limiter"].storage
        assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 404          # 1, in Redis
        [key] = lim.redis_keys()
        r = redis_lib.Redis.from_url(lim.url)
        assert int(r.get(key)) == 1

        # Redis goes away: the limiter's client now reaches a port where nothing listens.
        working_pool = windows.client.connection_pool
        dead_pool = redis_lib.ConnectionPool.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5,
                                                      socket_timeout=0.5)
        monkeypatch.setattr(windows.client, "connection_pool", dead_pool)
        dead = RedisTraffic(monkeypatch, windows.client)
        windows.retry_s = 60.0
        for _ in range(3):
            answer = client.get(f"/v/{lim.code()}", headers=JSON)
            assert answer.status_code == 404 and answer.json["error"] == "unknown"     # 1..3, in memory
        assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 429        # 4 > 3, in memory
        assert client.get(f"/v/{lim.code()}", headers=JSON, environ_base=OTHER).status_code == 404
        assert dead.connections == 1, "Redis was tried again before the retry interval was over"
        windows.retry_s = 0.0                                  # from now on every request tries Redis
        for _ in range(2):
            assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 429
        assert dead.connections == 3
        warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
        assert len(warnings) == 1 and "unreachable" in warnings[0], warnings
        assert int(r.get(key)) == 1                            # nothing reached Redis meanwhile
        dead_pool.disconnect()

        # Redis answers again: the next check counts there (2 of 3: allowed, where memory would refuse it).
        monkeypatch.setattr(windows.client, "connection_pool", working_pool)
        caplog.clear()
        assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 404
        assert any(rec.levelno == logging.INFO and "answers again" in rec.getMessage() for rec in caplog.records)
        assert not any(rec.levelno >= logging.WARNING for rec in caplog.records)
        assert int(r.get(key)) == 2 and not windows.failing
        assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 404          # 3
        assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 429          # 4 > 3
        assert int(r.get(key)) == 4
    finally:
        lim.close()


def test_a_redis_that_hangs_holds_up_one_check_per_retry_interval(database, tmp_path, monkeypatch, caplog):
    """With a Redis that accepts connections but never answers, does only the first check wait (for the
    socket timeout, without redis-py's multi-second retries), the next ones count in memory at once, and one
    warning say so?"""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)                        # the kernel completes the handshake; nobody ever answers
    lim = Limited(database, tmp_path, "redis-hangs", f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
    try:
        client = lim.client(ratelimit_verify="2/hour")
        traffic = RedisTraffic(monkeypatch, lim.apps[0].extensions["gi_limiter"].storage.client)
        with caplog.at_level(logging.WARNING, logger="gi_service.ratelimit"):
            started = time.monotonic()
            assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 404
            first = time.monotonic() - started
            assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 404
            assert client.get(f"/v/{lim.code()}", headers=JSON).status_code == 429
        assert first < ratelimit.REDIS_TIMEOUT_S * 2 + 0.5, f"the first check waited {first:.2f} s"
        assert traffic.connections == 1
        warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
        assert len(warnings) == 1 and "unreachable" in warnings[0], warnings
    finally:
        lim.close()
        silent.close()


@pytest.fixture(params=ratelimit_storages())
def bare_storage(request):
    """(storage URL, key prefix) for a limiter used without Flask; its Redis keys are deleted afterwards."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else "memory://"
    prefix = f"gi-test-{RUN}-{uuid.uuid4().hex[:8]}"
    yield url, prefix
    if request.param == "redis":
        r = redis_lib.Redis.from_url(url)
        keys = list(r.scan_iter(match=f"*LIMITER/{prefix}/*"))
        if keys:
            r.delete(*keys)


def test_the_framework_free_api_refuses_after_n_hits(bare_storage):
    """Without Flask (as a plain WSGI callable would use it), does RateLimiter.hit(scope, address) allow N hits,
    refuse the next with the exceeded limit and a retry_after/reset that end its window, count clients
    apart (IPv6 by /64, IPv4-mapped as IPv4), and store no address?"""
    url, prefix = bare_storage
    limiter = ratelimit.RateLimiter({"verify": "3/minute;5/hour", "report": "10/minute;2/hour"}, url,
                                    secret=b"bench-secret-" + b"x" * 32, key_prefix=prefix)
    try:
        assert not flask.has_app_context() and not flask.has_request_context()
        address = "198.51.100.23"
        for _ in range(3):
            assert limiter.hit("verify", address) is None
        refusal = limiter.hit("verify", address)
        assert refusal is not None
        assert (refusal.limit, refusal.amount) == ("3 per 1 minute", 3)
        assert 50 <= refusal.retry_after <= 60
        assert abs(refusal.reset - (time.time() + refusal.retry_after)) <= 2
        assert limiter.hit("verify", address).limit == "3 per 1 minute"

        assert limiter.hit("verify", "198.51.100.24") is None                 # another client
        assert limiter.hit("verify", "::ffff:198.51.100.24") is None          # the same one, IPv4-mapped
        for _ in range(3):
            assert limiter.hit("verify", "2001:db8:5:6::1") is None
        assert limiter.hit("verify", "2001:db8:5:6:ffff::2") is not None      # same /64
        assert limiter.hit("verify", "2001:db8:5:7::1") is None               # next /64

        for _ in range(2):                                                    # the hour limit is exceeded
            assert limiter.hit("report", address) is None                     # first: its window is named
        refusal = limiter.hit("report", address)
        assert (refusal.limit, refusal.amount) == ("2 per 1 hour", 2)
        assert 3500 <= refusal.retry_after <= 3600

        assert limiter.hit("verify", "") is None                              # no address: not counted
        assert limiter.hit("verify", None) is None                            # (WSGI without REMOTE_ADDR)
        with pytest.raises(KeyError):
            limiter.hit("no-such-scope", address)
        assert "198.51.100.23" not in limiter.client_key(address)
        if url != "memory://":
            keys = [k.decode() for k in redis_lib.Redis.from_url(url).scan_iter(match=f"*LIMITER/{prefix}/*")]
            assert keys and not any("198.51" in k or "2001:db8" in k for k in keys), keys
    finally:
        limiter.close()


def test_memory_windows_expire_and_are_dropped(monkeypatch):
    """In memory, does a window end after its length (counting starts again) and is an ended window dropped,
    so the store does not grow with every client ever seen?"""
    now = [1000.0]
    clock = type("Clock", (), {"monotonic": staticmethod(lambda: now[0]), "time": staticmethod(time.time)})
    monkeypatch.setattr(ratelimit, "time", clock)
    limiter = ratelimit.RateLimiter({"s": "2/minute;3/hour"}, "memory://", secret=b"k" * 32)
    for _ in range(2):
        assert limiter.hit("s", "192.0.2.1") is None
    refusal = limiter.hit("s", "192.0.2.1")
    assert refusal.limit == "2 per 1 minute" and refusal.retry_after == 60
    now[0] += 30
    assert limiter.hit("s", "192.0.2.1").retry_after == 30
    now[0] += 30                                       # the minute is over; the hour counted 3 (not 4)
    refusal = limiter.hit("s", "192.0.2.1")
    assert refusal is None
    assert limiter.hit("s", "192.0.2.1").limit == "3 per 1 hour"
    assert len(limiter.storage._windows) == 2
    now[0] += 3600
    assert limiter.hit("s", "192.0.2.2") is None       # any later count drops the ended windows
    assert all(limiter.client_key("192.0.2.1") not in key for key in limiter.storage._windows)
    assert len(limiter.storage._windows) == 2
