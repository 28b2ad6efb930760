"""Reads of an item's past: the embedding of every phase, its decisions (current and every
revision) and the stored top-k snapshots. Nothing written here. No streamlit here.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy.engine import Engine

from app.flows.common import vectors
from db import repository as repo
from db.repository import InteractionEventRecord, InteractionRecord, SnapshotRecord


def phase_embeddings(db: Engine, item_id: int) -> dict[int, np.ndarray]:
    """Stored embedding of every phase the item went through (``{phase: float32 vector}``)."""
    return vectors(repo.embeddings(db, item_id))


def interactions(db: Engine, item_id: int) -> list[InteractionRecord]:
    """The item's decisions as they stand (one per target)."""
    return repo.interactions(db, item_id)


def interaction_history(db: Engine, item_id: int) -> list[InteractionEventRecord]:
    """Every revision of the item's decisions, oldest first."""
    return repo.interaction_history(db, item_id)


def snapshots(db: Engine, item_id: int) -> list[SnapshotRecord]:
    """The stored top-k snapshot of every phase."""
    return repo.snapshots(db, item_id)
