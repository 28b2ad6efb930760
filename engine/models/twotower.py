"""A shared-space backbone: items and targets embedded in one space, scored by inner product.

``TwoTower`` holds old items' ID embeddings ``E [K, D]``, target embeddings ``T [N, D]`` and a
target bias ``b [N]`` (a learned popularity prior). An item embedding ``e [D]`` gives the
full-catalog distribution ``p(t | e) = softmax(e T^T + b)``; it is pretrained on the old items'
positive targets with the multinomial log-likelihood (every target is a candidate, so the
objective is exactly the full-catalog ranking the analyst sees), then frozen.

Because item and target embeddings share one space, a new item's representation can be
updated in closed form from confirmed targets (``engine.emerflow.posterior``), and top-k over
any number of targets is one matrix-vector product (or a FAISS inner-product search).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from engine.config import TwoTowerConfig

ProgressFn = Callable[[int, int, float], None]


class TwoTower(nn.Module):
    """Old-item embeddings ``[K, D]``, target embeddings ``[N, D]`` and target bias ``[N]``."""

    def __init__(self, n_items: int, n_targets: int, config: TwoTowerConfig):
        super().__init__()
        if n_items <= 0 or n_targets <= 0:
            raise ValueError("TwoTower needs at least one item and one target")
        self.config = config
        self.embed_dim = config.dim
        self.item_id = nn.Embedding(n_items, config.dim)
        self.target = nn.Embedding(n_targets, config.dim)
        self.bias = nn.Parameter(torch.zeros(n_targets))
        nn.init.normal_(self.item_id.weight, std=0.1)
        nn.init.normal_(self.target.weight, std=0.1)

    @property
    def n_targets(self) -> int:
        return self.target.num_embeddings

    def logits(self, emb: torch.Tensor) -> torch.Tensor:
        """``emb [M, D]`` -> logits over every target ``[M, N]``."""
        return emb @ self.target.weight.T + self.bias

    def log_probs(self, emb: torch.Tensor) -> torch.Tensor:
        """``log p(t | e)`` over every target ``[M, N]``."""
        return torch.log_softmax(self.logits(emb), dim=1)


def multinomial_nll(log_probs: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Mean over items of the mean negative log-probability of each item's positives.

    Shapes: ``log_probs [M, N]``, ``positives [M, N]`` (0/1 or weights). Items without a
    positive contribute 0.
    """
    weight = positives / positives.sum(1, keepdim=True).clamp(min=1e-12)
    return -(weight * log_probs).sum(1).mean()


def pretrain_twotower(
    model: TwoTower,
    positives: np.ndarray,
    seed: int,
    progress: ProgressFn | None = None,
) -> list[float]:
    """Fit every parameter on the old items' positives ``[K, N]`` (full softmax); returns the
    per-epoch losses and leaves the model frozen in eval mode."""
    torch.manual_seed(seed)
    x = torch.as_tensor(np.asarray(positives, dtype=np.float32))
    if x.shape != (model.item_id.num_embeddings, model.n_targets):
        raise ValueError(f"pretrain_twotower: positives {tuple(x.shape)} do not match the model "
                         f"({model.item_id.num_embeddings} items, {model.n_targets} targets)")
    with torch.no_grad():  # start the bias at the log popularity: the prior is learned fast
        pop = torch.log1p(x.sum(0))
        model.bias.copy_(pop - pop.mean())
    cfg = model.config
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    model.train()
    k = len(x)
    for epoch in range(cfg.epochs):
        e = model.item_id.weight
        loss = multinomial_nll(model.log_probs(e), x) + cfg.l2 * (
            e.pow(2).sum() + model.target.weight.pow(2).sum()) / k
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if progress is not None and ((epoch + 1) % 25 == 0 or epoch + 1 == cfg.epochs):
            progress(epoch + 1, cfg.epochs, losses[-1])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return losses


def positive_matrix(item_row: np.ndarray, target_row: np.ndarray, label: np.ndarray,
                    n_items: int, n_targets: int) -> np.ndarray:
    """``[n_items, n_targets]`` float32 with 1 where a row is a positive (label > 0)."""
    x = np.zeros((n_items, n_targets), np.float32)
    pos = np.asarray(label) > 0
    x[np.asarray(item_row)[pos], np.asarray(target_row)[pos]] = 1.0
    return x


__all__ = ["TwoTower", "TwoTowerConfig", "multinomial_nll", "positive_matrix",
           "pretrain_twotower"]
