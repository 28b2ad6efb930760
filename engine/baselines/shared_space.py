"""EmerFlow on the shared-space backbone (``twotower``): ``emerflow-tt-nollm`` and ``emerflow-tt``.

The method of ``engine.emerflow.shared_space`` run through the benchmark's phases, trained by
the same :func:`~engine.emerflow.shared_space.train_shared` as the dashboard's workspaces (the
frozen :class:`~engine.models.twotower.TwoTower` pretrained on the old items' positives, the
retrieval aligner meta-trained with the deployed update); at phase p
the embedding is :func:`~engine.emerflow.shared_space.posterior_update` of the text-generated
embedding with every decision seen so far, and targets are ranked by
:func:`~engine.emerflow.shared_space.rank_scores` (the dashboard calls the same functions).
Scores are log-probabilities plus a propagation term, not probabilities: F1 is null.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from engine.baselines.base import BenchContext, Method, Rows
from engine.config import PosteriorConfig, SharedConfig, SharedMetaConfig, TwoTowerConfig
from engine.emerflow.shared_space import (
    posterior_update,
    rank_scores,
    train_shared,
)

#: Every setting of the shared-space EmerFlow (defaults of the three typed configs).
SHARED_DEFAULTS: dict[str, Any] = SharedConfig().settings()


def shared_configs(cfg: dict[str, Any]) -> tuple[TwoTowerConfig, PosteriorConfig,
                                                 SharedMetaConfig]:
    """The typed configs of a flat settings dict (:meth:`SharedConfig.from_settings`)."""
    c = SharedConfig.from_settings({k: cfg[k] for k in SHARED_DEFAULTS})
    return c.twotower, c.update, c.meta


@dataclass
class SharedState:
    """Phase state: text-generated embeddings ``[M, D]``, current embeddings ``[M, D]`` and the
    confirmed / rejected matrices ``[M, N]`` seen so far."""

    prior: torch.Tensor
    emb: torch.Tensor
    confirmed: np.ndarray
    rejected: np.ndarray


class EmerFlowShared(Method):
    """EmerFlow (retrieval aligner + posterior update + propagation) on ``twotower``."""

    name: ClassVar[str] = "emerflow-tt"
    uses_llm: ClassVar[bool] = True
    text_variant: ClassVar[str] = "raw+aug"
    backbone: ClassVar[str | None] = "twotower"
    probabilistic: ClassVar[bool] = False
    cost: ClassVar[float] = 30.0
    defaults: ClassVar[dict[str, Any]] = dict(SHARED_DEFAULTS)
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {
        "temperature": (0.02, 0.05),
        "step_lr": (0.3, 1.0),
        "beta": (10.0, 30.0, 100.0, 300.0),
        "rho": (0.5, 1.0, 3.0),
        "negative_weight": (0.0, 0.2),
    }

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        tt_cfg, self.post, meta = shared_configs(self.config)
        vecs = self.text_matrix(ctx)
        self.new_text = vecs[ctx.new_item_rows]
        self.ranker = train_shared(vecs[ctx.old_item_rows], ctx.old_positive_matrix(),
                                   SharedConfig(tt_cfg, self.post, meta), ctx.seed,
                                   backbones=ctx._cache)
        self.model = self.ranker.model
        self.vote = self.ranker.vote(self.new_text)  # [M, N]

    def text_matrix(self, ctx: BenchContext) -> np.ndarray:
        """``[N_items, T]`` encoded texts of the method's variant (rows of the split filled)."""
        return np.asarray(ctx.text_vectors(self.text_variant), dtype=np.float32)

    def start(self) -> SharedState:
        ctx = self.ctx
        assert ctx is not None
        prior = torch.from_numpy(self.ranker.align(self.new_text))
        empty = np.zeros((ctx.n_new, ctx.n_targets), np.float32)
        return SharedState(prior, prior, empty, empty.copy())

    def update(self, state: SharedState, batch: Rows, seen: Rows) -> SharedState:
        ctx = self.ctx
        assert ctx is not None and seen.label is not None
        confirmed = ctx.positive_matrix(seen).astype(np.float32)
        negatives = Rows(seen.item, seen.target, (seen.label <= 0).astype(np.float32))
        rejected = ctx.positive_matrix(negatives).astype(np.float32)
        with torch.no_grad():
            emb = posterior_update(self.model, state.prior, torch.from_numpy(confirmed),
                                   torch.from_numpy(rejected), self.post)
        return SharedState(state.prior, emb, confirmed, rejected)

    def score_all(self, state: SharedState) -> np.ndarray:
        return rank_scores(self.model, self.ranker.ease, state.emb, state.confirmed, self.post,
                           self.vote)

    def score(self, state: SharedState, rows: Rows) -> np.ndarray:
        return self.score_all(state)[rows.item, rows.target]


class EmerFlowSharedNoLLM(EmerFlowShared):
    """The same on the raw serialized features only (no LLM)."""

    name: ClassVar[str] = "emerflow-tt-nollm"
    uses_llm: ClassVar[bool] = False
    text_variant: ClassVar[str] = "raw"


class EmerFlowSharedKB(EmerFlowShared):
    """The same on raw + curated-knowledge text (synonyms, HPO phenotypes; no LLM, no
    interaction data): see :mod:`engine.baselines.kb`."""

    name: ClassVar[str] = "emerflow-tt-kb"
    uses_llm: ClassVar[bool] = False
    uses_knowledge: ClassVar[bool] = True
    text_variant: ClassVar[str] = "raw+kb"

    def text_matrix(self, ctx: BenchContext) -> np.ndarray:
        from engine.baselines.kb import kb_vectors

        return np.asarray(kb_vectors(ctx), dtype=np.float32)
