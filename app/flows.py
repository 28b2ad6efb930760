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
from db.errors import ConcurrentUpdateError, DuplicateError
from db.repository import FeatureVersionRecord, ItemRecord
from engine.schema import NAME, PHASES, TARGET_ID
from engine.workspace import Prediction, Workspace

SNAPSHOT_K = 50  #: ranks stored per phase for audit and rank-change charts
MAX_PHASE = len(PHASES) - 1


#: How often a refinement overtaken by a concurrent one is recomputed on top of it.
MAX_REFINE_ATTEMPTS = 20


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
    ensure_workspace(db, ws)
    if not allow_duplicate:
        dups = repo.find_duplicates(db, workspace=ws.name, name=name, external_id=external_id)
        if dups:
            raise DuplicateItemError(dups)
    raw = {k: _as_text(v) for k, v in features.items() if v not in (None, "", [])}
    raw[NAME] = name
    try:
        item, _ = repo.create_item_with_features(  # one transaction: item + version 1
            db,
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
        # a concurrent create of the same name (or a copy under an identical name)
        dups = repo.find_duplicates(db, workspace=ws.name, name=name, external_id=external_id)
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
    decisions = _decisions(db, item_id)
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
        pred = ws.predict(raw, augmented=aug, descriptors=desc, embedding=emb,
                          decisions=decisions)
    return ItemState(
        item=item,
        phase=phase,
        feature_version=fv_no,
        prediction=pred,
        decisions=decisions,
    )


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
    """Record the analyst's decisions (with their notes) and refine the embedding.

    One transaction stores the decisions, notes, the new embedding and its ranking snapshot;
    it is refused if another refinement of the item committed in the meantime (the item's
    ``phase_version``), and then recomputed on top of it. ``expected_phase`` is the phase the
    analyst looked at (default: the current one):

    * the item is still there: refine it to the next phase;
    * another analyst refined that same phase meanwhile: the next phase is recomputed from
      ``expected_phase`` with both analysts' decisions (nothing of either is lost);
    * the item moved further: :class:`StaleItemError`, nothing is written.

    Raises:
        ValueError: nothing decided, the item is already in the last phase, or a bad target.
        StaleItemError: the item moved more than one phase past ``expected_phase``.
    """
    if not decisions:
        raise ValueError("Confirm or reject at least one target before refining.")
    mine = {str(t): int(y) for t, y in decisions}
    notes = {str(k): str(v) for k, v in (notes or {}).items() if v}
    if expected_phase is None:
        expected_phase = repo.item_version(db, item_id)[0]  # the phase at the call
    for _attempt in range(MAX_REFINE_ATTEMPTS):
        _, version = repo.item_version(db, item_id)
        state = predict_item(db, ws, item_id)
        phase_now, version_after = repo.item_version(db, item_id)
        if version_after != version or phase_now != state.phase:
            continue  # something committed while we read (or phase 0 was just stored)
        if state.phase == expected_phase:
            base_embedding = state.prediction.embedding
        elif state.phase == expected_phase + 1:
            # Another analyst refined the phase this one looked at: redo that refinement
            # from the same starting point with both analysts' decisions.
            base = _embedding_at(db, item_id, expected_phase)
            if base is None:
                raise StaleItemError(state.phase)
            base_embedding = base
        else:
            raise StaleItemError(state.phase)
        if expected_phase >= MAX_PHASE:
            raise ValueError(
                f"The item is already in Phase {PHASES[MAX_PHASE]}, the last phase."
            )
        target_phase = expected_phase + 1
        # The phase update starts from the phase-0 text embedding with every decision so
        # far: the same function of (text, decisions) as in the benchmark.
        prior = _embedding_at(db, item_id, 0)
        base_embedding = prior if prior is not None else base_embedding
        merged = {**state.decisions, **mine}
        raw, aug, desc = engine_inputs(ws, state.item, repo.latest_feature_version(db, item_id))
        new_emb = ws.refine(base_embedding, raw, sorted(merged.items()))
        pred = ws.predict(raw, augmented=aug, descriptors=desc, embedding=new_emb,
                          decisions={**state.decisions, **mine})
        try:
            repo.record_refinement(
                db,
                item_id,
                phase=target_phase,
                decisions=[{"target_id": t, "label": y, "note": notes.get(t)}
                           for t, y in mine.items()],
                analyst=analyst,
                source=source,
                vector=new_emb.astype(np.float32).tobytes(),
                dim=int(new_emb.shape[0]),
                feature_version=state.feature_version,
                model_version=ws.model_version,
                snapshot=_snapshot(pred),
                expected_version=version,
            )
        except ConcurrentUpdateError:
            continue  # overtaken: recompute on top of the refinement that won
        return ItemState(
            item=state.item,
            phase=target_phase,
            feature_version=state.feature_version,
            prediction=pred,
            decisions=_decisions(db, item_id),
        )
    raise ValueError("The item is being refined by others right now; nothing was written. "
                     "Try again in a moment.")


def _embedding_at(db: Engine, item_id: int, phase: int) -> np.ndarray | None:
    for e in repo.embeddings(db, item_id):
        if e.phase == phase:
            return np.frombuffer(e.vector, dtype=np.float32).copy()
    return None


def top_targets_table(ws: Workspace, state: ItemState, k: int = 10) -> pd.DataFrame:
    """Top-k targets with an ``decision`` column (confirmed / rejected / blank)."""
    top = state.prediction.top(k).copy()
    top["decision"] = [
        {1: "confirmed", 0: "rejected"}.get(state.decisions.get(str(t), -1), "")
        for t in top[TARGET_ID]
    ]
    return top
