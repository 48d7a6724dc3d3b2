"""TOTP two-factor sign-in: enrolment, codes accepted once, recovery codes, tokens, reset — API and web pages."""
from __future__ import annotations

import re

import pyotp
from sqlalchemy import select, text

from gi_service.models import ApiToken, RecoveryCode, User
from gi_service.services import totp

from .conftest import STRONG, enable_totp, real_account


def login(client, username, password=STRONG, **extra):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password, **extra})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_secret_is_stored_encrypted_and_codes_follow_rfc_6238(strict_factory, strict_session, clock):
    """Is the TOTP secret unreadable in the database, and are codes the RFC 6238 ones an app computes (SHA-1,
    6 digits, 30 s) at the service clock's time?"""
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    app_, codes = enable_totp(strict_session, user, clock)
    raw = strict_session.execute(text("SELECT totp_secret FROM users WHERE id = :id"), {"id": user.id}).scalar_one()
    assert raw.startswith("gienc:1:") and app_.secret not in raw
    assert len(codes) == 10 and len(set(codes)) == 10 and all(re.fullmatch(r"[2-9A-Z]{5}-[2-9A-Z]{5}", c) for c in codes)
    hashes = strict_session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert len(hashes) == 10 and not any(c.replace("-", "") in h for c in codes for h in hashes)
    uri = totp.provisioning_uri(user, app_.secret, "GI gi.test")
    assert uri.startswith("otpauth://totp/") and "issuer=GI%20gi.test" in uri and f"secret={app_.secret}" in uri


def test_api_sign_in_needs_the_code_and_accepts_each_code_once(strict_client, strict_factory, strict_session, clock):
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    app_, _codes = enable_totp(strict_session, user, clock)
    r = login(strict_client, user.username)
    assert r.status_code == 401 and r.get_json()["error"] == "totp_required"
    r = login(strict_client, user.username, totp="000000" if app_.at(clock.now()) != "000000" else "111111")
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_totp"
    code = app_.at(clock.now())
    r = login(strict_client, user.username, totp=code)
    assert r.status_code == 201 and r.get_json()["token_info"]["two_factor"] is True
    r = login(strict_client, user.username, totp=code)
    assert r.status_code == 401 and r.get_json()["error"] == "totp_reused"
    clock.advance(seconds=30)
    assert login(strict_client, user.username, totp=app_.at(clock.now())).status_code == 201


def test_a_code_of_the_neighbouring_step_is_accepted_but_no_older(strict_client, strict_factory, strict_session,
                                                                  clock):
    """Is a phone 30 s slow still accepted, and a code from two minutes ago refused?"""
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    app_, _codes = enable_totp(strict_session, user, clock)
    clock.advance(seconds=300)
    stale = app_.at(clock.now().timestamp() - 120)
    assert login(strict_client, user.username, totp=stale).status_code == 401
    slow = app_.at(clock.now().timestamp() - 30)
    assert login(strict_client, user.username, totp=slow).status_code == 201


def test_wrong_codes_count_towards_the_lockout(strict_client, strict_factory, strict_session, clock):
    """With the password known, can the code be guessed without end? No: wrong codes lock the account too."""
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    app_, _codes = enable_totp(strict_session, user, clock)
    wrong = "123456" if app_.at(clock.now()) != "123456" else "654321"
    for _ in range(3):
        assert login(strict_client, user.username, totp=wrong).status_code == 401
    r = login(strict_client, user.username, totp=app_.at(clock.now()))
    assert r.status_code == 429 and r.get_json()["error"] == "account_locked"


def test_a_recovery_code_works_once(strict_client, strict_factory, strict_session, clock):
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    _app, codes = enable_totp(strict_session, user, clock)
    r = login(strict_client, user.username, totp=codes[3].lower().replace("-", " "))
    assert r.status_code == 201 and r.get_json()["token_info"]["two_factor"] is True
    r = login(strict_client, user.username, totp=codes[3])
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_totp"
    assert totp.remaining_recovery_codes(strict_session, user.id) == 9


def test_required_but_not_set_up_is_sent_to_the_web_pages(strict_client, strict_factory, strict_session):
    """An authority account without TOTP under GI_TOTP_REQUIRED gets no token from the API until it set TOTP up."""
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    r = login(strict_client, user.username)
    assert r.status_code == 403 and r.get_json()["error"] == "totp_enrolment_required"
    producer = strict_factory.producer()  # producers are not required to
    assert login(strict_client, real_account(strict_session, producer).username).status_code == 201


def test_tokens_made_by_a_signed_in_user_need_two_factors(strict_client, strict_factory, strict_session, clock):
    """Where TOTP is required, is a token created only from a sign-in that passed two factors, while older
    tokens keep working for everything else?"""
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    app_, _codes = enable_totp(strict_session, user, clock)
    old_token = authority.token  # issued before, without a second factor
    assert strict_client.get("/api/v1/me", headers=bearer(old_token)).status_code == 200
    r = strict_client.post("/api/v1/tokens", headers=bearer(old_token), json={"name": "script"})
    assert r.status_code == 403 and r.get_json()["error"] == "two_factor_required"
    strong = login(strict_client, user.username, totp=app_.at(clock.now())).get_json()["token"]
    r = strict_client.post("/api/v1/tokens", headers=bearer(strong), json={"name": "script"})
    assert r.status_code == 201 and r.get_json()["token_info"]["two_factor"] is True


def test_reset_by_an_authority_of_the_same_or_higher_jurisdiction(strict_client, strict_factory, strict_session,
                                                                  clock):
    """Can the province's authority reset a city inspector's TOTP (and the city's own authority too), while a
    county authority, an authority elsewhere and the user itself cannot? Does the reset end the web sessions?"""
    province = strict_factory.authority("340000")
    city = strict_factory.authority("341600")
    county = strict_factory.authority("341602")
    elsewhere = strict_factory.authority("440000")
    inspector = strict_factory.inspection("341600")
    user = real_account(strict_session, inspector)
    enable_totp(strict_session, user, clock)
    path = f"/api/v1/users/{user.id}/totp/reset"
    for actor in (county, elsewhere):
        r = strict_client.post(path, headers=actor.headers)
        assert r.status_code == 403 and r.get_json()["error"] == "outside_jurisdiction"
    r = strict_client.post(path, headers=inspector.headers)
    assert r.status_code == 403
    r = strict_client.post(f"/api/v1/users/{city.principal.user_id}/totp/reset", headers=city.headers)
    assert r.status_code == 403 and r.get_json()["error"] == "own_account"
    session_row = ApiToken(user_id=user.id, name="web session", prefix="x", token_hash="h" * 64,
                           expires_at=clock.now().replace(year=2030))
    strict_session.add(session_row)
    strict_session.commit()
    r = strict_client.post(path, headers=province.headers)
    assert r.status_code == 200 and r.get_json()["two_factor_enabled"] is False
    strict_session.expire_all()
    assert strict_session.get(User, user.id).totp_secret is None
    assert strict_session.get(ApiToken, session_row.id).revoked_at is not None
    assert totp.remaining_recovery_codes(strict_session, user.id) == 0
    enable_totp(strict_session, strict_session.get(User, user.id), clock)
    assert strict_client.post(path, headers=city.headers).status_code == 200


# --- the web pages ------------------------------------------------------------------------------------

def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def web_password(client, username, password=STRONG):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_web_enrolment_then_code_sign_in(strict_client, strict_factory, strict_session, clock):
    """An inspector who must use TOTP: after the password, the set-up page shows a QR code and the secret; the
    first code turns TOTP on and shows ten recovery codes once; the session passed two factors. The next
    sign-in asks for a code."""
    inspector = strict_factory.inspection("341600")
    user = real_account(strict_session, inspector)
    r = web_password(strict_client, user.username)
    assert r.status_code == 303 and r.headers["Location"].endswith("/login/enrol")
    assert strict_client.get("/app").status_code in (302, 303, 401)  # no session yet
    page = strict_client.get("/login/enrol").get_data(as_text=True)
    assert 'src="data:image/png;base64,' in page
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    app_ = pyotp.TOTP(secret)
    r = strict_client.post("/login/enrol", data={"code": "000000" if app_.at(clock.now()) != "000000" else "111111",
                                                 "csrf_token": csrf_of(page)})
    assert r.status_code == 401 and r.headers["X-Error-Code"] == "invalid_totp"
    r = strict_client.post("/login/enrol", data={"code": app_.at(clock.now()), "csrf_token": csrf_of(page)})
    assert r.status_code == 200
    shown = re.findall(r"<li><code>([2-9A-Z]{5}-[2-9A-Z]{5})</code></li>", r.get_data(as_text=True))
    assert len(shown) == 10
    assert strict_client.get("/app").status_code == 200
    strict_session.expire_all()
    row = strict_session.scalars(select(ApiToken).where(ApiToken.user_id == user.id,
                                                        ApiToken.name == "web session")).one()
    assert row.two_factor is True

    strict_client.post("/logout", data={"csrf_token": csrf_of(strict_client.get("/app").get_data(as_text=True))})
    clock.advance(seconds=30)
    r = web_password(strict_client, user.username)
    assert r.headers["Location"].endswith("/login/code")
    page = strict_client.get("/login/code").get_data(as_text=True)
    r = strict_client.post("/login/code", data={"code": shown[0], "csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app")
    assert strict_client.get("/app").status_code == 200


def test_web_steps_cannot_be_skipped_or_entered_without_a_password(strict_client, strict_factory, strict_session):
    """Without a right password first, do the step pages lead back to /login (no session, no set-up page)?"""
    for path in ("/login/code", "/login/enrol", "/login/password"):
        r = strict_client.get(path)
        assert r.status_code == 303 and r.headers["Location"].endswith("/login")


def test_web_forced_password_change(strict_client, strict_factory, strict_session, clock):
    """A producer whose password is too old: after the password the new-password page; a weak one is refused;
    a good one signs in."""
    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    clock.advance(days=100)
    r = web_password(strict_client, user.username)
    assert r.headers["Location"].endswith("/login/password")
    page = strict_client.get("/login/password").get_data(as_text=True)
    r = strict_client.post("/login/password", data={"new_password": "abc", "new_password2": "abc",
                                                    "csrf_token": csrf_of(page)})
    assert r.status_code == 422 and r.headers["X-Error-Code"] == "weak_password"
    r = strict_client.post("/login/password", data={"new_password": "Another-g00d-one", "new_password2": "Another-g00d-1",
                                                    "csrf_token": csrf_of(page)})
    assert r.status_code == 422 and r.headers["X-Error-Code"] == "passwords_differ"
    r = strict_client.post("/login/password", data={"new_password": "Another-g00d-one",
                                                    "new_password2": "Another-g00d-one", "csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app")
    assert strict_client.get("/app").status_code == 200


def test_web_lockout_is_shown_with_retry_after(strict_client, strict_factory, strict_session):
    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    for _ in range(3):
        assert web_password(strict_client, user.username, "Wrong-passw0rd").status_code == 401
    r = web_password(strict_client, user.username)
    assert r.status_code == 429 and r.headers["X-Error-Code"] == "account_locked" and r.headers["Retry-After"] == "60"


def test_account_page_sets_up_totp_and_changes_the_password(strict_client, strict_factory, strict_session, clock):
    """A producer (not required to) turns TOTP on from its account page, and changes its password there."""
    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    assert web_password(strict_client, user.username).status_code == 303
    page = strict_client.get("/app/account").get_data(as_text=True)
    assert 'id="totp-start"' in page
    r = strict_client.post("/app/account/totp/start", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 303 and r.headers["Location"].endswith("/app/account/totp")
    page = strict_client.get("/app/account/totp").get_data(as_text=True)
    app_ = pyotp.TOTP(re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", ""))
    r = strict_client.post("/app/account/totp", data={"code": app_.at(clock.now()), "csrf_token": csrf_of(page)})
    assert r.status_code == 200 and r.get_data(as_text=True).count("<li><code>") == 10
    page = strict_client.get("/app/account").get_data(as_text=True)
    r = strict_client.post("/app/account/password", data={"password": "not-it", "new_password": "Brand-new-pw-42",
                                                          "new_password2": "Brand-new-pw-42", "csrf_token": csrf_of(page)})
    assert r.status_code == 401
    r = strict_client.post("/app/account/password", data={"password": STRONG, "new_password": "Brand-new-pw-42",
                                                          "new_password2": "Brand-new-pw-42", "csrf_token": csrf_of(page)})
    assert r.status_code == 303
    clock.advance(seconds=30)
    assert login(strict_client, user.username, "Brand-new-pw-42", totp=app_.at(clock.now())).status_code == 201


def test_confirming_a_set_up_that_was_never_started_is_refused(strict_client, strict_factory, strict_session):
    """A code posted to /app/account/totp before the set-up started is a 409 on the account page, not an error."""
    producer = strict_factory.producer()
    user = real_account(strict_session, producer)
    assert web_password(strict_client, user.username).status_code == 303
    page = strict_client.get("/app/account").get_data(as_text=True)
    r = strict_client.post("/app/account/totp", data={"code": "123456", "csrf_token": csrf_of(page)})
    assert r.status_code == 409 and r.headers["X-Error-Code"] == "totp_not_started"


def test_tokens_from_a_web_session_need_a_two_factor_session(strict_client, strict_factory, strict_session, clock):
    """Is an authority whose web session passed two factors able to create an API token on its account page
    (shown once, and working), while a session without them (made before TOTP was required) is refused?"""
    authority = strict_factory.authority()
    user = real_account(strict_session, authority)
    app_, _codes = enable_totp(strict_session, user, clock)
    assert web_password(strict_client, user.username).headers["Location"].endswith("/login/code")
    page = strict_client.get("/login/code").get_data(as_text=True)
    assert strict_client.post("/login/code", data={"code": app_.at(clock.now()), "csrf_token": csrf_of(page)}
                              ).status_code == 303
    page = strict_client.get("/app/account").get_data(as_text=True)
    r = strict_client.post("/app/account/tokens", data={"name": "月报脚本", "ttl_days": "30", "csrf_token": csrf_of(page)})
    assert r.status_code == 200
    token = re.search(r'id="new-token">([^<]+)<', r.get_data(as_text=True)).group(1)
    me = strict_client.get("/api/v1/tokens", headers=bearer(token)).get_json()["tokens"]
    assert any(t["name"] == "月报脚本" and t["two_factor"] for t in me)

    strict_session.execute(text("UPDATE api_tokens SET two_factor = :f WHERE name = 'web session'"), {"f": False})
    strict_session.commit()
    r = strict_client.post("/app/account/tokens", data={"name": "another", "ttl_days": "30", "csrf_token": csrf_of(page)})
    assert r.status_code == 403 and r.headers["X-Error-Code"] == "two_factor_required"


def test_an_authority_resets_and_unlocks_from_its_accounts_page(strict_client, strict_factory, strict_session,
                                                                clock):
    """Does the city authority's accounts page list the accounts in its jurisdiction (not elsewhere), with
    buttons that reset an inspector's TOTP and end a producer's lockout?"""
    from gi_service.services import passwords
    from gi_service.services.passwords import SignInPolicy

    city = strict_factory.authority("341600")
    inspector = strict_factory.inspection("341600")
    producer = strict_factory.producer("341602")
    far = strict_factory.producer("440106")
    target = real_account(strict_session, inspector)
    enable_totp(strict_session, target, clock)
    locked = real_account(strict_session, producer)
    for _ in range(5):
        passwords.record_failure(strict_session, locked.username, SignInPolicy(lockout_threshold=5))
    strict_session.commit()
    page = strict_client.get("/app/users", headers=city.headers).get_data(as_text=True)
    listed = set(re.findall(r'data-user="([^"]+)"', page))
    assert {city.principal.username, target.username, locked.username} <= listed
    assert far.principal.username not in listed
    r = strict_client.post(f"/app/users/{target.id}/totp-reset", headers=city.headers)
    assert r.status_code == 303
    r = strict_client.post(f"/app/users/{locked.id}/unlock", headers=city.headers)
    assert r.status_code == 303
    strict_session.expire_all()
    assert strict_session.get(User, target.id).totp_enabled_at is None
    assert strict_session.get(User, locked.id).locked_until is None
    r = strict_client.post(f"/app/users/{far.principal.user_id}/unlock", headers=city.headers)
    assert r.status_code == 403
    r = strict_client.post(f"/api/v1/users/{far.principal.user_id}/unlock", headers=city.headers)
    assert r.status_code == 403 and r.get_json()["error"] == "outside_jurisdiction"
    assert strict_client.get("/app/users", headers=producer.headers).status_code == 403
