"""A trained workspace: dataset + split + frozen backbone + aligner + encoder + FAISS index.

``build_workspace`` trains everything for one dataset and ``Workspace.save``/``load_workspace``
persist it as ``state_dict`` files plus a JSON config (loaded with ``weights_only=True``).
``Workspace.predict`` and ``Workspace.refine`` are the two calls the dashboard makes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from engine.config import WorkspaceConfig, emerflow_home
from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.emerflow.aligner import Aligner
from engine.emerflow.meta import MetaTrainer
from engine.emerflow.refine import refine_one
from engine.emerflow.shared_space import SharedConfig, SharedRanker, train_shared
from engine.emerflow.tasks import ItemRows
from engine.index import ItemIndex
from engine.models.deepfm import DeepFM, FieldLayout, TargetCache
from engine.models.fields import FieldEncoder
from engine.models.registry import build_backbone
from engine.models.train import pretrain_backbone
from engine.models.twotower import positive_matrix
from engine.schema import ITEM_ID, LABEL, NAME, ORDER, TARGET_ID, FeatureSpec
from engine.text.encoder import TextEncoder
from engine.text.serialize import serialize_item

#: progress(stage, fraction 0..1, message)
ProgressFn = Callable[[str, float, str], None]

FORMAT_VERSION = 1
#: Candidate targets per ``DeepFM.score_all`` call in :meth:`Workspace.score`.
SCORE_CHUNK = 65_536
_SPLIT_PARTS = ("train", "I", "II", "III", "test")


def workspaces_dir() -> Path:
    """``$EMERFLOW_HOME/workspaces``."""
    return emerflow_home() / "workspaces"


def _specs_to_json(specs: Sequence[FeatureSpec]) -> list[dict]:
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "descriptor": s.descriptor,
            "backbone": s.backbone,
            "text": s.text,
        }
        for s in specs
    ]


def _specs_from_json(rows: Sequence[dict]) -> list[FeatureSpec]:
    return [FeatureSpec(**r) for r in rows]


@dataclass
class Prediction:
    """What the dashboard shows for one item at one phase.

    Attributes:
        text: the serialized features the encoder saw (Eq. 2).
        embedding: the item embedding used for scoring ``[D]``.
        targets: every target ranked: ``rank``, ``target_id``, ``name``, ``score`` (probability)
            and the target's display columns.
        neighbours: nearest established items: ``item_id``, ``name``, ``similarity`` and
            ``evidence`` (their best-known targets).
    """

    text: str
    embedding: np.ndarray
    targets: pd.DataFrame
    neighbours: pd.DataFrame

    def top(self, k: int) -> pd.DataFrame:
        return self.targets.head(k)


@dataclass
class Workspace:
    """Everything trained for one dataset, ready to predict and refine.

    Composed by injection: the backbone, aligner and encoder are built outside and passed in.
    """

    config: WorkspaceConfig
    dataset: Dataset
    split: Split
    backbone: DeepFM
    aligner: Aligner
    encoder: TextEncoder
    item_fields: FieldEncoder
    target_fields: FieldEncoder
    index: ItemIndex
    meta: dict = field(default_factory=dict)
    shared: SharedRanker | None = None

    def __post_init__(self) -> None:
        self.backbone.eval()
        self.aligner.eval()
        self.target_table = self.target_fields.transform(self.dataset.targets)  # [N, S_t]
        self.target_pos = pd.Series(
            np.arange(len(self.dataset.targets)), index=self.dataset.targets[TARGET_ID].astype(str)
        )
        self.target_cache: TargetCache = self.backbone.precompute_targets(self.target_table)
        self._items_by_id = self.dataset.items.set_index(ITEM_ID, drop=False)
        # plain dicts/arrays for the per-call hot paths (neighbours, refine): no pandas there
        self._item_names = dict(
            zip(self.dataset.items[ITEM_ID], self.dataset.items[NAME], strict=True)
        )
        self._target_names = dict(
            zip(self.dataset.targets[TARGET_ID], self.dataset.targets[NAME], strict=True)
        )
        self._target_ids = np.array(list(self.target_pos.index))
        self._field_rows: dict[tuple, torch.Tensor] = {}
        train = self.split.train
        pos = train[train[LABEL] == 1].sort_values([ITEM_ID, ORDER])
        self.evidence: dict[str, list[str]] = (
            pos.groupby(ITEM_ID)[TARGET_ID].apply(lambda s: list(s.astype(str)[:3])).to_dict()
        )

    # ---- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def domain(self) -> str:
        return self.dataset.domain

    @property
    def model_version(self) -> str:
        return str(self.meta.get("model_version", "untrained"))

    # ---- the prediction path ----------------------------------------------------------------
    def serialize(
        self,
        features: Mapping[str, object],
        augmented: Mapping[str, str] | None = None,
        descriptors: Mapping[str, str] | None = None,
    ) -> str:
        """Eq. 2 over the dataset's raw item features plus any augmented ones."""
        return serialize_item(features, self.dataset.item_features, augmented, descriptors)

    @torch.no_grad()
    def align(self, text_vecs: np.ndarray) -> np.ndarray:
        """Eq. 4 for ``[B, T]`` text vectors -> ``[B, D]`` embeddings (the shared-space aligner
        when the workspace ranks with ``twotower``)."""
        if self.shared is not None:
            return self.shared.align(text_vecs)
        return self.aligner(torch.from_numpy(np.asarray(text_vecs, dtype=np.float32))).numpy()

    def embed_text(self, text: str) -> np.ndarray:
        """Encode (Eq. 3) and align (Eq. 4) one serialized text -> ``[D]`` (the shared-space
        aligner's embedding when the workspace ranks with ``twotower``)."""
        vecs = self.encoder.encode([text])
        if self.shared is not None:
            return self.shared.align(vecs)[0]
        return self.align(vecs)[0]

    @property
    def refines_from_prior(self) -> bool:
        """True when :meth:`refine` expects the phase-0 (text) embedding and every decision so
        far (the shared-space update), False when it continues from the latest embedding."""
        return self.shared is not None

    def target_rows(self, target_ids: Sequence[str]) -> np.ndarray:
        """Rows of ``target_ids`` in the target table (ValueError naming unknown ids)."""
        ids = [str(t) for t in target_ids]
        unknown = [t for t in ids if t not in self.target_pos.index]
        if unknown:
            raise ValueError(f"unknown target ids: {unknown[:5]}")
        return self.target_pos.loc[ids].to_numpy(dtype=np.int64, copy=True)

    def _split_decisions(self, decisions: Mapping[str, int] | None) -> tuple[np.ndarray,
                                                                            np.ndarray]:
        """(confirmed rows, rejected rows) of ``{target_id: 1 or 0}``."""
        decisions = decisions or {}
        return (self.target_rows([t for t, y in decisions.items() if int(y) == 1]),
                self.target_rows([t for t, y in decisions.items() if int(y) == 0]))

    def item_field_row(self, features: Mapping[str, object]) -> torch.Tensor:
        """Backbone non-ID field indices of one item ``[S_i]`` (memoized per field values)."""
        key = tuple(repr(features.get(s.name)) for s in self.item_fields.specs)
        row = self._field_rows.get(key)
        if row is None:
            row = self.item_fields.transform([dict(features)])[0]
            if len(self._field_rows) >= 4096:
                self._field_rows.clear()
            self._field_rows[key] = row
        return row.clone()

    @torch.no_grad()
    def score(self, embedding: np.ndarray, features: Mapping[str, object]) -> np.ndarray:
        """Score of every target ``[N]`` from the embedding alone: ``log p(t | e)`` with the
        ``twotower`` ranker (:meth:`predict` adds the neighbour vote and the propagation from
        decisions), else the DeepFM probability (one tensor op per ``SCORE_CHUNK``
        candidates)."""
        if self.shared is not None:
            return self.shared.scores(embedding, np.zeros(0, np.int64))
        item_idx = self.item_field_row(features).unsqueeze(0)
        vec = torch.as_tensor(np.asarray(embedding, dtype=np.float32)).unsqueeze(0)
        cache, n = self.target_cache, len(self.target_cache.linear)
        if n <= SCORE_CHUNK:
            logits = self.backbone.score_all(cache, item_idx, vec)[0]
        else:  # bounds the [N, hidden] intermediates (about 1.2 GB at 1M targets)
            parts = [
                self.backbone.score_all(_cache_slice(cache, s, s + SCORE_CHUNK), item_idx, vec)
                for s in range(0, n, SCORE_CHUNK)
            ]
            logits = torch.cat(parts, dim=1)[0]
        return torch.sigmoid(logits).numpy()

    def neighbours(self, embedding: np.ndarray, k: int = 5) -> pd.DataFrame:
        """The k nearest established items by cosine similarity: of the backbone's own ID
        embeddings (shared space), or of aligned embeddings (DeepFM ranker)."""
        hits = self.index.search(np.asarray(embedding, dtype=np.float32), k)[0]
        names = self._target_names
        rows = []
        for item_id, sim in hits:
            ev = [str(names.get(t, t)) for t in self.evidence.get(item_id, [])]
            rows.append(
                {
                    ITEM_ID: item_id,
                    NAME: self._item_names.get(item_id, item_id),
                    "similarity": sim,
                    "evidence": ", ".join(ev),
                }
            )
        return pd.DataFrame(rows, columns=[ITEM_ID, NAME, "similarity", "evidence"])

    def rank(self, scores: np.ndarray, lift: np.ndarray | None = None) -> pd.DataFrame:
        """All targets sorted by score, with ``rank`` 1..N, ``percentile`` (share of the
        catalog ranked below, 0-100), ``lift`` over popularity when known, and the targets'
        display columns."""
        order = np.argsort(-np.asarray(scores))  # introsort: 3x faster than stable at 1M
        n = len(order)
        out = self.dataset.targets.iloc[order].reset_index(drop=True).copy()
        if lift is not None:
            out.insert(0, "lift", np.asarray(lift, np.float64)[order])
        out.insert(0, "percentile", 100.0 * (n - np.arange(1, n + 1)) / max(n - 1, 1))
        out.insert(0, "score", scores[order])
        out.insert(0, "rank", np.arange(1, n + 1))
        return out

    def predict(
        self,
        features: Mapping[str, object],
        *,
        augmented: Mapping[str, str] | None = None,
        descriptors: Mapping[str, str] | None = None,
        embedding: np.ndarray | None = None,
        decisions: Mapping[str, int] | None = None,
        n_neighbours: int = 5,
        pin_decisions: bool = True,
    ) -> Prediction:
        """Phase-0 prediction from features, or a later phase's from a refined ``embedding``.

        ``decisions`` (``{target_id: 1 confirmed / 0 rejected}``, every decision so far): with
        the shared-space ranker, confirmed targets propagate to co-associated ones; in both
        rankers confirmed targets are listed first and rejected ones last (unless
        ``pin_decisions`` is False: then every target keeps the model's own rank).
        """
        text = self.serialize(features, augmented, descriptors)
        if not text:
            raise ValueError("the item has no feature values to serialize")
        confirmed, rejected = self._split_decisions(decisions)
        lift = None
        if self.shared is not None:
            vec = self.encoder.encode([text])
            emb = self.shared.align(vec)[0] if embedding is None else np.asarray(embedding,
                                                                                np.float32)
            scores, lift = self.shared.scores_and_lift(emb, confirmed, self.shared.vote(vec)[0])
        else:
            emb = self.embed_text(text) if embedding is None else np.asarray(embedding,
                                                                             np.float32)
            scores = self.score(emb, features).astype(np.float64)
        if pin_decisions and (len(confirmed) or len(rejected)):
            scores = scores.copy()
            top, bottom = float(scores.max()), float(scores.min())
            scores[confirmed] = top + 1.0  # a confirmed association is known: never below
            scores[rejected] = bottom - 1.0
        return Prediction(
            text=text,
            embedding=emb,
            targets=self.rank(scores, lift),
            neighbours=self.neighbours(emb, n_neighbours),
        )

    def refine(
        self,
        embedding: np.ndarray,
        features: Mapping[str, object],
        interactions: Sequence[tuple[str, int]],
    ) -> np.ndarray:
        """One phase update from (target_id, label) pairs.

        Shared-space ranker: :func:`engine.emerflow.shared_space.posterior_update` of
        ``embedding`` (the phase-0 text embedding, see :attr:`refines_from_prior`) with every
        decision so far, the same update the benchmark and meta-training use. DeepFM ranker:
        gradient steps on ``embedding`` (positives-only data get sampled negatives).
        """
        if not interactions:
            raise ValueError("refinement needs at least one interaction")
        unknown = [t for t, _ in interactions if str(t) not in self.target_pos.index]
        if unknown:
            raise ValueError(f"unknown target ids: {unknown[:5]}")
        bad = [y for _, y in interactions if y not in (0, 1)]
        if bad:
            raise ValueError(f"labels must be 0 or 1, got {bad[:5]}")
        pairs = [(str(t), int(y)) for t, y in interactions]
        if self.shared is not None:
            confirmed, rejected = self._split_decisions(dict(pairs))
            return self.shared.refine(np.asarray(embedding, np.float32), confirmed, rejected)
        if self.dataset.positives_only:
            pairs += self.sampled_negatives(pairs)
        rows = torch.from_numpy(self.target_pos.loc[[t for t, _ in pairs]].to_numpy(copy=True))
        labels = torch.tensor([float(y) for _, y in pairs])
        out = refine_one(
            self.backbone,
            torch.as_tensor(np.asarray(embedding, np.float32)),
            self.item_field_row(features),
            self.target_table[rows],
            labels,
            self.config.refine,
        )
        return out.numpy()

    def sampled_negatives(self, pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
        """For positives-only data: one random negative per positive beyond the given negatives.

        As in the protocol, negatives are drawn uniformly from targets with no decision for the
        item; the draw is seeded by the decisions, so the same decisions refine identically.
        """
        n_pos = sum(1 for _, y in pairs if y == 1)
        n_neg = sum(1 for _, y in pairs if y == 0)
        need = n_pos - n_neg
        if need <= 0:
            return []
        seen = {t for t, _ in pairs}
        key = "|".join(sorted(f"{t}:{y}" for t, y in pairs)).encode()
        rng = np.random.default_rng(int(hashlib.sha256(key).hexdigest()[:16], 16))
        pool = self._target_ids[~np.isin(self._target_ids, list(seen))]
        picked = rng.choice(pool, size=min(need, len(pool)), replace=False)
        return [(str(t), 0) for t in picked]

    # ---- persistence ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write state_dicts, JSON config, tables and the index into ``directory``, atomically.

        Everything is written into a temporary sibling directory, flushed to disk, and then
        renamed into place (the previous workspace is renamed aside first and removed after),
        so a process killed at any moment leaves either the old or the new workspace complete;
        :func:`load_workspace` puts an old copy back if the kill fell between the two renames.
        """
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        _recover_workspace(directory)
        tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            self._write_files(tmp)
            _fsync_tree(tmp)
            old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
            if directory.exists():
                os.replace(directory, old)
            os.replace(tmp, directory)
            _fsync_dir(directory.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def _write_files(self, directory: Path) -> None:
        torch.save(self.backbone.state_dict(), directory / "backbone.pt")
        torch.save(self.aligner.state_dict(), directory / "aligner.pt")
        self.dataset.items.to_parquet(directory / "items.parquet")
        self.dataset.targets.to_parquet(directory / "targets.parquet")
        for part in _SPLIT_PARTS:
            _split_part(self.split, part).to_parquet(directory / f"split_{part}.parquet")
        self.index.save(directory / "index.faiss")
        self.encoder.save_cache(directory / "text_cache.npz")
        if self.shared is not None:
            torch.save(self.shared.model.state_dict(), directory / "twotower.pt")
            torch.save(self.shared.aligner.state_dict(), directory / "shared_aligner.pt")
        doc = {
            "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "dataset": {
                "name": self.dataset.name,
                "domain": self.dataset.domain,
                "synthetic": self.dataset.synthetic,
                "positives_only": self.dataset.positives_only,
                "inputs": self.dataset.inputs,
                "item_features": _specs_to_json(self.dataset.item_features),
                "target_features": _specs_to_json(self.dataset.target_features),
            },
            "split": {
                "old_items": list(self.split.old_items),
                "new_items": list(self.split.new_items),
            },
            "item_fields": self.item_fields.to_dict(),
            "target_fields": self.target_fields.to_dict(),
            "index_ids": self.index.ids,
            "backbone": {
                "n_items": self.backbone.item_id.num_embeddings,
                "target_layout": _layout_json(self.target_fields),
                "item_layout": _layout_json(self.item_fields),
            },
            "aligner": {"text_dim": self.aligner.text_dim, "embed_dim": self.aligner.embed_dim},
            "shared": None if self.shared is None else {
                "n_items": self.shared.model.item_id.num_embeddings,
                "n_targets": self.shared.n_targets,
                "text_dim": self.shared.aligner.text_dim,
                "hidden": self.shared.aligner.hidden,
            },
            "meta": self.meta,
        }
        (directory / "workspace.json").write_text(json.dumps(doc, indent=1))


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _recover_workspace(directory: Path) -> None:
    """Put back the previous copy of a workspace whose save was killed between its renames,
    and remove leftovers of killed saves."""
    parent = directory.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{directory.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not (directory / "workspace.json").is_file():
        for old in reversed(olds):
            if (old / "workspace.json").is_file():
                if directory.exists():
                    shutil.rmtree(directory, ignore_errors=True)
                os.replace(old, directory)
                olds.remove(old)
                break
    for leftover in [*olds, *parent.glob(f".{directory.name}.tmp-*")]:
        prefix = f".{directory.name}.tmp-"
        if leftover.name.startswith(prefix):
            pid = leftover.name[len(prefix):].split("-")[0]
            if pid.isdigit() and _alive(int(pid)):
                continue  # another process is saving right now
        shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class WorkspaceDamagedError(ValueError):
    """A saved workspace cannot be read; the message says how to rebuild it."""


def _cache_slice(cache: TargetCache, start: int, stop: int) -> TargetCache:
    return TargetCache(
        cache.emb_sum[start:stop],
        cache.emb_sq[start:stop],
        cache.linear[start:stop],
        cache.hidden[start:stop],
    )


def _layout_json(enc: FieldEncoder) -> dict:
    return {"vocab_sizes": enc.vocab_sizes(), "slots": enc.field_slots()}


def _layout(enc: FieldEncoder) -> FieldLayout:
    return FieldLayout(tuple(enc.vocab_sizes()), tuple(enc.field_slots()))


def _split_part(split: Split, part: str) -> pd.DataFrame:
    if part == "train":
        return split.train
    if part == "test":
        return split.test
    return split.phases[part]


def _state_digest(*modules: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for m in modules:
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        h.update(buf.getvalue())
    return h.hexdigest()[:12]


def workspace_exists(directory: Path) -> bool:
    return (directory / "workspace.json").is_file()


def load_workspace(directory: Path, encoder: TextEncoder | None = None) -> Workspace:
    """Load a workspace saved by :meth:`Workspace.save` (``weights_only=True``).

    Raises:
        FileNotFoundError: no workspace was saved in ``directory``.
        WorkspaceDamagedError: a file of it is missing, truncated or unreadable; the message
            says "workspace damaged — rebuild with `emerflow build --dataset NAME`".
    """
    directory = Path(directory)
    try:
        _recover_workspace(directory)
    except OSError:
        pass  # a read-only home: load what is there
    doc_path = directory / "workspace.json"
    if not doc_path.is_file():
        raise FileNotFoundError(f"{doc_path}: no workspace here (build it first)")
    try:
        return _load_workspace_files(directory, doc_path, encoder)
    except Exception as exc:  # noqa: BLE001 - every way a file can be damaged
        raise WorkspaceDamagedError(
            f"workspace {directory.name} damaged ({type(exc).__name__}: "
            f"{str(exc)[:200]}) — rebuild with `emerflow build --dataset {directory.name}`"
        ) from exc


def _load_workspace_files(
    directory: Path, doc_path: Path, encoder: TextEncoder | None
) -> Workspace:
    doc = json.loads(doc_path.read_text())
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{doc_path}: unsupported format_version {doc.get('format_version')}")
    config = WorkspaceConfig.from_dict(doc["config"])
    d = doc["dataset"]
    parts = {p: pd.read_parquet(directory / f"split_{p}.parquet") for p in _SPLIT_PARTS}
    empty = pd.DataFrame(columns=[ITEM_ID, TARGET_ID, LABEL, ORDER])
    dataset = Dataset(
        name=d["name"],
        domain=d["domain"],
        items=pd.read_parquet(directory / "items.parquet"),
        targets=pd.read_parquet(directory / "targets.parquet"),
        interactions=empty,
        item_features=_specs_from_json(d["item_features"]),
        target_features=_specs_from_json(d["target_features"]),
        inputs=d.get("inputs", {}),
        synthetic=d["synthetic"],
        positives_only=d["positives_only"],
    )
    split = Split(
        old_items=doc["split"]["old_items"],
        new_items=doc["split"]["new_items"],
        train=parts["train"],
        phases={p: parts[p] for p in ("I", "II", "III")},
        test=parts["test"],
    )
    item_fields = FieldEncoder.from_dict(doc["item_fields"])
    target_fields = FieldEncoder.from_dict(doc["target_fields"])
    b = doc["backbone"]
    backbone = build_backbone(
        config.backbone,
        FieldLayout(tuple(b["target_layout"]["vocab_sizes"]), tuple(b["target_layout"]["slots"])),
        FieldLayout(tuple(b["item_layout"]["vocab_sizes"]), tuple(b["item_layout"]["slots"])),
        int(b["n_items"]),
    )
    backbone.load_state_dict(torch.load(directory / "backbone.pt", weights_only=True))
    for p in backbone.parameters():
        p.requires_grad_(False)
    a = doc["aligner"]
    aligner = Aligner(int(a["text_dim"]), int(a["embed_dim"]), config.aligner)
    aligner.load_state_dict(torch.load(directory / "aligner.pt", weights_only=True))
    if encoder is None:
        encoder = TextEncoder(config.encoder, cache_path=directory / "text_cache.npz")
    index = ItemIndex.load(directory / "index.faiss", doc["index_ids"])
    shared = None
    if doc.get("shared"):
        shared = _load_shared(directory, doc["shared"], config.shared, dataset, split)
    return Workspace(
        config=config,
        dataset=dataset,
        split=split,
        backbone=backbone,
        aligner=aligner,
        encoder=encoder,
        item_fields=item_fields,
        target_fields=target_fields,
        index=index,
        meta=doc.get("meta", {}),
        shared=shared,
    )


def _load_shared(directory: Path, info: dict, config: SharedConfig, dataset: Dataset,
                 split: Split) -> SharedRanker:
    """The shared-space ranker of a saved workspace (``weights_only=True``); the EASE index is
    recomputed from the saved old-item rows."""
    from engine.emerflow.shared_space import EaseIndex, RetrievalAligner
    from engine.models.twotower import TwoTower

    n_items, n_targets = int(info["n_items"]), int(info["n_targets"])
    model = TwoTower(n_items, n_targets, config.twotower)
    model.load_state_dict(torch.load(directory / "twotower.pt", weights_only=True))
    for p in model.parameters():
        p.requires_grad_(False)
    aligner = RetrievalAligner(torch.zeros(n_items, int(info["text_dim"])),
                               torch.zeros(n_items, config.twotower.dim), int(info["hidden"]),
                               config.meta.dropout, config.meta.temperature)
    aligner.load_state_dict(torch.load(directory / "shared_aligner.pt", weights_only=True))
    return SharedRanker(model, aligner, EaseIndex(_old_positives(dataset, split),
                                                  config.meta.ease_lam), config)


def _old_positives(dataset: Dataset, split: Split) -> np.ndarray:
    """``[K_old, N_targets]`` positives of the old items (rows in ``split.old_items`` order)."""
    targets = pd.Series(np.arange(len(dataset.targets)),
                        index=dataset.targets[TARGET_ID].astype(str).to_numpy())
    old = pd.Series(np.arange(len(split.old_items)), index=[str(i) for i in split.old_items])
    train = split.train
    return positive_matrix(old.loc[train[ITEM_ID].astype(str)].to_numpy(),
                           targets.loc[train[TARGET_ID].astype(str)].to_numpy(),
                           train[LABEL].to_numpy(), len(old), len(targets))


# ---- building ---------------------------------------------------------------------------------
@dataclass
class TrainingTables:
    """Index tensors shared by pretraining, meta-training, baselines and benchmarks.

    Attributes:
        target_table: ``[N_targets, S_t]`` field indices of every target.
        item_table: ``[N_items, S_i]`` non-ID field indices of every item (dataset order).
        item_pos: item id -> row in ``item_table`` / ``texts``.
        target_pos: target id -> row in ``target_table``.
        old_pos: old item id -> row in the backbone's ``item_id`` table.
    """

    target_table: torch.Tensor
    item_table: torch.Tensor
    item_pos: pd.Series
    target_pos: pd.Series
    old_pos: pd.Series

    def rows(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item row, target row, label) arrays for an interaction frame."""
        return (
            self.item_pos.loc[frame[ITEM_ID].astype(str)].to_numpy(),
            self.target_pos.loc[frame[TARGET_ID].astype(str)].to_numpy(),
            frame[LABEL].to_numpy(dtype=np.float32),
        )


def make_tables(
    dataset: Dataset, split: Split, item_fields: FieldEncoder, target_fields: FieldEncoder
) -> TrainingTables:
    items = dataset.items[ITEM_ID].astype(str)
    targets = dataset.targets[TARGET_ID].astype(str)
    return TrainingTables(
        target_table=target_fields.transform(dataset.targets),
        item_table=item_fields.transform(dataset.items),
        item_pos=pd.Series(np.arange(len(items)), index=items.to_numpy()),
        target_pos=pd.Series(np.arange(len(targets)), index=targets.to_numpy()),
        old_pos=pd.Series(np.arange(len(split.old_items)), index=[str(i) for i in split.old_items]),
    )


def item_texts(
    dataset: Dataset,
    augmented: pd.DataFrame | None = None,
    descriptors: Mapping[str, str] | None = None,
) -> list[str]:
    """Eq. 2 for every item of the dataset, in dataset order (optionally with augmentations)."""
    aug = augmented.set_index(ITEM_ID) if augmented is not None else None
    out = []
    for rec in dataset.items.to_dict("records"):
        extra = None
        if aug is not None and rec[ITEM_ID] in aug.index:
            extra = {k: v for k, v in aug.loc[rec[ITEM_ID]].items() if isinstance(v, str) and v}
        out.append(serialize_item(rec, dataset.item_features, extra, descriptors))
    return out


def _noop(stage: str, frac: float, message: str) -> None:
    return None


def build_workspace(
    dataset: Dataset,
    split: Split,
    config: WorkspaceConfig,
    encoder: TextEncoder,
    progress: ProgressFn | None = None,
) -> Workspace:
    """Pretrain the backbone on old items, meta-train the aligner, index established items."""
    progress = progress or _noop
    timings: dict[str, float] = {}
    torch.manual_seed(config.seed)
    t0 = time.perf_counter()
    item_fields = FieldEncoder.fit(
        dataset.items,
        dataset.item_features,
        config.backbone.numeric_buckets,
        config.backbone.max_multi,
    )
    target_fields = FieldEncoder.fit(
        dataset.targets,
        dataset.target_features,
        config.backbone.numeric_buckets,
        config.backbone.max_multi,
    )
    tables = make_tables(dataset, split, item_fields, target_fields)
    old_ids = [str(i) for i in split.old_items]
    old_item_rows = tables.item_pos.loc[old_ids].to_numpy(copy=True)
    old_item_table = tables.item_table[torch.from_numpy(old_item_rows)]
    train = split.train
    t_rows = tables.target_pos.loc[train[TARGET_ID].astype(str)].to_numpy()
    o_rows = tables.old_pos.loc[train[ITEM_ID].astype(str)].to_numpy()
    labels = train[LABEL].to_numpy(dtype=np.float32)
    timings["prepare"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    backbone = build_backbone(
        config.backbone, _layout(target_fields), _layout(item_fields), len(old_ids)
    )
    losses = pretrain_backbone(
        backbone,
        tables.target_table,
        old_item_table,
        t_rows,
        o_rows,
        labels,
        config.backbone,
        config.seed,
        lambda e, n, loss: progress("backbone", e / n, f"backbone epoch {e}/{n}: loss {loss:.4f}"),
    )
    timings["backbone"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    texts = item_texts(dataset)
    # Only the established items' texts are used (aligner training and the index): new items
    # are entered by the analyst, the rest of the catalog never reaches the model.
    progress("encode", 0.0, f"encoding {len(old_item_rows)} established item texts")
    old_vecs = encoder.encode(
        [texts[i] for i in old_item_rows],
        lambda i, n: progress("encode", i / max(n, 1), f"encoded {i}/{n} texts"),
    )
    vecs = np.zeros((len(texts), old_vecs.shape[1]), np.float32)
    vecs[old_item_rows] = old_vecs
    timings["encode"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    aligner = Aligner(encoder.dim, config.backbone.embed_dim, config.aligner)
    rows = ItemRows.from_arrays(o_rows, t_rows, labels, len(old_ids))
    trainer = MetaTrainer(
        backbone,
        aligner,
        config.meta,
        tables.target_table,
        old_item_table,
        torch.from_numpy(vecs[old_item_rows]),
        rows,
    )
    history = trainer.fit(
        config.seed,
        lambda e, n, loss: progress("meta", e / n, f"aligner epoch {e}/{n}: loss {loss:.4f}"),
    )
    timings["meta"] = time.perf_counter() - t0

    shared = None
    if config.ranker == "twotower" and not old_ids:
        progress("shared", 1.0, "no established items: ranking with the DeepFM path")
    elif config.ranker == "twotower":
        t0 = time.perf_counter()
        positives = _old_positives(dataset, split)  # the same matrix load_workspace rebuilds
        shared = train_shared(old_vecs, positives, config.shared, config.seed, progress)
        timings["shared"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if shared is not None:  # neighbours in the backbone's own space: its ID embeddings
        old_emb = shared.model.item_id.weight.detach().numpy()
    else:
        with torch.no_grad():
            old_emb = aligner(torch.from_numpy(vecs[old_item_rows])).numpy()
    index = ItemIndex.build(old_emb, old_ids)
    timings["index"] = time.perf_counter() - t0
    progress("index", 1.0, f"indexed {len(old_ids)} established items")
    meta = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "backbone_losses": losses,
        "meta_history": history[-1:] if history else [],
        "split": split.summary(),
        "model_version": _state_digest(
            backbone, aligner, *([shared.model, shared.aligner] if shared else [])),
        "encoder": encoder.name,
    }
    return Workspace(
        config=config,
        dataset=dataset,
        split=split,
        backbone=backbone,
        aligner=aligner,
        encoder=encoder,
        item_fields=item_fields,
        target_fields=target_fields,
        index=index,
        meta=meta,
        shared=shared,
    )
