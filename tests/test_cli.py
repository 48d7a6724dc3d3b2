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


def test_labels_render_writes_a_print_file_and_records_it(app, client, database, tmp_path):
    """Does `labels render` write an order's CSV with a progress bar and record the download in the ledger?"""
    import csv as csv_module

    from tests.factories import Factory, LedgerWorld
    from sqlalchemy.orm import Session

    with Session(app.extensions["gi_engine"], expire_on_commit=False) as session:
        w = LedgerWorld(Factory(app, session), client)
        batch = w.approve(w.request(30)["id"])
    settings = app.config["GI_SETTINGS"]
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path), "GI_MARK_KEYS": settings.mark_keys,
           "GI_MARK_KEY_ID": settings.mark_key_id, "GI_PUBLIC_BASE_URL": "https://gi.example.org"}
    out = tmp_path / "order.csv"
    result = _run(env, "labels", "render", str(batch["id"]), "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv_module.reader(out.open()))
    assert len(rows) == 31 and rows[1][3].startswith("https://gi.example.org/v/")
    again = _run(env, "labels", "render", str(batch["id"]), "--format", "csv", "--out", str(out))
    assert "already downloaded 1 time" in again.output
    engine = make_engine(database.url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM ledger_events WHERE kind = 'print_file_downloaded'")).scalar_one()
    engine.dispose()
    assert n == 2
    bad = _run(env, "labels", "render", "999999", "--format", "csv", "--out", str(out))
    assert bad.exit_code != 0 and "does not exist" in bad.output
