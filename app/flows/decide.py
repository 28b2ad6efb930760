"""Decide + refine: the analyst's decisions and the refined embedding, one transaction with
the item locked. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy.engine import Engine

from app.flows.common import (
    MAX_PHASE,
    ItemState,
    StaleItemError,
    engine_inputs,
    read_stored,
    save_phase0,
    snapshot,
)
from db import repository as repo
from engine.schema import PHASES
from engine.workspace import Workspace


def confirm_and_refine(
    db: Engine,
    ws: Workspace,
    item_id: int,
    decisions: Sequence[tuple[str, int]],
    *,
    analyst: str = "analyst",
    source: str = "analyst",
    notes: Mapping[str, str] | None = None,
    expected_phase: int | None = None,
) -> ItemState:
    """Record the analyst's decisions (with their notes) and refine the embedding: one
    transaction with the item locked (decisions, notes, the new embedding and its ranking
    snapshot are written together or not at all; concurrent refinements of the item queue).

    The refined embedding is the ranker's phase update of the phase-0 text embedding with
    every decision so far (the same function of (text, decisions) as in the benchmark).
    ``expected_phase`` is the phase the analyst looked at (default: the current one):

    * the item is still there: refine it to the next phase;
    * another analyst refined that same phase meanwhile: that phase is recomputed with both
      analysts' decisions (nothing of either is lost);
    * the item moved further: :class:`StaleItemError`, nothing is written.

    Raises:
        ValueError: nothing decided, the item is already in the last phase, or a bad target.
        StaleItemError: the item moved more than one phase past ``expected_phase``.
    """
    if not decisions:
        raise ValueError("Confirm or reject at least one target before refining.")
    mine = {str(t): int(y) for t, y in decisions}
    notes = {str(k): str(v) for k, v in (notes or {}).items() if v}
    with repo.unit_of_work(db) as s:
        phase_now, version = repo.item_version(s, item_id, lock=True)
        if expected_phase is None:
            expected_phase = phase_now
        if phase_now not in (expected_phase, expected_phase + 1):
            raise StaleItemError(phase_now)
        if expected_phase >= MAX_PHASE:
            raise ValueError(
                f"The item is already in Phase {PHASES[MAX_PHASE]}, the last phase."
            )
        stored = read_stored(s, item_id)
        raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
        prior = stored.embeddings.get(0)
        if prior is None:  # never predicted: phase 0 first, in the same transaction
            pred0 = ws.predict(raw, augmented=aug, descriptors=desc)
            save_phase0(s, ws, item_id, stored, pred0)
            prior = pred0.embedding
            version += 1
        merged = {**stored.decisions, **mine}
        new_emb = ws.refine(prior, raw, sorted(merged.items()))
        pred = ws.predict(raw, augmented=aug, descriptors=desc, embedding=new_emb,
                          decisions=merged)
        target_phase = expected_phase + 1
        repo.record_refinement(
            s,
            item_id,
            phase=target_phase,
            decisions=[{"target_id": t, "label": y, "note": notes.get(t)}
                       for t, y in mine.items()],
            analyst=analyst,
            source=source,
            vector=new_emb.astype(np.float32).tobytes(),
            dim=int(new_emb.shape[0]),
            feature_version=stored.fv_no,
            model_version=ws.model_version,
            snapshot=snapshot(pred),
            expected_version=version,
        )
    return ItemState(item=stored.item, phase=target_phase, feature_version=stored.fv_no,
                     prediction=pred, decisions=merged)
