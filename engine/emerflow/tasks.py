"""Interaction rows of many items grouped per item (CSR layout) for vectorized task sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ItemRows:
    """Rows grouped by item: item ``k`` owns rows ``start[k] : start[k] + count[k]``.

    Attributes:
        target_row: index into the target table, per row ``[R]``.
        label: 0/1 per row ``[R]`` (float32).
        start, count: per item ``[K]``.
    """

    target_row: np.ndarray
    label: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @classmethod
    def from_arrays(
        cls, item_pos: np.ndarray, target_row: np.ndarray, label: np.ndarray, n_items: int
    ) -> ItemRows:
        """Group rows by ``item_pos`` (0..n_items-1), keeping each item's row order."""
        order = np.argsort(item_pos, kind="stable")
        counts = np.bincount(item_pos, minlength=n_items)
        start = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return cls(
            target_row=target_row[order].astype(np.int64),
            label=label[order].astype(np.float32),
            start=start.astype(np.int64),
            count=counts.astype(np.int64),
        )

    def sample(
        self, items: np.ndarray, shot: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``shot`` rows per item (with replacement) -> target rows, labels, both ``[M, shot]``."""
        counts = self.count[items]
        offs = (rng.random((len(items), shot)) * counts[:, None]).astype(np.int64)
        rows = self.start[items][:, None] + offs
        return torch.from_numpy(self.target_row[rows]), torch.from_numpy(self.label[rows])

    def split_two(
        self, items: np.ndarray, shot: int, rng: np.random.Generator
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Two disjoint-where-possible batches a and b of ``shot`` rows per item."""
        counts = self.count[items]
        keys = rng.random((len(items), 2 * shot))
        perm = np.argsort(keys, axis=1)
        offs = perm % np.maximum(counts[:, None], 1)
        rows = self.start[items][:, None] + offs
        tr = torch.from_numpy(self.target_row[rows])
        lb = torch.from_numpy(self.label[rows])
        return (tr[:, :shot], lb[:, :shot]), (tr[:, shot:], lb[:, shot:])
