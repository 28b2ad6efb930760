"""The analyst flows: where the engine meets the database. No streamlit import here.

Each function takes the trained :class:`engine.workspace.Workspace` and a SQLAlchemy engine
and returns plain values, so the flows are tested as ordinary Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from db import repository as repo
from db.errors import DuplicateError
from db.repository import FeatureVersionRecord, ItemRecord
from engine.schema import NAME, PHASES, TARGET_ID
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


@dataclass(frozen=True)
class OpenedDatabase:
    """The dashboard's database: ``read_only`` holds the reason when it could only be opened
    for reading (read-only data folder, full disk): browsing works, saving shows that reason."""

    engine: Engine
    read_only: str | None = None


def open_database(url: str) -> OpenedDatabase:
    """Open and migrate ``url``; fall back to a read-only engine when the database cannot be
    written (read-only home, full disk), so analysts can still browse.

    Raises:
        OSError / sqlalchemy errors: the database cannot even be read.
    """
    from sqlalchemy.exc import OperationalError

    from app.errors import DISK_FULL, READ_ONLY, classify
    from db.database import init_db, make_engine, make_read_only_engine

    engine = make_engine(url)
    try:
        init_db(engine)
        return OpenedDatabase(engine)
    except (OperationalError, OSError) as exc:
        reason = classify(exc)
        if reason not in (READ_ONLY, DISK_FULL):
            raise
        engine.dispose()
        ro = make_read_only_engine(url)
        repo.list_workspaces(ro)  # readable at all? (raises otherwise)
        return OpenedDatabase(ro, read_only=reason)


def phase_label(phase: int) -> str:
    return PHASES[phase]


def ensure_workspace(db: repo.Db, ws: Workspace) -> None:
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
            "ranker": ws.ranker_kind,
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
    raw = {k: _as_text(v) for k, v in features.items() if v not in (None, "", [])}
    raw[NAME] = name
    with repo.unit_of_work(db) as s:  # one transaction: workspace row, checks, item + v1
        ensure_workspace(s, ws)
        if not allow_duplicate:
            dups = repo.find_duplicates(s, workspace=ws.name, name=name, external_id=external_id)
            if dups:
                raise DuplicateItemError(dups)
        try:
            item, _ = repo.create_item_with_features(
                s,
                workspace=ws.name,
                domain=ws.domain,
                name=name,
                external_id=external_id or None,
                raw_features=raw,
                features=[
                    *dataset_features(ws, raw),
                    *entered_features(ws, raw, analyst),
                    *(dict(f) for f in extra_features),
                ],
                created_by=analyst,
            )
        except DuplicateError as exc:
            # a copy under an identical (normalized) name: the database keeps names unique
            dups = repo.find_duplicates(s, workspace=ws.name, name=name,
                                        external_id=external_id)
            if dups and not allow_duplicate:
                raise DuplicateItemError(dups) from exc
            raise ValueError(
                f"An item named {name!r} already exists in this workspace; give the new one a "
                "different name."
            ) from exc
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


@dataclass(frozen=True)
class _Stored:
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


def _read(s: repo.Db, item_id: int) -> _Stored:
    """Everything the flows need of one item, read in the session ``s``."""
    return _Stored(
        item=repo.get_item(s, item_id),
        fv=repo.latest_feature_version(s, item_id),
        embeddings={e.phase: np.frombuffer(e.vector, dtype=np.float32).copy()
                    for e in repo.embeddings(s, item_id)},
        decisions={i.target_id: i.label for i in repo.interactions(s, item_id)},
    )


def _save_phase0(s: repo.Db, ws: Workspace, item_id: int, stored: _Stored,
                 pred: Prediction) -> None:
    repo.save_phase0(
        s,
        item_id,
        feature_version=stored.fv_no,
        model_version=ws.model_version,
        vector=pred.embedding.astype(np.float32).tobytes(),
        dim=int(pred.embedding.shape[0]),
        snapshot=_snapshot(pred),
    )


def predict_item(db: Engine, ws: Workspace, item_id: int, *, recompute: bool = False) -> ItemState:
    """The item's ranking at its current phase.

    Phase 0: the features are serialized, encoded and aligned, and the embedding and top-k
    snapshot are stored (one transaction). Later phases: the stored refined embedding is
    scored with every decision so far (one read; nothing written, so a read-only database
    can be browsed). ``recompute`` re-runs phase 0 from the latest feature version (only
    while in phase 0).
    """
    with repo.read_session(db) as s:
        stored = _read(s, item_id)
    raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
    if stored.embeddings and not (recompute and stored.phase == 0):
        pred = ws.predict(raw, augmented=aug, descriptors=desc,
                          embedding=stored.embeddings[stored.phase], decisions=stored.decisions)
        return ItemState(item=stored.item, phase=stored.phase, feature_version=stored.fv_no,
                         prediction=pred, decisions=stored.decisions)
    with repo.unit_of_work(db) as s:
        repo.item_version(s, item_id, lock=True)
        stored = _read(s, item_id)  # under the lock: what the write below builds on
        raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
        if stored.embeddings and not (recompute and stored.phase == 0):
            pred = ws.predict(raw, augmented=aug, descriptors=desc,
                              embedding=stored.embeddings[stored.phase],
                              decisions=stored.decisions)
        else:
            pred = ws.predict(raw, augmented=aug, descriptors=desc)
            _save_phase0(s, ws, item_id, stored, pred)
            stored = dataclasses.replace(stored, embeddings={0: pred.embedding})
    return ItemState(item=stored.item, phase=stored.phase, feature_version=stored.fv_no,
                     prediction=pred, decisions=stored.decisions)


def reuse_or_predict(db: Engine, ws: Workspace, item_id: int,
                     state: ItemState | None) -> ItemState:
    """``state`` (e.g. what :func:`confirm_and_refine` just returned) when the item is still in
    that phase with those decisions (one read), else :func:`predict_item`."""
    if state is not None and state.item.id == item_id:
        with repo.read_session(db) as s:
            phase = repo.current_phase(s, item_id)
            decided = {i.target_id: i.label for i in repo.interactions(s, item_id)}
        if phase == state.phase and decided == state.decisions:
            return state
    return predict_item(db, ws, item_id)


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
        stored = _read(s, item_id)
        raw, aug, desc = engine_inputs(ws, stored.item, stored.fv)
        prior = stored.embeddings.get(0)
        if prior is None:  # never predicted: phase 0 first, in the same transaction
            pred0 = ws.predict(raw, augmented=aug, descriptors=desc)
            _save_phase0(s, ws, item_id, stored, pred0)
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
            snapshot=_snapshot(pred),
            expected_version=version,
        )
    return ItemState(item=stored.item, phase=target_phase, feature_version=stored.fv_no,
                     prediction=pred, decisions=merged)


def top_targets_table(ws: Workspace, state: ItemState, k: int = 10) -> pd.DataFrame:
    """Top-k targets with an ``decision`` column (confirmed / rejected / blank)."""
    top = state.prediction.top(k).copy()
    top["decision"] = [
        {1: "confirmed", 0: "rejected"}.get(state.decisions.get(str(t), -1), "")
        for t in top[TARGET_ID]
    ]
    return top
