"""Database readiness, UTC timestamps, transactions, and atomic file writes."""

from __future__ import annotations

import hashlib
import itertools
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from enclave.core import db as dbmod
from enclave.core.context import Enclave
from enclave.core.db import Database, require_current
from enclave.core.exceptions import DatabaseNotReadyError
from enclave.core.files import sha256_bytes, sha256_file, write_atomic
from enclave.core.people import User
from enclave.core.settings import Settings
from tests.support.pgcluster import Cluster

BOGUS_REVISION = "0000deadbeef"
_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that exists but has never been migrated, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "empty.sqlite"
        sqlite3.connect(path).close()  # an existing database file without any table
        return f"sqlite:///{path}"
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    name = f"empty{os.getpid()}_{next(_names)}"
    cluster.psql(f"CREATE DATABASE {name}")
    return cluster.url(name)


def _sql(enclave: Enclave, statement: str) -> None:
    with enclave.db.engine.begin() as conn:
        conn.execute(text(statement))


def _user(created_at: datetime, username: str = "rita") -> User:
    return User(username=username, display_name="Rita", created_at=created_at)


# -- readiness ------------------------------------------------------------------------------------

def test_current_database_is_accepted(enclave: Enclave) -> None:
    require_current(enclave.db)
    assert dbmod.current_revision(enclave.db) == dbmod.head_revision()


def test_empty_database_is_refused_with_the_command_to_run(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        with pytest.raises(DatabaseNotReadyError, match="is empty; run 'enclave init'"):
            require_current(database)
    finally:
        database.dispose()


def test_missing_sqlite_file_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "enclave.sqlite"
    database = Database(f"sqlite:///{missing}")
    try:
        with pytest.raises(DatabaseNotReadyError, match="run 'enclave init'") as info:
            require_current(database)
    finally:
        database.dispose()
    assert str(missing) in str(info.value)
    assert not missing.exists()  # the check did not create an empty database


def test_tables_without_migration_record_are_refused(enclave: Enclave) -> None:
    _sql(enclave, "DROP TABLE alembic_version")
    with pytest.raises(DatabaseNotReadyError,
                       match="has tables but no migration record; run 'enclave init'"):
        require_current(enclave.db)


def test_database_at_an_unknown_revision_is_refused_naming_both_revisions(
        enclave: Enclave) -> None:
    _sql(enclave, f"UPDATE alembic_version SET version_num = '{BOGUS_REVISION}'")
    with pytest.raises(DatabaseNotReadyError) as info:
        require_current(enclave.db)
    message = str(info.value)
    assert BOGUS_REVISION in message
    assert dbmod.head_revision() in message
    assert "does not know" in message


def test_schema_problem_tells_a_database_behind_the_code_to_upgrade() -> None:
    message = dbmod.schema_problem("0001", "0002", {"0001", "0002"}, True, "db")
    assert message is not None
    assert "at migration 0001 but this code needs 0002" in message
    assert "enclave db upgrade" in message


def test_schema_problem_is_none_at_the_head() -> None:
    assert dbmod.schema_problem("0002", "0002", {"0001", "0002"}, True, "db") is None


def test_enclave_open_refuses_a_database_behind_the_code(enclave: Enclave) -> None:
    _sql(enclave, f"UPDATE alembic_version SET version_num = '{BOGUS_REVISION}'")
    with pytest.raises(DatabaseNotReadyError, match="does not know"):
        Enclave.open(enclave.settings, env={})
    unchecked = Enclave.open(enclave.settings, env={}, check_schema=False)
    try:
        assert dbmod.current_revision(unchecked.db) == BOGUS_REVISION
    finally:
        unchecked.close()


def test_enclave_open_refuses_an_empty_database(empty_database_url: str,
                                                tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "var", database_url=empty_database_url)
    with pytest.raises(DatabaseNotReadyError, match="enclave init"):
        Enclave.open(settings, env={})


@pytest.mark.postgres
def test_refusal_never_shows_the_database_password(pg_cluster: Cluster) -> None:
    name = f"secret{os.getpid()}_{next(_names)}"
    pg_cluster.psql(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name).replace("postgres@", "postgres:s3cr3t-pw@")
    database = Database(url)
    try:
        with pytest.raises(DatabaseNotReadyError) as info:
            require_current(database)
    finally:
        database.dispose()
    assert "s3cr3t-pw" not in str(info.value)
    assert name in str(info.value)


def test_upgrade_brings_an_empty_database_to_the_head(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        dbmod.upgrade(database)
        require_current(database)
    finally:
        database.dispose()


# -- timestamps and transactions ------------------------------------------------------------------

def test_naive_datetime_is_refused(sqlite_enclave: Enclave) -> None:
    with pytest.raises(StatementError, match="naive datetime"), \
            sqlite_enclave.db.transaction() as session:
        session.add(_user(datetime(2026, 1, 1, 12, 0)))  # naive: the point of the test
        session.flush()
    with sqlite_enclave.db.sessions() as session:
        assert session.execute(select(User)).first() is None


def test_aware_datetime_is_stored_and_read_back_in_utc(enclave: Enclave) -> None:
    paris_summer = timezone(timedelta(hours=2))
    with enclave.db.transaction() as session:
        session.add(_user(datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=paris_summer)))
    with enclave.db.sessions() as session:
        stored = session.execute(select(User.created_at)).scalar_one()
    assert stored == datetime(2026, 6, 1, 10, 30, 15, 123456, tzinfo=UTC)
    assert stored.utcoffset() == timedelta(0)


def test_utcnow_is_aware_and_utc() -> None:
    now = dbmod.utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


def test_transaction_rolls_back_everything_on_error(enclave: Enclave) -> None:
    with pytest.raises(RuntimeError), enclave.db.transaction() as session:
        session.add(_user(dbmod.utcnow()))
        session.flush()
        raise RuntimeError("the second half failed")
    with enclave.db.sessions() as session:
        assert session.execute(select(User)).first() is None
    assert enclave.db.dialect in {"sqlite", "postgresql"}


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(sqlite_enclave: Enclave) -> None:
    with sqlite_enclave.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


# -- atomic writes --------------------------------------------------------------------------------

def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_writes_the_bytes_with_the_given_mode(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "report.csv"
    write_atomic(target, b"a;b\n1;2\n", mode=0o600)
    assert target.read_bytes() == b"a;b\n1;2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomic(target, b"replaced")
    assert target.read_bytes() == b"replaced"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the default
    assert _leftovers(target.parent) == []


def test_write_atomic_leaves_no_temp_file_when_the_rename_fails(tmp_path: Path) -> None:
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(OSError):
        write_atomic(target, b"data")
    assert _leftovers(tmp_path) == []
    assert (target / "inside").read_text() == "keep"


def test_write_atomic_leaves_no_temp_file_and_the_old_content_on_a_write_error(
        tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_sha256_of_a_file_read_in_chunks_matches_the_bytes(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path, chunk=333) == expected == sha256_bytes(data)


# -- read-only sessions ---------------------------------------------------------------------------

def test_read_only_session_refuses_to_write(enclave: Enclave) -> None:
    now = datetime.now(UTC)
    with enclave.db.sessions() as session:
        session.add(_user(now, "ro-writer"))
        with pytest.raises(RuntimeError, match="read-only session"):
            session.flush()
    with enclave.db.sessions() as session:
        assert session.execute(select(User).where(User.username == "ro-writer")).first() is None


def test_read_only_session_reads_while_a_writer_holds_the_write_lock(enclave: Enclave) -> None:
    """A page's query does not wait for a writing transaction (WAL snapshot on SQLite)."""
    now = datetime.now(UTC)
    with enclave.db.transaction() as writer:
        writer.add(_user(now, "before"))
    with enclave.db.transaction() as writer:
        writer.add(_user(now, "pending"))
        writer.flush()
        with enclave.db.sessions() as reader:
            names = set(reader.execute(select(User.username)).scalars())
    assert "before" in names
    assert "pending" not in names  # the reader sees the last committed state only


def test_postgresql_read_only_session_is_a_read_only_transaction(enclave: Enclave) -> None:
    if enclave.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's transaction_read_only setting")
    with enclave.db.sessions() as session:
        assert session.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
    with enclave.db.transaction() as session:
        assert session.execute(text("SHOW transaction_read_only")).scalar_one() == "off"
