"""Initial schema: workspaces, items, feature versions, interactions, embeddings, snapshots,
LLM cache and benchmark runs.

Revision ID: 0001
Revises:
Create Date: 2025-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_LEN = 500
SHORT_LEN = 200
ID_LEN = 128
KEY_LEN = 512
ENUM_LEN = 32
PHASE_CHECK = "phase >= 0 AND phase <= 3"


def _ts() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def _item_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["item_id"], ["item.id"], name=f"fk_{table}_item_id", ondelete="CASCADE"
    )


def upgrade() -> None:
    """Create every table of the initial schema."""
    op.create_table(
        "workspace",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(NAME_LEN), nullable=False),
        sa.Column("domain", sa.String(ENUM_LEN), nullable=False),
        sa.Column("dataset", sa.String(NAME_LEN), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        _ts(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_workspace_name"),
    )
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(ENUM_LEN), nullable=False),
        sa.Column("external_id", sa.String(ID_LEN), nullable=True),
        sa.Column("name", sa.String(NAME_LEN), nullable=False),
        sa.Column("normalized_name", sa.String(NAME_LEN), nullable=False),
        sa.Column("raw_features", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(ENUM_LEN), nullable=False),
        sa.Column("created_by", sa.String(SHORT_LEN), nullable=False),
        _ts(),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name="fk_item_workspace_id", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("workspace_id", "external_id", name="uq_item_workspace_external_id"),
        sa.CheckConstraint("status IN ('emerging', 'established')", name="ck_item_status"),
    )
    op.create_index(
        "ix_item_workspace_normalized_name", "item", ["workspace_id", "normalized_name"]
    )
    op.create_table(
        "feature_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(SHORT_LEN), nullable=False),
        _ts(),
        _item_fk("feature_version"),
        sa.UniqueConstraint("item_id", "version", name="uq_feature_version_item_version"),
        sa.CheckConstraint("version >= 1", name="ck_feature_version_version"),
    )
    op.create_index("ix_feature_version_item_id", "feature_version", ["item_id"])
    op.create_table(
        "interaction",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.String(ID_LEN), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(ENUM_LEN), nullable=False),
        sa.Column("analyst", sa.String(SHORT_LEN), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _ts(),
        _item_fk("interaction"),
        sa.UniqueConstraint("item_id", "target_id", name="uq_interaction_item_target"),
        sa.CheckConstraint("label IN (0, 1)", name="ck_interaction_label"),
        sa.CheckConstraint(PHASE_CHECK, name="ck_interaction_phase"),
        sa.CheckConstraint(
            "source IN ('dataset', 'analyst', 'upload')", name="ck_interaction_source"
        ),
    )
    op.create_index("ix_interaction_item_id", "interaction", ["item_id"])
    op.create_table(
        "embedding_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("feature_version", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(SHORT_LEN), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        _ts(),
        _item_fk("embedding_version"),
        sa.UniqueConstraint("item_id", "phase", name="uq_embedding_version_item_phase"),
        sa.CheckConstraint(PHASE_CHECK, name="ck_embedding_version_phase"),
        sa.CheckConstraint("dim > 0", name="ck_embedding_version_dim"),
    )
    op.create_index("ix_embedding_version_item_id", "embedding_version", ["item_id"])
    op.create_table(
        "prediction_snapshot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        _ts(),
        sa.Column("topk", sa.JSON(), nullable=False),
        _item_fk("prediction_snapshot"),
        sa.CheckConstraint(PHASE_CHECK, name="ck_prediction_snapshot_phase"),
    )
    op.create_index(
        "ix_prediction_snapshot_item_phase", "prediction_snapshot", ["item_id", "phase"]
    )
    op.create_table(
        "llm_cache",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(KEY_LEN), nullable=False),
        sa.Column("provider", sa.String(SHORT_LEN), nullable=False),
        sa.Column("model", sa.String(SHORT_LEN), nullable=False),
        sa.Column("prompt_version", sa.String(SHORT_LEN), nullable=False),
        sa.Column("input_hash", sa.String(ID_LEN), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        _ts(),
        sa.UniqueConstraint("key", name="uq_llm_cache_key"),
    )
    op.create_table(
        "benchmark_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset", sa.String(NAME_LEN), nullable=False),
        sa.Column("method", sa.String(SHORT_LEN), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        _ts(),
    )


def downgrade() -> None:
    """Drop every table (destroys all data; only for development)."""
    for table in (
        "benchmark_run",
        "llm_cache",
        "prediction_snapshot",
        "embedding_version",
        "interaction",
        "feature_version",
        "item",
        "workspace",
    ):
        op.drop_table(table)
