"""Phases of an item: the phase-0 embedding, atomic refinements to phases I..III, and the
embeddings and prediction snapshots each phase leaves.

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from db.converters import _embedding_record, _snapshot_record
from db.errors import ConcurrentUpdateError, PhaseError
from db.limits import MAX_SHORT_LEN
from db.models import INTERACTION_SOURCES, MIN_PHASE, EmbeddingVersion, PredictionSnapshot
from db.records import EmbeddingRecord, SnapshotRecord
from db.transactions import (
    Db,
    _apply_decisions,
    _check_feature_version_exists,
    _get_item,
    _insert_snapshot,
    _lock_item,
    _phase_of,
    _upsert_embedding,
    _write_session,
    read_session,
)
from db.validators import (
    _check_choice,
    _check_decisions,
    _check_int,
    _check_item_id,
    _check_model_version,
    _check_phase,
    _check_snapshot,
    _check_vector,
    _now,
    _req_str,
)


def item_version(db: Db, item_id: int, *, lock: bool = False) -> tuple[int, int]:
    """``(phase, phase_version)`` of the item: pass the version to :func:`record_refinement`
    as ``expected_version`` to refuse a refinement computed from an outdated state.

    ``lock``: inside a :func:`unit_of_work`, lock the item row until that unit ends
    (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already serializes writers)."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        item = _lock_item(session, item_id) if lock else _get_item(session, item_id)
        return _phase_of(session, item_id), int(item.phase_version or 0)


def save_phase0(
    db: Db,
    item_id: int,
    *,
    feature_version: int,
    model_version: str,
    vector: bytes,
    dim: int,
    snapshot: list[dict[str, Any]],
) -> None:
    """Store the phase-0 embedding and top-k snapshot of the item (one transaction).

    Re-running replaces the phase-0 rows while the item is still in phase 0; once a later
    phase exists, :class:`PhaseError` is raised and nothing changes. ``feature_version`` must
    be one of the item's versions, or 0 for "raw features, no reviewed version".
    """
    item_id = _check_item_id(item_id)
    fv = _check_int("feature_version", feature_version, 0, 2**31 - 1)
    model_version = _check_model_version(model_version)
    raw, dim = _check_vector(vector, dim)
    topk = _check_snapshot("snapshot", snapshot)
    now = _now()
    with _write_session(db) as session:
        item = _lock_item(session, item_id)
        current = _phase_of(session, item_id)
        if current > 0:
            raise PhaseError("phase", f"item {item_id} is already in phase {current}")
        item.phase_version = int(item.phase_version or 0) + 1
        session.add(item)
        _check_feature_version_exists(session, item_id, fv)
        _upsert_embedding(
            session,
            item_id,
            phase=0,
            feature_version=fv,
            model_version=model_version,
            dim=dim,
            vector=raw,
            now=now,
        )
        _insert_snapshot(session, item_id, phase=0, topk=topk, now=now)


def record_refinement(
    db: Db,
    item_id: int,
    *,
    phase: int,
    decisions: list[dict[str, Any]],
    analyst: str,
    source: str,
    vector: bytes,
    dim: int,
    feature_version: int,
    model_version: str,
    snapshot: list[dict[str, Any]],
    expected_version: int | None = None,
) -> int:
    """Record a refinement to ``phase`` (1..3): decisions (with their notes), embedding and
    snapshot, atomically. Returns the item's new ``phase_version``.

    ``phase`` may be the current phase (re-run: replaces that phase's embedding and snapshot)
    or any later one; an earlier phase raises :class:`PhaseError`. With ``expected_version``
    (from :func:`item_version`, read before the refinement was computed), a refinement that
    another one overtook raises :class:`ConcurrentUpdateError`. If anything fails, nothing is
    written and the previous phase stays intact.
    """
    item_id = _check_item_id(item_id)
    phase = _check_phase("phase", phase, lo=MIN_PHASE)
    if phase == 0:
        raise PhaseError("phase", "phase 0 has no interactions; use save_phase0")
    clean = _check_decisions("decisions", decisions)
    analyst = _req_str("analyst", analyst, MAX_SHORT_LEN)
    source = _check_choice("source", source, INTERACTION_SOURCES)
    raw, dim = _check_vector(vector, dim)
    fv = _check_int("feature_version", feature_version, 0, 2**31 - 1)
    model_version = _check_model_version(model_version)
    topk = _check_snapshot("snapshot", snapshot)
    if expected_version is not None:
        expected_version = _check_int("expected_version", expected_version, 0, 2**62)
    now = _now()
    with _write_session(db) as session:
        item = _lock_item(session, item_id)
        current = _phase_of(session, item_id)
        version = int(item.phase_version or 0)
        if expected_version is not None and version != expected_version:
            raise ConcurrentUpdateError(
                "phase_version",
                f"item {item_id} was refined by someone else (now phase {current})",
                phase=current, version=version,
            )
        if phase < current:
            raise PhaseError("phase", f"item {item_id} is in phase {current}; cannot go to {phase}")
        item.phase_version = version + 1
        session.add(item)
        _check_feature_version_exists(session, item_id, fv)
        _apply_decisions(
            session, item_id, clean, phase=phase, analyst=analyst, source=source, now=now
        )
        _upsert_embedding(
            session,
            item_id,
            phase=phase,
            feature_version=fv,
            model_version=model_version,
            dim=dim,
            vector=raw,
            now=now,
        )
        _insert_snapshot(session, item_id, phase=phase, topk=topk, now=now)
        return version + 1


def current_phase(db: Db, item_id: int) -> int:
    """Highest phase (0..3) with a stored embedding; 0 when the item has none yet."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        return _phase_of(session, item_id)


def embeddings(db: Db, item_id: int) -> list[EmbeddingRecord]:
    """Embedding versions of the item, by phase."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(EmbeddingVersion)
            .where(EmbeddingVersion.item_id == item_id)
            .order_by(EmbeddingVersion.phase)
        )
        return [_embedding_record(r) for r in rows]


def snapshots(db: Db, item_id: int) -> list[SnapshotRecord]:
    """Prediction snapshots of the item, by phase."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(PredictionSnapshot)
            .where(PredictionSnapshot.item_id == item_id)
            .order_by(PredictionSnapshot.phase, PredictionSnapshot.id)
        )
        return [_snapshot_record(r) for r in rows]


__all__ = [
    "current_phase",
    "embeddings",
    "item_version",
    "record_refinement",
    "save_phase0",
    "snapshots",
]
