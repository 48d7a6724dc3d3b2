"""The management commands a newcomer and an operator use."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from gi_service.cli import labels_render, main
from gi_service.db import make_engine
from gi_service.models import Organisation
from tests.conftest import CACHE_DIR


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
               input="Correct-horse-battery-7\nCorrect-horse-battery-7\n").output
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


@pytest.fixture
def served(monkeypatch):
    """`gi-service serve` up to the moment it would listen: waitress is replaced by a recorder of what it got
    (and whether the county boundaries were loaded by then); the SIGTERM handler is not installed."""
    import signal

    import waitress

    from gi_service.services import jurisdiction

    calls: list[dict] = []

    def listen(app, **kwargs):
        calls.append({"app": app, "boundaries_loaded": jurisdiction.is_loaded(), **kwargs})

    monkeypatch.setattr(waitress, "serve", listen)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setattr(jurisdiction, "_cache_dir", jurisdiction._cache_dir)   # serve's app configures it
    yield calls
    for call in calls:
        call["app"].extensions["gi_engine"].dispose()


def test_serve_loads_the_county_boundaries_before_it_listens(served, monkeypatch, tmp_path):
    """Does `gi-service serve` load the county boundaries before it starts listening, so that its first place
    lookup does not have to?"""
    from gi_service.services import jurisdiction

    monkeypatch.setattr(jurisdiction, "_index", None)     # a fresh process: nothing loaded yet
    env = {"GI_INSTANCE_PATH": str(tmp_path), "GI_DATABASE_URL": "", "GI_CACHE_DIR": str(CACHE_DIR)}
    result = _run(env, "serve", "--port", "9123")
    assert result.exit_code == 0, result.output
    assert [(c["port"], c["boundaries_loaded"]) for c in served] == [(9123, True)]


def _csv_urls(data: str) -> list[str]:
    return [row["url"] for row in csv.DictReader(io.StringIO(data.lstrip("\ufeff")))]


def test_serve_and_labels_render_print_the_same_qr_base_url(app, client, database, served, tmp_path):
    """With `gi-service serve --port 9123` and no GI_PUBLIC_BASE_URL, do the server's print files and those
    `gi-service labels render` writes from another shell (not told the port) carry the same QR URLs, on
    http://127.0.0.1:9123; and when GI_PUBLIC_BASE_URL is given, does it win for both?"""
    from sqlalchemy.orm import Session

    from tests.factories import Factory, LedgerWorld

    with Session(app.extensions["gi_engine"], expire_on_commit=False) as session:
        w = LedgerWorld(Factory(app, session), client)
        batch = w.approve(w.request(3)["id"])
    settings = app.config["GI_SETTINGS"]
    env = {"GI_DATABASE_URL": database.url, "GI_INSTANCE_PATH": str(tmp_path / "instance"),
           "GI_MARK_KEYS": settings.mark_keys, "GI_MARK_KEY_ID": settings.mark_key_id,
           "GI_CACHE_DIR": str(CACHE_DIR), "GI_PUBLIC_BASE_URL": None, "GI_HOST": None, "GI_PORT": None}

    def server_urls() -> list[str]:
        server = served[-1]["app"]
        r = server.test_client().get(f"/api/v1/batches/{batch['id']}/print-file", headers=w.printer.headers,
                                     query_string={"format": "csv"})
        assert r.status_code == 200, r.get_data(as_text=True)
        return _csv_urls(r.get_data(as_text=True))

    def rendered_urls(environment) -> tuple[list[str], str]:
        out = tmp_path / "order.csv"
        result = _run(environment, "labels", "render", str(batch["id"]), "--format", "csv", "--out", str(out))
        assert result.exit_code == 0, result.output
        return _csv_urls(out.read_text(encoding="utf-8")), result.output

    assert _run({**env, "GI_PORT": "8000"}, "serve", "--port", "9123").exit_code == 0
    on_server = server_urls()
    assert len(on_server) == 3 and all(u.startswith("http://127.0.0.1:9123/v/") for u in on_server)
    from_cli, said = rendered_urls(env)
    assert from_cli == on_server
    assert re.search(r"QR codes point at http://127\.0\.0\.1:9123/", said)
    assert (Path(env["GI_INSTANCE_PATH"]) / "public_base_url").read_text().strip() == "http://127.0.0.1:9123"

    public = {**env, "GI_PUBLIC_BASE_URL": "https://gi.example.org"}
    assert _run(public, "serve", "--port", "9124").exit_code == 0
    on_server = server_urls()
    assert all(u.startswith("https://gi.example.org/v/") for u in on_server)
    assert rendered_urls(public)[0] == on_server
    assert rendered_urls(env)[0] == on_server      # recorded by that serve: another shell without the variable


def test_the_readme_states_the_render_default_the_command_has():
    """Does the documentation (docs/labels.md) describe `labels render --workers` as the command behaves: one process unless told
    more, `--workers 0` for all cores?"""
    option = next(p for p in labels_render.params if p.name == "workers")
    assert option.default == 1
    readme = (Path(__file__).resolve().parents[1] / "docs" / "labels.md").read_text(encoding="utf-8")
    bullet = readme.split("* `gi-service labels render ORDER", 1)[1].split("\n* ", 1)[0]
    assert "one process" in bullet and "`--workers 0`: all cores" in bullet
    assert "using all cores for PDF" not in readme


def test_keys_generate_makes_hmac_sm3_mark_keys_on_request():
    """Does `gi-service keys generate --suite sm` print an HMAC-SM3 mark key and an SM2 signing key that the
    service accepts with GI_CRYPTO_SUITE=sm (and, without the option, the HMAC-SHA-256 and Ed25519 keys as before)?"""
    from gi_service.codes import MarkKeyring
    from gi_service.services.ledger import CheckpointSigner

    sm = CliRunner().invoke(main, ["keys", "generate", "--suite", "sm", "--mark-key-id", "S"],
                            catch_exceptions=False)
    assert sm.exit_code == 0, sm.output
    values = dict(line.split("=", 1) for line in sm.output.splitlines() if line.startswith("GI_"))
    assert values["GI_MARK_KEYS"].startswith("S:hmac-sm3:") and values["GI_CRYPTO_SUITE"] == "sm"
    assert MarkKeyring.from_setting(values["GI_MARK_KEYS"], "S").suite_of("S") == "hmac-sm3"
    assert CheckpointSigner(values["GI_LEDGER_SIGNING_KEY"]).algorithm == "SM2"
    plain = CliRunner().invoke(main, ["keys", "generate"], catch_exceptions=False)
    setting = next(line for line in plain.output.splitlines() if line.startswith("GI_MARK_KEYS="))
    assert MarkKeyring.from_setting(setting.split("=", 1)[1], "A").suite_of("A") == "hmac-sha256"
