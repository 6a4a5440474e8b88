"""The database under the store: creating and migrating its schema, the app role's grants, the SQLite hooks.

`upgrade_schema` runs the Alembic revisions (``layers/migrations``) as the owner role;
`grant_app_role` gives the app's PostgreSQL role what it needs and no more; on SQLite every
connection gets the pragmas (`sqlite_pragmas`), and the app's connections also an authorizer that
keeps the history and access log append-only (`sqlite_app_connection`); an import's transaction
writes with a larger page cache (`bulk_page_cache`). A new per-connection setting or grant goes here.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from layers.store.tables import APPEND_ONLY_TABLES, MIGRATIONS_DIR

if TYPE_CHECKING:
    from collections.abc import Iterator

    from layers.crypto import BlindIndex, FieldCipher

logger = logging.getLogger(__name__)

_SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Page cache of a SQLite connection while it writes an import (KiB; SQLite's default is 2,000 KiB).
SQLITE_BULK_CACHE_KIB = 16_384


def upgrade_schema(
    engine: sa.Engine,
    *,
    cipher: FieldCipher | None = None,
    blind_index: BlindIndex | None = None,
    app_role: str | None = None,
) -> None:
    """Create or migrate the store's tables to the newest revision (Alembic ``upgrade head``).

    Parameters
    ----------
    engine
        Connects as the role that owns (or is to own) the tables.
    cipher, blind_index
        The keys; needed when a migration rewrites stored households (0004 encrypts their addresses).
    app_role
        PostgreSQL role the app connects as, when it is not the owner: given its privileges after the
        upgrade (`grant_app_role`).

    Raises
    ------
    PermissionError
        If the connecting role may not change the schema (an app role without a migration URL).
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes.update(cipher=cipher, blind_index=blind_index)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            if app_role and engine.dialect.name == "postgresql" and app_role != engine.url.username:
                grant_app_role(conn, app_role)
    except sa.exc.ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) != _INSUFFICIENT_PRIVILEGE:
            raise
        msg = (
            f"The role {engine.url.username!r} may not migrate the database schema: run the upgrade with the "
            "owner's URL (MIGRATION_DATABASE_URL / ACCESSPLAN_MIGRATION_DATABASE_URL), see README § Configuration."
        )
        raise PermissionError(msg) from None


_INSUFFICIENT_PRIVILEGE = "42501"


def grant_app_role(conn: sa.Connection, role: str) -> None:
    """Give the app's PostgreSQL ``role`` what it needs and no more (idempotent; run by the owner).

    Every table of the schema: SELECT, INSERT, UPDATE, DELETE; the history and access log: SELECT and
    INSERT only (no UPDATE, DELETE or TRUNCATE); ``alembic_version``: SELECT; sequences: USAGE and
    SELECT. The role owns nothing, so it can neither drop nor alter a table, nor disable or drop a
    trigger; the schema must not be owned by it either (a schema's owner may drop its tables).
    """
    quoted = conn.dialect.identifier_preparer.quote(role)
    schema_name = conn.dialect.identifier_preparer.quote(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
    statements = [
        f"GRANT USAGE ON SCHEMA {schema_name} TO {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_name} TO {quoted}",
        f"REVOKE ALL ON alembic_version FROM {quoted}",
        f"GRANT SELECT ON alembic_version TO {quoted}",
        *(f"REVOKE ALL ON {t} FROM {quoted}" for t in APPEND_ONLY_TABLES),
        *(f"GRANT SELECT, INSERT ON {t} TO {quoted}" for t in APPEND_ONLY_TABLES),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_name} TO {quoted}",
    ]
    for statement in statements:
        conn.exec_driver_sql(statement)


def warn_if_app_owns_the_log(engine: sa.Engine) -> None:
    """Warn when the app's PostgreSQL role owns the history (it could then disable its triggers)."""
    with engine.connect() as conn:
        owner = conn.exec_driver_sql(
            "SELECT tableowner = current_user FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = 'history'"
        ).scalar()
    if owner:
        logger.warning(
            "The app's database role owns the history and access log, so it could rewrite them: "
            "migrate with a separate owner role (MIGRATION_DATABASE_URL) and connect the app as another role"
        )


#: SQLite authorizer actions refused on the append-only tables (arg2 is the table for these).
_SQLITE_REFUSED_ON_TABLE = frozenset(
    getattr(sqlite3, f"SQLITE_{a}")
    for a in ("ALTER_TABLE", "CREATE_TRIGGER", "CREATE_TEMP_TRIGGER", "DROP_TRIGGER", "DROP_TEMP_TRIGGER")
)
#: ... and those whose arg1 is the table.
_SQLITE_REFUSED_TABLE_FIRST = frozenset((sqlite3.SQLITE_DELETE, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DROP_TABLE))


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, _db: str | None, _source: str | None) -> int:
    """Refuse, on an app connection, any statement that would change or remove the history or access log.

    Also refused: ``PRAGMA writable_schema`` (editing ``sqlite_master`` directly).
    """
    if action in _SQLITE_REFUSED_TABLE_FIRST and arg1 in APPEND_ONLY_TABLES:
        return sqlite3.SQLITE_DENY
    if action in _SQLITE_REFUSED_ON_TABLE and arg2 in APPEND_ONLY_TABLES:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema":
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def sqlite_app_connection(dbapi_connection: Any, record: Any) -> None:
    """Set up an app connection: the pragmas, then the authorizer that keeps the log append-only."""
    sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.set_authorizer(_sqlite_authorizer)


@contextlib.contextmanager
def bulk_page_cache(conn: sa.Connection) -> Iterator[None]:
    """Give a SQLite connection a page cache of `SQLITE_BULK_CACHE_KIB` within the block, its own size after.

    An import inserts into indexes keyed in no particular order (the ID numbers' digests, the ids);
    once those outgrow SQLite's default 2 MB cache, every insert reads a page back and writes another
    out. Storing a 100,000-row ledger took 4.1-6.2 CPU s (1.3-2.1 s of them in system calls) with the
    default, 3.7-4.9 s (0.9-1.1 s) with 16 MB, 4.0-4.6 s with 64 MB (more pages to fault in); a
    20,000-row one gains little. The cache grows only as pages are used, and shrinks back when the
    block ends (its memory is freed, not kept by the pooled connection). Other databases: nothing.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={before}")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Set up any SQLite connection: WAL, a busy timeout and foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
