"""Migrations of the access workflow on SQLite and PostgreSQL, up and back: 0002 keeps 0001 data
and seeds the agreement; 0006 adds the indexes the register's queries walk."""

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


REGISTER_PAGE = ("SELECT id FROM projects {where} ORDER BY created_at DESC, id DESC "
                 "LIMIT 50 OFFSET {offset}")


def _plan(db: Database, sql: str) -> str:
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            return " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        return " ".join(str(r[0]) for r in conn.execute(text("EXPLAIN " + sql)))


def test_0006_adds_the_register_indexes_that_its_queries_use_and_drops_them(
        empty_url: str) -> None:
    db = Database(empty_url)
    try:
        upgrade(db, "0005")
        with db.engine.begin() as conn:  # 10,000 projects, so that an index is worth it
            for start in range(0, 10_000, 2_000):
                conn.execute(text(
                    "INSERT INTO projects (id, title, summary, status, version, "
                    "principal_investigator, end_date, created_at, review_round, "
                    "scientific_purpose, public_interest, legal_basis, legal_basis_other, "
                    "population, ethics_reference, planned_outputs) VALUES (:id, 't', '', "
                    ":status, 1, 'alice', '2030-01-01', :at, 0, '', '', 'x', '', '{}', '', '')"),
                    [{"id": f"prj-{i:05d}", "status": ("in_review", "active", "closed")[i % 3],
                      "at": f"2026-01-01 00:00:{i % 60:02d}.{i:06d}+00:00"}
                     for i in range(start, start + 2_000)])
        before = _plan(db, REGISTER_PAGE.format(where="", offset=4950))
        assert "ix_projects_created_at_id" not in before
        upgrade(db, "0006")
        assert current_revision(db) == "0006"
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        plan = _plan(db, REGISTER_PAGE.format(where="", offset=4950))
        assert "ix_projects_created_at_id" in plan, plan
        by_status = _plan(db, REGISTER_PAGE.format(where="WHERE status = 'in_review'",
                                                  offset=0))
        assert "ix_projects_status_created_at_id" in by_status, by_status
        command.downgrade(_alembic_config(db), "0005")
        db.dispose()  # pooled SQLite connections may still hold the older schema
        assert current_revision(db) == "0005"
        after = _plan(db, REGISTER_PAGE.format(where="", offset=4950))
        assert "ix_projects_created_at_id" not in after
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM projects")).scalar() == 10_000
        upgrade(db)
    finally:
        db.dispose()
