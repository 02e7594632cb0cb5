"""Alembic environment: one linear history for the tables of the core and of every workflow."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import output_control.review.models  # noqa: F401 - registers the tables on the metadata
from enclave.core.db import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    """Run migrations on the engine handed over by enclave.core.db, or on the configured URL."""
    engine = config.attributes.get("engine") or create_engine(
        config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
