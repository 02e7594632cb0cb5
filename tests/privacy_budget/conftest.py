"""Fixtures of the privacy budget tests: an active project in an enclave on each backend.

Projects are built by the workflow factory of ``tests/workflows`` (through the real workflow
functions), so the policy facts a spend checks are the ones the enclave really records.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.core.context import Enclave
from enclave.core.policy import Actor
from enclave.privacy_budget import set_budget
from tests.workflows.factories import Factory, generate_raw_zone

#: The dataset the budgets of these tests are set on (learning traces: event-level data).
DATASET = "traces_xapi"
STAFF = "claire"  # DEPP staff, not a member of the factory's projects
MEMBER = "alice"  # principal investigator of the factory's projects


@pytest.fixture(scope="session")
def raw_zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small synthetic raw zone, generated once and copied into each test's enclave."""
    return generate_raw_zone(tmp_path_factory.mktemp("raw-zone"))


@pytest.fixture
def factory(enclave: Enclave, raw_zone: Path) -> Factory:
    """People, the small raw zone and its catalogue in a fresh enclave (both backends)."""
    return Factory(enclave).setup(raw_zone)


@pytest.fixture
def sqlite_factory(sqlite_enclave: Enclave, raw_zone: Path) -> Factory:
    """The same on SQLite only."""
    return Factory(sqlite_enclave).setup(raw_zone)


@pytest.fixture
def project(factory: Factory) -> str:
    """An active project (extract built, every member agreed)."""
    return factory.active_project()


def give_budget(factory: Factory, project_id: str, epsilon: object = 1.0, delta: object = 0,
                dataset: str = DATASET) -> None:
    """DEPP staff set the project's budget on ``dataset``."""
    set_budget(factory.enclave.db, factory.actor(STAFF), project_id, dataset,
               epsilon=epsilon, delta=delta, reason="Budget de test")  # type: ignore[arg-type]


def member(factory: Factory) -> Actor:
    """The principal investigator of the factory's projects."""
    return factory.actor(MEMBER)
