"""Suggested feature lists per domain: the domain_feature_set table.

The LLM-suggested (analyst-editable) feature list of each domain used to live in a JSON file
under ``$EMERFLOW_HOME/augment``; it is research data shared by every workspace of the domain,
so it is now stored here, one row per domain.

Revision ID: 0003
Revises: 0002
Create Date: 2025-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHORT_LEN = 200
ENUM_LEN = 32


def upgrade() -> None:
    """Create ``domain_feature_set``."""
    op.create_table(
        "domain_feature_set",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("domain", sa.String(ENUM_LEN), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(SHORT_LEN), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("domain", name="uq_domain_feature_set_domain"),
        sa.CheckConstraint("domain IN ('movie', 'disease')", name="ck_domain_feature_set_domain"),
    )


def downgrade() -> None:
    """Drop the suggested feature lists."""
    op.drop_table("domain_feature_set")
