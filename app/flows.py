"""The analyst flows: where the engine meets the database. No streamlit import here.

Each function takes the trained :class:`engine.workspace.Workspace` and a SQLAlchemy engine
and returns plain values, so the flows are tested as ordinary Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from db import repository as repo
from db.repository import FeatureVersionRecord, ItemRecord
from engine.schema import NAME, PHASES, TARGET_ID
from engine.workspace import Prediction, Workspace

SNAPSHOT_K = 50  #: ranks stored per phase for audit and rank-change charts
MAX_PHASE = len(PHASES) - 1


class DuplicateItemError(ValueError):
    """The item looks like one already in the workspace; ``duplicates`` lists them."""

    def __init__(self, duplicates: Sequence[ItemRecord]):
        self.duplicates = list(duplicates)
        names = ", ".join(f"{d.name} (#{d.id})" for d in self.duplicates[:3])
        super().__init__(f"an item like this already exists: {names}")


@dataclass(frozen=True)
class ItemState:
    """An item's prediction at its current phase, with what the analyst already decided."""

    item: ItemRecord
    phase: int
    feature_version: int
    prediction: Prediction
    decisions: dict[str, int]

    @property
    def phase_label(self) -> str:
        return PHASES[self.phase]


def phase_label(phase: int) -> str:
    return PHASES[phase]


def ensure_workspace(db: Engine, ws: Workspace) -> None:
    """Record the workspace (dataset, input checksums, model version) in the database."""
    repo.upsert_workspace(
        db,
        name=ws.name,
        domain=ws.domain,
        dataset=ws.dataset.label,
        inputs=dict(ws.dataset.inputs),
        model_versions={
            "model": ws.model_version,
            "encoder": ws.config.encoder.model,
            "backbone": ws.config.backbone.name,
        },
    )


def dataset_features(ws: Workspace, values: Mapping[str, object]) -> list[dict]:
    """Feature-version entries for the dataset's raw item features."""
    out = []
    for spec in ws.dataset.item_features:
        value = values.get(spec.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out.append(
            {
                "name": spec.name,
                "descriptor": spec.descriptor,
                "value": _as_text(value),
                "source": "dataset",
                "keep": True,
            }
        )
    return out


def _as_text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    return str(value)


def new_item(
    db: Engine,
    ws: Workspace,
    *,
    name: str,
    features: Mapping[str, object],
    external_id: str | None = None,
    analyst: str = "analyst",
    allow_duplicate: bool = False,
    extra_features: Sequence[Mapping[str, object]] = (),
) -> ItemRecord:
    """Create an emerging item with its raw features as feature version 1.

    ``extra_features`` (e.g. the analyst's synonyms) are appended to version 1 as given:
    feature dicts with ``name``, ``descriptor``, ``value`` and ``source``.

    Raises:
        ValueError: empty name.
        DuplicateItemError: an item with the same normalized name or external id exists.
    """
    name = (name or "").strip()
    if not name:
        raise ValueError("Name is required.")
    ensure_workspace(db, ws)
    if not allow_duplicate:
        dups = repo.find_duplicates(db, workspace=ws.name, name=name, external_id=external_id)
        if dups:
            raise DuplicateItemError(dups)
    raw = {k: _as_text(v) for k, v in features.items() if v not in (None, "", [])}
    raw[NAME] = name
    item = repo.create_item(
        db,
        workspace=ws.name,
        domain=ws.domain,
        name=name,
        external_id=external_id or None,
        raw_features=raw,
        created_by=analyst,
    )
    repo.save_feature_version(
        db,
        item.id,
        [
            *dataset_features(ws, raw),
            *entered_features(ws, raw, analyst),
            *(dict(f) for f in extra_features),
        ],
        created_by=analyst,
    )
    return item


def entered_features(ws: Workspace, values: Mapping[str, object], analyst: str) -> list[dict]:
    """Form values the dataset has no feature for (e.g. a free-text description of a
    disease in DisGeNET, which lists none): kept as analyst-sourced features, so they are
    serialized after the dataset's features instead of being dropped."""
    known = {s.name for s in ws.dataset.item_features} | {NAME}
    out = []
    for key, value in values.items():
        if key in known or value is None or not str(value).strip():
            continue
        out.append(
            {
                "name": key,
                "descriptor": key.replace("_", " ").capitalize(),
                "value": _as_text(value),
                "source": "analyst",
                "analyst": analyst,
                "keep": True,
            }
        )
    return out


def engine_inputs(
    ws: Workspace, item: ItemRecord, fv: FeatureVersionRecord | None
) -> tuple[dict[str, object], dict[str, str], dict[str, str]]:
    """(raw features, augmented values, augmented descriptors) from a feature version.

    Features the analyst un-ticked (``keep`` false) are left out of the text.
    """
    raw_names = {s.name for s in ws.dataset.item_features}
    raw: dict[str, object] = dict(item.raw_features)
    aug: dict[str, str] = {}
    desc: dict[str, str] = {}
    if fv is None:
        return raw, aug, desc
    for f in fv.features:
        if f["name"] in raw_names:
            raw[f["name"]] = f["value"] if f.get("keep", True) else None
        elif f.get("keep", True) and f.get("value"):
            aug[f["name"]] = str(f["value"])
            desc[f["name"]] = f.get("descriptor") or f["name"]
    return raw, aug, desc


def _snapshot(pred: Prediction, k: int = SNAPSHOT_K) -> list[dict]:
    top = pred.targets.head(k)
    return [
        {"rank": int(r), "target_id": str(t), "score": float(s)}
        for r, t, s in zip(top["rank"], top[TARGET_ID], top["score"], strict=True)
    ]


def _decisions(db: Engine, item_id: int) -> dict[str, int]:
    return {i.target_id: i.label for i in repo.interactions(db, item_id)}


def _latest_embedding(db: Engine, item_id: int) -> tuple[int, np.ndarray] | None:
    embs = repo.embeddings(db, item_id)
    if not embs:
        return None
    last = max(embs, key=lambda e: e.phase)
    return last.phase, np.frombuffer(last.vector, dtype=np.float32).copy()


def predict_item(db: Engine, ws: Workspace, item_id: int, *, recompute: bool = False) -> ItemState:
    """The item's ranking at its current phase.

    Phase 0: the features are serialized, encoded and aligned, and the embedding and top-k
    snapshot are stored. Later phases: the stored refined embedding is scored.
    ``recompute`` re-runs phase 0 from the latest feature version (only while in phase 0).
    """
    item = repo.get_item(db, item_id)
    fv = repo.latest_feature_version(db, item_id)
    raw, aug, desc = engine_inputs(ws, item, fv)
    latest = _latest_embedding(db, item_id)
    fv_no = fv.version if fv else 0
    if latest is None or (recompute and latest[0] == 0):
        pred = ws.predict(raw, augmented=aug, descriptors=desc)
        repo.save_phase0(
            db,
            item_id,
            feature_version=fv_no,
            model_version=ws.model_version,
            vector=pred.embedding.astype(np.float32).tobytes(),
            dim=int(pred.embedding.shape[0]),
            snapshot=_snapshot(pred),
        )
        phase = 0
    else:
        phase, emb = latest
        pred = ws.predict(raw, augmented=aug, descriptors=desc, embedding=emb)
    return ItemState(
        item=item,
        phase=phase,
        feature_version=fv_no,
        prediction=pred,
        decisions=_decisions(db, item_id),
    )


def confirm_and_refine(
    db: Engine,
    ws: Workspace,
    item_id: int,
    decisions: Sequence[tuple[str, int]],
    *,
    analyst: str = "analyst",
    source: str = "analyst",
) -> ItemState:
    """Record the analyst's decisions and refine the embedding into the next phase.

    One transaction stores the decisions, the new embedding and its ranking snapshot.

    Raises:
        ValueError: nothing decided, the item is already in the last phase, or a bad target.
    """
    if not decisions:
        raise ValueError("Confirm or reject at least one target before refining.")
    state = predict_item(db, ws, item_id)
    if state.phase >= MAX_PHASE:
        raise ValueError(f"The item is already in Phase {PHASES[MAX_PHASE]}, the last phase.")
    merged = dict(state.decisions) if ws.config.refine.use_all_seen else {}
    merged.update({str(t): int(y) for t, y in decisions})
    raw, aug, desc = engine_inputs(ws, state.item, repo.latest_feature_version(db, item_id))
    new_emb = ws.refine(state.prediction.embedding, raw, list(merged.items()))
    pred = ws.predict(raw, augmented=aug, descriptors=desc, embedding=new_emb)
    repo.record_refinement(
        db,
        item_id,
        phase=state.phase + 1,
        decisions=[{"target_id": str(t), "label": int(y)} for t, y in decisions],
        analyst=analyst,
        source=source,
        vector=new_emb.astype(np.float32).tobytes(),
        dim=int(new_emb.shape[0]),
        feature_version=state.feature_version,
        model_version=ws.model_version,
        snapshot=_snapshot(pred),
    )
    return ItemState(
        item=state.item,
        phase=state.phase + 1,
        feature_version=state.feature_version,
        prediction=pred,
        decisions=_decisions(db, item_id),
    )


def top_targets_table(ws: Workspace, state: ItemState, k: int = 10) -> pd.DataFrame:
    """Top-k targets with an ``decision`` column (confirmed / rejected / blank)."""
    top = state.prediction.top(k).copy()
    top["decision"] = [
        {1: "confirmed", 0: "rejected"}.get(state.decisions.get(str(t), -1), "")
        for t in top[TARGET_ID]
    ]
    return top
