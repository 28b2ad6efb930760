"""SQLModel tables of EmerFlow Studio (the schema at Alembic revision ``head``).

The schema is created and upgraded only by the Alembic migrations in ``db/migrations``; these
classes describe the *head* revision and are checked against the migrations by
``tests/test_db_migrations.py`` (autogenerate finds no difference).

Design notes:

* Timestamps are timezone-aware UTC (``timestamptz`` on PostgreSQL; SQLite stores them naive and
  the repository re-attaches UTC when reading).
* ``interaction`` holds exactly ONE row per (item, target): the *current* decision, with a
  ``revision`` counter that starts at 1 and grows each time the decision (label or note)
  changes. Every revision, including the first, is also appended to ``interaction_event``
  (the decision history), so nothing an analyst decided is ever lost.
* ``embedding_version`` holds one vector per (item, phase); the item's current phase is the
  highest phase that has an embedding (0 when none).
* ``domain_feature_set`` holds one row per domain: the LLM-suggested (analyst-editable) feature
  list shared by every workspace of that domain.
* Constraints carry explicit names so that Alembic batch operations on SQLite are stable.

No model stores credentials: the repository refuses anything that looks like one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# Column sizes (the repository validates against the same limits, see db.repository) ----------
NAME_LEN = 500  #: item / workspace / dataset names
SHORT_LEN = 200  #: analyst names, model versions, providers
ID_LEN = 128  #: external ids, target ids, hashes
KEY_LEN = 512  #: llm_cache keys
ENUM_LEN = 32  #: domain, status, source

ITEM_STATUSES: tuple[str, ...] = ("emerging", "established")
FEATURE_SOURCES: tuple[str, ...] = ("dataset", "llm", "analyst")
INTERACTION_SOURCES: tuple[str, ...] = ("dataset", "analyst", "upload")
#: Domains that have a suggested feature list (mirrors ``engine.schema.DOMAINS``).
FEATURE_SET_DOMAINS: tuple[str, ...] = ("movie", "disease")
MIN_PHASE = 0
MAX_PHASE = 3

#: Every table this package owns (used to scope Alembic comparisons to our tables).
TABLE_NAMES: tuple[str, ...] = (
    "workspace",
    "item",
    "feature_version",
    "interaction",
    "interaction_event",
    "embedding_version",
    "prediction_snapshot",
    "llm_cache",
    "benchmark_run",
    "domain_feature_set",
)


def _ts(**kw: Any) -> Any:
    """A NOT NULL timezone-aware timestamp column."""
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False, **kw))


def _json() -> Any:
    """A NOT NULL JSON column."""
    return Field(sa_column=Column(JSON, nullable=False))


def _fk_item(name: str) -> Any:
    """A NOT NULL, indexed foreign key to ``item.id`` that cascades on delete."""
    return Field(
        sa_column=Column(
            Integer,
            ForeignKey("item.id", ondelete="CASCADE", name=name),
            nullable=False,
            index=True,
        )
    )


def _phase_check(table: str) -> CheckConstraint:
    return CheckConstraint(
        f"phase >= {MIN_PHASE} AND phase <= {MAX_PHASE}", name=f"ck_{table}_phase"
    )


class Workspace(SQLModel, table=True):
    """A named analysis workspace over one dataset of one domain."""

    __tablename__ = "workspace"
    __table_args__ = (UniqueConstraint("name", name="uq_workspace_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(NAME_LEN), nullable=False))
    domain: str = Field(sa_column=Column(String(ENUM_LEN), nullable=False))
    dataset: str = Field(sa_column=Column(String(NAME_LEN), nullable=False))
    #: source files and their checksums, e.g. ``{"items.csv": "sha256:..."}``
    inputs: dict = _json()
    #: versions of the models the workspace was built with
    model_versions: dict = _json()
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Item(SQLModel, table=True):
    """An item (a new disease, a new movie) entered by an analyst or loaded from a dataset."""

    __tablename__ = "item"
    __table_args__ = (
        # NULLs are distinct in unique constraints on both SQLite and PostgreSQL, so this only
        # constrains items that have an external id.
        UniqueConstraint("workspace_id", "external_id", name="uq_item_workspace_external_id"),
        Index("uq_item_workspace_name", "workspace_id", "name", unique=True),
        Index("uq_item_workspace_normalized_name", "workspace_id", "normalized_name",
              unique=True),
        CheckConstraint("status IN ('emerging', 'established')", name="ck_item_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("workspace.id", ondelete="CASCADE", name="fk_item_workspace_id"),
            nullable=False,
        )
    )
    domain: str = Field(sa_column=Column(String(ENUM_LEN), nullable=False))
    external_id: str | None = Field(default=None, sa_column=Column(String(ID_LEN), nullable=True))
    name: str = Field(sa_column=Column(String(NAME_LEN), nullable=False))
    #: casefolded name without spaces/punctuation, for duplicate detection
    normalized_name: str = Field(sa_column=Column(String(NAME_LEN), nullable=False))
    raw_features: dict = _json()
    status: str = Field(sa_column=Column(String(ENUM_LEN), nullable=False))
    created_by: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    created_at: datetime = _ts()
    #: incremented by every write of the item's embeddings (phase 0, refinements): a
    #: refinement computed from version v is refused once another one has committed
    phase_version: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class FeatureVersion(SQLModel, table=True):
    """One reviewed version (1, 2, ...) of an item's feature list."""

    __tablename__ = "feature_version"
    __table_args__ = (
        UniqueConstraint("item_id", "version", name="uq_feature_version_item_version"),
        CheckConstraint("version >= 1", name="ck_feature_version_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = _fk_item("fk_feature_version_item_id")
    version: int = Field(sa_column=Column(Integer, nullable=False))
    #: list of {name, descriptor, value, keep, source, provider, model, prompt_version,
    #: analyst, edited_at}
    features: list = _json()
    created_by: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    created_at: datetime = _ts()


class Interaction(SQLModel, table=True):
    """The current decision about one (item, target) association: exactly one row per pair."""

    __tablename__ = "interaction"
    __table_args__ = (
        UniqueConstraint("item_id", "target_id", name="uq_interaction_item_target"),
        CheckConstraint("label IN (0, 1)", name="ck_interaction_label"),
        _phase_check("interaction"),
        CheckConstraint("source IN ('dataset', 'analyst', 'upload')", name="ck_interaction_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = _fk_item("fk_interaction_item_id")
    target_id: str = Field(sa_column=Column(String(ID_LEN), nullable=False))
    label: int = Field(sa_column=Column(Integer, nullable=False))
    #: phase (0..3) in which the association first arrived
    phase: int = Field(sa_column=Column(Integer, nullable=False))
    #: source/analyst/note of the latest revision
    source: str = Field(sa_column=Column(String(ENUM_LEN), nullable=False))
    analyst: str | None = Field(default=None, sa_column=Column(String(SHORT_LEN), nullable=True))
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: 1 for the first decision, +1 for every change of label or note (added in 0002)
    revision: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    created_at: datetime = _ts()
    #: time of the latest revision (added in 0002)
    updated_at: datetime = _ts()


class InteractionEvent(SQLModel, table=True):
    """Append-only decision history: one row per revision of an (item, target) decision."""

    __tablename__ = "interaction_event"
    __table_args__ = (
        UniqueConstraint(
            "item_id", "target_id", "revision", name="uq_interaction_event_item_target_rev"
        ),
        CheckConstraint("label IN (0, 1)", name="ck_interaction_event_label"),
        _phase_check("interaction_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = _fk_item("fk_interaction_event_item_id")
    target_id: str = Field(sa_column=Column(String(ID_LEN), nullable=False))
    revision: int = Field(sa_column=Column(Integer, nullable=False))
    label: int = Field(sa_column=Column(Integer, nullable=False))
    #: phase in which this decision was made
    phase: int = Field(sa_column=Column(Integer, nullable=False))
    source: str = Field(sa_column=Column(String(ENUM_LEN), nullable=False))
    analyst: str | None = Field(default=None, sa_column=Column(String(SHORT_LEN), nullable=True))
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()


class EmbeddingVersion(SQLModel, table=True):
    """The item embedding at the end of one phase (float32 little-endian bytes)."""

    __tablename__ = "embedding_version"
    __table_args__ = (
        UniqueConstraint("item_id", "phase", name="uq_embedding_version_item_phase"),
        _phase_check("embedding_version"),
        CheckConstraint("dim > 0", name="ck_embedding_version_dim"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = _fk_item("fk_embedding_version_item_id")
    phase: int = Field(sa_column=Column(Integer, nullable=False))
    feature_version: int = Field(sa_column=Column(Integer, nullable=False))
    model_version: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    dim: int = Field(sa_column=Column(Integer, nullable=False))
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _ts()


class PredictionSnapshot(SQLModel, table=True):
    """The top-k ranked targets of an item at one phase, for audit and rank-change charts."""

    __tablename__ = "prediction_snapshot"
    __table_args__ = (
        Index("ix_prediction_snapshot_item_phase", "item_id", "phase"),
        _phase_check("prediction_snapshot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(
        sa_column=Column(
            Integer,
            ForeignKey("item.id", ondelete="CASCADE", name="fk_prediction_snapshot_item_id"),
            nullable=False,
        )
    )
    phase: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = _ts()
    #: [{rank, target_id, score}, ...] ordered by rank
    topk: list = _json()


class LLMCache(SQLModel, table=True):
    """Cached LLM responses keyed by provider+model+prompt_version+input_hash (never API keys)."""

    __tablename__ = "llm_cache"
    __table_args__ = (UniqueConstraint("key", name="uq_llm_cache_key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(KEY_LEN), nullable=False))
    provider: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    model: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    prompt_version: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    input_hash: str = Field(sa_column=Column(String(ID_LEN), nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _ts()


class BenchmarkRun(SQLModel, table=True):
    """One benchmark run (dataset, method, config) and its metrics."""

    __tablename__ = "benchmark_run"

    id: int | None = Field(default=None, primary_key=True)
    dataset: str = Field(sa_column=Column(String(NAME_LEN), nullable=False))
    method: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    config: dict = _json()
    result: dict = _json()
    created_at: datetime = _ts()


class DomainFeatureSet(SQLModel, table=True):
    """The suggested feature list of one domain (asked of the LLM once, edited by analysts)."""

    __tablename__ = "domain_feature_set"
    __table_args__ = (
        UniqueConstraint("domain", name="uq_domain_feature_set_domain"),
        CheckConstraint("domain IN ('movie', 'disease')", name="ck_domain_feature_set_domain"),
    )

    id: int | None = Field(default=None, primary_key=True)
    domain: str = Field(sa_column=Column(String(ENUM_LEN), nullable=False))
    #: list of {name, descriptor, why}
    features: list = _json()
    #: who suggested the list: {provider, model, prompt_version} (never credentials)
    provenance: dict = _json()
    updated_by: str = Field(sa_column=Column(String(SHORT_LEN), nullable=False))
    updated_at: datetime = _ts()
