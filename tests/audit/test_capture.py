"""What the audit trail records of staff writes and sign-ins on the API and the pages, and what it never records."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gi_service.models import AuditRecord, Organisation

HTML = {"Accept": "text/html"}


def records(app) -> list[AuditRecord]:
    with Session(app.extensions["gi_engine"]) as s:
        return list(s.scalars(select(AuditRecord).order_by(AuditRecord.id)))


def org_body(factory, name="合肥某农业有限公司"):
    return {"kind": "producer", "name": name, "uscc": factory.uscc("341602")}


def test_a_successful_api_write_is_recorded_with_who_what_where_and_its_request_id(app, client, factory):
    """Does an authority's write leave one record naming the user, organisation, role, action, outcome, status,
    address and request id, sealed into the chain?"""
    authority = factory.authority()
    resp = client.post("/api/v1/organisations", headers={**authority.headers, "X-Request-Id": "req-0123456789"},
                       json=org_body(factory), environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert resp.status_code == 201, resp.json
    [r] = records(app)
    assert (r.channel, r.action, r.method, r.outcome, r.error_code, r.http_status) == (
        "api", "api.create_organisation", "POST", "success", None, 201)
    assert (r.user_id, r.username, r.organisation_id, r.role, r.org_adcode) == (
        authority.principal.user_id, authority.principal.username, authority.org.id, "authority", "341600")
    assert (r.address, r.request_id) == ("10.1.2.3", "req-0123456789") and r.token_id is not None
    assert r.seq == 1 and r.hash and r.prev_hash == "0" * 64 and r.hash_alg == "sha256"


def test_a_successful_write_and_its_record_commit_together(app, client, factory, monkeypatch):
    """If the write's commit fails, is there no success record either (one transaction), but a failure one?"""
    authority = factory.authority()
    from gi_service.services import accounts

    real = accounts.create_organisation

    def then_a_duplicate(session, **kw):
        org = real(session, **kw)
        session.add(Organisation(kind=org.kind, name="dup", uscc=org.uscc, adcode=org.adcode))  # unique uscc
        return org

    monkeypatch.setattr(accounts, "create_organisation", then_a_duplicate)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = client.post("/api/v1/organisations", headers=authority.headers, json=org_body(factory))
    assert resp.status_code == 500
    [r] = records(app)
    assert (r.outcome, r.error_code, r.http_status) == ("failure", "internal_error", 500)
    with Session(app.extensions["gi_engine"]) as s:
        assert s.scalar(select(Organisation).where(Organisation.name == "dup")) is None


def test_a_refused_write_leaves_a_failure_record_and_no_change(app, client, factory):
    """Is a write refused by the service (422) recorded as a failure with its error code, after the rollback?"""
    authority = factory.authority()
    body = {**org_body(factory), "uscc": "91341602MA0000000X"}
    resp = client.post("/api/v1/organisations", headers=authority.headers, json=body)
    assert resp.status_code == 422
    [r] = records(app)
    assert (r.outcome, r.error_code, r.http_status, r.user_id) == (
        "failure", resp.json["error"], 422, authority.principal.user_id)


@pytest.mark.parametrize("who", ["anonymous", "wrong-role", "bad-token"])
def test_refused_callers_of_a_staff_write_are_recorded(app, client, factory, who):
    """Are a write without sign-in, with a revoked-or-unknown token and by the wrong kind of account recorded as
    failures (401/403) with the caller's address?"""
    producer = factory.producer()
    headers = {"anonymous": {}, "wrong-role": producer.headers,
               "bad-token": {"Authorization": "Bearer gi_not-a-token"}}[who]
    resp = client.post("/api/v1/organisations", headers=headers, json=org_body(factory),
                       environ_base={"REMOTE_ADDR": "203.0.113.9"})
    [r] = records(app)
    assert (r.outcome, r.http_status, r.error_code, r.address) == (
        "failure", resp.status_code, resp.json["error"], "203.0.113.9")
    assert r.user_id == (producer.principal.user_id if who == "wrong-role" else None)


def test_the_target_is_the_resource_the_url_names(app, client, factory):
    """Does a write on /api/v1/tokens/<id> name its target `token:<id>`?"""
    authority = factory.authority()
    token_id = client.get("/api/v1/tokens", headers=authority.headers).json["tokens"][0]["id"]
    resp = client.delete(f"/api/v1/tokens/{token_id}", headers=authority.headers)
    assert resp.status_code == 200
    [r] = records(app)
    assert (r.action, r.target, r.outcome) == ("api.revoke_token", f"token:{token_id}", "success")


def test_reads_are_not_recorded(app, client, factory):
    """Does a GET that changes nothing leave no record?"""
    authority = factory.authority()
    assert client.get("/api/v1/organisations", headers=authority.headers).status_code == 200
    assert client.get("/api/v1/me", headers=authority.headers).status_code == 200
    assert records(app) == []


@pytest.mark.parametrize("outcome", ["right", "wrong-password", "unknown-user"])
def test_api_sign_in_attempts_are_recorded_with_the_username_tried(app, client, factory, outcome):
    """Is every API sign-in attempt recorded with the username tried, its outcome and address — and a wrong
    password on a known account attributed to that account's organisation?"""
    actor = factory.inspection()
    username = "nobody-here" if outcome == "unknown-user" else actor.principal.username
    password = "password-123456" if outcome == "right" else "wrong-password-1"
    resp = client.post("/api/v1/auth/login", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert resp.status_code == (201 if outcome == "right" else 401)
    [r] = records(app)
    assert (r.action, r.username, r.address, r.detail) == (
        "api.login", username, "198.51.100.7", {"sign_in": True, **({"two_factor": False} if outcome == "right" else {})})
    if outcome == "right":
        assert (r.outcome, r.user_id, r.organisation_id, r.http_status) == (
            "success", actor.principal.user_id, actor.org.id, 201)
    else:
        assert (r.outcome, r.error_code, r.http_status) == ("failure", "invalid_credentials", 401)
        assert r.organisation_id == (None if outcome == "unknown-user" else actor.org.id)


def _csrf(client) -> str:
    page = client.get("/login", headers=HTML).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_web_sign_in_sign_out_and_a_refused_sign_in_are_recorded(app, client, factory):
    """Are the web page's sign-in (wrong, then right) and sign-out recorded, with who and the outcome?"""
    actor = factory.producer()
    name = actor.principal.username
    token = _csrf(client)
    resp = client.post("/login", data={"username": name, "password": "nope-nope-nope", "csrf_token": token},
                       headers=HTML)
    assert resp.status_code == 401
    resp = client.post("/login", data={"username": name, "password": "password-123456", "csrf_token": token},
                       headers=HTML)
    assert resp.status_code == 303
    page = client.get("/app/plots", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/logout", data={"csrf_token": token}, headers=HTML).status_code == 303
    rs = records(app)
    assert [(r.action, r.outcome, r.error_code, r.username) for r in rs] == [
        ("web.login", "failure", "invalid_credentials", name), ("web.login", "success", None, name),
        ("web.logout", "success", None, name)]
    assert all(r.user_id == actor.principal.user_id and r.channel == "web" for r in rs)


def test_web_page_writes_and_their_refusals_are_recorded(app, client, factory):
    """Is a page write recorded (its target from the URL), a refused one as a failure with its X-Error-Code,
    and a signed-out attempt (answered with a redirect to /login) as a failure too?"""
    authority = factory.authority()
    resp = client.post("/app/requests/99/refuse", headers={**HTML, **authority.headers}, data={"reason": "no"})
    assert resp.status_code == 404
    resp = client.post("/app/requests/99/refuse", headers=HTML, data={"reason": "no"})
    rs = records(app)
    assert [(r.action, r.target, r.outcome) for r in rs] == [("web.request_refuse", "request:99", "failure")] * 2
    assert (rs[0].error_code, rs[0].http_status, rs[0].user_id) == ("request_not_found", 404,
                                                                     authority.principal.user_id)
    assert (rs[1].user_id, rs[1].error_code, rs[1].http_status) == (None, resp.headers["X-Error-Code"],
                                                                    resp.status_code)


def test_consumer_checks_and_reports_are_never_recorded(app, client, factory):
    """Do a consumer's check and fake report (public, anonymous) leave no audit record (no raw IP kept)?"""
    client.get("/v/NOTACODE", headers=HTML)
    client.post("/api/v1/auth/login", json={})  # a malformed sign-in is an attempt all the same
    assert [r.action for r in records(app)] == ["api.login"]


def test_a_read_that_writes_is_recorded_with_its_commit(app, client, factory):
    """Is downloading a print file (a GET the ledger records) in the trail, with the order as its target?"""
    from tests.factories import LedgerWorld

    w = LedgerWorld(factory, client)
    batch = w.approve(w.request(100)["id"])
    before = len(records(app))
    resp = client.get(f"/api/v1/batches/{batch['id']}/print-file?format=csv", headers=w.printer.headers)
    assert resp.status_code == 200
    resp.get_data()
    [r] = records(app)[before:]
    assert (r.action, r.method, r.target, r.outcome, r.user_id) == (
        "api.print_file", "GET", f"batch:{batch['id']}", "success", w.printer.principal.user_id)


def test_a_sign_in_refused_by_the_rate_limit_is_recorded_too(app, database, tmp_path):
    """With sign-ins limited to one an hour, is the second attempt (429) in the trail as a failure?"""
    from gi_service import create_app
    from gi_service.config import Settings, finalize
    from tests.conftest import CACHE_DIR

    limited = create_app(finalize(Settings(env="test", instance_path=tmp_path / "limited", database_url=database.url,
                                           secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                                           public_base_url="http://gi.test", ratelimit_login="1/hour")))
    try:
        client = limited.test_client()
        for _ in range(2):
            client.post("/api/v1/auth/login", json={"username": "guess", "password": "guess-guess"})
    finally:
        limited.extensions["gi_engine"].dispose()
    assert [(r.username, r.error_code, r.http_status) for r in records(app)] == [
        ("guess", "invalid_credentials", 401), ("guess", "rate_limited", 429)]


def test_a_write_that_changes_nothing_is_recorded_once_with_its_answer(app, client, factory):
    """Is revoking a token already revoked (a commit with nothing to write) recorded once, as its answer says?"""
    authority = factory.authority()
    token_id = client.post("/api/v1/tokens", headers=authority.headers, json={"name": "x"}).json["token_info"]["id"]
    for _ in range(2):
        assert client.delete(f"/api/v1/tokens/{token_id}", headers=authority.headers).status_code == 200
    assert [(r.action, r.outcome, r.http_status) for r in records(app)] == [
        ("api.create_token", "success", 201), ("api.revoke_token", "success", 200),
        ("api.revoke_token", "success", 200)]


def test_a_services_savepoint_does_not_stage_the_record_before_the_request_commits(app):
    """SQLAlchemy runs the commit hooks for a savepoint's release too. Is the record of an action whose service
    used a savepoint (quota opening, plot codes, ...) staged once, at the real commit, with what the view noted
    after the savepoint, and does a savepoint rolled back leave the writes before it counted?"""
    from gi_service.services import audit as audit_service

    session = Session(app.extensions["gi_engine"])   # the app's: its tables are emptied after the test
    capture = audit_service.Capture(channel="api", action="api.test_savepoint", success_status=201)
    finder = lambda s: capture if s is session else None  # noqa: E731
    audit_service.watch_commits(finder)
    try:
        session.add(Organisation(kind="authority", name="某局", adcode="341600"))
        with session.begin_nested():
            session.add(Organisation(kind="authority", name="某县局", adcode="341602"))
            session.flush()
        try:
            with session.begin_nested():
                session.execute(select(1))
                raise ValueError("a refused step the service recovers from")
        except ValueError:
            pass
        assert not capture.written
        capture.detail["noted_after_the_savepoint"] = True
        session.commit()
    finally:
        audit_service._capture_finders.remove(finder)
        session.close()
    [row] = [r for r in records(app) if r.action == "api.test_savepoint"]
    assert (row.outcome, row.http_status, row.detail) == ("success", 201, {"noted_after_the_savepoint": True})
