"""The operator's commands: data keys, their rotation, resetting two-factor sign-in, ending a lockout."""
from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from sqlalchemy import text

from gi_service import keystore
from gi_service.cli import main
from gi_service.models import Organisation, User

from .conftest import enable_totp, real_account


def run(env, *args):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_keys_generate_prints_a_data_key_of_the_suite():
    for suite, aead in (("intl", "aes-256-gcm"), ("sm", "sm4-gcm")):
        out = run({}, "keys", "generate", "--suite", suite).output
        line = next(l for l in out.splitlines() if l.startswith("GI_DATA_KEYS="))
        store = keystore.SoftwareKeyStore.from_setting(line.split("=", 1)[1])
        assert store.suite_of(store.current_key_id()) == aead


def test_rotate_data_re_encrypts_under_the_new_key(app, database, factory, session, tmp_path):
    """After a new key is added and made current, does `keys rotate-data` move every stored value to it, so the
    old key can go?"""
    producer = factory.producer()
    session.get(Organisation, producer.org.id).contact = "周七 0558-7654321"
    session.commit()
    old = app.config["GI_SETTINGS"].data_keys        # the keys the app encrypted with
    new = keystore.new_key("D2", "aes-256-gcm")
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path / "cli"),
           "GI_DATA_KEYS": old + "," + new, "GI_DATA_KEY_ID": "D2"}
    out = run(env, "keys", "rotate-data").output
    assert "organisations.contact: 1 re-encrypted under D2" in out
    raw = session.execute(text("SELECT contact FROM organisations WHERE id = :id"), {"id": producer.org.id}).scalar_one()
    assert raw.split(":")[2] == "D2"
    only_new = keystore.SoftwareKeyStore.from_setting(new)
    from gi_service import datacrypt

    assert datacrypt.unseal(only_new, raw, "organisations.contact") == "周七 0558-7654321"
    assert "0 re-encrypted" in run(env, "keys", "rotate-data").output


def test_reset_2fa_and_unlock_from_the_command_line(app, database, factory, session, tmp_path, monkeypatch):
    from gi_service import clock
    from tests.factories import ServiceClock, cst

    the_clock = ServiceClock(monkeypatch, cst(2026, 9, 1, 9, 0))
    authority = factory.authority("100000")
    user = real_account(session, authority)
    enable_totp(session, user, the_clock)
    user.locked_until = clock.now() + dt.timedelta(hours=1)
    user.lockouts = 3
    session.commit()
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path / "instance"),
           "GI_DATA_KEYS": app.config["GI_SETTINGS"].data_keys}       # the keys the app encrypted with
    assert "reset" in run(env, "users", "reset-2fa", user.username).output
    assert "unlocked" in run(env, "users", "unlock", user.username).output
    session.expire_all()
    row = session.get(User, user.id)
    assert row.totp_enabled_at is None and row.totp_secret is None
    assert row.locked_until is None and row.lockouts == 0
    assert run(env, "users", "unlock", "nobody").exit_code != 0
