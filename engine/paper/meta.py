"""Meta-training of the aligner with the backbone frozen, paper Eq. 5-7.

Each old item is a task. Its generated embedding ``e = g(t)`` (Eq. 4) is scored on a batch
``a`` of the item's interactions (cold loss, Eq. 5), takes one gradient step on ``a``
(Eq. 6), and the updated embedding is scored on a second batch ``b`` (warm loss). The aligner
minimizes ``alpha * L_cold + (1 - alpha) * L_warm`` (Eq. 7). Tasks of a meta-batch run in one
tensor op: each item's loss depends only on its own embedding, so the gradient of the summed
per-item losses w.r.t. the ``[M, D]`` embedding matrix holds every task's inner gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import MetaConfig
from engine.paper.aligner import Aligner
from engine.paper.deepfm import DeepFM
from engine.paper.tasks import ItemRows

ProgressFn = Callable[[int, int, float], None]


@dataclass
class TaskBatch:
    """One meta-batch. Shapes: M tasks, ``shot`` rows per batch."""

    text: torch.Tensor  # [M, T] text vectors
    item_idx: torch.Tensor  # [M, S_i] item non-ID fields
    target_a: torch.Tensor  # [M, shot, S_t]
    label_a: torch.Tensor  # [M, shot]
    target_b: torch.Tensor  # [M, shot, S_t]
    label_b: torch.Tensor  # [M, shot]


def item_losses(
    backbone: DeepFM,
    target_idx: torch.Tensor,
    item_idx: torch.Tensor,
    emb: torch.Tensor,
    label: torch.Tensor,
) -> torch.Tensor:
    """Mean BCE per item ``[M]``.

    Shapes: targets ``[M, n, S_t]``, item fields ``[M, S_i]``, embeddings ``[M, D]``.
    """
    m, n, s = target_idx.shape
    logits = backbone(
        target_idx.reshape(m * n, s),
        item_idx.repeat_interleave(n, dim=0),
        emb.repeat_interleave(n, dim=0),
    ).reshape(m, n)
    return F.binary_cross_entropy_with_logits(logits, label, reduction="none").mean(1)


def inner_step(
    backbone: DeepFM,
    batch_target: torch.Tensor,
    item_idx: torch.Tensor,
    emb: torch.Tensor,
    label: torch.Tensor,
    lr: float,
    create_graph: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6: ``e' = e - lr * dL_a/de`` per item. Returns (per-item cold losses, e')."""
    losses = item_losses(backbone, batch_target, item_idx, emb, label)
    (grad,) = torch.autograd.grad(losses.sum(), emb, create_graph=create_graph)
    return losses, emb - lr * grad


def meta_loss(
    backbone: DeepFM, aligner: Aligner, batch: TaskBatch, config: MetaConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 7: ``alpha * L_cold + (1 - alpha) * L_warm`` for one meta-batch."""
    emb = aligner(batch.text)  # [M, D]  Eq. 4
    cold, warm_emb = inner_step(
        backbone,
        batch.target_a,
        batch.item_idx,
        emb,
        batch.label_a,
        config.inner_lr,
        create_graph=True,
    )  # Eq. 5-6
    warm = item_losses(backbone, batch.target_b, batch.item_idx, warm_emb, batch.label_b)
    l_cold, l_warm = cold.mean(), warm.mean()
    total = config.alpha * l_cold + (1.0 - config.alpha) * l_warm
    return total, {"cold": l_cold.item(), "warm": l_warm.item(), "total": total.item()}


class MetaTrainer:
    """Trains an aligner against a frozen backbone on tasks built from old items.

    Args:
        backbone: pretrained backbone; its parameters are frozen here.
        aligner: the network being trained.
        config: meta-learning settings.
        target_table: ``[N_targets, S_t]`` field indices of every target.
        item_table: ``[K, S_i]`` non-ID field indices of the task items.
        text: ``[K, T]`` text vectors of the task items.
        rows: their interactions grouped per item.
    """

    def __init__(
        self,
        backbone: DeepFM,
        aligner: Aligner,
        config: MetaConfig,
        target_table: torch.Tensor,
        item_table: torch.Tensor,
        text: torch.Tensor,
        rows: ItemRows,
    ):
        self.backbone = backbone
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.aligner = aligner
        self.config = config
        self.target_table = target_table
        self.item_table = item_table
        self.text = text
        self.rows = rows
        self.optimizer = torch.optim.Adam(
            aligner.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )

    def make_batch(self, items: np.ndarray, rng: np.random.Generator) -> TaskBatch:
        (ta, la), (tb, lb) = self.rows.split_two(items, self.config.shot, rng)
        idx = torch.from_numpy(items)
        return TaskBatch(
            text=self.text[idx],
            item_idx=self.item_table[idx],
            target_a=self.target_table[ta],
            label_a=la,
            target_b=self.target_table[tb],
            label_b=lb,
        )

    def step(self, batch: TaskBatch) -> dict[str, float]:
        self.aligner.train()
        self.backbone.eval()
        loss, parts = meta_loss(self.backbone, self.aligner, batch, self.config)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return parts

    def fit(self, seed: int, progress: ProgressFn | None = None) -> list[dict[str, float]]:
        """Run ``config.epochs`` passes over the task items; returns per-epoch mean losses."""
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        n = len(self.rows.count)
        history = []
        for epoch in range(self.config.epochs):
            order = rng.permutation(n)
            sums: dict[str, float] = {}
            nb = 0
            for start in range(0, n, self.config.tasks_per_batch):
                parts = self.step(
                    self.make_batch(order[start : start + self.config.tasks_per_batch], rng)
                )
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                nb += 1
            history.append({k: v / max(nb, 1) for k, v in sums.items()})
            if progress is not None:
                progress(epoch + 1, self.config.epochs, history[-1].get("total", float("nan")))
        self.aligner.eval()
        return history
