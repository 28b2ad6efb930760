"""Item refinements serialize on a version; item names are unique per workspace.

* ``item.phase_version``: incremented by every write of an item's embedding (phase 0 and each
  refinement). A refinement states the version it was computed from and is refused when another
  one committed in between, so two analysts refining one item at once can never overwrite each
  other's decisions.
* ``uq_item_workspace_name``: one item per exact name in a workspace (concurrent creates of one
  name give exactly one item). Existing exact duplicates (possible before this revision) keep
  their oldest item's name; later copies are renamed ``"<name> (#<id>)"``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_LEN = 500


def _rename_duplicates() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, workspace_id, name FROM item ORDER BY workspace_id, name, id"
    )).fetchall()
    seen: set[tuple[int, str]] = set()
    taken = {(r.workspace_id, r.name) for r in rows}
    for r in rows:
        key = (r.workspace_id, r.name)
        if key not in seen:
            seen.add(key)
            continue
        suffix = f" (#{r.id})"
        new = r.name[: NAME_LEN - len(suffix)] + suffix
        while (r.workspace_id, new) in taken:
            new = new[: NAME_LEN - 1 - len(suffix)] + "_" + suffix
        taken.add((r.workspace_id, new))
        conn.execute(sa.text("UPDATE item SET name = :n WHERE id = :i"), {"n": new, "i": r.id})


def upgrade() -> None:
    """Add ``item.phase_version`` and the unique ``(workspace_id, name)`` constraint."""
    op.add_column(
        "item",
        sa.Column("phase_version", sa.Integer(), nullable=False, server_default="0"),
    )
    _rename_duplicates()
    # A unique index, not a table constraint: on SQLite a constraint would need batch mode,
    # which recreates the item table, and dropping it would cascade to its interactions.
    op.create_index("uq_item_workspace_name", "item", ["workspace_id", "name"], unique=True)


def downgrade() -> None:
    """Drop the constraint and the column (renamed duplicates keep their new names)."""
    op.drop_index("uq_item_workspace_name", table_name="item")
    op.drop_column("item", "phase_version")
