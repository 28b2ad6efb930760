"""Embedding methods: ``backbone``, ``metaemb`` and the EmerFlow variants.

All of them feed the shared frozen backbone an ``[M, D]`` ID embedding per new item and refine
it after each phase with ``engine.paper.refine.refine_embeddings``; they differ only in the
phase-0 embedding:

- ``backbone``: random ``N(0, 0.01^2)``, the backbone's own ID-embedding initialization;
- ``metaemb``: Meta-Embedding (Pan et al., SIGIR'19): a generator from the item's feature
  embeddings (the frozen backbone's item-field embeddings, concatenated), meta-trained on old
  items with ``alpha * L_cold + (1 - alpha) * L_warm`` (alpha = 0.1) through the same
  vectorized :class:`~engine.paper.meta.MetaTrainer` EmerFlow uses;
- ``emerflow-*``: EmerFlow's aligner (Eq. 4) on encoded serialized features (Eq. 2-3),
  meta-trained by :class:`~engine.paper.meta.MetaTrainer` (Eq. 5-7). There is one EmerFlow:
  this module only chooses which text variant and which alpha it gets.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from engine.baselines.base import BenchContext, EmbeddingMethod
from engine.config import AlignerConfig, MetaConfig
from engine.paper.aligner import Aligner
from engine.paper.meta import MetaTrainer

_META = MetaConfig()
_ALIGN = AlignerConfig()

#: Settings of the meta-trained generators (EmerFlow's aligner, Meta-Embedding's generator).
META_DEFAULTS: dict[str, Any] = {
    "alpha": _META.alpha, "inner_lr": _META.inner_lr, "shot": _META.shot,
    "tasks_per_batch": _META.tasks_per_batch, "meta_epochs": _META.epochs, "meta_lr": _META.lr,
    "meta_weight_decay": _META.weight_decay,
}


def meta_config(cfg: dict[str, Any]) -> MetaConfig:
    return MetaConfig(alpha=float(cfg["alpha"]), inner_lr=float(cfg["inner_lr"]),
                      shot=int(cfg["shot"]), tasks_per_batch=int(cfg["tasks_per_batch"]),
                      epochs=int(cfg["meta_epochs"]), lr=float(cfg["meta_lr"]),
                      weight_decay=float(cfg["meta_weight_decay"]))


class Backbone(EmbeddingMethod):
    """Random ID embedding, refined by gradient steps."""

    name: ClassVar[str] = "backbone"
    defaults: ClassVar[dict[str, Any]] = {**EmbeddingMethod.defaults, "init_std": 0.01}

    def init_embeddings(self) -> torch.Tensor:
        ctx = self.ctx
        assert ctx is not None
        gen = torch.Generator().manual_seed(ctx.seed)
        return torch.randn(ctx.n_new, ctx.embed_dim, generator=gen) * float(self.config["init_std"])


class _MetaGenerated(EmbeddingMethod):
    """A generator ``inputs [K, X] -> [K, D]`` meta-trained on old items by MetaTrainer."""

    defaults: ClassVar[dict[str, Any]] = {**EmbeddingMethod.defaults, **META_DEFAULTS}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {**EmbeddingMethod.grid,
                                                  "inner_lr": (0.1, 0.2, 0.5)}

    #: Refit for every trial: meta-training may be made to simulate the deployed refinement
    #: ("meta-train what is deployed"), and then it reads the refine settings too.
    phase_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        meta_config(self.config)  # invalid meta-training settings fail here

    def inputs(self, ctx: BenchContext) -> tuple[torch.Tensor, torch.Tensor]:
        """(old items' generator inputs ``[K, X]``, new items' ``[M, X]``)."""
        raise NotImplementedError

    def make_generator(self, ctx: BenchContext, in_dim: int) -> nn.Module:
        raise NotImplementedError

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        old_x, self.new_x = self.inputs(ctx)
        torch.manual_seed(ctx.seed)
        self.generator = self.make_generator(ctx, old_x.shape[1])
        trainer = MetaTrainer(ctx.backbone, self.generator, meta_config(self.config),  # type: ignore[arg-type]
                              ctx.tables.target_table, ctx.old_item_table, old_x, ctx.old_rows())
        self.history = trainer.fit(ctx.seed)
        self.generator.eval()

    def init_embeddings(self) -> torch.Tensor:
        with torch.no_grad():
            return self.generator(self.new_x)


class MetaEmbGenerator(nn.Module):
    """Meta-Embedding's generator: one dense layer over the concatenated feature embeddings,
    tanh output scaled to the range of the old items' ID embeddings."""

    def __init__(self, in_dim: int, embed_dim: int, scale: float):
        super().__init__()
        self.dense = nn.Linear(in_dim, embed_dim)
        nn.init.normal_(self.dense.weight, std=0.01)
        nn.init.zeros_(self.dense.bias)
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(self.dense(x))


class MetaEmb(_MetaGenerated):
    name: ClassVar[str] = "metaemb"

    def inputs(self, ctx: BenchContext) -> tuple[torch.Tensor, torch.Tensor]:
        return (ctx.item_field_vectors(ctx.old_item_table),
                ctx.item_field_vectors(ctx.new_item_table))

    def make_generator(self, ctx: BenchContext, in_dim: int) -> nn.Module:
        scale = float(ctx.old_id_embeddings().abs().max()) or 1.0
        return MetaEmbGenerator(in_dim, ctx.embed_dim, scale)


class EmerFlow(_MetaGenerated):
    """EmerFlow (aligner over encoded serialized features) with a given text variant."""

    name: ClassVar[str] = "emerflow"
    uses_llm: ClassVar[bool] = True
    text_variant: ClassVar[str] = "raw+aug"
    defaults: ClassVar[dict[str, Any]] = {**_MetaGenerated.defaults,
                                          "aligner_hidden": _ALIGN.hidden,
                                          "aligner_dropout": _ALIGN.dropout}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {**_MetaGenerated.grid,
                                                  "aligner_hidden": (64, 256),
                                                  "aligner_dropout": (0.1, 0.3)}

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self.aligner_config()  # invalid aligner settings fail here

    def aligner_config(self) -> AlignerConfig:
        return AlignerConfig(hidden=int(self.config["aligner_hidden"]),
                             dropout=float(self.config["aligner_dropout"]))

    def inputs(self, ctx: BenchContext) -> tuple[torch.Tensor, torch.Tensor]:
        vecs = np.asarray(ctx.text_vectors(self.text_variant), dtype=np.float32)
        return (torch.from_numpy(vecs[ctx.old_item_rows]),
                torch.from_numpy(vecs[ctx.new_item_rows]))

    def make_generator(self, ctx: BenchContext, in_dim: int) -> nn.Module:
        return Aligner(in_dim, ctx.embed_dim, self.aligner_config())


class EmerFlowNoLLM(EmerFlow):
    name: ClassVar[str] = "emerflow-nollm"
    uses_llm: ClassVar[bool] = False
    text_variant: ClassVar[str] = "raw"


class EmerFlowAugOnly(EmerFlow):
    name: ClassVar[str] = "emerflow-augonly"
    text_variant: ClassVar[str] = "aug"


class EmerFlowNoWarm(EmerFlowNoLLM):
    """EmerFlow without the warm loss (alpha = 1), raw features."""

    name: ClassVar[str] = "emerflow-nowarm"
    defaults: ClassVar[dict[str, Any]] = {**EmerFlowNoLLM.defaults, "alpha": 1.0}
