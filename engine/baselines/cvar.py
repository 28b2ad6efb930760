"""CVAR (Zhao et al., SIGIR'22): a conditional VAE that generates and warms up item ID
embeddings, compactly in torch over the shared frozen backbone.

Networks (all linear, as in the authors' code): a feature encoder ``p(z | features)`` and an
ID encoder ``q(z | e_id)`` (mean and log-variance each), and a decoder ``z -> e``.
Training on old items (their trained ID embeddings ``e_id`` are the warm targets):

    L = BCE(rows, backbone(decode(z_q))) + BCE(rows, backbone(decode(z_p)))
        + recon_w * ||decode(z_q) - e_id||^2 + reg_w * W2(q, p)

with ``z = mean + 1e-4 * std * eps`` (the authors' small-noise reparameterization) and ``W2``
the 2-Wasserstein distance between the two diagonal Gaussians.
Phase 0: ``e = decode(mean_p(features))``. Each update phase: the base embedding takes
gradient steps on the rows seen so far through the warm-up path ``decode(mean_q(base))``, and
the warmed embedding is what the backbone scores.

Simplifications (documented in results/README.md): the frequency condition of the decoder is
dropped (old items' counts never cover the 0..60 range of new items, so the condition cannot be
learned from old items alone); CVAR's own parameters are not fine-tuned on the phase batches.
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


class CVARNet(nn.Module):
    def __init__(self, feat_dim: int, embed_dim: int, latent_dim: int):
        super().__init__()
        self.mean_p = nn.Linear(feat_dim, latent_dim)
        self.logv_p = nn.Linear(feat_dim, latent_dim)
        self.mean_q = nn.Linear(embed_dim, latent_dim)
        self.logv_q = nn.Linear(embed_dim, latent_dim)
        self.decoder = nn.Linear(latent_dim, embed_dim)

    def warm(self, e: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.mean_q(e))

    def cold(self, feat: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.mean_p(feat))


def _w2(m1: torch.Tensor, lv1: torch.Tensor, m2: torch.Tensor, lv2: torch.Tensor) -> torch.Tensor:
    s1, s2 = torch.exp(0.5 * lv1), torch.exp(0.5 * lv2)
    return ((m1 - m2).pow(2) + (s1 - s2).pow(2)).sum(-1).mean()


class CVAR(EmbeddingMethod):
    name: ClassVar[str] = "cvar"
    defaults: ClassVar[dict[str, Any]] = {**EmbeddingMethod.defaults, "latent_dim": 16,
                                          "epochs": 30, "lr": 1e-3, "tasks_per_batch": 64,
                                          "shot": 20, "recon_w": 1.0, "reg_w": 0.1}

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        old_feat = ctx.item_field_vectors(ctx.old_item_table)
        self.new_feat = ctx.item_field_vectors(ctx.new_item_table)
        e_id = ctx.old_id_embeddings()
        self.net = CVARNet(old_feat.shape[1], ctx.embed_dim, int(self.config["latent_dim"]))
        opt = torch.optim.Adam(self.net.parameters(), lr=float(self.config["lr"]))
        rows = ctx.old_rows()
        k, shot = len(ctx.old_items), int(self.config["shot"])
        bs = int(self.config["tasks_per_batch"])
        for _ in range(int(self.config["epochs"])):
            order = rng.permutation(k)
            for s in range(0, k, bs):
                items = order[s : s + bs]
                t_rows, y = rows.sample(items, shot, rng)
                idx = torch.from_numpy(items)
                feat, e = old_feat[idx], e_id[idx]
                mp, lp = self.net.mean_p(feat), self.net.logv_p(feat)
                mq, lq = self.net.mean_q(e), self.net.logv_q(e)
                zq = mq + 1e-4 * torch.exp(0.5 * lq) * torch.randn_like(mq)
                zp = mp + 1e-4 * torch.exp(0.5 * lp) * torch.randn_like(mp)
                eq, ep = self.net.decoder(zq), self.net.decoder(zp)
                loss = (task_losses(ctx, idx, t_rows, y, eq).mean()
                        + task_losses(ctx, idx, t_rows, y, ep).mean()
                        + float(self.config["recon_w"]) * (eq - e).pow(2).sum(-1).mean()
                        + float(self.config["reg_w"]) * _w2(mq, lq, mp, lp))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)

    def start(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            e = self.net.cold(self.new_feat)
        return {"base": e, "emb": e}

    def update(self, state: dict[str, torch.Tensor], batch: Rows, seen: Rows
               ) -> dict[str, torch.Tensor]:
        assert self.ctx is not None
        rows = seen if self.config["refine_all_seen"] else batch
        base = refine_through(self.ctx, state["base"], self.net.warm, rows,
                              int(self.config["refine_steps"]), float(self.config["refine_lr"]))
        with torch.no_grad():
            return {"base": base, "emb": self.net.warm(base)}

    def score(self, state: dict[str, torch.Tensor], rows: Rows) -> np.ndarray:
        return super().score(state["emb"], rows)

    def score_all(self, state: dict[str, torch.Tensor]) -> np.ndarray:
        return super().score_all(state["emb"])
