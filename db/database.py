"""Engine creation and schema migration (Alembic, run programmatically).

``make_engine`` takes the database URL from its caller: the CLI and the app pass
``engine.settings.get_settings().database_url_resolved()`` (``DATABASE_URL`` or a SQLite file
in ``EMERFLOW_HOME``); this package reads no environment variable itself. ``init_db`` upgrades
the schema to the newest Alembic revision, so a database created by an older release is
upgraded in place, never recreated.

SQLite engines are configured for several processes at once: WAL journal with
``synchronous=FULL`` (a committed decision survives a power cut), foreign keys ON,
a busy timeout, and write transactions that start with ``BEGIN IMMEDIATE`` (see
:func:`write_engine`) so that two writers queue instead of failing with "database is locked".

URLs are only ever logged with the password masked.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlmodel import create_engine

from db.errors import SchemaError

log = logging.getLogger(__name__)

#: SQLite file name inside the home directory.
SQLITE_FILENAME = "emerflow.db"
#: How long (seconds) a SQLite connection waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``.
WRITE_OPTION = "emerflow_write"
#: Key of the PostgreSQL advisory lock that serializes concurrent ``init_db`` calls.
MIGRATION_LOCK_KEY = 0x456D6572  # "Emer"
#: Directory holding Alembic's env.py, script.py.mako and versions/.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


#: Query parameters of a database URL whose values are credentials (masked by :func:`redacted`).
SECRET_URL_PARAMS = ("password", "sslpassword", "passfile", "sslkey", "token", "key",
                     "secret", "api_key", "apikey", "access_token")


def redacted(url: str | URL) -> str:
    """``url`` as a string with its password and credential query values masked (safe to log
    or show)."""
    sa_url = make_url(url)
    secret = {k: "***" for k in sa_url.query if k.lower() in SECRET_URL_PARAMS}
    if secret:
        sa_url = sa_url.update_query_dict(secret)
    return sa_url.render_as_string(hide_password=True)


def default_sqlite_path(home: Path) -> Path:
    """``<home>/emerflow.db``."""
    return Path(home).expanduser() / SQLITE_FILENAME


def resolve_url(url: str | None = None, home: Path | None = None) -> str:
    """The database URL: ``url``, else the SQLite file in ``home``.

    Raises:
        ValueError: neither is given (callers pass the settings' URL; see module doc).
    """
    if url:
        return url
    if home is None:
        raise ValueError(
            "no database URL: pass engine.settings.get_settings().database_url_resolved()"
        )
    return f"sqlite:///{default_sqlite_path(home)}"


def _ensure_sqlite_dir(url: URL) -> None:
    """Create the directory of a SQLite file (a clear error when it cannot be created)."""
    database = url.database
    if database in (None, "", ":memory:") or str(database).startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, read_only: bool = False) -> None:
    """Pragmas on every new connection and explicit BEGIN / BEGIN IMMEDIATE transactions.

    pysqlite's own transaction handling is disabled (``isolation_level = None``) and the
    ``begin`` event emits the BEGIN itself, as recommended by SQLAlchemy; this also makes
    Alembic's DDL transactional on SQLite.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if read_only:
                cursor.execute("PRAGMA query_only = ON")
            elif engine.url.database not in (None, "", ":memory:"):
                _enable_wal(cursor)
                cursor.execute("PRAGMA synchronous = FULL")  # research data: durable commits
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    """Switch an SQLite file to WAL (persistent in the file), retrying while it is locked.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database is locked"
    at once instead of waiting ``busy_timeout`` when several connections open a brand-new file
    together (two dashboard sessions starting on a fresh database). Once one of them has
    switched, the others see ``wal`` and have nothing to do.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def make_engine(url: str | None = None, home: Path | None = None, **kwargs: Any) -> Engine:
    """Create the SQLAlchemy engine (does not touch the schema; call :func:`init_db`).

    Args:
        url: database URL (``engine.settings.get_settings().database_url_resolved()``).
        home: directory of the SQLite file ``emerflow.db`` when ``url`` is not given.
        **kwargs: extra keyword arguments for ``create_engine`` (e.g. ``pool_size``).
    """
    resolved = resolve_url(url, home)
    sa_url = make_url(resolved)
    if sa_url.get_backend_name() == "sqlite":
        try:
            _ensure_sqlite_dir(sa_url)
        except OSError as exc:
            log.warning("cannot create the database directory: %s", exc)
        kwargs.setdefault("connect_args", {})
        kwargs["connect_args"].setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        kwargs["connect_args"].setdefault("check_same_thread", False)
        engine = create_engine(sa_url, **kwargs)
        _configure_sqlite(engine)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(sa_url, **kwargs)
    log.info("database engine: %s", redacted(sa_url))
    return engine


def make_read_only_engine(url: str) -> Engine:
    """An engine that only reads ``url`` (for browsing when the data folder is read-only).

    For a SQLite file it opens ``mode=ro&immutable=1`` (no WAL/shm files are created, so it
    works on a read-only file system) with ``query_only``; any write fails at once with
    "attempt to write a readonly database". Other databases: a normal engine.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite" or sa_url.database in (None, "", ":memory:"):
        return make_engine(url)
    path = Path(str(sa_url.database)).expanduser().resolve()
    ro_url = f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"
    engine = create_engine(ro_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S,
                                                 "check_same_thread": False})
    _configure_sqlite(engine, read_only=True)
    log.info("database engine (read-only): %s", redacted(sa_url))
    return engine


def write_engine(engine: Engine) -> Engine:
    """A view of ``engine`` whose transactions take the write lock up front on SQLite.

    On SQLite every transaction then starts with ``BEGIN IMMEDIATE``: concurrent writers wait
    (up to the busy timeout) instead of failing when upgrading a read lock. It shares the
    connection pool of ``engine``; on other databases it is equivalent to ``engine``.
    """
    return engine.execution_options(**{WRITE_OPTION: True})


def alembic_config(url: str | None = None) -> Config:
    """An Alembic ``Config`` built in code (works from an installed package, any CWD)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this code."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction (serialized across processes)."""
    cfg = alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except CommandError as exc:
        raise SchemaError(
            f"cannot upgrade {redacted(engine.url)} to {revision!r}: {exc} "
            "(was the database written by a newer EmerFlow Studio?)"
        ) from exc


def init_db(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it on an empty database)."""
    upgrade(engine, "head")


def _admin_url(url: URL) -> URL:
    return url.set(database="postgres")


def create_database(base_url: str, name: str | None = None) -> str:
    """Create a new, empty PostgreSQL database beside ``base_url``'s; return its URL.

    Meant for tests and tooling (one throw-away database per test). ``name`` defaults to a
    unique ``emerflow_<hex>``.
    """
    url = make_url(base_url)
    name = name or f"emerflow_{uuid.uuid4().hex[:16]}"
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    admin = create_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database named in ``url`` (terminating its connections)."""
    sa_url = make_url(url)
    name = sa_url.database or ""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    admin = create_engine(_admin_url(sa_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
