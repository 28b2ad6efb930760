"""Item names are unique per workspace after normalisation (case, accents, spaces, punctuation).

``uq_item_workspace_normalized_name`` replaces the plain ``ix_item_workspace_normalized_name``:
"Marfan syndrome" and "marfan-syndrome" can no longer both be created, not even by two
concurrent creates. Existing items whose normalized names collide (possible before this
revision) keep the oldest item's name; later ones are renamed ``"<name> (#<id>)"`` (their
normalized name recomputed), with every decision, embedding and snapshot kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.validators import normalize_name

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_LEN = 500


def _rename_collisions() -> None:
    """Recompute every normalized name from the name (0004's renames left them stale), then
    rename the later of any two items whose names normalize alike."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, workspace_id, name, normalized_name FROM item ORDER BY workspace_id, id"
    )).fetchall()
    norms = {r.id: normalize_name(r.name) for r in rows}
    taken_norm = {(r.workspace_id, norms[r.id]) for r in rows}
    taken_name = {(r.workspace_id, r.name) for r in rows}
    kept: set[tuple[int, str]] = set()
    for r in rows:
        name, norm = r.name, norms[r.id]
        if (r.workspace_id, norm) in kept:
            suffix = f" (#{r.id})"
            name = r.name[: NAME_LEN - len(suffix)] + suffix
            while ((r.workspace_id, normalize_name(name)) in taken_norm
                   or (r.workspace_id, name) in taken_name):
                name = name[: NAME_LEN - 1 - len(suffix)] + "_" + suffix
            norm = normalize_name(name)
            taken_norm.add((r.workspace_id, norm))
            taken_name.add((r.workspace_id, name))
        kept.add((r.workspace_id, norm))
        if name != r.name or norm != r.normalized_name:
            conn.execute(sa.text("UPDATE item SET name = :n, normalized_name = :m WHERE id = :i"),
                         {"n": name, "m": norm, "i": r.id})


def upgrade() -> None:
    """Rename colliding later copies, then make the normalized name unique per workspace."""
    _rename_collisions()
    op.drop_index("ix_item_workspace_normalized_name", table_name="item")
    op.create_index("uq_item_workspace_normalized_name", "item",
                    ["workspace_id", "normalized_name"], unique=True)


def downgrade() -> None:
    """Back to a plain index (renamed items keep their new names)."""
    op.drop_index("uq_item_workspace_normalized_name", table_name="item")
    op.create_index("ix_item_workspace_normalized_name", "item",
                    ["workspace_id", "normalized_name"])
