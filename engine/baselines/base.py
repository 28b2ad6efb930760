"""The common interface of every benchmarked method and the context they are fitted in.

A benchmark run (``engine.bench``) builds one :class:`BenchContext` per seed: the dataset, its
split, the shared pretrained and frozen backbone of that seed, the index tables and (lazily)
the item text vectors. Each method then

1. ``fit(ctx)``: trains whatever it needs on OLD items only (``ctx.split.train``);
2. ``start()``: returns its phase-0 state for the M new items (``ctx.new_items``);
3. ``update(state, batch, seen)``: takes the newest phase batch (and every batch seen so far)
   and returns the next state;
4. ``score(state, rows)``: scores rows given as (new-item position, target row) only; labels
   are never passed to ``score``, so a method cannot read the test labels;
5. ``score_all(state)``: ``[M, N_targets]`` scores of every target for every new item (the
   full-catalog ranking of protocol.md); the default calls ``score`` on chunks of
   (item, target) pairs, methods override it with dense matrix operations.

Class attributes every method declares: ``backbone`` (the backbone it feeds, recorded in the
result file; None for methods without one), ``probabilistic`` (whether scores are
probabilities: F1 is reported as null otherwise) and ``grid`` (the tunable settings searched
by ``engine.bench.tune`` under the same trial budget as every other method).

Embedding methods (:class:`EmbeddingMethod`) keep an ``[M, D]`` matrix of new-item ID
embeddings as state, fed to the frozen backbone; counting baselines keep their own state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from engine.config import PaperConfig, RefineConfig
from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.paper.deepfm import DeepFM
from engine.paper.meta import item_losses
from engine.paper.refine import refine_embeddings
from engine.paper.tables import TrainingTables
from engine.paper.tasks import ItemRows
from engine.training_data import TrainingData


class MethodNotAvailable(RuntimeError):
    """Raised by ``fit`` when a method cannot run here (e.g. no LLM augmentations): the
    benchmark reports it as "not run" with this message as the reason."""


@dataclass
class Rows:
    """Interaction rows of the new items: position in ``ctx.new_items``, target row, label.

    ``label`` is ``None`` for rows handed to :meth:`Method.score` (test rows).
    """

    item: np.ndarray
    target: np.ndarray
    label: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.item)

    @classmethod
    def empty(cls) -> Rows:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def concat(self, other: Rows) -> Rows:
        if self.label is None or other.label is None:
            raise ValueError("Rows.concat needs labelled rows")
        return Rows(np.concatenate([self.item, other.item]),
                    np.concatenate([self.target, other.target]),
                    np.concatenate([self.label, other.label]).astype(np.float32))

    def unlabelled(self) -> Rows:
        return Rows(self.item, self.target, None)

    def padded(self, n_items: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(target rows ``[M, n]``, labels ``[M, n]``, mask ``[M, n]``), n = most rows per item."""
        if self.label is None:
            raise ValueError("Rows.padded needs labelled rows")
        counts = np.bincount(self.item, minlength=n_items)
        n = int(counts.max()) if len(self.item) else 0
        order = np.argsort(self.item, kind="stable")
        item = self.item[order]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        col = np.arange(len(item)) - starts[item]
        target = np.zeros((n_items, n), np.int64)
        label = np.zeros((n_items, n), np.float32)
        mask = np.zeros((n_items, n), np.float32)
        target[item, col] = self.target[order]
        label[item, col] = self.label[order]
        mask[item, col] = 1.0
        return torch.from_numpy(target), torch.from_numpy(label), torch.from_numpy(mask)


@dataclass
class BenchContext:
    """Everything one seed's methods share. Built per seed by ``engine.bench_runner`` (test)
    and ``engine.bench_tune`` (validation).

    Attributes:
        dataset, split: the data and its protocol split (new items = ``split.new_items``).
        config: workspace settings of the shared backbone (and EmerFlow's defaults).
        seed: the run's seed.
        tables: index tensors of targets and items (``engine.paper.tables.make_tables``).
        backbone: the DeepFM pretrained on old items, frozen (eval mode, no grads); None when
            no method of the run is on it (``Method.backbone != "deepfm"``).
        text_vectors: ``variant -> [N_items, T]`` float32 vectors of every item's serialized
            text (variants ``raw``, ``raw+aug``, ``aug``); raises MethodNotAvailable for
            augmented variants when no augmentation exists.
        llm: provider/model/prompt_version of the augmentation, or None.
    """

    dataset: Dataset
    split: Split
    config: PaperConfig
    seed: int
    tables: TrainingTables
    backbone: DeepFM | None
    text_vectors: Callable[[str], np.ndarray]
    llm: dict | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.old_items = [str(i) for i in self.split.old_items]
        self.new_items = [str(i) for i in self.split.new_items]
        self.old_item_rows = self.tables.item_pos.loc[self.old_items].to_numpy().copy()
        self.new_item_rows = self.tables.item_pos.loc[self.new_items].to_numpy().copy()
        self.old_item_table = self.tables.item_table[torch.from_numpy(self.old_item_rows)]
        self.new_item_table = self.tables.item_table[torch.from_numpy(self.new_item_rows)]
        train = self.split.train
        self.train_target = self.tables.target_pos.loc[train["target_id"].astype(str)].to_numpy()
        self.train_old = self.tables.old_pos.loc[train["item_id"].astype(str)].to_numpy()
        self.train_label = train["label"].to_numpy(dtype=np.float32)
        self.new_pos = {item: k for k, item in enumerate(self.new_items)}

    @property
    def n_targets(self) -> int:
        return len(self.tables.target_table)

    @property
    def candidate_mask(self) -> np.ndarray:
        """``[N_targets]`` bool: the catalog ranked for every new item (protocol.md).

        Positives-only data (DisGeNET): every target. Rated data (MovieLens): every target
        with at least one old-item rating (``split.train``).
        """
        if "candidate_mask" not in self._cache:
            if self.dataset.positives_only:
                mask = np.ones(self.n_targets, bool)
            else:
                mask = np.bincount(self.train_target, minlength=self.n_targets) > 0
            self._cache["candidate_mask"] = mask
        return self._cache["candidate_mask"]

    def old_positive_matrix(self) -> np.ndarray:
        """``[K_old, N_targets]`` float32, 1 where an old item's training row is a positive
        (:meth:`engine.training_data.TrainingData.old_positives`)."""
        if "old_positive" not in self._cache:
            self._cache["old_positive"] = TrainingData(self.dataset, self.split).old_positives()
        return self._cache["old_positive"]

    def positive_matrix(self, rows: Rows) -> np.ndarray:
        """``[M, N_targets]`` bool, True at (new item, target) of the labelled positive ``rows``."""
        out = np.zeros((self.n_new, self.n_targets), bool)
        if rows.label is None:
            raise ValueError("positive_matrix needs labelled rows")
        pos = rows.label > 0
        out[rows.item[pos], rows.target[pos]] = True
        return out

    def target_popularity(self) -> np.ndarray:
        """``[N_targets]`` float64: each target's number of old-item positives."""
        return self.old_positive_matrix().sum(0).astype(np.float64)

    @property
    def n_new(self) -> int:
        return len(self.new_items)

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    def old_rows(self) -> ItemRows:
        """Old items' training rows grouped per old item (for meta-training tasks)."""
        if "old_rows" not in self._cache:
            self._cache["old_rows"] = ItemRows.from_arrays(
                self.train_old, self.train_target, self.train_label, len(self.old_items))
        return self._cache["old_rows"]

    def old_id_embeddings(self) -> torch.Tensor:
        """The backbone's trained ID embeddings of old items ``[K, D]``."""
        return self.backbone.item_id.weight.detach()

    def item_field_vectors(self, item_table: torch.Tensor) -> torch.Tensor:
        """Frozen backbone embeddings of items' non-ID fields, flattened ``[M, F_i * D]``."""
        with torch.no_grad():
            fields, _ = self.backbone.item_fields(item_table)
        return fields.flatten(1)

    def target_vectors(self) -> torch.Tensor:
        """Sum of each target's field embeddings in the backbone ``[N_targets, D]``."""
        if "target_vec" not in self._cache:
            with torch.no_grad():
                t, _ = self.backbone.targets(self.tables.target_table)
            self._cache["target_vec"] = t.sum(1)
        return self._cache["target_vec"]

    def rows(self, frame) -> Rows:
        """Rows of a frame of new-item interactions (phase batch or test set)."""
        item = frame["item_id"].astype(str).map(self.new_pos).to_numpy(dtype=np.int64, copy=True)
        target = self.tables.target_pos.loc[frame["target_id"].astype(str)].to_numpy(copy=True)
        label = frame["label"].to_numpy(dtype=np.float32, copy=True)
        return Rows(item, target.astype(np.int64), label)

    @torch.no_grad()
    def backbone_logits(self, emb: torch.Tensor, rows: Rows, chunk: int = 65536) -> np.ndarray:
        """Backbone logits of ``rows`` with new-item ID embeddings ``emb [M, D]``."""
        out = []
        item = torch.from_numpy(rows.item)
        target = torch.from_numpy(rows.target)
        for s in range(0, len(rows), chunk):
            i, t = item[s : s + chunk], target[s : s + chunk]
            out.append(self.backbone(self.tables.target_table[t], self.new_item_table[i], emb[i]))
        if not out:
            return np.zeros(0, np.float32)
        return torch.cat(out).numpy()

    @torch.no_grad()
    def backbone_logits_all(self, emb: torch.Tensor, pairs_per_chunk: int = 1 << 17
                            ) -> np.ndarray:
        """Backbone logits ``[M, N_targets]`` of every target for the new items' ID embeddings
        ``emb [M, D]``.

        Uses the backbone's ``precompute_targets``/``score_all`` (the target side computed once
        per context, as ``engine.workspace.Workspace.score`` does) over chunks of items so that
        the ``[m, N, hidden]`` intermediates stay near ``pairs_per_chunk * hidden`` floats;
        backbones without them are scored pair by pair through ``forward``.
        """
        n = self.n_targets
        step = max(1, pairs_per_chunk // max(n, 1))
        if not hasattr(self.backbone, "precompute_targets"):
            targets = np.arange(n, dtype=np.int64)
            parts = []
            for s in range(0, self.n_new, step):
                items = np.arange(s, min(s + step, self.n_new), dtype=np.int64)
                rows = Rows(np.repeat(items, n), np.tile(targets, len(items)))
                parts.append(self.backbone_logits(emb, rows).reshape(len(items), n))
            return np.concatenate(parts) if parts else np.zeros((0, n), np.float32)
        if "target_cache" not in self._cache:
            self._cache["target_cache"] = self.backbone.precompute_targets(
                self.tables.target_table)
        cache = self._cache["target_cache"]
        return self.backbone.score_all(cache, self.new_item_table, emb, step).numpy()


class Method:
    """Base class of every benchmarked method (see the module docstring for the protocol).

    Class attributes:
        name: registry key.
        uses_llm: whether the method needs LLM-augmented features.
        defaults: the method's settings (merged with user overrides into ``config``).
        grid: the values ``engine.bench.tune`` tries per tunable setting (a subset of
            ``defaults``' keys); every method gets the same number of trials drawn from the
            product of its grid.
        backbone: name of the backbone whose checkpoint the method changes (``"deepfm"``),
            None for methods without one; recorded in every result file.
        probabilistic: whether ``score`` returns probabilities; F1 (thresholded at the mean
            score) is written as null for methods whose scores are not.
        phase_settings: settings read only by ``start``/``update``/``score`` (not by ``fit``):
            :meth:`with_settings` changes them on a fitted method, so tuning fits once per
            distinct fit setting.
        cost: rough seconds per seed (orders the parallel benchmark's work, nothing else).
    """

    name: ClassVar[str] = ""
    uses_llm: ClassVar[bool] = False
    #: needs curated knowledge files (``EMERFLOW_DATA`` with disgenet/ and hpo/)
    uses_knowledge: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}
    phase_settings: ClassVar[frozenset[str]] = frozenset()
    backbone: ClassVar[str | None] = "deepfm"
    probabilistic: ClassVar[bool] = True
    #: rough seconds of one seed's fit + phases on DisGeNET (2 cores); only orders the
    #: parallel benchmark's work units (``emerflow bench --jobs``), never read by a method
    cost: ClassVar[float] = 15.0

    def __init__(self, **overrides: Any):
        unknown = set(overrides) - set(self.defaults)
        if unknown:
            raise ValueError(f"{self.name}: unknown settings {sorted(unknown)}")
        self.config: dict[str, Any] = {**self.defaults, **overrides}
        self.ctx: BenchContext | None = None

    def fit(self, ctx: BenchContext) -> None:
        self.ctx = ctx

    def with_settings(self, **changes: Any) -> Method:
        """A copy of this (fitted) method with other ``phase_settings`` values.

        Raises:
            ValueError: a change to a setting that ``fit`` reads, or an invalid value.
        """
        fit_only = set(changes) - set(self.phase_settings)
        if fit_only:
            raise ValueError(f"{self.name}: {sorted(fit_only)} are read by fit; build and fit "
                             "a new method to change them")
        checked = type(self)(**{**self.config, **changes})  # validates the new values
        clone = copy.copy(self)
        clone.config = checked.config
        return clone

    def start(self) -> Any:
        raise NotImplementedError

    def update(self, state: Any, batch: Rows, seen: Rows) -> Any:
        raise NotImplementedError

    def score(self, state: Any, rows: Rows) -> np.ndarray:
        raise NotImplementedError

    def score_all(self, state: Any) -> np.ndarray:
        """Scores ``[M, N_targets]`` of every target for every new item (higher = better).

        Generic default: :meth:`score` over chunks of (item, target) pairs. Overrides must
        rank every item's targets as ``score`` does.
        """
        ctx = self.ctx
        assert ctx is not None
        n = ctx.n_targets
        step = max(1, (1 << 18) // max(n, 1))
        targets = np.arange(n, dtype=np.int64)
        parts = []
        for s in range(0, ctx.n_new, step):
            items = np.arange(s, min(s + step, ctx.n_new), dtype=np.int64)
            rows = Rows(np.repeat(items, n), np.tile(targets, len(items)))
            parts.append(np.asarray(self.score(state, rows), np.float64).reshape(len(items), n))
        return np.concatenate(parts) if parts else np.zeros((0, n))

    def describe(self) -> dict[str, Any]:
        """JSON-able config recorded in the result file."""
        return dict(self.config)


class EmbeddingMethod(Method):
    """A method whose state is the new items' ``[M, D]`` ID embeddings for the frozen backbone.

    Subclasses implement :meth:`init_embeddings`; refinement by default is
    ``engine.paper.refine.refine_embeddings`` with ``refine_steps``/``refine_lr`` on every
    row seen so far (``refine_all_seen``) or on the newest batch only.
    """

    defaults: ClassVar[dict[str, Any]] = {"refine_steps": 10, "refine_lr": 0.5,
                                          "refine_all_seen": True}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"refine_steps": (5, 10, 20),
                                                  "refine_lr": (0.05, 0.2, 0.5, 1.0)}
    phase_settings: ClassVar[frozenset[str]] = frozenset({"refine_steps", "refine_lr",
                                                          "refine_all_seen"})

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self.refine_config()  # invalid refinement settings fail here, not mid-benchmark

    def refine_config(self) -> RefineConfig:
        """The typed refinement settings (ValueError on invalid values)."""
        return RefineConfig(steps=int(self.config["refine_steps"]),
                            lr=float(self.config["refine_lr"]),
                            use_all_seen=bool(self.config["refine_all_seen"]))

    def init_embeddings(self) -> torch.Tensor:
        raise NotImplementedError

    def start(self) -> torch.Tensor:
        return self.init_embeddings().detach()

    def refine(self, emb: torch.Tensor, rows: Rows) -> torch.Tensor:
        ctx = self.ctx
        assert ctx is not None
        target, label, mask = rows.padded(ctx.n_new)
        cfg = self.refine_config()
        return refine_embeddings(ctx.backbone, emb, ctx.new_item_table,
                                 ctx.tables.target_table[target], label, mask, cfg)

    def update(self, state: torch.Tensor, batch: Rows, seen: Rows) -> torch.Tensor:
        return self.refine(state, seen if self.config["refine_all_seen"] else batch)

    def score(self, state: torch.Tensor, rows: Rows) -> np.ndarray:
        assert self.ctx is not None
        return torch.sigmoid(torch.from_numpy(self.ctx.backbone_logits(state, rows))).numpy()

    def score_all(self, state: torch.Tensor) -> np.ndarray:
        """Backbone logits ``[M, N_targets]`` (monotone in :meth:`score`'s probabilities; logits
        keep the order where float32 sigmoids saturate and tie)."""
        assert self.ctx is not None
        return self.ctx.backbone_logits_all(state)


def refine_through(ctx: BenchContext, base: torch.Tensor,
                   transform: Callable[[torch.Tensor], torch.Tensor], rows: Rows, steps: int,
                   lr: float) -> torch.Tensor:
    """:func:`~engine.paper.refine.refine_embeddings` of base embeddings ``[M, D]`` whose
    backbone input is ``transform(base)`` (CVAR's warm-up, MWUF's scaling and shifting)."""
    target, label, mask = rows.padded(ctx.n_new)
    return refine_embeddings(ctx.backbone, base, ctx.new_item_table,
                             ctx.tables.target_table[target], label, mask,
                             RefineConfig(steps=steps, lr=lr), transform)


def task_losses(ctx: BenchContext, idx: torch.Tensor, t_rows: torch.Tensor, y: torch.Tensor,
                emb: torch.Tensor) -> torch.Tensor:
    """Mean BCE per old item ``[M]`` (Eq. 5's loss) for target rows ``[M, n]``, labels
    ``[M, n]`` and candidate embeddings ``[M, D]`` of old items ``idx``."""
    return item_losses(ctx.backbone, ctx.tables.target_table[t_rows], ctx.old_item_table[idx],
                       emb, y)
