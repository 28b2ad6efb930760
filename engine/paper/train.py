"""Pretraining a backbone on old items' interactions (binary cross-entropy)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import BackboneConfig
from engine.paper.deepfm import DeepFM

ProgressFn = Callable[[int, int, float], None]


def pretrain_backbone(
    model: DeepFM,
    target_table: torch.Tensor,
    item_table: torch.Tensor,
    target_row: np.ndarray,
    item_row: np.ndarray,
    label: np.ndarray,
    config: BackboneConfig,
    seed: int,
    progress: ProgressFn | None = None,
) -> list[float]:
    """Train all backbone parameters on rows (target_row, item_row, label); returns epoch losses.

    Args:
        model: the backbone (its ``item_id`` table is indexed by ``item_row``).
        target_table: ``[N_targets, S_t]`` field indices.
        item_table: ``[N_items, S_i]`` non-ID field indices of the old items.
        target_row, item_row, label: one entry per training interaction.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t_rows = torch.tensor(np.asarray(target_row), dtype=torch.long)
    i_rows = torch.tensor(np.asarray(item_row), dtype=torch.long)
    y = torch.tensor(np.asarray(label), dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(y)
    losses = []
    for epoch in range(config.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, config.batch_size):
            b = perm[start : start + config.batch_size]
            ib = i_rows[b]
            logits = model(target_table[t_rows[b]], item_table[ib], model.item_vectors(ib))
            loss = F.binary_cross_entropy_with_logits(logits, y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        losses.append(total / max(n, 1))
        if progress is not None:
            progress(epoch + 1, config.epochs, losses[-1])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return losses
