"""Alembic environment: one linear history for the tables of the core and of every workflow."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from access_requests import models as access_models
from enclave.core import audit, catalogue, keystore, people
from enclave.core.db import Base
from enclave.privacy_budget import models as budget_models
from enclave.provisioning import models as extract_models
from output_control.review import models as review_models

#: Importing these modules registers every table on the one metadata autogenerate compares.
MODEL_MODULES = (access_models, audit, catalogue, keystore, people, budget_models,
                 extract_models, review_models)

target_metadata = Base.metadata
config = context.config


def run() -> None:
    """Run migrations on the engine handed over by enclave.core.db, or on the configured URL."""
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("migrations need an engine from enclave.core.db or sqlalchemy.url")
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite",
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
