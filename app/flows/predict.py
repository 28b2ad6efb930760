"""Predict: an item's ranking at its current phase (phase 0 encoded and stored in one
transaction; later phases one read). No streamlit here.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
from sqlalchemy.engine import Engine

from app.flows.common import ItemState, Stored, engine_inputs, read_stored, save_phase0
from db import repository as repo
from engine.schema import TARGET_ID
from engine.workspace import Prediction, Workspace


def predict_item(db: Engine, ws: Workspace, item_id: int, *, recompute: bool = False,
                 store: bool = True) -> ItemState:
    """The item's ranking at its current phase.

    Phase 0: the features are serialized, encoded and aligned, and the embedding and top-k
    snapshot are stored (one transaction). Later phases: the stored refined embedding is
    scored with every decision so far (one read; nothing written, so a read-only database
    can be browsed). ``recompute`` re-runs phase 0 from the latest feature version (only
    while in phase 0). ``store=False`` (a database that can only be read): phase 0 is
    computed and shown but nothing is locked or stored.
    """
    with repo.read_session(db) as s:
        stored = read_stored(s, item_id)
    raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
    if stored.embeddings and not (recompute and stored.phase == 0):
        pred = ws.predict(raw, augmented=aug, descriptors=desc,
                          embedding=stored.embeddings[stored.phase], decisions=stored.decisions)
        return _state(stored, pred)
    if not store:
        return _state(stored, ws.predict(raw, augmented=aug, descriptors=desc))
    with repo.unit_of_work(db) as s:
        repo.item_version(s, item_id, lock=True)
        stored = read_stored(s, item_id)  # under the lock: what the write below builds on
        raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
        if stored.embeddings and not (recompute and stored.phase == 0):
            pred = ws.predict(raw, augmented=aug, descriptors=desc,
                              embedding=stored.embeddings[stored.phase],
                              decisions=stored.decisions)
        else:
            pred = ws.predict(raw, augmented=aug, descriptors=desc)
            save_phase0(s, ws, item_id, stored, pred)
            stored = dataclasses.replace(stored, embeddings={0: pred.embedding})
    return _state(stored, pred)


def _state(stored: Stored, pred: Prediction) -> ItemState:
    return ItemState(item=stored.item, phase=stored.phase, feature_version=stored.fv_no,
                     prediction=pred, decisions=stored.decisions)


def reuse_or_predict(db: Engine, ws: Workspace, item_id: int,
                     state: ItemState | None, *, store: bool = True) -> ItemState:
    """``state`` (e.g. what :func:`app.flows.confirm_and_refine` just returned) when the item is
    still in that phase with those decisions (one read), else :func:`predict_item`."""
    if state is not None and state.item.id == item_id:
        with repo.read_session(db) as s:
            phase = repo.current_phase(s, item_id)
            decided = {i.target_id: i.label for i in repo.interactions(s, item_id)}
        if phase == state.phase and decided == state.decisions:
            return state
    return predict_item(db, ws, item_id, store=store)


def top_targets_table(ws: Workspace, state: ItemState, k: int = 10) -> pd.DataFrame:
    """Top-k targets with an ``decision`` column (confirmed / rejected / blank)."""
    top = state.prediction.top(k).copy()
    top["decision"] = [
        {1: "confirmed", 0: "rejected"}.get(state.decisions.get(str(t), -1), "")
        for t in top[TARGET_ID]
    ]
    return top
