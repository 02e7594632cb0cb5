"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

# The same modules enclave/migrations/env.py imports: together they declare every table.
from access_requests import models as access_models  # noqa: F401
from enclave.core import audit, catalogue, keystore, people  # noqa: F401
from enclave.core.context import Enclave
from enclave.core.db import Base
from enclave.privacy_budget import models as budget_models  # noqa: F401
from enclave.provisioning import models as extract_models  # noqa: F401
from output_control.review import models as review_models  # noqa: F401


def test_migrated_schema_matches_the_models(enclave: Enclave) -> None:
    with enclave.db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
