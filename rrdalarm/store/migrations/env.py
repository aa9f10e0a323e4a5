"""Alembic environment: runs on the engine handed over by rrdalarm.store.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from rrdalarm.store.database import Base
from rrdalarm.store.migrate import transactional_ddl

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")

# Every pending migration and the version stamp commit together, or not at all.
with engine.connect() as connection, transactional_ddl(connection), connection.begin():
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
