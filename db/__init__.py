"""Persistence of EmerFlow Studio's research data (SQLModel + Alembic; SQLite or PostgreSQL).

Typical use::

    from db import make_engine, init_db, repository as repo

    engine = make_engine(url)       # the URL comes from the caller (engine.settings)
    init_db(engine)                 # Alembic upgrade to head (creates or upgrades the schema)
    ws = repo.upsert_workspace(engine, name="demo", domain="disease", dataset="demo",
                               inputs={}, model_versions={})

This package takes and returns plain values only; it never imports ``engine``, ``app`` or
``streamlit``.
"""

from db import repository
from db.database import (
    current_revision,
    head_revision,
    init_db,
    make_engine,
    redacted,
    upgrade,
)
from db.errors import (
    ConcurrentUpdateError,
    DBError,
    DuplicateError,
    NotFoundError,
    PhaseError,
    SchemaError,
    SecretRefusedError,
    ValidationError,
)
from db.repository import (
    BenchmarkRunRecord,
    DomainFeatureSetRecord,
    EmbeddingRecord,
    FeatureVersionRecord,
    InteractionEventRecord,
    InteractionRecord,
    ItemRecord,
    SnapshotRecord,
    WorkspaceRecord,
)

__all__ = [
    "BenchmarkRunRecord",
    "ConcurrentUpdateError",
    "DBError",
    "DomainFeatureSetRecord",
    "DuplicateError",
    "EmbeddingRecord",
    "FeatureVersionRecord",
    "InteractionEventRecord",
    "InteractionRecord",
    "ItemRecord",
    "NotFoundError",
    "PhaseError",
    "SchemaError",
    "SecretRefusedError",
    "SnapshotRecord",
    "ValidationError",
    "WorkspaceRecord",
    "current_revision",
    "head_revision",
    "init_db",
    "make_engine",
    "redacted",
    "repository",
    "upgrade",
]
