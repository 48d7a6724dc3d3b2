"""Typed settings read from GI_* environment variables.

The embedded default (no variables set) is a working development service on a
SQLite file under ``instance/``. Production mode (``GI_ENV=production``) refuses
settings that are only safe on a developer's machine.
"""
from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

DEFAULT_SECRET = "change-me"
AUDIT_MIN_RETENTION_DAYS = 180
ENVIRONMENTS = ("development", "production", "test")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    instance_path: Path = Path("instance")
    database_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""
    max_upload_mb: int = 20
    token_ttl_days: int = 90
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
    trusted_proxies: int = 0
    log_level: str = "INFO"
    cache_dir: Path | None = None
    # Where files live outside database rows (artwork, evidence photos); default instance/storage.
    storage_dir: Path | None = None
    # Special-mark MAC keys "A:<base64url>,B:<base64url>" and the id of the one used for new batches.
    mark_keys: str = ""
    mark_key_id: str = ""
    # Ed25519 private key (base64url of the 32-byte seed) that signs ledger checkpoints.
    ledger_signing_key: str = ""
    # Copied-label signals (services/signals.py): checks of one code before it is suspect (a GI may set
    # its own), the speed no pack travels at, the shortest distance that counts as travel (browser
    # locations can be off by kilometres), how far outside declared sales regions counts, and how many
    # unknown codes from one client within how many minutes make a burst.
    check_alert_threshold: int = 15
    travel_max_kmh: int = 1000
    travel_min_km: int = 25
    sales_region_tolerance_km: int = 50
    unknown_burst_count: int = 20
    unknown_burst_minutes: int = 10
    # The check log (services/checklog.py): consumer checks are written behind their answers by a
    # flusher, at least every `check_flush_ms` (None: 200, or 0 under env "test": written before
    # the answer), with at most `check_buffer` checks waiting per process.
    # The algorithm suite (services/ledger.py, codes.py, smcrypto.py): "intl" (HMAC-SHA-256 codes, SHA-256
    # chain, Ed25519 checkpoints) or "sm", China's commercial cryptography (HMAC-SM3, SM3, SM2).
    crypto_suite: str = "intl"
    check_flush_ms: int | None = None
    # Hot standbys (PostgreSQL streaming replication) that serve the consumer check's lookup, and how far
    # behind the primary one may be before it is set aside (gi_service/replicas.py).
    database_replica_urls: tuple[str, ...] = ()
    replica_max_lag_ms: int = 1000
    # Off behind pgbouncer (transaction pooling, before 1.21): psycopg then prepares no statement.
    database_prepared_statements: bool = True
    check_buffer: int = 1000
    # Rate limits per client ("60/minute;1000/hour": amounts per window, gi_service/http/ratelimit.py) on the
    # consumer pages and on fake reports; storage "memory://" (one process) or "redis://host:6379/0" (production).
    ratelimit_enabled: bool = True
    ratelimit_storage_url: str = "memory://"
    ratelimit_verify: str = "60/minute;1000/hour"
    ratelimit_report: str = "5/hour;20/day"
    ratelimit_login: str = "10/minute;100/hour"
    # Credit supervision: a JSON file of rules deciding which confirmed violations are serious (default:
    # the built-in rules in services/credit.py), and how long an authorization may go without any mark
    # use before `gi-service authorizations expire` lapses it.
    credit_rules_path: Path | None = None
    authorization_lapse_days: int = 730
    # The audit trail (services/audit.py): records older than this many days are pruned by `gi-service audit
    # prune`; production refuses fewer than 180 (Cybersecurity Law, Art. 21: network logs kept six months).
    audit_retention_days: int = 180
    # Personal data at rest (keystore.py, datacrypt.py): data-encryption keys "ID:SUITE:BASE64URL,..." (suite
    # aes-256-gcm or sm4-gcm) from the environment or a file, and the id of the one that encrypts new data
    # (default: the first key of GI_CRYPTO_SUITE's AEAD). Outside production: instance/data_keys.
    data_keys: str = ""
    data_keys_file: Path | None = None
    data_key_id: str = ""
    # Sign-in (services/passwords.py, services/totp.py): TOTP two-factor sign-in for authority and inspection
    # accounts (None: on in production, off elsewhere); password length, character classes (of lower case,
    # upper case, digits, other) and maximum age in days (0: none); lockout after `lockout_threshold` failures
    # in a row, for `lockout_seconds`, doubling with each further lockout up to `lockout_max_seconds`.
    totp_required: bool | None = None
    password_min_length: int = 10
    password_min_classes: int = 3
    password_max_age_days: int = 90
    lockout_threshold: int = 5
    lockout_seconds: int = 60
    lockout_max_seconds: int = 3600
    # Bulk imports (services/imports.py): the largest file and the most data rows one import takes (plots
    # apart: each is checked against China's land, its GI's area and the counties and stored as a geometry,
    # measured at 7 ms a row on SQLite and 15 ms on PostgreSQL+PostGIS on a 2-core machine, so 500 rows take
    # well under the proxy's 60 s even on a loaded host). `gi-service import --max-rows` raises both.
    import_max_mb: int = 10
    import_max_rows: int = 2_000
    import_max_plot_rows: int = 500
    # Extra keys a test or embedding application passes straight to Flask.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def with_overrides(self, **overrides: Any) -> "Settings":
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off), got {raw!r}")


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read settings from the environment (or a given mapping), then apply overrides."""
    env = os.environ if env is None else env
    app_env = env.get("GI_ENV", "development").strip().lower()
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"GI_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}")
    instance_path = Path(env.get("GI_INSTANCE_PATH") or "instance").resolve()
    port = _int(env, "GI_PORT", 8000, minimum=1)
    settings = Settings(
        env=app_env,
        instance_path=instance_path,
        database_url=env.get("GI_DATABASE_URL", "").strip(),
        secret_key=env.get("GI_SECRET_KEY", "").strip(),
        host=env.get("GI_HOST", "127.0.0.1"),
        port=port,
        public_base_url=env.get("GI_PUBLIC_BASE_URL", "").strip().rstrip("/"),
        max_upload_mb=_int(env, "GI_MAX_UPLOAD_MB", 20, minimum=1),
        token_ttl_days=_int(env, "GI_TOKEN_TTL_DAYS", 90, minimum=1),
        trusted_proxies=_int(env, "GI_TRUSTED_PROXIES", 0, minimum=0),
        log_level=env.get("GI_LOG_LEVEL", "INFO").upper(),
        cache_dir=Path(env["GI_CACHE_DIR"]).resolve() if env.get("GI_CACHE_DIR") else None,
        storage_dir=Path(env["GI_STORAGE_DIR"]).resolve() if env.get("GI_STORAGE_DIR") else None,
        mark_keys=env.get("GI_MARK_KEYS", "").strip(),
        mark_key_id=env.get("GI_MARK_KEY_ID", "").strip(),
        ledger_signing_key=env.get("GI_LEDGER_SIGNING_KEY", "").strip(),
        check_alert_threshold=_int(env, "GI_CHECK_ALERT_THRESHOLD", 15, minimum=2),
        travel_max_kmh=_int(env, "GI_TRAVEL_MAX_KMH", 1000, minimum=1),
        travel_min_km=_int(env, "GI_TRAVEL_MIN_KM", 25, minimum=0),
        sales_region_tolerance_km=_int(env, "GI_SALES_REGION_TOLERANCE_KM", 50, minimum=0),
        unknown_burst_count=_int(env, "GI_UNKNOWN_BURST_COUNT", 20, minimum=2),
        unknown_burst_minutes=_int(env, "GI_UNKNOWN_BURST_MINUTES", 10, minimum=1),
        check_flush_ms=(_int(env, "GI_CHECK_FLUSH_MS", 200, minimum=0)
                        if env.get("GI_CHECK_FLUSH_MS", "").strip() else None),
        check_buffer=_int(env, "GI_CHECK_BUFFER", 1000, minimum=1),
        crypto_suite=env.get("GI_CRYPTO_SUITE", "").strip().lower() or "intl",
        database_replica_urls=tuple(u.strip() for u in env.get("GI_DATABASE_REPLICA_URLS", "").split(",")
                                    if u.strip()),
        replica_max_lag_ms=_int(env, "GI_REPLICA_MAX_LAG_MS", 1000, minimum=0),
        database_prepared_statements=_bool(env, "GI_DATABASE_PREPARED_STATEMENTS", True),
        ratelimit_enabled=_bool(env, "GI_RATELIMIT_ENABLED", True),
        ratelimit_storage_url=env.get("GI_RATELIMIT_STORAGE_URL", "").strip() or "memory://",
        ratelimit_verify=env.get("GI_RATELIMIT_VERIFY", "").strip() or "60/minute;1000/hour",
        ratelimit_report=env.get("GI_RATELIMIT_REPORT", "").strip() or "5/hour;20/day",
        ratelimit_login=env.get("GI_RATELIMIT_LOGIN", "").strip() or "10/minute;100/hour",
        credit_rules_path=Path(env["GI_CREDIT_RULES"]).resolve() if env.get("GI_CREDIT_RULES") else None,
        authorization_lapse_days=_int(env, "GI_AUTHORIZATION_LAPSE_DAYS", 730, minimum=1),
        audit_retention_days=_int(env, "GI_AUDIT_RETENTION_DAYS", 180, minimum=1),
        data_keys=env.get("GI_DATA_KEYS", "").strip(),
        data_keys_file=Path(env["GI_DATA_KEYS_FILE"]).resolve() if env.get("GI_DATA_KEYS_FILE") else None,
        data_key_id=env.get("GI_DATA_KEY_ID", "").strip(),
        totp_required=_bool(env, "GI_TOTP_REQUIRED", True) if env.get("GI_TOTP_REQUIRED", "").strip() else None,
        password_min_length=_int(env, "GI_PASSWORD_MIN_LENGTH", 10, minimum=8),
        password_min_classes=_int(env, "GI_PASSWORD_MIN_CLASSES", 3, minimum=0),
        password_max_age_days=_int(env, "GI_PASSWORD_MAX_AGE_DAYS", 90, minimum=0),
        lockout_threshold=_int(env, "GI_LOCKOUT_THRESHOLD", 5, minimum=1),
        lockout_seconds=_int(env, "GI_LOCKOUT_SECONDS", 60, minimum=1),
        lockout_max_seconds=_int(env, "GI_LOCKOUT_MAX_SECONDS", 3600, minimum=1),
        import_max_mb=_int(env, "GI_IMPORT_MAX_MB", 10, minimum=1),
        import_max_rows=_int(env, "GI_IMPORT_MAX_ROWS", 2_000, minimum=1),
        import_max_plot_rows=_int(env, "GI_IMPORT_MAX_PLOT_ROWS", 500, minimum=1),
    )
    if overrides:
        settings = settings.with_overrides(**overrides)
    return finalize(settings)


def finalize(settings: Settings) -> Settings:
    """Fill embedded defaults and refuse unsafe production settings."""
    if settings.crypto_suite not in ("intl", "sm"):
        raise ConfigError(f"GI_CRYPTO_SUITE must be intl or sm, got {settings.crypto_suite!r}")
    if settings.check_flush_ms is None:
        settings = replace(settings, check_flush_ms=0 if settings.env == "test" else 200)
    if settings.totp_required is None:
        settings = replace(settings, totp_required=settings.is_production)
    if settings.password_min_classes > 4:
        raise ConfigError(f"GI_PASSWORD_MIN_CLASSES counts lower case, upper case, digits and other characters: "
                          f"0 to 4, got {settings.password_min_classes}")
    if settings.lockout_max_seconds < settings.lockout_seconds:
        raise ConfigError("GI_LOCKOUT_MAX_SECONDS must be at least GI_LOCKOUT_SECONDS")
    if settings.data_keys and settings.data_keys_file:
        raise ConfigError("set GI_DATA_KEYS or GI_DATA_KEYS_FILE, not both")
    problems: list[str] = []
    if settings.is_production:
        if not settings.secret_key or settings.secret_key == DEFAULT_SECRET or len(settings.secret_key) < 32:
            problems.append(
                "GI_SECRET_KEY must be set to a random value of at least 32 characters in production "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if not settings.database_url:
            problems.append("GI_DATABASE_URL must point at PostgreSQL in production "
                            "(e.g. postgresql+psycopg://user@host/gi)")
        elif settings.is_sqlite:
            problems.append("GI_DATABASE_URL is SQLite; production needs PostgreSQL with PostGIS")
        if not settings.public_base_url:
            problems.append("GI_PUBLIC_BASE_URL must be set in production (the https address printed in QR codes)")
        if not settings.mark_keys or not settings.mark_key_id:
            problems.append("GI_MARK_KEYS and GI_MARK_KEY_ID must be set in production (`gi-service keys generate` "
                            "prints new values); keep every key that printed labels were made with")
        if not settings.ledger_signing_key:
            problems.append("GI_LEDGER_SIGNING_KEY must be set in production (`gi-service keys generate`)")
        if settings.ratelimit_enabled and settings.ratelimit_storage_url.startswith("memory"):
            problems.append("GI_RATELIMIT_STORAGE_URL must point at Redis in production (e.g. redis://127.0.0.1:6379/0): "
                            "in-memory limits count per worker process and reset on restart")
        if settings.audit_retention_days < AUDIT_MIN_RETENTION_DAYS:
            problems.append(f"GI_AUDIT_RETENTION_DAYS is {settings.audit_retention_days}; audit records are kept at "
                            f"least {AUDIT_MIN_RETENTION_DAYS} days in production (Cybersecurity Law, Art. 21)")
        if not settings.data_keys and not settings.data_keys_file:
            problems.append("GI_DATA_KEYS (or GI_DATA_KEYS_FILE) must be set in production: the keys that encrypt "
                            "personal data at rest (`gi-service keys generate` prints one); keep every key that "
                            "encrypted stored rows")
        else:
            problems += _data_key_problems(settings)
        problems += _qr_problems(settings.public_base_url)
        if problems:
            raise ConfigError("refusing to start in production mode:\n  - " + "\n  - ".join(problems))
        return settings

    database_url = settings.database_url or f"sqlite:///{settings.instance_path / 'gi-service.sqlite3'}"
    secret_key = settings.secret_key or _instance_secret(settings.instance_path)
    public_base_url = settings.public_base_url or f"http://{settings.host}:{settings.port}"
    qr = _qr_problems(public_base_url)
    if qr:
        raise ConfigError(qr[0])
    mark_keys, mark_key_id = settings.mark_keys, settings.mark_key_id
    sm = settings.crypto_suite == "sm"
    if not mark_keys:
        mark_keys = _instance_file(settings.instance_path, "mark_keys.sm" if sm else "mark_keys",
                                   _new_sm_mark_keys if sm else _new_mark_keys)
        mark_key_id = mark_key_id or mark_keys.split(":", 1)[0]
    signing = settings.ledger_signing_key or _instance_file(
        settings.instance_path, "ledger_signing_key.sm" if sm else "ledger_signing_key",
        _new_sm2_signing_key if sm else _new_signing_key)
    data_keys = settings.data_keys
    if not data_keys and settings.data_keys_file is None:
        from .keystore import new_development_keys

        data_keys = _instance_file(settings.instance_path, "data_keys", new_development_keys)
    settings = replace(settings, database_url=database_url, secret_key=secret_key, public_base_url=public_base_url,
                       mark_keys=mark_keys, mark_key_id=mark_key_id, ledger_signing_key=signing, data_keys=data_keys)
    problems = _data_key_problems(settings)
    if problems:
        raise ConfigError(problems[0])
    return settings


def _data_key_problems(settings: Settings) -> list[str]:
    """The data keys parse, the current one exists and encrypts with the suite's AEAD (AES-256-GCM or SM4-GCM)."""
    from .keystore import SUITE_FOR_CRYPTO, KeyStoreError, from_settings

    try:
        store = from_settings(settings)
    except KeyStoreError as exc:
        return [f"GI_DATA_KEYS / GI_DATA_KEYS_FILE / GI_DATA_KEY_ID: {exc}"]
    want = SUITE_FOR_CRYPTO[settings.crypto_suite]
    if store.suite_of(store.current_key_id()) != want:
        return [f"GI_CRYPTO_SUITE={settings.crypto_suite}: the current data key {store.current_key_id()} must be a "
                f"{want} key (add one with `gi-service keys generate` and make it GI_DATA_KEY_ID)"]
    return []


def _qr_problems(base_url: str) -> list[str]:
    from .codes import max_base_url_length

    limit = max_base_url_length("M", 5)
    if base_url and len(base_url.encode()) > limit:
        return [f"GI_PUBLIC_BASE_URL is {len(base_url.encode())} bytes; label QR codes stay within version 5 "
                f"at error correction M only up to {limit} bytes"]
    return []


def _new_mark_keys() -> str:
    return "A:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _new_signing_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _new_sm_mark_keys() -> str:
    return "A:hmac-sm3:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _new_sm2_signing_key() -> str:
    from .smcrypto import N

    scalar = secrets.randbelow(N - 2) + 1
    return "sm2:" + base64.urlsafe_b64encode(scalar.to_bytes(32, "big")).decode().rstrip("=")


def _instance_file(instance_path: Path, name: str, make) -> str:
    """A value generated into instance/ on first run (embedded mode only) and reused afterwards."""
    path = instance_path / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    instance_path.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _instance_secret(instance_path: Path) -> str:
    """Generate a secret key into instance/ on first run and reuse it afterwards."""
    return _instance_file(instance_path, "secret_key", lambda: secrets.token_urlsafe(48))
