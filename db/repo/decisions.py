"""Analyst decisions: upserting (item, target) labels and notes, and reading them back with
their revision history.

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from db.converters import _event_record, _interaction_record
from db.limits import MAX_SHORT_LEN
from db.models import INTERACTION_SOURCES, Interaction, InteractionEvent
from db.records import InteractionEventRecord, InteractionRecord
from db.transactions import (
    Db,
    _apply_decisions,
    _get_item,
    _lock_item,
    _write_session,
    read_session,
)
from db.validators import (
    _check_choice,
    _check_decisions,
    _check_id,
    _check_item_id,
    _check_phase,
    _now,
    _opt_str,
)


def record_decisions(
    db: Db,
    item_id: int,
    *,
    phase: int,
    decisions: list[dict[str, Any]],
    analyst: str | None,
    source: str,
) -> int:
    """Upsert decisions ``[{target_id, label, note?}]`` without refining the embedding.

    Returns the number of interactions created or changed (repeating an identical decision
    counts 0). A ``note`` of ``None`` keeps the existing note.
    """
    item_id = _check_item_id(item_id)
    phase = _check_phase("phase", phase)
    clean = _check_decisions("decisions", decisions)
    analyst = _opt_str("analyst", analyst, MAX_SHORT_LEN)
    source = _check_choice("source", source, INTERACTION_SOURCES)
    with _write_session(db) as session:
        _lock_item(session, item_id)
        return _apply_decisions(
            session, item_id, clean, phase=phase, analyst=analyst, source=source, now=_now()
        )


def interactions(db: Db, item_id: int) -> list[InteractionRecord]:
    """Current decisions of the item (one per target), in arrival order."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(Interaction).where(Interaction.item_id == item_id).order_by(Interaction.id)
        )
        return [_interaction_record(r) for r in rows]


def interaction_history(
    db: Db, item_id: int, target_id: str | int | None = None
) -> list[InteractionEventRecord]:
    """Every revision of the item's decisions (optionally of one target), oldest first."""
    item_id = _check_item_id(item_id)
    target = _check_id("target_id", target_id, allow_none=True)
    with read_session(db) as session:
        _get_item(session, item_id)
        query = select(InteractionEvent).where(InteractionEvent.item_id == item_id)
        if target is not None:
            query = query.where(InteractionEvent.target_id == target)
        return [_event_record(r) for r in session.exec(query.order_by(InteractionEvent.id))]


__all__ = [
    "interaction_history",
    "interactions",
    "record_decisions",
]
