"""Password rules, forced changes and the temporary lockout, on the API and the service."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gi_service.errors import ValidationFailed
from gi_service.models import UnknownNameFailures, User
from gi_service.services import passwords
from gi_service.services.passwords import SignInPolicy

from .conftest import STRONG, real_account


@pytest.mark.parametrize("password, problem", [
    ("Sh0rt!", "at least 10 characters"),
    ("alllowercaseletters", "at least 3 kinds"),
    ("Password123", "commonly used passwords"),
    ("Qwertyuiop1!x-zhangwei", "not containing the username"),
])
def test_weak_passwords_are_refused_saying_why(password, problem):
    """Is each broken rule named in the refusal (422 weak_password, field password)?"""
    with pytest.raises(ValidationFailed) as exc:
        passwords.check_strength(password, SignInPolicy(), username="zhangwei")
    assert exc.value.code == "weak_password" and problem in exc.value.message
    assert exc.value.details[0]["field"] == "password"


def test_a_good_password_passes_and_the_list_is_bundled():
    """Is the bundled common-password list there (20,000 entries), and does a strong password pass it?"""
    assert len(passwords.common_passwords()) > 19_000 and "123456" in passwords.common_passwords()
    passwords.check_strength(STRONG, SignInPolicy(), username="zhangwei")


def test_lockout_lengths_grow_and_are_capped():
    policy = SignInPolicy(lockout_seconds=60, lockout_max_seconds=300)
    assert [policy.lockout_for(n) for n in (1, 2, 3, 4, 10, 100)] == [60, 120, 240, 300, 300, 300]


def login(client, username, password, **extra):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password, **extra})


def test_an_account_made_by_an_authority_must_change_its_password_first(strict_client, strict_factory):
    """Is a user created by an authority refused a token until the password it was given is changed, and does
    /auth/password change it and sign in at once?"""
    authority = strict_factory.authority()
    producer = strict_factory.producer()
    r = strict_client.post("/api/v1/users", headers=authority.headers,
                           json={"username": "wang.li", "password": "Given-by-0ffice", "organisation_id": producer.org.id})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["must_change_password"] is True
    r = login(strict_client, "wang.li", "Given-by-0ffice")
    assert r.status_code == 403 and r.get_json()["error"] == "password_change_required"
    r = strict_client.post("/api/v1/auth/password", json={"username": "wang.li", "password": "Given-by-0ffice",
                                                          "new_password": "password"})
    assert r.status_code == 422 and r.get_json()["error"] == "weak_password"
    r = strict_client.post("/api/v1/auth/password", json={"username": "wang.li", "password": "Given-by-0ffice",
                                                          "new_password": "Given-by-0ffice"})
    assert r.status_code == 422 and "differ" in r.get_json()["message"]
    r = strict_client.post("/api/v1/auth/password", json={"username": "wang.li", "password": "Given-by-0ffice",
                                                          "new_password": STRONG})
    assert r.status_code == 201 and r.get_json()["user"]["must_change_password"] is False
    assert strict_client.get("/api/v1/me", headers={"Authorization": "Bearer " + r.get_json()["token"]}).status_code == 200
    assert login(strict_client, "wang.li", STRONG).status_code == 201
    assert login(strict_client, "wang.li", "Given-by-0ffice").status_code == 401


def test_a_weak_first_password_is_refused_when_creating_the_user(strict_client, strict_factory):
    authority = strict_factory.authority()
    producer = strict_factory.producer()
    r = strict_client.post("/api/v1/users", headers=authority.headers,
                           json={"username": "wang.li", "password": "1234567890", "organisation_id": producer.org.id})
    assert r.status_code == 422 and r.get_json()["error"] == "weak_password"


def test_an_old_password_must_be_changed(strict_client, strict_factory, strict_session, clock):
    """Past GI_PASSWORD_MAX_AGE_DAYS (90 here), is a sign-in sent to change the password?"""
    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    assert login(strict_client, user.username, STRONG).status_code == 201
    clock.advance(days=91)
    r = login(strict_client, user.username, STRONG)
    assert r.status_code == 403 and r.get_json()["error"] == "password_change_required"


def test_repeated_failures_lock_the_account_for_a_while_that_grows(strict_client, strict_factory, strict_session,
                                                                    clock):
    """After 3 wrong passwords (the threshold here), is even the right one refused with 429 and Retry-After; does
    the lock end by itself; is the next lock longer; and does a successful sign-in start the count afresh?"""
    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    for _ in range(3):
        assert login(strict_client, user.username, "wrong-Passw0rd").status_code == 401
    r = login(strict_client, user.username, STRONG)
    assert r.status_code == 429 and r.get_json()["error"] == "account_locked"
    assert r.headers["Retry-After"] == "60"
    clock.advance(seconds=61)
    for _ in range(3):
        assert login(strict_client, user.username, "wrong-Passw0rd").status_code == 401
    r = login(strict_client, user.username, STRONG)
    assert r.status_code == 429 and r.headers["Retry-After"] == "120"
    clock.advance(seconds=121)
    assert login(strict_client, user.username, STRONG).status_code == 201
    strict_session.expire_all()
    row = strict_session.get(User, user.id)
    assert (row.failed_logins, row.lockouts, row.locked_until) == (0, 0, None)


def test_exempt_accounts_are_never_locked_outside_production(strict_client, strict_factory):
    """Outside production, are the demo and test accounts exempt (a shared demo cannot be locked)?"""
    producer = strict_factory.producer()  # a factory account: rules_exempt
    for _ in range(5):
        assert login(strict_client, producer.principal.username, "wrong-Passw0rd").status_code == 401
    assert login(strict_client, producer.principal.username, "password-123456").status_code == 201


def test_a_name_no_account_has_is_locked_exactly_as_an_account_is(strict_client, strict_factory, strict_session,
                                                                   clock):
    """Does a username that no account has answer every attempt as a real account's does: 401 below the
    threshold, then the same 429 body and Retry-After, a longer lock the next time, so that a lockout never
    tells whether an account exists? Is the name kept only as its SHA-256?"""
    user = real_account(strict_session, strict_factory.producer())

    def attempts(username: str, password: str) -> list[tuple[int, dict, str | None]]:
        answers = [login(strict_client, username, "wrong-Passw0rd") for _ in range(3)]
        answers.append(login(strict_client, username, password))
        return [(r.status_code, {k: v for k, v in r.get_json().items() if k != "request_id"},
                 r.headers.get("Retry-After")) for r in answers]

    for retry_after in ("60", "120"):
        real, unknown = attempts(user.username, STRONG), attempts("nobody-here", STRONG)
        assert real == unknown
        assert [status for status, _, _ in real] == [401, 401, 401, 429]
        assert real[-1][1]["error"] == "account_locked" and real[-1][2] == retry_after
        clock.advance(seconds=int(retry_after) + 1)

    rows = strict_session.scalars(select(UnknownNameFailures)).all()
    assert [(r.name_digest, r.lockouts) for r in rows] == [(hashlib.sha256(b"nobody-here").hexdigest(), 2)]


def test_a_name_no_account_has_is_forgotten_30_days_after_its_last_failure(strict_client, strict_session, clock):
    """Is the count of a name no account has deleted once it has been quiet for 30 days (when the next name's
    first failure is counted), so that guessing at random names cannot fill the table for ever?"""
    for _ in range(3):
        assert login(strict_client, "old-guess", "wrong-Passw0rd").status_code == 401
    clock.advance(days=29)
    assert login(strict_client, "recent-guess", "wrong-Passw0rd").status_code == 401
    clock.advance(days=2)
    assert login(strict_client, "new-guess", "wrong-Passw0rd").status_code == 401
    digests = set(strict_session.scalars(select(UnknownNameFailures.name_digest)))
    assert digests == {hashlib.sha256(name).hexdigest() for name in (b"recent-guess", b"new-guess")}


def test_exemption_does_not_hold_in_production():
    user = User(rules_exempt=True, must_change_password=True)
    assert not passwords.must_change(user, SignInPolicy(production=False))
    assert passwords.must_change(user, SignInPolicy(production=True))


def test_password_rules_are_published(strict_client):
    rules = strict_client.get("/api/v1/auth/password-rules").get_json()
    assert rules["min_length"] == 10 and rules["min_classes"] == 3 and rules["max_age_days"] == 90
    assert rules["two_factor_required_for"] == ["authority", "inspection"]


def test_the_audit_trail_names_the_lockout_a_failed_sign_in_started(strict_app, strict_client, strict_factory,
                                                                   strict_session, clock):
    """Is every failed sign-in in the audit trail under the username tried, and does the failure that locks the
    account say for how long (the sign-in refused while locked is recorded too, as account_locked)?"""
    from gi_service.models import AuditRecord

    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    for _ in range(3):
        assert login(strict_client, user.username, "Wrong-passw0rd!").status_code == 401
    assert login(strict_client, user.username, STRONG).status_code == 429
    with Session(strict_app.extensions["gi_engine"]) as s:
        rows = s.scalars(select(AuditRecord).where(AuditRecord.action == "api.login")
                         .order_by(AuditRecord.id)).all()
    assert [(r.outcome, r.error_code, r.username) for r in rows] == (
        [("failure", "invalid_credentials", user.username)] * 3 + [("failure", "account_locked", user.username)])
    assert [r.detail.get("lockout_started_s") for r in rows] == [None, None, 60, None]
