"""Opening the dashboard's database and recording the workspace in it. No streamlit here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from db import repository as repo
from engine.workspace import Workspace


@dataclass(frozen=True)
class OpenedDatabase:
    """The dashboard's database: ``read_only`` holds the reason when it could only be opened
    for reading (read-only data folder, full disk): browsing works, saving shows that reason."""

    engine: Engine
    read_only: str | None = None


def open_database(url: str) -> OpenedDatabase:
    """Open and migrate ``url``; fall back to a read-only engine when the database cannot be
    written (read-only home, full disk), so analysts can still browse.

    Raises:
        OSError / sqlalchemy errors: the database cannot even be read.
    """
    from sqlalchemy.exc import OperationalError

    from app.errors import DISK_FULL, READ_ONLY, classify
    from db.database import init_db, make_engine, make_read_only_engine

    engine = make_engine(url)
    try:
        init_db(engine)
        return OpenedDatabase(engine)
    except (OperationalError, OSError) as exc:
        reason = classify(exc)
        if reason not in (READ_ONLY, DISK_FULL):
            raise
        engine.dispose()
        ro = make_read_only_engine(url)
        repo.list_workspaces(ro)  # readable at all? (raises otherwise)
        return OpenedDatabase(ro, read_only=reason)


def ensure_workspace(db: repo.Db, ws: Workspace) -> None:
    """Record the workspace (dataset, input checksums, model version) in the database."""
    repo.upsert_workspace(
        db,
        name=ws.name,
        domain=ws.domain,
        dataset=ws.dataset.label,
        inputs=dict(ws.dataset.inputs),
        model_versions={
            "model": ws.model_version,
            "encoder": ws.config.encoder.model,
            "ranker": ws.ranker_kind,
        },
    )
