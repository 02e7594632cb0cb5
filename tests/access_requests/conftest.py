"""Fixtures of the access workflow tests: the workflow factory over a small raw zone."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from access_requests.models import (
    AgreementAcceptance,
    EthicsOpinion,
    ExtensionRequest,
    Membership,
    MembershipRequest,
    Notification,
    Project,
    ProjectDecision,
    RequestedVariable,
)
from enclave.core import audit
from enclave.core.context import Enclave
from tests.workflows.factories import Factory, generate_raw_zone

TABLES = (Project, Membership, RequestedVariable, ProjectDecision, EthicsOpinion,
          AgreementAcceptance, MembershipRequest, ExtensionRequest, Notification)


@pytest.fixture(scope="session")
def raw_zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small synthetic raw zone, generated once and copied into each test's enclave."""
    return generate_raw_zone(tmp_path_factory.mktemp("raw-zone"))


@pytest.fixture
def factory(enclave: Enclave, raw_zone: Path) -> Factory:
    """People and the small raw zone with its catalogue, in a fresh enclave (both backends)."""
    return Factory(enclave).setup(raw_zone)


@pytest.fixture
def sqlite_factory(sqlite_enclave: Enclave, raw_zone: Path) -> Factory:
    """The same on SQLite only, for rules that do not depend on the backend."""
    return Factory(sqlite_enclave).setup(raw_zone)


def snapshot(factory: Factory) -> dict[str, object]:
    """Row counts of every workflow table, the audit head and the files under projects/."""
    with factory.enclave.db.sessions() as session:
        counts: dict[str, object] = {
            model.__tablename__: session.execute(
                select(func.count()).select_from(model)).scalar_one() for model in TABLES}
        counts["audit_head"] = audit.head(session)[0]
    root: Path = factory.enclave.settings.projects_dir
    counts["files"] = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return counts
