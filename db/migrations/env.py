"""Alembic environment of EmerFlow Studio.

Used in two ways:

* programmatically by :func:`db.database.upgrade` / ``init_db``, which passes an open
  connection (inside a transaction) in ``config.attributes["connection"]``;
* from the command line (``alembic -c db/migrations/alembic.ini upgrade head``), where the URL
  comes from ``sqlalchemy.url`` if set, else from ``DATABASE_URL`` / ``EMERFLOW_HOME`` as
  ``engine.settings`` resolves them (this command-line path is the only place under ``db/``
  that reads the environment: the library itself always gets its URL from the caller).
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from db import models
from db.database import make_engine, resolve_url, write_engine

config = context.config


def _command_line_url() -> str:
    """``sqlalchemy.url`` of the Alembic config, else ``-x url=...``.

    ``db/`` reads no environment: the application passes its connection (``init_db``), and
    ``emerflow`` resolves ``DATABASE_URL``/``EMERFLOW_HOME`` through its settings object.

    Raises:
        SystemExit: neither is given (one line saying how to pass the URL).
    """
    url = (config.get_main_option("sqlalchemy.url") or "").strip()
    url = url or context.get_x_argument(as_dictionary=True).get("url", "").strip()
    if not url:
        raise SystemExit("alembic: give the database URL with `-x url=...` (or "
                         "`-x url=sqlite:///$HOME/.emerflow/emerflow.db`); the app migrates "
                         "its own database on start")
    return resolve_url(url, None)


target_metadata = SQLModel.metadata


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Limit autogenerate comparisons to the tables this package owns."""
    if type_ == "table":
        return name in models.TABLE_NAMES
    return True


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        **kwargs,
    )


def run_with_connection(connection: Connection) -> None:
    """Run the migrations on ``connection`` (batch mode on SQLite for ALTER support)."""
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    url = _command_line_url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection given by the caller, or on a new engine."""
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
        return
    engine = make_engine(_command_line_url())
    try:
        with write_engine(engine).begin() as conn:
            run_with_connection(conn)
    finally:
        engine.dispose()


if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
