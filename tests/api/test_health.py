"""GET /api/v1/health: public liveness that never touches the database."""
from __future__ import annotations

from sqlalchemy import event

from gi_service import __version__


def test_health_answers_ok_and_the_version_without_a_token(client):
    """Does the liveness endpoint answer 200 with status and version, with no Authorization header?"""
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert r.json == {"status": "ok", "version": __version__}


def test_health_opens_no_database_connection(app, client):
    """Does the endpoint answer without checking out a connection (a probe must not load the database)?"""
    engine = app.extensions["gi_engine"]
    checkouts = []

    def count(*_args):
        checkouts.append(1)

    event.listen(engine, "checkout", count)
    try:
        for _ in range(3):
            assert client.get("/api/v1/health").status_code == 200
    finally:
        event.remove(engine, "checkout", count)
    assert checkouts == []


def test_health_is_get_only(client):
    """Is it GET only (405 for POST, in the JSON error contract)?"""
    r = client.post("/api/v1/health", json={})
    assert r.status_code == 405
    assert r.json["error"]


def test_health_is_documented_as_public(client):
    """Is the endpoint in /openapi.json, public (no security requirement), with its response schema?"""
    doc = client.get("/openapi.json").json
    op = doc["paths"]["/api/v1/health"]["get"]
    assert "security" not in op
    assert op["x-access"].startswith("public")
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"status", "version"}
