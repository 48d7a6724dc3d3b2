"""An authority opens accounts on its pages: for organisations in its jurisdiction only, with a first password
the service makes, shows once, and the owner must change at the first sign-in."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gi_service.errors import ValidationFailed
from gi_service.models import AuditRecord, User
from gi_service.services import accounts, passwords
from gi_service.services.passwords import SignInPolicy

from .conftest import STRONG


def _users(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(User))


def _first_password(html: str) -> str:
    return re.search(r'<code id="first-password"[^>]*>([^<]+)</code>', html).group(1)


def test_an_authority_opens_an_account_and_its_owner_must_change_the_first_password(strict_app, strict_client,
                                                                                    strict_factory, strict_session):
    """Does the city authority's form list the organisations of its jurisdiction only (the producer's own page
    choosing it), create the account with a first password shown once that passes the rules, and does that
    password sign in only to be changed, after which the new one works and the first does not?"""
    city = strict_factory.authority("341600")
    producer = strict_factory.producer("341602", name="亳州白芍合作社")
    far = strict_factory.producer("440106", name="广州某茶行")

    producer_page = strict_client.get(f"/app/producers/{producer.org.id}", headers=city.headers).get_data(as_text=True)
    assert f"/app/users/new?org={producer.org.id}" in producer_page
    form = strict_client.get(f"/app/users/new?org={producer.org.id}", headers=city.headers)
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert f'<option value="{producer.org.id}" selected>' in html and "亳州白芍合作社" in html
    assert f'value="{far.org.id}"' not in html and "广州某茶行" not in html

    r = strict_client.post("/app/users/new", headers=city.headers,
                           data={"organisation_id": producer.org.id, "username": "zhang.wei", "display_name": "张伟"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    first = _first_password(r.get_data(as_text=True))
    passwords.check_strength(first, SignInPolicy(), username="zhang.wei")       # of the rules it must obey
    assert re.fullmatch(r"[A-HJ-NP-Za-km-z2-9]{4}(-[A-HJ-NP-Za-km-z2-9]{4}){3}", first)
    strict_session.expire_all()
    user = strict_session.scalar(select(User).where(User.username == "zhang.wei"))
    assert (user.organisation_id, user.display_name, user.must_change_password, user.rules_exempt) == (
        producer.org.id, "张伟", True, False)
    assert first not in user.password_hash

    login = {"username": "zhang.wei", "password": first}
    r = strict_client.post("/api/v1/auth/login", json=login)
    assert r.status_code == 403 and r.get_json()["error"] == "password_change_required"
    r = strict_client.post("/api/v1/auth/password", json={**login, "new_password": STRONG})
    assert r.status_code == 201
    assert strict_client.post("/api/v1/auth/login", json={**login, "password": STRONG}).status_code == 201
    assert strict_client.post("/api/v1/auth/login", json=login).status_code == 401

    with Session(strict_app.extensions["gi_engine"]) as s:
        record = s.scalar(select(AuditRecord).where(AuditRecord.action == "web.user_create"))
    assert (record.outcome, record.username, record.detail.get("user_id")) == ("success", city.principal.username,
                                                                                user.id)
    assert first not in str(record.detail)


def test_opening_an_account_is_refused_saying_why_and_nothing_is_written(strict_client, strict_factory,
                                                                         strict_session):
    """Is the form closed to a producer (403), and is an organisation outside the jurisdiction (403), one that
    does not exist (404), a username taken (409) or not of letters, digits and . _ - (422) refused on the form
    with the values kept and no account created?"""
    city = strict_factory.authority("341600")
    producer = strict_factory.producer("341602")
    far = strict_factory.producer("440106")
    before = _users(strict_session)

    assert strict_client.get("/app/users/new", headers=producer.headers).status_code == 403
    r = strict_client.post("/app/users/new", headers=producer.headers,
                           data={"organisation_id": producer.org.id, "username": "self.made"})
    assert r.status_code == 403

    cases = [({"organisation_id": far.org.id, "username": "far.away"}, 403, "outside_jurisdiction"),
             ({"organisation_id": 2_000_000_000, "username": "no.such.org"}, 404, "not_found"),
             ({"organisation_id": producer.org.id, "username": producer.principal.username}, 409,
              "duplicate_username"),
             ({"organisation_id": producer.org.id, "username": "张伟"}, 422, "validation_failed"),
             ({"organisation_id": producer.org.id, "username": "has space"}, 422, "validation_failed"),
             ({"organisation_id": producer.org.id}, 422, "validation_failed")]
    for data, status, code in cases:
        r = strict_client.post("/app/users/new", headers=city.headers, data=data)
        html = r.get_data(as_text=True)
        assert (r.status_code, r.headers.get("X-Error-Code")) == (status, code), data
        assert 'id="form-error"' in html and 'id="first-password"' not in html
        if data.get("username"):
            assert f'value="{data["username"]}"' in html
    assert _users(strict_session) == before


def test_the_api_and_the_cli_hold_usernames_to_the_same_rule(strict_session, strict_factory):
    """Does the service itself (behind the API, the pages and `gi-service users create`) refuse a username the
    API's schema would refuse?"""
    producer = strict_factory.producer()
    for bad in ("ab", "张伟", "has space", "x" * 65, "semi;colon"):
        with pytest.raises(ValidationFailed) as refused:
            accounts.create_user(strict_session, username=bad, password=STRONG, organisation_id=producer.org.id)
        assert refused.value.details == [{"field": "username", "problem": "invalid"}]
    strict_session.rollback()


@pytest.mark.parametrize("min_length", [10, 19, 20, 24, 25, 40])
def test_a_first_password_is_as_long_as_the_rules_ask_and_of_four_kinds(min_length):
    """Is a first password at least 16 random characters and the policy's minimum, of four kinds of characters,
    never the same twice?"""
    policy = SignInPolicy(min_length=min_length)
    made = {passwords.first_password(policy) for _ in range(50)}
    assert len(made) == 50
    for first in made:
        passwords.check_strength(first, policy)
        assert len(first) >= max(min_length, 19) and len(first.replace("-", "")) >= 16


def test_odd_organisation_ids_are_refused_or_ignored_never_an_error(strict_client, strict_factory):
    """Do a superscript digit or an id of thousands of digits, in the form's `org` or in the posted field,
    leave the form shown (GET, nothing chosen) or refused on it (POST, 422), never a server error?"""
    city = strict_factory.authority("341600")
    strict_factory.producer("341602")
    for odd in ("²", "9" * 5000, "-1", "1.5", "0"):
        r = strict_client.get("/app/users/new", headers=city.headers, query_string={"org": odd})
        assert r.status_code == 200 and " selected>" not in r.get_data(as_text=True), odd
        r = strict_client.post("/app/users/new", headers=city.headers,
                               data={"organisation_id": odd, "username": "odd.id"})
        assert (r.status_code, r.headers.get("X-Error-Code")) == (422, "validation_failed"), odd


def test_a_deactivated_organisation_gets_no_new_account(strict_client, strict_factory, strict_session):
    """Is a deactivated organisation left out of the form's list, and refused (409 organisation_inactive) when
    its id is posted anyway?"""
    city = strict_factory.authority("341600")
    gone = strict_factory.producer("341602", name="已注销合作社")
    gone_org = strict_session.get(type(gone.org), gone.org.id)
    gone_org.is_active = False
    strict_session.commit()
    assert "已注销合作社" not in strict_client.get("/app/users/new", headers=city.headers).get_data(as_text=True)
    r = strict_client.post("/app/users/new", headers=city.headers,
                           data={"organisation_id": gone.org.id, "username": "late.user"})
    assert (r.status_code, r.headers.get("X-Error-Code")) == (409, "organisation_inactive")
    assert "该机构已停用" in r.get_data(as_text=True)


def test_an_account_opened_under_a_locked_name_keeps_the_lock(strict_client, strict_factory, strict_session,
                                                              clock):
    """When a name no account had is locked and an account is then opened under it, is the next sign-in still
    refused for the rest of that lock (opening the account must not end it and so tell the guesser), and does
    the unknown name's row go?"""
    from gi_service.models import UnknownNameFailures

    city = strict_factory.authority("341600")
    producer = strict_factory.producer("341602")
    for _ in range(3):
        assert strict_client.post("/api/v1/auth/login", json={"username": "li.na", "password": "Wrong-passw0rd"}
                                  ).status_code == 401
    r = strict_client.post("/app/users/new", headers=city.headers,
                           data={"organisation_id": producer.org.id, "username": "li.na"})
    first = _first_password(r.get_data(as_text=True))
    r = strict_client.post("/api/v1/auth/login", json={"username": "li.na", "password": first})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= 60
    strict_session.expire_all()
    assert strict_session.scalars(select(UnknownNameFailures)).all() == []
    clock.advance(seconds=61)
    r = strict_client.post("/api/v1/auth/login", json={"username": "li.na", "password": first})
    assert r.status_code == 403 and r.get_json()["error"] == "password_change_required"


def test_a_first_password_never_contains_the_username(monkeypatch):
    """When the random draw happens to spell the username, is it drawn again?"""
    drawn = iter("abcdABCD2345EFGH" + "Wxyz9876mnpqRSTU")
    monkeypatch.setattr(passwords.secrets, "choice", lambda alphabet: next(drawn))
    assert passwords.first_password(SignInPolicy(), username="ABCD") == "Wxyz-9876-mnpq-RSTU"
