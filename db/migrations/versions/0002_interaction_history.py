"""Decision history: interaction revisions and the interaction_event table.

Adds ``interaction.revision`` (1 for existing rows) and ``interaction.updated_at`` (= created_at
for existing rows), creates the append-only ``interaction_event`` table and back-fills one
revision-1 event per existing interaction, so that upgraded databases have a complete history.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHORT_LEN = 200
ID_LEN = 128
ENUM_LEN = 32


def upgrade() -> None:
    """Add revision tracking to ``interaction`` and create ``interaction_event``."""
    op.add_column(
        "interaction",
        sa.Column("revision", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column("interaction", sa.Column("updated_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE interaction SET updated_at = created_at")
    with op.batch_alter_table("interaction") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(timezone=True), nullable=False)

    op.create_table(
        "interaction_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.String(ID_LEN), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(ENUM_LEN), nullable=False),
        sa.Column("analyst", sa.String(SHORT_LEN), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name="fk_interaction_event_item_id", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "item_id", "target_id", "revision", name="uq_interaction_event_item_target_rev"
        ),
        sa.CheckConstraint("label IN (0, 1)", name="ck_interaction_event_label"),
        sa.CheckConstraint("phase >= 0 AND phase <= 3", name="ck_interaction_event_phase"),
    )
    op.create_index("ix_interaction_event_item_id", "interaction_event", ["item_id"])
    op.execute(
        "INSERT INTO interaction_event "
        "(item_id, target_id, revision, label, phase, source, analyst, note, created_at) "
        "SELECT item_id, target_id, 1, label, phase, source, analyst, note, created_at "
        "FROM interaction ORDER BY id"
    )


def downgrade() -> None:
    """Drop the history (the current decisions in ``interaction`` are kept)."""
    op.drop_index("ix_interaction_event_item_id", table_name="interaction_event")
    op.drop_table("interaction_event")
    with op.batch_alter_table("interaction") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("revision")
