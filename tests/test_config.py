"""Settings: safe embedded defaults, and production refuses unsafe ones with a clear message."""
from __future__ import annotations

import pytest

from gi_service import create_app
from gi_service.config import ConfigError, load_settings


def test_embedded_defaults_use_sqlite_under_instance_and_generate_a_secret(tmp_path):
    """With no settings, is the database a SQLite file under instance/ and a secret generated once?"""
    env = {"GI_INSTANCE_PATH": str(tmp_path / "instance")}
    first = load_settings(env)
    assert first.database_url == f"sqlite:///{tmp_path / 'instance' / 'gi-service.sqlite3'}"
    assert len(first.secret_key) >= 32
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0
    assert load_settings(env).secret_key == first.secret_key
    assert first.public_base_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("env, fragment", [
    ({}, "GI_SECRET_KEY must be set"),
    ({"GI_SECRET_KEY": "change-me"}, "GI_SECRET_KEY must be set"),
    ({"GI_SECRET_KEY": "x" * 40, "GI_DATABASE_URL": "sqlite:///x.db"}, "production needs PostgreSQL"),
    ({"GI_SECRET_KEY": "x" * 40}, "GI_DATABASE_URL must point at PostgreSQL"),
    ({"GI_SECRET_KEY": "x" * 40, "GI_DATABASE_URL": "postgresql+psycopg://db/gi"}, "GI_PUBLIC_BASE_URL"),
    ({"GI_SECRET_KEY": "x" * 40, "GI_DATABASE_URL": "postgresql+psycopg://db/gi",
      "GI_PUBLIC_BASE_URL": "https://gi.example.org"}, "GI_MARK_KEYS"),
    ({"GI_SECRET_KEY": "x" * 40, "GI_DATABASE_URL": "postgresql+psycopg://db/gi",
      "GI_PUBLIC_BASE_URL": "https://gi.example.org", "GI_MARK_KEYS": "A:" + "k" * 43, "GI_MARK_KEY_ID": "A"},
     "GI_LEDGER_SIGNING_KEY"),
    ({"GI_SECRET_KEY": "x" * 40, "GI_DATABASE_URL": "postgresql+psycopg://db/gi",
      "GI_PUBLIC_BASE_URL": "https://gi.example.org", "GI_MARK_KEYS": "A:" + "k" * 43, "GI_MARK_KEY_ID": "A",
      "GI_LEDGER_SIGNING_KEY": "s" * 43}, "GI_RATELIMIT_STORAGE_URL must point at Redis"),
    ({"GI_SECRET_KEY": "x" * 40, "GI_DATABASE_URL": "postgresql+psycopg://db/gi",
      "GI_PUBLIC_BASE_URL": "https://gi.example.org", "GI_MARK_KEYS": "A:" + "k" * 43, "GI_MARK_KEY_ID": "A",
      "GI_LEDGER_SIGNING_KEY": "s" * 43, "GI_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0"},
     "GI_DATA_KEYS .or GI_DATA_KEYS_FILE. must be set in production"),
])
def test_production_refuses_unsafe_settings(tmp_path, env, fragment):
    """Does production mode refuse a missing/default secret, SQLite, or no public URL, saying which?"""
    env = {"GI_ENV": "production", "GI_INSTANCE_PATH": str(tmp_path), **env}
    with pytest.raises(ConfigError, match=fragment):
        load_settings(env)
    assert not (tmp_path / "secret_key").exists()


def test_production_with_proper_settings_starts(tmp_path):
    """Does production mode accept PostgreSQL, a real secret and a public URL?"""
    env = {"GI_ENV": "production", "GI_SECRET_KEY": "s" * 48, "GI_INSTANCE_PATH": str(tmp_path),
           "GI_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/none",
           "GI_PUBLIC_BASE_URL": "https://gi.example.org", "GI_MARK_KEYS": "A:" + "k" * 43, "GI_MARK_KEY_ID": "A",
           "GI_LEDGER_SIGNING_KEY": "s" * 43, "GI_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0",
           "GI_DATA_KEYS": "D1:aes-256-gcm:" + "k" * 43}
    app = create_app(load_settings(env))
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("env, fragment", [
    ({"GI_PORT": "eighty"}, "GI_PORT must be an integer"),
    ({"GI_PORT": "0"}, "GI_PORT must be >= 1"),
    ({"GI_ENV": "staging"}, "GI_ENV must be one of"),
    ({"GI_MAX_UPLOAD_MB": "-1"}, "GI_MAX_UPLOAD_MB"),
    ({"GI_RATELIMIT_ENABLED": "maybe"}, "GI_RATELIMIT_ENABLED must be true or false"),
    ({"GI_CHECK_ALERT_THRESHOLD": "1"}, "GI_CHECK_ALERT_THRESHOLD must be >= 2"),
])
def test_malformed_settings_fail_fast(tmp_path, env, fragment):
    """Does a malformed setting stop start-up with a message naming it?"""
    with pytest.raises(ConfigError, match=fragment):
        load_settings({"GI_INSTANCE_PATH": str(tmp_path), **env})


def test_trusted_proxies_make_the_client_address_the_forwarded_one(tmp_path):
    """Behind one trusted proxy, is the client's address taken from X-Forwarded-For (and not without it)?"""
    from flask import request

    for proxies, expected in ((0, "10.0.0.1"), (1, "203.0.113.9")):
        app = create_app(load_settings({"GI_INSTANCE_PATH": str(tmp_path), "GI_TRUSTED_PROXIES": str(proxies)}))
        app.add_url_rule("/_ip", "ip", lambda: request.remote_addr)
        r = app.test_client().get("/_ip", headers={"X-Forwarded-For": "203.0.113.9"},
                                  environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert r.get_data(as_text=True) == expected
