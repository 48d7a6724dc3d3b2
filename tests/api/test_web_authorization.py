"""What an `Authorization` header means on the web pages (issue 15 §1, §2).

The pages sign people in with the session cookie. A valid bearer token identifies its caller there too;
any other header — a proxy's `Basic`, an unknown, expired or revoked token — is ignored, as if it had not
been sent: a signed-in person keeps working, a signed-out one is sent to /login once, and /login never
redirects because of a header. The JSON API keeps refusing such headers (401 invalid_token).

A write the session cookie authenticates needs the session's CSRF token; a write a usable bearer token
authenticates does not (a browser never attaches that header by itself), and an unusable header changes
nothing: the CSRF check applies as without it. Every error answer of the pages names its code in
X-Error-Code."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from gi_service import clock
from gi_service.models import ApiToken
from gi_service.web.auth import WEB_SESSION_NAME

HTML = {"Accept": "text/html"}


def unusable_headers(actor) -> dict[str, str]:
    return {
        "basic-from-a-proxy": "Basic dXNlcjpwYXNzd29yZA==",
        "unknown-token": "Bearer gi_this-is-not-a-token",
        "altered-token": f"Bearer {actor.token}x",
        "other-scheme": f"Token {actor.token}",
    }


def follow(client, url: str, headers: dict[str, str], limit: int = 6) -> list[tuple[int, str]]:
    """GET `url` and follow redirects by hand; the (status, url) of each answer."""
    seen = []
    for _ in range(limit):
        resp = client.get(url, headers=headers)
        seen.append((resp.status_code, url))
        if resp.status_code not in (301, 302, 303, 307, 308):
            return seen
        location = urlsplit(resp.headers["Location"])
        url = location.path + ("?" + location.query if location.query else "")
    raise AssertionError(f"still redirecting after {limit} answers: {seen}")


@pytest.fixture
def producer(factory):
    return factory.producer("341602")


def sign_in(client, actor) -> None:
    page = client.get("/login", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    username = actor.principal.username
    resp = client.post("/login", data={"username": username, "password": "password-123456", "csrf_token": token},
                       headers=HTML)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]


@pytest.mark.parametrize("kind", ["basic-from-a-proxy", "unknown-token", "altered-token", "other-scheme"])
def test_unusable_header_signed_out_reaches_the_login_page_once(client, producer, kind):
    """Does a signed-out visit to /app/plots with an unusable Authorization header redirect to /login once
    (next = the page, not nested) and /login answer its form, instead of redirecting forever?"""
    headers = {**HTML, "Authorization": unusable_headers(producer)[kind]}
    answers = follow(client, "/app/plots", headers)
    assert [status for status, _ in answers] == [303, 200]
    login_url = urlsplit(answers[1][1])
    assert login_url.path == "/login"
    assert parse_qs(login_url.query) == {"next": ["/app/plots"]}
    assert client.get("/login", headers=headers).status_code == 200


@pytest.mark.parametrize("kind", ["basic-from-a-proxy", "unknown-token", "altered-token"])
def test_unusable_header_signed_in_keeps_the_session(client, producer, kind):
    """Does a person signed in with the session cookie keep seeing their pages when a proxy or a stale client
    adds an Authorization header the pages cannot use?"""
    sign_in(client, producer)
    headers = {**HTML, "Authorization": unusable_headers(producer)[kind]}
    resp = client.get("/app/plots", headers=headers)
    assert resp.status_code == 200, resp.headers.get("Location")
    assert client.get("/", headers=headers).status_code == 200


def test_expired_token_on_the_web_pages_is_ignored(client, session, producer):
    """Is an expired bearer token ignored by the pages (one redirect to /login; with a session, the page), while
    the API still refuses it with 401 token_expired?"""
    session.execute(update(ApiToken).where(ApiToken.user_id == producer.principal.user_id)
                    .values(expires_at=clock.now() - dt.timedelta(minutes=1)))
    session.commit()
    headers = {**HTML, **producer.headers}
    assert [s for s, _ in follow(client, "/app/plots", headers)] == [303, 200]
    resp = client.get("/api/v1/me", headers=producer.headers)
    assert (resp.status_code, resp.get_json()["error"]) == (401, "token_expired")
    sign_in(client, producer)
    assert client.get("/app/plots", headers=headers).status_code == 200


def test_valid_bearer_token_still_identifies_the_caller_on_the_pages(client, producer):
    """Does a valid bearer token still open a page for its account (without any session)?"""
    resp = client.get("/app/plots", headers={**HTML, **producer.headers})
    assert resp.status_code == 200


def test_html_landing_page_ignores_an_unusable_header(client):
    """Does the HTML landing page answer 200 (not a JSON 401) to a browser behind a proxy adding Basic?"""
    resp = client.get("/", headers={**HTML, "Authorization": "Basic dXNlcjpwYXNzd29yZA=="})
    assert resp.status_code == 200 and resp.mimetype == "text/html"


@pytest.mark.parametrize("url", ["/api/v1/me", "/api/v1/gis"])
def test_the_api_still_refuses_an_unusable_header(client, producer, url):
    """Does the JSON API keep refusing a Basic header with 401 invalid_token (it is not ignored there)?"""
    resp = client.get(url, headers={"Authorization": "Basic dXNlcjpwYXNzd29yZA=="})
    assert (resp.status_code, resp.get_json()["error"]) == (401, "invalid_token")


def test_a_deeply_nested_plot_boundary_on_the_web_form_is_refused_not_a_500(client, producer):
    """Does the producer's plot form answer a boundary nested thousands of levels deep with the form again and a
    4xx saying what to paste, never a server error?"""
    sign_in(client, producer)
    page = client.get("/app/plots", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    deep = "[" * 100_000 + "]" * 100_000
    resp = client.post("/app/plots/new", headers=HTML, data={"csrf_token": token, "gi_id": "1", "name": "deep",
                                                             "survey_year": "2025", "geometry": deep})
    assert 400 <= resp.status_code < 500, resp.status_code
    assert "GeoJSON" in resp.get_data(as_text=True)


# --- CSRF and bearer tokens on the pages' writes -----------------------------------------------------

def request_form(world) -> dict[str, str]:
    return {"gi_id": str(world.gi.id), "pack_size_g": "250", "quantity": "100", "year": str(world.year)}


def mark_requests(client, world) -> int:
    return len(client.get("/api/v1/mark-requests", headers=world.authority.headers).json["items"])


def revoke_tokens(session, actor) -> None:
    """Revoke the actor's API tokens (its web sessions, rows of the same table, stay)."""
    session.execute(update(ApiToken).where(ApiToken.user_id == actor.principal.user_id,
                                           ApiToken.name != WEB_SESSION_NAME).values(revoked_at=clock.now()))
    session.commit()


def test_a_bearer_authenticated_page_write_needs_no_csrf_token(client, factory, ledger_world):
    """Does a page write whose caller a usable bearer token names succeed without any CSRF token or session
    (a browser never sends that header by itself, so no cross-site page can forge it)?"""
    world = ledger_world()
    before = mark_requests(client, world)
    resp = client.post("/app/requests/new", headers={**HTML, **world.producer.headers}, data=request_form(world))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    assert urlsplit(resp.headers["Location"]).path == "/app/requests"
    assert mark_requests(client, world) == before + 1


@pytest.mark.parametrize("kind", ["revoked-token", "unknown-token", "basic-from-a-proxy"])
def test_an_unusable_header_without_a_csrf_token_is_refused(client, session, factory, kind, ledger_world):
    """Is a page write with an unusable Authorization header (revoked or unknown token, a proxy's Basic) and no
    CSRF token refused as without the header: 400 csrf_failed, nothing written?"""
    world = ledger_world()
    before = mark_requests(client, world)
    header = {"revoked-token": f"Bearer {world.producer.token}", "unknown-token": "Bearer gi_this-is-not-a-token",
              "basic-from-a-proxy": "Basic dXNlcjpwYXNzd29yZA=="}[kind]
    if kind == "revoked-token":
        revoke_tokens(session, world.producer)
    resp = client.post("/app/requests/new", headers={**HTML, "Authorization": header}, data=request_form(world))
    assert (resp.status_code, resp.headers.get("X-Error-Code")) == (400, "csrf_failed")
    assert mark_requests(client, world) == before


def test_a_revoked_token_beside_the_session_cookie_still_needs_the_csrf_token(client, session, factory, ledger_world):
    """Does a person signed in with the session cookie, whose request also carries a revoked bearer token, still
    need the session's CSRF token for a write (the header is ignored, the cookie decides): refused without it,
    done with it?"""
    world = ledger_world()
    sign_in(client, world.producer)
    revoke_tokens(session, world.producer)
    headers = {**HTML, "Authorization": f"Bearer {world.producer.token}"}
    before = mark_requests(client, world)
    resp = client.post("/app/requests/new", headers=headers, data=request_form(world))
    assert (resp.status_code, resp.headers.get("X-Error-Code")) == (400, "csrf_failed")
    assert mark_requests(client, world) == before
    page = client.get("/app/requests", headers=headers).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post("/app/requests/new", headers=headers, data={**request_form(world), "csrf_token": token})
    assert resp.status_code == 303
    assert mark_requests(client, world) == before + 1


def test_a_session_cookie_write_without_the_csrf_token_is_still_refused(client, factory, ledger_world):
    """Is a write authenticated by the session cookie alone refused without the session's token (400 csrf_failed,
    nothing written), and with a wrong one, as before bearer tokens were let through?"""
    world = ledger_world()
    sign_in(client, world.producer)
    before = mark_requests(client, world)
    for extra in ({}, {"csrf_token": "forged"}):
        resp = client.post("/app/requests/new", headers=HTML, data={**request_form(world), **extra})
        assert (resp.status_code, resp.headers.get("X-Error-Code")) == (400, "csrf_failed")
        assert "text/html" in resp.content_type
    assert mark_requests(client, world) == before


def test_a_cookie_write_from_another_origin_is_refused_but_a_bearer_write_is_not_checked(client, factory, ledger_world):
    """Is the Origin check kept for a cookie-authenticated write (400 even with the right token), while a bearer
    token's write, which no browser sends cross-site by itself, is not held to it?"""
    world = ledger_world()
    sign_in(client, world.producer)
    page = client.get("/app/requests", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    evil = {**HTML, "Origin": "https://evil.example"}
    resp = client.post("/app/requests/new", headers=evil, data={**request_form(world), "csrf_token": token})
    assert (resp.status_code, resp.headers.get("X-Error-Code")) == (400, "csrf_failed")
    resp = client.post("/app/requests/new", headers={**evil, **world.producer.headers}, data=request_form(world))
    assert resp.status_code == 303


def test_a_refused_page_write_names_its_error_code(client, factory, ledger_world):
    """Does a page write refused for its values answer the form again as HTML with the stable code in
    X-Error-Code (validation_failed for a missing field, the service's own code otherwise)?"""
    world = ledger_world()
    headers = {**HTML, **world.producer.headers}
    resp = client.post("/app/requests/new", headers=headers, data={"gi_id": str(world.gi.id)})
    assert (resp.status_code, resp.headers.get("X-Error-Code")) == (422, "validation_failed")
    assert "text/html" in resp.content_type
    resp = client.post("/app/marks/void", headers=headers,
                       data={"void_ranges": "BBSH26000000001X", "kind": "lost", "void_reason": "gone"})
    assert (resp.status_code, resp.headers.get("X-Error-Code")) == (422, "invalid_serial")


def test_a_refused_sign_in_says_why_in_its_status(client, factory):
    """Is a refused sign-in the form again with a status a script can read: 401 invalid_credentials for a wrong
    password (the same as for an unknown user), 422 validation_failed for a missing field?"""
    producer = factory.producer()
    page = client.get("/login", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    for username in (producer.principal.username, "nobody-at-all"):
        resp = client.post("/login", headers=HTML, data={"username": username, "password": "not-the-password",
                                                         "csrf_token": token})
        assert (resp.status_code, resp.headers.get("X-Error-Code")) == (401, "invalid_credentials")
        assert 'name="username"' in resp.get_data(as_text=True)
    resp = client.post("/login", headers=HTML, data={"username": producer.principal.username, "csrf_token": token})
    assert (resp.status_code, resp.headers.get("X-Error-Code")) == (422, "validation_failed")
