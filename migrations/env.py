"""Alembic environment: the only way the schema is created, on SQLite and PostgreSQL."""
from __future__ import annotations

from alembic import context
from sqlalchemy import pool

import gi_service.models  # noqa: F401  (registers every table on Base.metadata)
from gi_service.db import Base, GeometryType, make_engine

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """Skip what exists only on one backend (GiST indexes, PostGIS's own tables)."""
    if type_ == "table" and reflected and compare_to is None and name in {
        "spatial_ref_sys", "geometry_columns", "geography_columns",
    }:
        return False
    if type_ == "index" and not reflected and obj.dialect_options["postgresql"].get("using") == "gist":
        return context.get_bind().dialect.name == "postgresql"
    return True


def compare_type(ctx, inspected_column, metadata_column, inspected_type, metadata_type):
    """Compare our dialect-dependent types by what they become on this backend."""
    if isinstance(metadata_type, GeometryType):
        name = ctx.dialect.name
        if name == "postgresql":
            return type(inspected_type).__name__.lower() != "geometry"
        return type(inspected_type).__name__.upper() not in ("BLOB", "LARGEBINARY")
    return None  # default comparison


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=compare_type,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
