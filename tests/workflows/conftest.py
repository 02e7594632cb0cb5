"""Fixtures of the workflow tests: a factory over the enclave of each backend.

``factory`` gives each test a fresh enclave (the ``enclave`` fixture of ``tests/conftest.py``,
on SQLite and on PostgreSQL). ``shared_factory`` gives every test of a module one enclave per
backend: for the large truth tables, whose cells each build their own project and observe
only that project and the events appended after their own start, it saves creating a
database per cell. Tests that change something global (the raw zone, the agreement version)
use ``factory``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.core.context import Enclave, initialise
from enclave.core.settings import load_settings
from tests.workflows.factories import Factory, generate_raw_zone

_databases = itertools.count()


@pytest.fixture(scope="session")
def raw_zone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small synthetic raw zone, generated once and copied into each test's enclave."""
    return generate_raw_zone(tmp_path_factory.mktemp("raw-zone"))


@pytest.fixture
def factory(enclave: Enclave, raw_zone: Path) -> Factory:
    """People and the small raw zone with its catalogue, in a fresh enclave (both backends)."""
    return Factory(enclave).setup(raw_zone)


@pytest.fixture
def fresh_factory(enclave: Enclave, raw_zone: Path) -> Factory:
    """``factory`` under a name modules that share their enclave can still ask for."""
    return Factory(enclave).setup(raw_zone)


@pytest.fixture
def sqlite_factory(sqlite_enclave: Enclave, raw_zone: Path) -> Factory:
    """The same on SQLite only, for rules that do not depend on the backend."""
    return Factory(sqlite_enclave).setup(raw_zone)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_factory(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   raw_zone: Path) -> Iterator[Factory]:
    """One enclave per backend for a whole module, set up as ``factory`` sets up its own."""
    home = tmp_path_factory.mktemp("shared-enclave")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'enclave.sqlite'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        name = f"w{os.getpid()}_{next(_databases)}"
        cluster.psql(f"CREATE DATABASE {name} TEMPLATE enclave_template")
        url = cluster.url(name)
    settings = load_settings(env={}, home=home / "var", database_url=url)
    initialise(settings, env={})
    opened = Enclave.open(settings, env={})
    try:
        yield Factory(opened).setup(raw_zone)
    finally:
        opened.close()
