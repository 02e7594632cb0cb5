"""Shared fixtures: an enclave on SQLite and on a throwaway PostgreSQL cluster, demo people."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.core.context import Enclave, initialise
from enclave.core.db import Database, upgrade
from enclave.core.settings import Settings, load_settings
from tests.support.browser import browser  # noqa: F401 - the browser tests' fixture
from tests.support.pgcluster import Cluster, find_bindir, start_cluster

REQUIRE_PG = os.environ.get("ENCLAVE_REQUIRE_POSTGRES") == "1"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster | str]:
    """A running PostgreSQL (started here), or a URL prefix from ENCLAVE_TEST_POSTGRES_URL."""
    if find_bindir() is None:
        if REQUIRE_PG:
            pytest.fail("ENCLAVE_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries were found")
        pytest.skip("PostgreSQL server binaries not installed")
    cluster = start_cluster()
    try:
        cluster.psql("CREATE DATABASE enclave_template")
        template = Database(cluster.url("enclave_template"))
        upgrade(template)
        template.dispose()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'enclave.sqlite'}"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"t{os.getpid()}_{next(_counter)}"
    cluster.psql(f"CREATE DATABASE {name} TEMPLATE enclave_template")
    return cluster.url(name)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings with a private home folder and the backend under test."""
    return load_settings(env={}, home=tmp_path / "var", database_url=database_url)


@pytest.fixture
def enclave(settings: Settings) -> Iterator[Enclave]:
    """An initialised, opened enclave (demo keys generated in the private home)."""
    initialise(settings, env={})
    opened = Enclave.open(settings, env={})
    yield opened
    opened.close()


@pytest.fixture
def sqlite_enclave(tmp_path: Path) -> Iterator[Enclave]:
    """An enclave on SQLite only, for tests that do not depend on the backend."""
    settings = load_settings(env={}, home=tmp_path / "var")
    initialise(settings, env={})
    opened = Enclave.open(settings, env={})
    yield opened
    opened.close()


@pytest.fixture(scope="session", autouse=True)
def _remove_project_groups_made_by_the_tests() -> Iterator[None]:
    """Each sandboxed run makes a Unix group per project; give back those the tests made."""
    import grp

    from enclave.sandbox import accounts

    before = {g.gr_name for g in grp.getgrall()}
    yield
    if os.geteuid() != 0:
        return
    for group in grp.getgrall():
        name = group.gr_name
        if name.startswith(accounts.GROUP_PREFIX + "prj-") and name not in before:
            accounts.remove_project_group(name.removeprefix(accounts.GROUP_PREFIX))
