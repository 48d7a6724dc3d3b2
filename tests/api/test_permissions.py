"""Who may do what: the API's refusal matrix, endpoint by endpoint and caller by caller.

One world is built for every test: authority A (341600 亳州市), authority B (330100 杭州市),
the national authority N (100000), producer P1 (341602) with a plot and an approved
authorization for GI g1 (亳白芍, area 341602, registered by A) and a pending application
for g2 (亳菊, same area, also A's), producer P2 (330106), a printer, an inspection unit in
another province (I_far, 440100) and one covering P1 (I_near, 341600), and the anonymous
public. Each refusal is checked for its exact status and error code, and for having
written nothing.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass

import pytest
import shapely.geometry
from sqlalchemy import func, select, update

from gi_service.http.access import Access
from gi_service import clock
from gi_service.models import (ApiToken, Authorization, AuthorizationEvent, AuthorizationStatus, GIProduct, GIVersion,
                               Organisation, OriginArea, Plot, User)
from tests.factories import Actor, square

UNAUTHENTICATED = (401, "unauthenticated")
WRONG_ROLE = (403, "wrong_role")
OUTSIDE = (403, "outside_jurisdiction")
NOT_YOURS = (403, "not_your_producer")


def case_id(value):
    """Readable test ids: (403, 'wrong_role') -> '403-wrong_role'."""
    if isinstance(value, tuple):
        return "-".join(map(str, value))
    return None


@dataclass
class World:
    actors: dict[str, Actor]
    g1: int
    g2: int
    plot1: int
    approved: int
    pending: int
    inside: tuple[float, float]  # a point well inside 341602 (lon, lat)

    def headers(self, who: str) -> dict[str, str]:
        return {} if who == "anonymous" else self.actors[who].headers

    def org(self, who: str) -> int:
        return self.actors[who].org.id


@pytest.fixture
def world(factory, reused_world) -> World:
    """The actors, GIs, plot and authorizations: built once per test process and database, then restored."""
    return reused_world("permissions", lambda: build_world(factory), lambda world: None)


def build_world(factory) -> World:
    a = factory.authority("341600", name="亳州市市场监督管理局")
    actors = {
        "A": a,
        "B": factory.authority("330100", name="杭州市市场监督管理局"),
        "N": factory.authority("100000", name="国家知识产权局"),
        "P1": factory.producer("341602"),
        "P2": factory.producer("330106"),
        "printer": factory.printer("340104"),
        "I_far": factory.inspection("440100"),
        "I_near": factory.inspection("341600"),
    }
    g1 = factory.gi(a, name_zh="亳白芍")
    g2 = factory.gi(a, name_zh="亳菊")
    plot = factory.plot(actors["P1"], g1)
    approved = factory.authorization(actors["P1"], g1, by=a, approve=True)
    pending = factory.authorization(actors["P1"], g2, by=actors["P1"], approve=False)
    point = factory.inside_point(g1)
    return World(actors, g1.id, g2.id, plot.id, approved.id, pending.id, (point.x, point.y))


def count(session, stmt) -> int:
    """Rows matching `stmt` as committed now (the factory session must not read an old snapshot)."""
    session.rollback()
    return session.scalar(select(func.count()).select_from(stmt.subquery()))


def scalar(session, stmt):
    session.rollback()
    return session.scalar(stmt)


def outcome(resp, expected) -> bool:
    """Assert the response matches `expected` (a success status, or (status, error code)); True on success."""
    body = resp.get_json()
    if isinstance(expected, int):
        assert resp.status_code == expected, body
        return True
    status, code = expected
    assert (resp.status_code, body and body.get("error")) == (status, code), body
    assert body["message"], "every refusal says why"
    return False


def geojson(geom) -> dict:
    return shapely.geometry.mapping(geom)


# --- the GI registry ---------------------------------------------------------------------------

@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", WRONG_ROLE),
    ("printer", WRONG_ROLE),
    ("I_near", WRONG_ROLE),
    ("B", OUTSIDE),
    ("A", 201),
    ("N", 201),
], ids=case_id)
def test_register_gi(client, session, world, who, expected):
    """Who may register a GI whose area (341602) lies in 亳州市?"""
    before = count(session, select(GIProduct.id)), count(session, select(GIVersion.id))
    resp = client.post("/api/v1/gis", headers=world.headers(who),
                       json={"name_zh": "亳州花茶", "kind": "protected_product", "category": "tea",
                             "area_adcodes": ["341602"]})
    created = outcome(resp, expected)
    after = count(session, select(GIProduct.id)), count(session, select(GIVersion.id))
    assert after == (before[0] + created, before[1] + created)


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", WRONG_ROLE),
    ("printer", WRONG_ROLE),
    ("I_near", WRONG_ROLE),
    ("I_far", WRONG_ROLE),
    ("B", OUTSIDE),
    ("A", 200),
    ("N", 200),
], ids=case_id)
def test_amend_gi(client, session, world, who, expected):
    """Who may amend A's GI, and does a refused amendment leave the record and its history untouched?"""
    resp = client.patch(f"/api/v1/gis/{world.g1}", headers=world.headers(who),
                        json={"reason": "managing body renamed", "managing_body": "亳州市中药材行业协会"})
    amended = outcome(resp, expected)
    gi = scalar(session, select(GIProduct).where(GIProduct.id == world.g1))
    assert gi.version == 1 + amended
    assert (gi.managing_body == "亳州市中药材行业协会") is amended
    assert count(session, select(GIVersion.id).where(GIVersion.gi_id == world.g1)) == 1 + amended


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", WRONG_ROLE),
    ("I_near", WRONG_ROLE),
    ("B", OUTSIDE),
    ("A", 200),
    ("N", 200),
], ids=case_id)
def test_replace_area_with_put(client, session, world, who, expected):
    """Who may replace A's GI's production area with a GeoJSON body?"""
    old_area = scalar(session, select(GIProduct.origin_area_id).where(GIProduct.id == world.g1))
    areas_before = count(session, select(OriginArea.id))
    resp = client.put(f"/api/v1/gis/{world.g1}/area", headers=world.headers(who),
                      json={"reason": "resurveyed", "geometry": geojson(square(*world.inside, 2000))})
    replaced = outcome(resp, expected)
    gi = scalar(session, select(GIProduct).where(GIProduct.id == world.g1))
    assert (gi.origin_area_id != old_area) is replaced
    assert gi.version == 1 + replaced
    assert count(session, select(OriginArea.id)) == areas_before + replaced


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", WRONG_ROLE),
    ("printer", WRONG_ROLE),
    ("B", OUTSIDE),
    ("A", 200),
], ids=case_id)
def test_upload_area_file(client, session, world, who, expected):
    """Who may replace A's GI's production area by uploading a file?"""
    areas_before = count(session, select(OriginArea.id))
    data = json.dumps(geojson(square(*world.inside, 2000))).encode()
    resp = client.post(f"/api/v1/gis/{world.g1}/area/upload", headers=world.headers(who),
                       data={"file": (io.BytesIO(data), "area.geojson"), "reason": "resurveyed"},
                       content_type="multipart/form-data")
    replaced = outcome(resp, expected)
    assert count(session, select(OriginArea.id)) == areas_before + replaced
    assert scalar(session, select(GIProduct.version).where(GIProduct.id == world.g1)) == 1 + replaced


def test_registering_authority_cannot_move_area_outside_its_jurisdiction(client, session, world):
    """Is A refused when it uploads an area for its GI that lies wholly in 杭州 (B's jurisdiction)?"""
    resp = client.put(f"/api/v1/gis/{world.g1}/area", headers=world.headers("A"),
                      json={"reason": "moved", "geometry": geojson(square(120.15, 30.28, 2000))})
    assert resp.status_code == 403, resp.get_json()["origin_area"]
    assert resp.get_json()["error"] == "outside_jurisdiction"


# --- plots -------------------------------------------------------------------------------------

READ_PLOTS = [
    ("anonymous", UNAUTHENTICATED),
    ("P1", 200),
    ("A", 200),
    ("N", 200),
    ("I_near", 200),
    ("P2", NOT_YOURS),
    ("B", NOT_YOURS),
    ("I_far", NOT_YOURS),
    ("printer", NOT_YOURS),
]


@pytest.mark.parametrize("who, expected", READ_PLOTS, ids=case_id)
def test_list_plots(client, world, who, expected):
    """Who may list P1's plots (the producer itself, and authorities/inspectors covering 341602)?"""
    resp = client.get(f"/api/v1/producers/{world.org('P1')}/plots", headers=world.headers(who))
    if outcome(resp, expected):
        assert [f["id"] for f in resp.get_json()["features"]] == [world.plot1]


@pytest.mark.parametrize("who, expected", READ_PLOTS, ids=case_id)
def test_read_plot(client, world, who, expected):
    """Who may read one of P1's plots?"""
    resp = client.get(f"/api/v1/plots/{world.plot1}", headers=world.headers(who))
    if outcome(resp, expected):
        assert resp.get_json()["producer_id"] == world.org("P1")


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", 201),
    ("A", 201),
    ("P2", NOT_YOURS),
    ("B", NOT_YOURS),
    ("I_near", WRONG_ROLE),
    ("I_far", WRONG_ROLE),
    ("printer", WRONG_ROLE),
], ids=case_id)
def test_create_plot(client, session, world, who, expected):
    """Who may register a plot for P1 (inspection units read plots but never create them)?"""
    resp = client.post(f"/api/v1/producers/{world.org('P1')}/plots", headers=world.headers(who),
                       json={"gi_id": world.g1, "name": "东地块", "survey_year": 2024,
                             "geometry": geojson(square(*world.inside, 60))})
    created = outcome(resp, expected)
    assert count(session, select(Plot.id).where(Plot.producer_id == world.org("P1"))) == 1 + created


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", 200),
    ("A", 200),
    ("P2", NOT_YOURS),
    ("B", NOT_YOURS),
    ("I_near", WRONG_ROLE),
    ("printer", WRONG_ROLE),
], ids=case_id)
def test_modify_plot(client, session, world, who, expected):
    """Who may rename P1's plot, and does a refused change leave it as it was?"""
    resp = client.patch(f"/api/v1/plots/{world.plot1}", headers=world.headers(who), json={"name": "renamed"})
    changed = outcome(resp, expected)
    name = scalar(session, select(Plot.name).where(Plot.id == world.plot1))
    assert (name == "renamed") is changed


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", 200),
    ("A", 200),
    ("P2", NOT_YOURS),
    ("B", NOT_YOURS),
    ("I_near", WRONG_ROLE),
    ("printer", WRONG_ROLE),
], ids=case_id)
def test_retire_plot(client, session, world, who, expected):
    """Who may retire P1's plot, and does a refused retirement leave it active?"""
    resp = client.delete(f"/api/v1/plots/{world.plot1}", headers=world.headers(who))
    retired = outcome(resp, expected)
    assert scalar(session, select(Plot.is_active).where(Plot.id == world.plot1)) is not retired


# --- authorizations ----------------------------------------------------------------------------

@pytest.mark.parametrize("who, producer, approve, expected", [
    ("anonymous", "P2", False, UNAUTHENTICATED),
    ("P2", "P2", False, 201),
    ("P2", "P2", True, WRONG_ROLE),       # a producer never approves its own authorization
    ("P2", "P1", False, NOT_YOURS),       # nor applies for another producer
    ("A", "P2", True, 201),
    ("N", "P2", True, 201),
    ("B", "P2", True, OUTSIDE),           # B covers P2's place but does not manage g1
    ("B", "P2", False, OUTSIDE),
    ("I_near", "P2", False, WRONG_ROLE),
    ("printer", "P2", False, WRONG_ROLE),
], ids=case_id)
def test_create_authorization(client, session, world, who, producer, approve, expected):
    """Who may apply for, or register, an authorization to use g1's special mark?"""
    before = count(session, select(Authorization.id)), count(session, select(AuthorizationEvent.id))
    body = {"producer_id": world.org(producer), "gi_id": world.g1, "basis": "approved_producer", "approve": approve}
    if approve:
        body["announcement_no"] = "亳知〔2025〕7号"
    resp = client.post("/api/v1/authorizations", headers=world.headers(who), json=body)
    created = outcome(resp, expected)
    if created:
        assert resp.get_json()["status"] == ("approved" if approve else "pending")
    after = count(session, select(Authorization.id)), count(session, select(AuthorizationEvent.id))
    assert after == (before[0] + created, before[1] + created)


@pytest.mark.parametrize("who, expected", [
    ("anonymous", UNAUTHENTICATED),
    ("P1", WRONG_ROLE),     # its own application
    ("P2", WRONG_ROLE),
    ("I_near", WRONG_ROLE),
    ("printer", WRONG_ROLE),
    ("B", OUTSIDE),
    ("A", 200),
    ("N", 200),
], ids=case_id)
def test_transition_authorization(client, session, world, who, expected):
    """Who may approve P1's pending application for A's GI g2?"""
    resp = client.post(f"/api/v1/authorizations/{world.pending}/transitions", headers=world.headers(who),
                       json={"to": "approved", "reason": "requirements met", "announcement_no": "亳知〔2025〕8号"})
    moved = outcome(resp, expected)
    status = scalar(session, select(Authorization.status).where(Authorization.id == world.pending))
    assert status == (AuthorizationStatus.approved if moved else AuthorizationStatus.pending)
    events = count(session, select(AuthorizationEvent.id).where(AuthorizationEvent.authorization_id == world.pending))
    assert events == 1 + moved


@pytest.mark.parametrize("who", ["B", "P1", "I_near"])
def test_approved_authorization_cannot_be_suspended_by_outsiders(client, session, world, who):
    """Can anyone but A or N suspend P1's approved authorization for g1?"""
    resp = client.post(f"/api/v1/authorizations/{world.approved}/transitions", headers=world.headers(who),
                       json={"to": "suspended", "reason": "inspection found problems"})
    assert resp.status_code == 403
    status = scalar(session, select(Authorization.status).where(Authorization.id == world.approved))
    assert status == AuthorizationStatus.approved


@pytest.mark.parametrize("who, visible", [
    ("anonymous", False),
    ("P2", False),
    ("printer", False),
    ("I_far", False),
    ("P1", True),
    ("A", True),
    ("N", True),
])
def test_pending_application_visibility(client, world, who, visible):
    """Is P1's pending application seen only by P1 and the GI's authority (404 and unlisted for others)?"""
    headers = world.headers(who)
    resp = client.get(f"/api/v1/authorizations/{world.pending}", headers=headers)
    if visible:
        assert resp.status_code == 200
        assert resp.get_json()["status"] == "pending"
    else:
        assert (resp.status_code, resp.get_json()["error"]) == (404, "authorization_not_found")
    listed = {a["id"] for a in client.get("/api/v1/authorizations", headers=headers).get_json()["items"]}
    by_producer = {a["id"] for a in client.get(f"/api/v1/authorizations?producer_id={world.org('P1')}",
                                                headers=headers).get_json()["items"]}
    on_profile = {a["id"] for a in client.get(f"/api/v1/producers/{world.org('P1')}",
                                               headers=headers).get_json()["authorizations"]}
    for ids in (listed, by_producer, on_profile):
        assert (world.pending in ids) is visible
        assert world.approved in ids  # an approval is a public announcement


@pytest.mark.parametrize("who", ["anonymous", "P2", "printer", "I_far", "B"])
def test_approved_authorization_is_public(client, world, who):
    """Can anyone, signed in or not, read P1's approved authorization and its history?"""
    resp = client.get(f"/api/v1/authorizations/{world.approved}", headers=world.headers(who))
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "approved"
    assert [e["to"] for e in resp.get_json()["history"]] == ["approved"]


def test_pending_application_hidden_from_authority_that_does_not_manage_the_gi(client, factory, world):
    """Is P2's pending application for A's GI hidden from B, which covers P2's place but does not manage g1?"""
    pending = factory.authorization(world.actors["P2"], factory.session.get(GIProduct, world.g1),
                                    by=world.actors["P2"], approve=False)
    resp = client.get(f"/api/v1/authorizations/{pending.id}", headers=world.headers("B"))
    assert resp.status_code == 404


@pytest.mark.parametrize("who, private", [
    ("anonymous", False), ("P2", False), ("B", False), ("I_far", False),
    ("P1", True), ("A", True), ("I_near", True),
])
def test_producer_contact_details(client, world, who, private):
    """Are a producer's address and contact shown only to itself and those covering its place?"""
    body = client.get(f"/api/v1/producers/{world.org('P1')}", headers=world.headers(who)).get_json()
    assert body["uscc"]  # the public register always shows the USCC
    assert ("contact" in body) is private


# --- organisations, users ----------------------------------------------------------------------

@pytest.mark.parametrize("who, adcode, expected", [
    ("anonymous", "341602", UNAUTHENTICATED),
    ("P1", "341602", WRONG_ROLE),
    ("I_near", "341602", WRONG_ROLE),
    ("A", "330106", OUTSIDE),
    ("A", "340000", OUTSIDE),   # the province above A is not inside A
    ("B", "341602", OUTSIDE),
    ("A", "341602", 201),
    ("B", "330106", 201),
    ("N", "440100", 201),
], ids=case_id)
def test_create_organisation(client, session, world, who, adcode, expected):
    """Who may register an organisation in a given place, and does a refusal leave no row behind?"""
    before = count(session, select(Organisation.id))
    resp = client.post("/api/v1/organisations", headers=world.headers(who),
                       json={"kind": "inspection", "name": f"检查大队 {adcode}", "adcode": adcode})
    created = outcome(resp, expected)
    assert count(session, select(Organisation.id)) == before + created


@pytest.mark.parametrize("who, place, expected", [
    ("A", "330106", OUTSIDE),
    ("B", "341602", OUTSIDE),
    ("P1", "341602", WRONG_ROLE),
    ("A", "341602", 201),
], ids=case_id)
def test_register_producer(client, session, factory, world, who, place, expected):
    """Who may register a producer whose USCC places it in `place`?"""
    before = count(session, select(Organisation.id))
    resp = client.post("/api/v1/producers", headers=world.headers(who),
                       json={"name": "谯城区白芍合作社", "uscc": factory.uscc(place)})
    created = outcome(resp, expected)
    assert count(session, select(Organisation.id)) == before + created


@pytest.mark.parametrize("who, org, expected", [
    ("anonymous", "P1", UNAUTHENTICATED),
    ("P1", "P1", WRONG_ROLE),
    ("I_near", "P1", WRONG_ROLE),
    ("A", "P2", OUTSIDE),
    ("B", "P1", OUTSIDE),
    ("A", "N", OUTSIDE),        # a city authority cannot add staff to the national one
    ("A", "P1", 201),
    ("B", "P2", 201),
], ids=case_id)
def test_create_user(client, session, world, who, org, expected):
    """Who may create a user account in an organisation, and does a refusal leave no user behind?"""
    before = count(session, select(User.id))
    resp = client.post("/api/v1/users", headers=world.headers(who),
                       json={"username": f"clerk-{who}-{org}".lower(), "password": "a-long-password-1",
                             "organisation_id": world.org(org)})
    created = outcome(resp, expected)
    assert count(session, select(User.id)) == before + created


@pytest.mark.parametrize("who, hidden", [("B", "P1"), ("P2", "P1"), ("P1", "P2"), ("I_far", "P1")])
def test_organisation_list_stays_in_jurisdiction(client, world, who, hidden):
    """Does the organisations list leave out organisations outside the caller's jurisdiction?"""
    ids = {o["id"] for o in client.get("/api/v1/organisations", headers=world.headers(who)).get_json()["organisations"]}
    assert world.org(who) in ids
    assert world.org(hidden) not in ids


# --- tokens ------------------------------------------------------------------------------------

def own_token_id(client, actor: Actor) -> int:
    tokens = client.get("/api/v1/tokens", headers=actor.headers).get_json()["tokens"]
    assert len(tokens) == 1
    return tokens[0]["id"]


def test_revoked_token_is_refused(client, world):
    """Is a token refused with token_revoked once its owner revoked it?"""
    p1 = world.actors["P1"]
    token_id = own_token_id(client, p1)
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=p1.headers).status_code == 200
    resp = client.get("/api/v1/me", headers=p1.headers)
    assert (resp.status_code, resp.get_json()["error"]) == (401, "token_revoked")


def test_expired_token_is_refused(client, session, world):
    """Is a token past its expires_at refused with token_expired?"""
    p1 = world.actors["P1"]
    session.execute(update(ApiToken).where(ApiToken.user_id == p1.principal.user_id)
                    .values(expires_at=clock.now() - dt.timedelta(minutes=1)))
    session.commit()
    resp = client.get("/api/v1/me", headers=p1.headers)
    assert (resp.status_code, resp.get_json()["error"]) == (401, "token_expired")
    resp = client.post(f"/api/v1/producers/{world.org('P1')}/plots", headers=p1.headers,
                       json={"gi_id": world.g1, "name": "x", "survey_year": 2024,
                             "geometry": geojson(square(*world.inside, 60))})
    assert (resp.status_code, resp.get_json()["error"]) == (401, "token_expired")


@pytest.mark.parametrize("make_header", [
    pytest.param(lambda t: "Basic dXNlcjpwYXNzd29yZA==", id="basic-scheme"),
    pytest.param(lambda t: "Bearer", id="no-token"),
    pytest.param(lambda t: "Bearer    ", id="blank-token"),
    pytest.param(lambda t: t, id="token-without-scheme"),
    pytest.param(lambda t: f"Token {t}", id="wrong-scheme"),
    pytest.param(lambda t: "Bearer gi_this-is-not-a-token", id="unknown-token"),
    pytest.param(lambda t: f"Bearer {t}x", id="altered-token"),
])
def test_malformed_authorization_header(client, world, make_header):
    """Is a malformed or unknown Authorization header refused with 401 invalid_token, even on public endpoints?"""
    header = {"Authorization": make_header(world.actors["P1"].token)}
    for method, url in [("GET", "/api/v1/me"), ("GET", "/api/v1/gis")]:
        resp = client.open(url, method=method, headers=header)
        assert (resp.status_code, resp.get_json()["error"]) == (401, "invalid_token"), url


def test_cannot_revoke_another_users_token(client, session, world):
    """Does revoking someone else's token answer 404 and leave that token working?"""
    victim = world.actors["P1"]
    token_id = own_token_id(client, victim)
    for who in ("P2", "A", "N"):
        resp = client.delete(f"/api/v1/tokens/{token_id}", headers=world.headers(who))
        assert (resp.status_code, resp.get_json()["error"]) == (404, "not_found"), who
    assert scalar(session, select(ApiToken.revoked_at).where(ApiToken.id == token_id)) is None
    assert client.get("/api/v1/me", headers=victim.headers).status_code == 200


def test_token_list_shows_only_own_tokens(client, world):
    """Does GET /tokens list only the caller's own tokens, never their secret?"""
    resp = client.get("/api/v1/tokens", headers=world.headers("P2"))
    tokens = resp.get_json()["tokens"]
    assert len(tokens) == 1
    assert world.actors["P2"].token not in resp.get_data(as_text=True)
    assert world.actors["P1"].token[:10] not in {t["prefix"] for t in tokens}


def test_401_carries_a_bearer_challenge(client):
    """Does a 401 tell the client how to authenticate (WWW-Authenticate: Bearer ...)?"""
    resp = client.get("/api/v1/me")
    assert resp.status_code == 401
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")


# --- every route declares who may call it ------------------------------------------------------

def test_every_view_declares_access_and_every_api_rule_is_documented(app, client):
    """Does every view declare an access rule, and does /openapi.json document every /api rule and method?"""
    doc = client.get("/openapi.json").get_json()
    paths = doc["paths"]
    undeclared, undocumented, api_rules = [], [], 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "web.static"):
            continue
        view = app.view_functions[rule.endpoint]
        access = getattr(view, "gi_access", None)
        if not isinstance(access, Access):
            undeclared.append(rule.endpoint)
        if not rule.rule.startswith("/api/"):
            continue
        api_rules += 1
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                undocumented.append(f"{method} {path}")
            elif isinstance(access, Access):
                assert operation["x-access"] == access.describe(), f"{method} {path}"
    assert api_rules > 20
    assert undeclared == []
    assert undocumented == []
