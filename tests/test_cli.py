"""The management commands a newcomer and an operator use."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select, text

from gi_service.cli import main
from gi_service.db import make_engine
from gi_service.models import Organisation


def _run(env, *args, input=None):
    result = CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)
    return result


def test_demo_load_is_idempotent_and_creates_every_role(app, database, tmp_path):
    """Does `demo load` create GIs, areas and accounts for every role, and change nothing the second time?"""
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path)}
    assert _run(env, "demo", "load").output.strip() == "demo data loaded"
    engine = make_engine(database.url)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("gis", "origin_areas", "organisations", "users", "plots", "authorizations")}
        kinds = {row[0] for row in conn.execute(text("SELECT DISTINCT kind FROM organisations"))}
    assert counts["gis"] == 5 and counts["origin_areas"] == 5 and counts["plots"] >= 8
    assert kinds == {"authority", "producer", "printer", "inspection"}
    assert _run(env, "demo", "load").output.strip() == "demo data already present"
    with engine.connect() as conn:
        again = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in counts}
    engine.dispose()
    assert again == counts


def test_users_and_tokens_from_the_command_line(app, client, database, tmp_path):
    """Can an operator create an organisation, a user and a token that then works on the API, and revoke it?"""
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path)}
    out = _run(env, "orgs", "create", "--kind", "authority", "--name", "国家知识产权局", "--adcode", "100000").output
    assert "created" in out
    engine = make_engine(database.url)
    with engine.connect() as conn:
        org_id = conn.execute(select(Organisation.id)).scalar_one()
    engine.dispose()
    out = _run(env, "users", "create", "--username", "ops", "--organisation-id", str(org_id),
               input="correct-horse-battery\ncorrect-horse-battery\n").output
    assert "user ops" in out
    out = _run(env, "tokens", "create", "--username", "ops", "--ttl-days", "7").output
    token = out.strip().splitlines()[-1]
    assert token.startswith("gi_")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json["username"] == "ops"
    token_id = out.split("token id ")[1].split()[0]
    _run(env, "tokens", "revoke", token_id)
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json["error"] == "token_revoked"
    bad = CliRunner().invoke(main, ["users", "create", "--username", "x", "--organisation-id", str(org_id)],
                             env=env, input="short\nshort\n")
    assert bad.exit_code != 0 and "at least 10 characters" in bad.output


def test_db_upgrade_on_a_fresh_embedded_database(tmp_path):
    """Does `db upgrade` create the embedded SQLite database under instance/ from nothing?"""
    env = {"GI_INSTANCE_PATH": str(tmp_path / "instance"), "GI_DATABASE_URL": ""}
    out = _run(env, "db", "upgrade").output
    assert "database at" in out
    assert (tmp_path / "instance" / "gi-service.sqlite3").exists()
    assert _run(env, "db", "current").output.strip() != "(empty database)"
