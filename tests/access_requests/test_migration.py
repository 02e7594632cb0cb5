"""Migration 0002 upgrades a database holding 0001 data, on SQLite and PostgreSQL, and back."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from enclave.core.db import Database, _alembic_config, current_revision, upgrade
from tests.support.pgcluster import Cluster

_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "old.sqlite"
        sqlite3.connect(path).close()
        return f"sqlite:///{path}"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"mig{os.getpid()}_{next(_names)}"
    cluster.psql(f"CREATE DATABASE {name}")
    return cluster.url(name)


def test_0002_keeps_existing_projects_and_seeds_the_agreement(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        upgrade(db, "0001")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO projects (id, title, summary, status, version, "
                "principal_investigator, end_date, created_at) VALUES ('prj-old', 'Ancien', "
                "'', 'active', 3, 'alice', '2030-01-01', '2026-01-01 00:00:00+00:00')"))
            conn.execute(text("INSERT INTO project_members (project_id, username, "
                              "role_in_project) VALUES ('prj-old', 'alice', 'pi')"))
        upgrade(db, "0002")
        assert current_revision(db) == "0002"
        with db.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT status, version, review_round, legal_basis, population, "
                "scientific_purpose FROM projects WHERE id = 'prj-old'")).one()
            assert tuple(row) == ("active", 3, 0, "gdpr_6_1_e_art_89", "{}", "")
            assert conn.execute(text("SELECT institution FROM project_members")).scalar() == ""
            assert conn.execute(text("SELECT version FROM agreement_versions")).scalars() \
                .all() == ["DUA-2026.1"]
        command.downgrade(_alembic_config(db), "0001")
        assert current_revision(db) == "0001"
        upgrade(db, "0002")
        assert current_revision(db) == "0002"
    finally:
        db.dispose()
