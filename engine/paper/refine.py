"""Phase refinement: gradient steps on item embeddings from their logged interactions.

The backbone stays frozen; only the embedding moves. Many items refine at once: each item's
mean loss depends only on its own row of the ``[M, D]`` embedding matrix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from engine.config import RefineConfig
from engine.paper.deepfm import DeepFM


def refine_embeddings(
    backbone: DeepFM,
    emb: torch.Tensor,
    item_idx: torch.Tensor,
    target_idx: torch.Tensor,
    label: torch.Tensor,
    mask: torch.Tensor,
    config: RefineConfig,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Refine ``[M, D]`` embeddings with ``config.steps`` SGD steps on each item's rows: the
    one gradient refinement of the paper's path (CVAR's warm-up and MWUF's scaling feed the
    backbone ``transform(e)``; the transform's own parameters are not updated).

    Args:
        backbone: frozen backbone.
        emb: starting embeddings ``[M, D]``.
        item_idx: item non-ID fields ``[M, S_i]``.
        target_idx: targets' field indices ``[M, n, S_t]`` (padded rows are masked out).
        label: 0/1 labels ``[M, n]``.
        mask: 1 for real rows, 0 for padding ``[M, n]``.
        config: steps and learning rate.
        transform: maps the embedding to the backbone's input (default: identity).

    Returns:
        The refined embeddings ``[M, D]`` (detached).
    """
    m, n, s = target_idx.shape
    if n == 0 or config.steps == 0:
        return emb.detach().clone()
    was_training = backbone.training
    backbone.eval()
    flags = [p.requires_grad for p in backbone.parameters()]
    for p in backbone.parameters():
        p.requires_grad_(False)
    flat_t = target_idx.reshape(m * n, s)
    flat_i = item_idx.repeat_interleave(n, dim=0)
    mask = mask.to(torch.float32)
    denom = mask.sum(1).clamp(min=1.0)  # [M]
    e = emb.detach().clone().requires_grad_(True)
    try:
        for _ in range(config.steps):
            fed = e if transform is None else transform(e)
            logits = backbone(flat_t, flat_i, fed.repeat_interleave(n, dim=0)).reshape(m, n)
            loss = F.binary_cross_entropy_with_logits(logits, label.float(), reduction="none")
            per_item = (loss * mask).sum(1) / denom  # [M]
            (grad,) = torch.autograd.grad(per_item.sum(), e)
            with torch.no_grad():
                e -= config.lr * grad
    finally:
        for p, f in zip(backbone.parameters(), flags, strict=True):
            p.requires_grad_(f)
        backbone.train(was_training)
    return e.detach()
