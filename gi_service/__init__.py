"""gi-service: GI registry, special-mark ledger, consumer verification and supervision."""
from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from .config import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__version__ = "0.1.0"


MAX_ID = 2**31 - 1


def _up_to(limit: str) -> str:
    """A regex for the decimal numbers 1..`limit` without leading zeros."""
    parts = [f"[1-9][0-9]{{0,{len(limit) - 2}}}"] if len(limit) > 1 else []
    for i, digit in enumerate(limit):
        low = "1" if i == 0 else "0"
        rest = len(limit) - i - 1
        if i == len(limit) - 1:
            parts.append(f"{limit[:i]}[{low}-{digit}]")
        elif int(digit) > int(low):
            parts.append(f"{limit[:i]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    return "(?:" + "|".join(parts) + ")"


class IdConverter(IntegerConverter):
    """Row ids in URLs: positive and within a 32-bit column, else the route does not match (404).

    The range is in the regex, not only checked after matching: werkzeug tries the rules' methods
    before their converters, so an out-of-range id checked late answered 405 on a path whose other
    methods exist (PATCH /api/v1/gis/99999999999) instead of 404."""

    regex = _up_to(str(MAX_ID))

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, min=1, max=MAX_ID)


def create_app(settings: Settings | None = None, *, engine: "Engine | None" = None, **overrides: Any) -> Flask:
    """Build the application; importing this package has no side effects.

    `engine`: a database engine (from `db.make_engine`) that the caller owns and disposes, for an embedding
    application or a test run that builds many apps on one pool and one compiled-statement cache; the app
    then closes only what it attached (`close_app`). By default the app makes its own from the settings."""
    from . import db, errors
    from .services import jurisdiction

    settings = settings or load_settings(**overrides)
    app = Flask(__name__, instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        JSON_SORT_KEYS=False,
        GI_SETTINGS=settings,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.is_production,
        # __Host- binds the cookie to this host over https (production); browsers refuse it over http.
        SESSION_COOKIE_NAME="__Host-gi_session" if settings.is_production else "gi_session",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=12),  # web sign-ins end after 12 h without a request
        **settings.extra,
    )
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind nginx/a load balancer the client address (scan IP hashes, rate limits) comes from
        # X-Forwarded-For, but only as many hops as are trusted.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.url_map.converters["id"] = IdConverter
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from .codes import MarkKeyring
    from .config import ConfigError
    from .services.ledger import CheckpointSigner

    try:
        app.extensions["gi_keyring"] = MarkKeyring.from_setting(settings.mark_keys, settings.mark_key_id)
        app.extensions["gi_signer"] = CheckpointSigner(settings.ledger_signing_key)
    except ValueError as exc:
        raise ConfigError(f"GI_MARK_KEYS / GI_MARK_KEY_ID / GI_LEDGER_SIGNING_KEY: {exc}") from None
    from .services import ledger

    if settings.crypto_suite == "sm":
        # Old keys stay usable for what they made (codes, checkpoints); new work must use the SM suite.
        if app.extensions["gi_keyring"].suite_of(settings.mark_key_id) != "hmac-sm3":
            raise ConfigError("GI_CRYPTO_SUITE=sm: the active mark key (GI_MARK_KEY_ID) must be an hmac-sm3 key; add "
                              "one (`gi-service keys generate --suite sm`) and make it active")
        if app.extensions["gi_signer"].algorithm != "SM2":
            raise ConfigError("GI_CRYPTO_SUITE=sm: GI_LEDGER_SIGNING_KEY must be an SM2 key (sm2:…; "
                              "`gi-service keys generate --suite sm`)")
    ledger.configure("sm3" if settings.crypto_suite == "sm" else "sha256")
    from .storage import FileStore

    app.extensions["gi_storage"] = FileStore(settings.storage_dir or settings.instance_path / "storage")
    app.extensions["gi_owns_engine"] = engine is None
    if engine is None:
        engine = db.make_engine(settings.database_url, prepared=settings.database_prepared_statements)
    elif settings.database_replica_urls:
        raise ConfigError("create_app(engine=...) cannot take GI_DATABASE_REPLICA_URLS: the read routing belongs "
                          "to the engine it attaches to; let the app make its engine")
    db.init_app(app, engine)
    from . import datacrypt, keystore

    app.extensions["gi_keystore"] = keystore.from_settings(settings)
    datacrypt.install(app.extensions["gi_engine"], app.extensions["gi_keystore"])
    if settings.database_replica_urls:
        if not settings.database_url.startswith("postgresql"):
            raise ConfigError("GI_DATABASE_REPLICA_URLS needs GI_DATABASE_URL on PostgreSQL (streaming replication)")
        from . import replicas

        router = app.extensions["gi_replicas"] = replicas.attach(app.extensions["gi_engine"],
                                                                 list(settings.database_replica_urls),
                                                                 max_lag_ms=settings.replica_max_lag_ms)
        storage = settings.ratelimit_storage_url
        replicas.init_app(app, router, storage if storage.split(":", 1)[0] in ("redis", "rediss") else None)
    from .services import checklog, signals

    app.extensions["gi_checklog"] = checklog.attach(
        app.extensions["gi_engine"], interval_s=settings.check_flush_ms / 1000, buffer_max=settings.check_buffer,
        on_flush=lambda session, result: signals.on_flush(session, app.config["GI_SETTINGS"], result))
    jurisdiction.configure(settings.cache_dir or settings.instance_path / "cache")
    errors.register_error_handlers(app)

    from .api import bp as api_bp
    from .public.ogc import bp as ogc_bp
    from .public.docs import bp as openapi_bp
    from .public.verify import bp as verify_bp
    from .web import bp as web_bp
    from .web import init_app as init_web

    app.register_blueprint(api_bp)
    app.register_blueprint(ogc_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(verify_bp)
    init_web(app)

    from .http import audit, ratelimit

    audit.init_app(app)  # before the rate limits: a refused sign-in is recorded too
    ratelimit.init_app(app, settings)

    @app.after_request
    def _security_headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        return resp

    return app


def close_app(app: Flask) -> None:
    """Release what `app` holds: its check log is flushed and stopped, and its engine (with the reader twin and
    any standbys) disposed when the app made it; an engine passed to `create_app` stays open for its owner."""
    app.extensions["gi_checklog"].close()
    if app.extensions.get("gi_owns_engine"):
        app.extensions["gi_engine"].dispose()
