"""The schema comes only from Alembic migrations, and they match the models on both backends."""
from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from gi_service import migrate
from gi_service.db import Base, make_engine
from tests.conftest import PG_URL, backends, with_schema

import gi_service.models  # noqa: F401


@pytest.fixture(params=backends())
def empty_url(request, tmp_path):
    """An empty database of each backend (a fresh schema on PostgreSQL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    schema = f"m_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield with_schema(PG_URL, schema)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _diff(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": migrate.compare_type,
                                                     "include_object": migrate.include_object_for(conn.dialect.name)})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    return diff


def test_upgrade_from_empty_matches_the_models(empty_url):
    """Does migrating an empty database to head give exactly the schema the models describe?"""
    migrate.upgrade(empty_url)
    assert _diff(empty_url) == []


def test_spatial_indexes_exist_on_postgis(empty_url):
    """Are the production-area and plot geometries GiST-indexed PostGIS columns on PostgreSQL?"""
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    insp = inspect(engine)
    if engine.dialect.name != "postgresql":
        cols = {c["name"]: c for c in insp.get_columns("origin_areas")}
        assert "BLOB" in str(cols["geom"]["type"]).upper()
        return
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT f_table_name, type, srid FROM geometry_columns "
                                 "WHERE f_table_schema = current_schema() ORDER BY 1")).all()
        assert [tuple(r) for r in rows] == [("origin_areas", "MULTIPOLYGON", 4326), ("plots", "MULTIPOLYGON", 4326)]
        # indexdef filtered here, not in SQL: a filter on it makes PostgreSQL describe every index of the
        # database, and one that another test's schema drops meanwhile fails with "could not open relation".
        idx = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes "
                                "WHERE schemaname = current_schema()")).all()
    engine.dispose()
    assert {r[0] for r in idx if "USING gist" in r[1]} == {"ix_origin_areas_geom", "ix_plots_geom"}


def test_downgrade_to_base_and_upgrade_again(empty_url):
    """Can the schema be taken down to nothing and rebuilt, ending identical to the models?"""
    migrate.upgrade(empty_url)
    migrate.downgrade(empty_url, "base")
    engine = make_engine(empty_url)
    left = set(inspect(engine).get_table_names()) - {"alembic_version", "spatial_ref_sys"}
    engine.dispose()
    assert left == set()
    migrate.upgrade(empty_url)
    assert migrate.current(empty_url) is not None
    assert _diff(empty_url) == []


def test_0014_encrypts_existing_contacts_and_its_downgrade_decrypts_them(empty_url):
    """Does the upgrade to 0014 encrypt contacts stored before it with the key store it is handed (and leave a
    database without contacts needing no key), and does the downgrade give the plaintext back?"""
    from gi_service import datacrypt, keystore

    store = keystore.SoftwareKeyStore.from_setting(keystore.new_development_keys())
    migrate.upgrade(empty_url, "0011")
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (kind, name, adcode, contact, is_active, created_at) VALUES "
                          "('producer', '某茶厂', '341602', '赵六 0558-1234567', true, CURRENT_TIMESTAMP), "
                          "('producer', '无联系人', '341602', NULL, true, CURRENT_TIMESTAMP)"))
    migrate.upgrade(empty_url, "head", keystore=store)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT contact FROM organisations ORDER BY id")).scalars().all()
    assert stored[1] is None and datacrypt.is_envelope(stored[0]) and "1234567" not in stored[0]
    assert datacrypt.unseal(store, stored[0], "organisations.contact") == "赵六 0558-1234567"
    migrate.downgrade(empty_url, "0011", keystore=store)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT contact FROM organisations ORDER BY id")).scalars().all() == [
            "赵六 0558-1234567", None]
    engine.dispose()
