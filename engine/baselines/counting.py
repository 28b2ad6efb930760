"""Reference baselines that only count (protocol.md): ``popularity``, ``popularity-rate`` and
``item-mean``.

``popularity``: a target's number of positives over old items (a gene's old-disease
associations; a user's old-movie ratings >= 4), the same score in every phase. For full-catalog
ranking this count is the popularity that matters, and it is the Phase-0 fallback of every
neighbourhood baseline (``engine.baselines.neighbourhood``).

``popularity-rate``: a target's smoothed positive *rate* over its old-item training rows,
``(pos + m * g) / (n + m)`` with ``g`` the global positive rate of those rows and ``m`` the prior
strength (DisGeNET: the rows are the positives and their sampled negatives). It ranks rare
raters first and is near random for full-catalog ranking on MovieLens (protocol.md); kept under
its own name for comparison.

``item-mean`` adds the new item's own evidence from the phase batches seen so far:

- rated data (MovieLens): ``pop(u) + (pos_i + m * g) / (n_i + m) - g``, with ``pop`` the count
  popularity scaled to a maximum of 1 and the item's smoothed positive rate centred on ``g``
  (the item term is constant over an item's targets: it moves the pooled AUC, not an item's
  ranking);
- positives-only data (DisGeNET): the co-association of a gene with the disease's already-seen
  (positive) genes through old diseases, ``co(g, d) = sum_{s in seen(d)} #{old o: g in o and
  s in o}``, scored as ``log1p(count(g)) + log1p(co(g, d) / |seen(d)|)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from engine.baselines.base import BenchContext, Method, Rows


class Popularity(Method):
    """The target's number of old-item positives; the same score in every phase."""

    name: ClassVar[str] = "popularity"
    defaults: ClassVar[dict[str, Any]] = {}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}  # nothing to tune: one validation trial
    backbone: ClassVar[str | None] = None
    cost: ClassVar[float] = 2.0
    probabilistic: ClassVar[bool] = False

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        self.positives_only = bool(ctx.dataset.positives_only)
        y = ctx.train_label
        self.global_rate = float(y.mean()) if len(y) else 0.5
        self.count = ctx.target_popularity()  # [N] old-item positives per target
        self.prior = self.target_prior(ctx)

    def target_prior(self, ctx: BenchContext) -> np.ndarray:
        """``[N]`` float64: the score of every target (here: its old-item positive count)."""
        return self.count

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


class PopularityRate(Popularity):
    """The target's smoothed positive rate over its old-item rows (not the protocol's
    ``popularity``: rare raters rank first)."""

    name: ClassVar[str] = "popularity-rate"
    defaults: ClassVar[dict[str, Any]] = {"prior_strength": 5.0}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"prior_strength": (
        1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, 30000.0, 100000.0,
        300000.0)}

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        if not float(self.config["prior_strength"]) > 0:
            raise ValueError("popularity-rate: prior_strength must be > 0, got "
                             f"{self.config['prior_strength']}")

    def target_prior(self, ctx: BenchContext) -> np.ndarray:
        n_targets = ctx.n_targets
        pos = np.bincount(ctx.train_target, weights=ctx.train_label, minlength=n_targets)
        n = np.bincount(ctx.train_target, minlength=n_targets).astype(np.float64)
        m = float(self.config["prior_strength"])
        return (pos + m * self.global_rate) / (n + m)


class ItemMean(Popularity):
    """Count popularity plus the item's own evidence from the phase batches seen so far."""

    name: ClassVar[str] = "item-mean"
    defaults: ClassVar[dict[str, Any]] = {"prior_strength": 5.0}
    #: Nothing the tuning criterion sees: ``prior_strength`` smooths a term that is constant
    #: over an item's targets (rated data) or unused (positives-only), so it cannot change any
    #: full-catalog ranking; one validation trial, like ``popularity``.
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        top = float(self.count.max()) if len(self.count) else 0.0
        self.pop = self.count / top if top > 0 else self.count  # [N] count scaled to max 1
        if self.positives_only:
            # A[o, g] = 1 when old disease o is associated with gene g (positives only).
            self.assoc = ctx.old_positive_matrix()

    def _item_rate(self, state: Rows) -> np.ndarray:
        """``[M]`` each new item's smoothed positive rate over its seen rows, minus ``g``."""
        ctx = self.ctx
        assert ctx is not None and state.label is not None
        m = float(self.config["prior_strength"])
        pos = np.bincount(state.item, weights=state.label, minlength=ctx.n_new)
        n = np.bincount(state.item, minlength=ctx.n_new)
        return (pos + m * self.global_rate) / (n + m) - self.global_rate

    def score(self, state: Rows, rows: Rows) -> np.ndarray:
        ctx = self.ctx
        assert ctx is not None and state.label is not None
        if not self.positives_only:
            return self.pop[rows.target] + self._item_rate(state)[rows.item]
        positive = state.label > 0
        seen = np.zeros((ctx.n_new, self.assoc.shape[1]), np.float32)
        seen[state.item[positive], state.target[positive]] = 1.0
        n_seen = seen.sum(1)
        w = self.assoc @ seen.T  # [O, M]: seen genes of each new disease in each old disease
        co = np.einsum("or,or->r", self.assoc[:, rows.target], w[:, rows.item])
        co = co / np.maximum(n_seen[rows.item], 1.0)
        return np.log1p(self.count[rows.target]) + np.log1p(co)

    def score_all(self, state: Rows) -> np.ndarray:
        """:meth:`score` of every (new item, target) pair ``[M, N]`` in dense matrix form."""
        ctx = self.ctx
        assert ctx is not None and state.label is not None
        if not self.positives_only:
            return self.pop[None, :] + self._item_rate(state)[:, None]
        seen = ctx.positive_matrix(state).astype(np.float32)  # [M, N]
        co = (seen @ self.assoc.T) @ self.assoc  # [M, N]
        co = co / np.maximum(seen.sum(1, keepdims=True), 1.0)
        return np.log1p(self.count)[None, :] + np.log1p(co)
