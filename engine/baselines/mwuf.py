"""MWUF (Zhu et al., SIGIR'21): Meta Scaling and Meta Shifting networks that warm up cold item
ID embeddings, compactly in torch over the shared frozen backbone.

A new item's base ID embedding starts at the mean of the old items' ID embeddings (the paper's
initialization). The warm embedding fed to the backbone is

    e_warm = e_base * scale(item features) + shift(mean embedding of the item's seen POSITIVE
                                                     targets)

with ``scale`` and ``shift`` one dense layer each (scale initialized at 1, shift at 0).
Training on old items simulates warm-up: per task, the base embedding starts at the mean
embedding, takes one gradient step on batch ``a`` (through the warm transform, with the shift
computed from batch ``a``'s positive targets), and the meta networks minimize the loss of the
resulting warm embedding on batch ``b``. Each update phase: the base embedding takes gradient
steps on the rows seen so far through the warm transform, and the shift uses the positive
targets seen so far (the paper's interacted users; sampled negatives are not interactions).

Simplification: the backbone stays frozen (the paper also updates the ID embeddings of old
items while training the meta networks; here every method shares one frozen checkpoint).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from engine.baselines.base import (
    BenchContext,
    EmbeddingMethod,
    Rows,
    refine_through,
    task_losses,
)


def positive_mean(vecs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of the vectors ``[M, n, D]`` of positive rows (labels ``[M, n]`` 0/1) ``[M, D]``;
    zero for an item without positives."""
    w = (labels > 0).to(vecs.dtype)
    return (vecs * w.unsqueeze(-1)).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)


class MWUFNet(nn.Module):
    def __init__(self, feat_dim: int, embed_dim: int):
        super().__init__()
        self.scale = nn.Linear(feat_dim, embed_dim)
        self.shift = nn.Linear(embed_dim, embed_dim)
        for layer in (self.scale, self.shift):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, base: torch.Tensor, feat: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return base * (1.0 + self.scale(feat)) + self.shift(users)


class MWUF(EmbeddingMethod):
    name: ClassVar[str] = "mwuf"
    defaults: ClassVar[dict[str, Any]] = {**EmbeddingMethod.defaults, "epochs": 30, "lr": 1e-3,
                                          "tasks_per_batch": 64, "shot": 20, "inner_lr": 0.5}

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        old_feat = ctx.item_field_vectors(ctx.old_item_table)
        self.new_feat = ctx.item_field_vectors(ctx.new_item_table)
        self.mean_emb = ctx.old_id_embeddings().mean(0)
        tvec = ctx.target_vectors()
        self.net = MWUFNet(old_feat.shape[1], ctx.embed_dim)
        opt = torch.optim.Adam(self.net.parameters(), lr=float(self.config["lr"]))
        rows = ctx.old_rows()
        k, shot = len(ctx.old_items), int(self.config["shot"])
        bs = int(self.config["tasks_per_batch"])
        inner = float(self.config["inner_lr"])
        for _ in range(int(self.config["epochs"])):
            order = rng.permutation(k)
            for s in range(0, k, bs):
                items = order[s : s + bs]
                (ta, ya), (tb, yb) = rows.split_two(items, shot, rng)
                idx = torch.from_numpy(items)
                feat = old_feat[idx]
                users_a = positive_mean(tvec[ta], ya)
                base = self.mean_emb.expand(len(items), -1).clone().requires_grad_(True)
                loss_a = task_losses(ctx, idx, ta, ya, self.net(base, feat, users_a))
                (g,) = torch.autograd.grad(loss_a.sum(), base, create_graph=True)
                warm = self.net(base - inner * g, feat, users_a)
                loss = task_losses(ctx, idx, tb, yb, warm).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def _users(self, seen: Rows) -> torch.Tensor:
        """Mean target vector of each new item's seen POSITIVE targets ``[M, D]`` (0 if none)."""
        ctx = self.ctx
        assert ctx is not None
        tvec = ctx.target_vectors()
        out = torch.zeros(ctx.n_new, ctx.embed_dim)
        if len(seen):
            assert seen.label is not None
            pos = seen.label > 0
            item, target = seen.item[pos], seen.target[pos]
            out.index_add_(0, torch.from_numpy(item), tvec[torch.from_numpy(target)])
            counts = torch.from_numpy(np.bincount(item, minlength=ctx.n_new)).float()
            out = out / counts.clamp(min=1.0).unsqueeze(1)
        return out

    def start(self) -> dict[str, torch.Tensor]:
        assert self.ctx is not None
        base = self.mean_emb.expand(self.ctx.n_new, -1).clone()
        users = torch.zeros(self.ctx.n_new, self.ctx.embed_dim)
        with torch.no_grad():
            return {"base": base, "emb": self.net(base, self.new_feat, users)}

    def update(self, state: dict[str, torch.Tensor], batch: Rows, seen: Rows
               ) -> dict[str, torch.Tensor]:
        assert self.ctx is not None
        users = self._users(seen)
        rows = seen if self.config["refine_all_seen"] else batch
        base = refine_through(self.ctx, state["base"],
                              lambda e: self.net(e, self.new_feat, users), rows,
                              int(self.config["refine_steps"]), float(self.config["refine_lr"]))
        with torch.no_grad():
            return {"base": base, "emb": self.net(base, self.new_feat, users)}

    def score(self, state: dict[str, torch.Tensor], rows: Rows) -> np.ndarray:
        return super().score(state["emb"], rows)

    def score_all(self, state: dict[str, torch.Tensor]) -> np.ndarray:
        return super().score_all(state["emb"])
