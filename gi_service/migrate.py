"""Run Alembic migrations programmatically (used by the CLI and the tests)."""
from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str, connection: Connection | None = None, keystore=None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if keystore is not None:
        # Data migrations that encrypt or decrypt personal data (0014) use it; without it they use the key store
        # of the settings (GI_DATA_KEYS, ...), and only if there is data to convert.
        cfg.attributes["gi_keystore"] = keystore
    return cfg


POSTGIS_TABLES = {"spatial_ref_sys", "geometry_columns", "geography_columns"}


SCANS_PARTITION = re.compile(r"^scans_(y\d{4}m\d{2}|before_y\d{4}m\d{2}|kept)$")


def include_object_for(dialect_name: str):
    """Skip what exists only on one backend (GiST indexes, PostGIS's own tables)."""

    def include_object(obj, name, type_, reflected, compare_to):
        if type_ == "table" and reflected and compare_to is None and name in POSTGIS_TABLES:
            return False
        if type_ == "table" and reflected and compare_to is None and SCANS_PARTITION.match(name or ""):
            return False       # the check log's partitions (PostgreSQL; services/partitions.py)
        if type_ == "index" and not reflected and obj.dialect_options["postgresql"].get("using") == "gist":
            return dialect_name == "postgresql"
        return True

    return include_object


def compare_type(ctx, inspected_column, metadata_column, inspected_type, metadata_type):
    """Compare our dialect-dependent geometry type by what it becomes on this backend."""
    from .db import GeometryType

    if isinstance(metadata_type, GeometryType):
        if ctx.dialect.name == "postgresql":
            return type(inspected_type).__name__.lower() != "geometry"
        return type(inspected_type).__name__.upper() not in ("BLOB", "LARGEBINARY", "NULLTYPE")
    return None  # the default comparison


def upgrade(url: str, revision: str = "head", connection: Connection | None = None, keystore=None) -> None:
    command.upgrade(alembic_config(url, connection, keystore), revision)


def downgrade(url: str, revision: str, connection: Connection | None = None, keystore=None) -> None:
    command.downgrade(alembic_config(url, connection, keystore), revision)


def current(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
