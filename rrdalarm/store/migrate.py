"""Alembic wiring: the migrations live in rrdalarm/store/migrations and run on open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    from alembic.config import Config

# Any constant works; it only has to be the same for every rrdalarm process.
_PG_LOCK_KEY = 0x72726461

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision; a test keeps it equal to the scripts' head. Comparing with a
# constant spares every command the import of Alembic and the scan of the scripts.
HEAD = "0011"


def alembic_config(engine: Engine | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    """The newest migration script's revision (slow: loads every script)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, read without loading the migration scripts."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise migrations between processes that open the same database at once."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        with FileLock(f"{url.database}.migrate.lock", mode=0o600):
            yield
    elif url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    else:
        yield


def _emit_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transactional_ddl(conn: Connection) -> Iterator[None]:
    """Let SQLite roll back DDL: Python 3.11's sqlite3 runs each CREATE outside any transaction.

    On this one connection the driver stops managing transactions and SQLAlchemy emits
    BEGIN itself, so a migration killed half-way leaves nothing behind. Other backends
    are transactional already.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi = conn.connection.driver_connection
    saved = dbapi.isolation_level  # type: ignore[union-attr]
    dbapi.isolation_level = None  # type: ignore[union-attr]
    # A migration that rebuilds a table (to drop a column, say) drops it while other tables point
    # at it; SQLite counts that as a violation even once the rebuilt table stands in its place.
    # Its own recipe: foreign keys off around the transaction, checked before it commits.
    dbapi.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    event.listen(conn, "begin", _emit_begin)
    event.listen(conn, "commit", _check_foreign_keys)
    try:
        yield
    finally:
        event.remove(conn, "commit", _check_foreign_keys)
        event.remove(conn, "begin", _emit_begin)
        dbapi.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
        dbapi.isolation_level = saved  # type: ignore[union-attr]


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.connection.driver_connection.execute("PRAGMA foreign_key_check").fetchone()  # type: ignore[union-attr]
    if broken is not None:
        raise IntegrityError("PRAGMA foreign_key_check", None,
                             ValueError(f"migration leaves a row of {broken[0]} pointing at no row of {broken[2]}"))


def upgrade(engine: Engine) -> None:
    """Upgrade to head; cheap when already there (one SELECT)."""
    head = HEAD
    if current_revision(engine) == head:
        return
    with migration_lock(engine):
        if current_revision(engine) != head:  # another process may have just done it
            from alembic import command

            command.upgrade(alembic_config(engine), "head")
