"""Database engine, sessions and migrations: SQLite embedded by default, PostgreSQL in production.

On SQLite every writing transaction starts with ``BEGIN IMMEDIATE`` so that writers serialise
at the start of a transaction instead of failing half-way (the audit chain relies on it); on
PostgreSQL the audit chain takes an advisory lock instead. Read-only sessions
(:meth:`Database.sessions`) start a deferred transaction on SQLite, so that with WAL the portal's
pages never wait for a writer, and a ``READ ONLY`` one on PostgreSQL; they refuse to flush.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from enclave.core.exceptions import DatabaseNotReadyError

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table of the enclave (core and workflows)."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both SQLite and PostgreSQL; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC (the only clock the enclave records)."""
    return datetime.now(UTC)


READ_ONLY = "enclave_read_only"
"""Execution option marking the connections of read-only sessions."""


def _read_only(conn: Any) -> bool:
    return bool(conn.get_execution_options().get(READ_ONLY))


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys, a busy timeout, immediate transactions.

    Connections carrying the :data:`READ_ONLY` execution option begin a deferred transaction on
    SQLite (a WAL snapshot that never waits for writers) and a ``READ ONLY`` one on PostgreSQL.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event emit BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if _read_only(conn) else "BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_recycle=1800, **kwargs)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if _read_only(conn):
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")

    return engine


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a read-only session was asked to write; use Database.transaction()")


class Database:
    """An engine plus its session factory; the one handle workflows receive."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        # Writing sessions: prefer transaction(), which commits or rolls back as one unit.
        self.writers = sessionmaker(self.engine, expire_on_commit=False)
        # Read-only sessions for queries: deferred on SQLite, ``READ ONLY`` on PostgreSQL.
        self.sessions = sessionmaker(self.engine.execution_options(**{READ_ONLY: True}),
                                     expire_on_commit=False)
        event.listen(self.sessions, "before_flush", _refuse_flush)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back everything on any error."""
        with self.writers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


# -- migrations ---------------------------------------------------------------------------------

def _alembic_config(db: Database) -> Any:
    from alembic.config import Config

    script_location = str(resources.files("enclave") / "migrations")
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the latest migration)."""
    from alembic import command

    if db.url.startswith("sqlite:///"):
        Path(db.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(db), revision)


def head_revision() -> str:
    """The latest migration the code knows."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config_for_scripts()
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None  # noqa: S101 - there is always an initial migration
    return head


def _alembic_config_for_scripts() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("enclave") / "migrations"))
    return cfg


def current_revision(db: Database) -> str | None:
    """The migration the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_problem(current: str | None, head: str, known: set[str], has_tables: bool,
                   where: str) -> str | None:
    """What is wrong with a database at ``current`` for code at ``head``, or None if nothing."""
    if current == head:
        return None
    if current is None:
        what = "has tables but no migration record" if has_tables else "is empty"
        return f"the database {where} {what}; run 'enclave init' to create the schema"
    if current not in known:
        return (f"the database is at migration {current}, which this code does not know (it "
                f"needs {head}): it was migrated by a newer or different version of the "
                "enclave; run that version, or restore a backup")
    return (f"the database is at migration {current} but this code needs {head}; "
            "back it up, then run 'enclave db upgrade'")


def require_current(db: Database) -> None:
    """Refuse to run on a database that is missing or behind the code's migrations."""
    from alembic.script import ScriptDirectory

    if db.url.startswith("sqlite:///") and not Path(db.url.removeprefix("sqlite:///")).exists():
        raise DatabaseNotReadyError(f"no database at {db.url.removeprefix('sqlite:///')}; "
                                    "run 'enclave init' to create it")
    current = current_revision(db)
    scripts = ScriptDirectory.from_config(_alembic_config_for_scripts())
    known = {rev.revision for rev in scripts.walk_revisions()}
    has_tables = current is None and bool(inspect(db.engine).get_table_names())
    problem = schema_problem(current, head_revision(), known, has_tables,
                             db.engine.url.render_as_string(hide_password=True))
    if problem is not None:
        raise DatabaseNotReadyError(problem)
