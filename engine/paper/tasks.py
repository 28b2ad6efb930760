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

    def draw(self, items: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Row indices ``[M, n]``: ``n`` distinct rows drawn uniformly from ALL rows of each item;
        with replacement only for an item that has fewer than ``n`` rows.

        The one task sampler of every meta-trained method (EmerFlow, Meta-Embedding, CVAR,
        MWUF). Items without rows are an error.
        """
        items = np.asarray(items, dtype=np.int64)
        if n <= 0:
            raise ValueError(f"ItemRows.draw: n must be > 0, got {n}")
        counts = self.count[items]
        if (counts == 0).any():
            raise ValueError("ItemRows.draw: an item has no rows")
        offs = np.empty((len(items), n), np.int64)
        short = counts < n
        if short.any():  # fewer rows than asked: uniform with replacement
            offs[short] = (rng.random((int(short.sum()), n)) * counts[short, None]).astype(np.int64)
        full = np.flatnonzero(~short)
        if len(full):
            width = int(counts[full].max())
            keys = rng.random((len(full), width))
            keys[np.arange(width)[None, :] >= counts[full, None]] = np.inf
            # a uniformly random n-subset of each item's rows, in random order
            offs[full] = np.argsort(keys, axis=1)[:, :n]
        return self.start[items][:, None] + offs

    def sample(
        self, items: np.ndarray, shot: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``shot`` rows per item (:meth:`draw`) -> target rows, labels, both ``[M, shot]``."""
        rows = self.draw(items, shot, rng)
        return torch.from_numpy(self.target_row[rows]), torch.from_numpy(self.label[rows])

    def split_two(
        self, items: np.ndarray, shot: int, rng: np.random.Generator
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Two disjoint batches a and b of ``shot`` rows per item, drawn by :meth:`draw` from
        all of the item's rows (overlapping only for items with fewer than ``2 * shot`` rows),
        each ``([M, shot] target rows, [M, shot] labels)``."""
        rows = self.draw(items, 2 * shot, rng)
        tr = torch.from_numpy(self.target_row[rows])
        lb = torch.from_numpy(self.label[rows])
        return (tr[:, :shot], lb[:, :shot]), (tr[:, shot:], lb[:, shot:])
