"""Reference baselines that only count: ``popularity`` and ``item-mean`` (protocol.md).

Rated data (MovieLens): a target's prior is its smoothed positive rate on old items,
``(pos + m * g) / (n + m)`` with ``g`` the global positive rate of the old-item rows and ``m``
the prior strength. ``item-mean`` adds the new item's own smoothed positive rate over the phase
batches seen so far, centred on ``g``: ``prior(u) + (pos_i + m * g) / (n_i + m) - g``.

Positives-only data (DisGeNET): a gene's prior is its number of old-disease associations.
``item-mean`` adds the co-association of the gene with the disease's already-seen (positive)
genes through old diseases: ``co(g, d) = sum_{s in seen(d)} #{old o: g in o and s in o}``,
scored as ``log1p(prior(g)) + log1p(co(g, d) / |seen(d)|)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.baselines.base import BenchContext, Method, Rows


class Popularity(Method):
    """The target's prior; the same score in every phase."""

    name: ClassVar[str] = "popularity"
    defaults: ClassVar[dict[str, Any]] = {"prior_strength": 5.0}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"prior_strength": (1.0, 2.0, 5.0, 10.0, 20.0,
                                                                     50.0)}
    backbone: ClassVar[str | None] = None
    probabilistic: ClassVar[bool] = False

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        n_targets = len(ctx.tables.target_table)
        y = ctx.train_label
        self.positives_only = bool(ctx.dataset.positives_only)
        pos = np.bincount(ctx.train_target, weights=y, minlength=n_targets)
        if self.positives_only:
            self.prior = pos.astype(np.float64)
            self.global_rate = 0.5
        else:
            n = np.bincount(ctx.train_target, minlength=n_targets).astype(np.float64)
            m = float(self.config["prior_strength"])
            self.global_rate = float(y.mean()) if len(y) else 0.5
            self.prior = (pos + m * self.global_rate) / (n + m)

    def start(self) -> Rows:
        return Rows.empty()

    def update(self, state: Rows, batch: Rows, seen: Rows) -> Rows:
        return seen

    def score(self, state: Rows, rows: Rows) -> np.ndarray:
        return self.prior[rows.target]

    def score_all(self, state: Rows) -> np.ndarray:
        """The prior of every target ``[M, N]`` (the same row for every new item)."""
        assert self.ctx is not None
        return np.broadcast_to(self.prior, (self.ctx.n_new, len(self.prior)))


class ItemMean(Popularity):
    """Popularity plus the item's own evidence from the phase batches seen so far."""

    name: ClassVar[str] = "item-mean"

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        if self.positives_only:
            # A[o, g] = 1 when old disease o is associated with gene g (positives only).
            n_targets = len(ctx.tables.target_table)
            positive = ctx.train_label > 0
            a = np.zeros((len(ctx.old_items), n_targets), np.float32)
            a[ctx.train_old[positive], ctx.train_target[positive]] = 1.0
            self.assoc = a

    def score(self, state: Rows, rows: Rows) -> np.ndarray:
        ctx = self.ctx
        assert ctx is not None and state.label is not None
        if not self.positives_only:
            m = float(self.config["prior_strength"])
            pos = np.bincount(state.item, weights=state.label, minlength=ctx.n_new)
            n = np.bincount(state.item, minlength=ctx.n_new)
            item_rate = (pos + m * self.global_rate) / (n + m)
            return self.prior[rows.target] + item_rate[rows.item] - self.global_rate
        positive = state.label > 0
        seen = np.zeros((ctx.n_new, self.assoc.shape[1]), np.float32)
        seen[state.item[positive], state.target[positive]] = 1.0
        n_seen = seen.sum(1)
        w = self.assoc @ seen.T  # [O, M]: seen genes of each new disease in each old disease
        co = np.einsum("or,or->r", self.assoc[:, rows.target], w[:, rows.item])
        co = co / np.maximum(n_seen[rows.item], 1.0)
        return np.log1p(self.prior[rows.target]) + np.log1p(co)

    def score_all(self, state: Rows) -> np.ndarray:
        """:meth:`score` of every (new item, target) pair ``[M, N]`` in dense matrix form."""
        ctx = self.ctx
        assert ctx is not None and state.label is not None
        if not self.positives_only:
            m = float(self.config["prior_strength"])
            pos = np.bincount(state.item, weights=state.label, minlength=ctx.n_new)
            n = np.bincount(state.item, minlength=ctx.n_new)
            item_rate = (pos + m * self.global_rate) / (n + m)
            return self.prior[None, :] + (item_rate - self.global_rate)[:, None]
        seen = ctx.positive_matrix(state).astype(np.float32)  # [M, N]
        co = (seen @ self.assoc.T) @ self.assoc  # [M, N]
        co = co / np.maximum(seen.sum(1, keepdims=True), 1.0)
        return np.log1p(self.prior)[None, :] + np.log1p(co)
