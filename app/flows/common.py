"""What every flow shares: the item's state, the flows' errors, and the read and phase-0 write
that the predict, decide and save-features flows build on. No streamlit import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from db import repository as repo
from db.repository import FeatureVersionRecord, ItemRecord
from engine.schema import PHASES, TARGET_ID
from engine.workspace import Prediction, Workspace

SNAPSHOT_K = 50  #: ranks stored per phase for audit and rank-change charts
MAX_PHASE = len(PHASES) - 1


class StaleItemError(ValueError):
    """The item moved on since the page was shown; nothing was written.

    ``phase`` is the item's phase now; the analyst's decisions are kept by the page.
    """

    def __init__(self, phase: int):
        self.phase = phase
        super().__init__(
            f"The item moved to Phase {PHASES[phase]}; your decisions are kept — review and "
            "apply."
        )


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


def as_text(value: object) -> str:
    """A feature value as stored text (lists joined with ``|``)."""
    if isinstance(value, (list, tuple)):
        return "|".join(str(v) for v in value)
    return str(value)


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


def snapshot(pred: Prediction, k: int = SNAPSHOT_K) -> list[dict]:
    """The top ``k`` of a prediction as stored for audit (rank, target_id, score)."""
    top = pred.top(k)
    return [
        {"rank": int(r), "target_id": str(t), "score": float(s)}
        for r, t, s in zip(top["rank"], top[TARGET_ID], top["score"], strict=True)
    ]


@dataclass(frozen=True)
class Stored:
    """What one read of the item gives: the item, its latest feature version, its embeddings
    by phase and every decision so far."""

    item: ItemRecord
    fv: FeatureVersionRecord | None
    embeddings: dict[int, np.ndarray]
    decisions: dict[str, int]

    @property
    def phase(self) -> int:
        return max(self.embeddings, default=0)

    @property
    def fv_no(self) -> int:
        return self.fv.version if self.fv else 0


def vectors(records: Sequence[repo.EmbeddingRecord]) -> dict[int, np.ndarray]:
    """``{phase: float32 vector}`` of stored embedding records."""
    return {e.phase: np.frombuffer(e.vector, dtype=np.float32).copy() for e in records}


def read_stored(s: repo.Db, item_id: int) -> Stored:
    """Everything the flows need of one item, read in the session ``s``."""
    return Stored(
        item=repo.get_item(s, item_id),
        fv=repo.latest_feature_version(s, item_id),
        embeddings=vectors(repo.embeddings(s, item_id)),
        decisions={i.target_id: i.label for i in repo.interactions(s, item_id)},
    )


def save_phase0(s: repo.Db, ws: Workspace, item_id: int, stored: Stored,
                pred: Prediction) -> None:
    """Store ``pred``'s embedding and top-k snapshot as the item's phase 0 (in ``s``)."""
    repo.save_phase0(
        s,
        item_id,
        feature_version=stored.fv_no,
        model_version=ws.model_version,
        vector=pred.embedding.astype(np.float32).tobytes(),
        dim=int(pred.embedding.shape[0]),
        snapshot=snapshot(pred),
    )


def predict_phase0(s: repo.Db, ws: Workspace, item_id: int) -> tuple[Stored, Prediction]:
    """Encode the item's latest features and store the result as phase 0, in the session
    ``s`` (the caller's unit of work, item locked). Returns the item as read and the
    prediction."""
    stored = read_stored(s, item_id)
    raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
    pred = ws.predict(raw, augmented=aug, descriptors=desc)
    save_phase0(s, ws, item_id, stored, pred)
    return stored, pred

