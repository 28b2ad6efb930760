"""Neighbourhood baselines without a backbone (protocol.md; "Are we really making much
progress?", RecSys 2019): ``cooc-knn``, ``ease``, ``text-knn`` and the sums of a text prior with
interaction evidence, ``text-cooc`` and ``text-ease``.

All three work on ``X [K_old, N]``, the old items' positive targets (``ctx.old_positive_matrix``:
DisGeNET associations, MovieLens ratings >= 4), and rank targets with dense matrix operations
(:meth:`score_all` ``[M, N]``; :meth:`score` indexes it). ``pop [N]`` is the ``popularity``
baseline's score (the count of a target's old-item positives) scaled to a maximum of 1; it is
every neighbourhood baseline's Phase-0 fallback.

- ``cooc-knn``: ``sim(s, t) = c(s, t) / (d(s)^alpha * d(t)^(1 - alpha))`` with ``c = X^T X`` the
  co-occurrence counts over old items and ``d`` the targets' old-item degrees (alpha = 0.5:
  cosine). A new item's score of ``t`` is the mean of ``sim(s, t)`` over its seen positive
  targets ``s``, plus ``pop_weight * pop(t)``. No seen positive (Phase 0): ``pop``.
- ``ease``: EASE (Steck, WWW 2019), ``B = I - P diag(1 / diag(P))`` with
  ``P = (X^T X + lambda I)^-1``, scored as ``seen @ B`` (+ ``pop_weight * pop``); computed
  through the Woodbury identity ``P = (I - X^T (X X^T + lambda I)^-1 X) / lambda``, so only a
  ``[K_old, K_old]`` system is solved and no ``[N, N]`` matrix is formed. No seen positive:
  ``pop``.
- ``text-knn``: cosine of the new item's raw serialized-text vector (``ctx.text_vectors("raw")``)
  with every old item's; among the ``k`` most similar old items, weights
  ``softmax(similarity / temperature)``; a target's score is the weighted share of those
  neighbours having it, plus ``pop_weight * pop``; the same score in every phase.
- ``text-cooc``: the sum of ``text-knn``'s score and ``weight`` times ``cooc-knn``'s evidence.
- ``text-ease``: ``text-knn``'s score plus ``beta`` times ``ease``'s evidence, each
  max-normalised per item (the text score by its maximum over all targets, the EASE evidence by
  its maximum over the targets not yet seen, the ones ranked; no positive maximum: 0). Phase 0 =
  ``text-knn``.

``text-cooc`` and ``text-ease`` take their parts' settings (``k``, ``temperature``,
``pop_weight``; ``alpha``; ``lam``) from the rounds that tuned ``text-knn``, ``cooc-knn`` and
``ease`` and tune only the weight of the evidence (``weight``, ``beta``) with the full trial
budget.

Scores are not probabilities (``probabilistic = False``: F1 is reported as null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from engine.baselines.base import BenchContext, Rows
from engine.baselines.counting import Popularity
from engine.emerflow.shared_space import EaseIndex


@dataclass(frozen=True)
class CoocConfig:
    """``cooc-knn`` settings: ``alpha`` in [0, 1] (0.5 = cosine), ``pop_weight`` >= 0."""

    alpha: float = 0.5
    pop_weight: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"cooc-knn: alpha must be in [0, 1], got {self.alpha}")
        if self.pop_weight < 0:
            raise ValueError(f"cooc-knn: pop_weight must be >= 0, got {self.pop_weight}")


@dataclass(frozen=True)
class EaseConfig:
    """``ease`` settings: L2 regularization ``lam`` > 0, ``pop_weight`` >= 0."""

    lam: float = 50.0
    pop_weight: float = 0.0

    def __post_init__(self) -> None:
        if not self.lam > 0:
            raise ValueError(f"ease: lam must be > 0, got {self.lam}")
        if self.pop_weight < 0:
            raise ValueError(f"ease: pop_weight must be >= 0, got {self.pop_weight}")


@dataclass(frozen=True)
class TextKnnConfig:
    """``text-knn`` settings: ``k`` >= 1 neighbours, ``temperature`` > 0, ``pop_weight`` >= 0."""

    k: int = 20
    temperature: float = 0.1
    pop_weight: float = 0.05

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"text-knn: k must be >= 1, got {self.k}")
        if not self.temperature > 0:
            raise ValueError(f"text-knn: temperature must be > 0, got {self.temperature}")
        if self.pop_weight < 0:
            raise ValueError(f"text-knn: pop_weight must be >= 0, got {self.pop_weight}")


def cooc_evidence(x: np.ndarray, seen: np.ndarray, alpha: float) -> np.ndarray:
    """Mean co-occurrence similarity with the seen positives ``[M, N]``.

    Args:
        x: ``[K_old, N]`` old items' positive targets (0/1).
        seen: ``[M, N]`` the new items' seen positive targets (0/1).
        alpha: ``sim(s, t) = c(s, t) / (d(s)^alpha * d(t)^(1 - alpha))``.

    Returns:
        ``[M, N]``: the mean of ``sim(s, t)`` over each item's seen positives ``s`` (0 without).
    """
    deg = x.sum(0).astype(np.float64)  # [N]
    with np.errstate(divide="ignore"):
        left = np.where(deg > 0, deg ** -alpha, 0.0).astype(np.float32)
        right = np.where(deg > 0, deg ** -(1.0 - alpha), 0.0)
    co = ((seen * left[None, :]) @ x.T) @ x  # [M, N]: sum_s c(s, t) d(s)^-alpha
    return co * right[None, :] / np.maximum(seen.sum(1, keepdims=True), 1.0)


def ease_index(ctx: BenchContext, lam: float) -> EaseIndex:
    """The context's :class:`~engine.emerflow.shared_space.EaseIndex` (the product's EASE) over
    ``ctx.old_positive_matrix()`` for ``lam``: one solve per context and lambda, shared by
    ``ease`` and ``text-ease``."""
    key = f"ease:{float(lam)!r}"
    if key not in ctx._cache:
        ctx._cache[key] = EaseIndex(ctx.old_positive_matrix(), float(lam))
    return ctx._cache[key]


def max_normalised(values: np.ndarray, over: np.ndarray | None = None) -> np.ndarray:
    """``values [M, N]`` divided per row by its maximum (over the columns where ``over [M, N]``
    is True, default all); rows whose maximum is not positive become 0."""
    v = np.asarray(values, dtype=np.float64)
    top = (v if over is None else np.where(over, v, -np.inf)).max(1, keepdims=True)
    return np.where(top > 0, v / np.where(top > 0, top, 1.0), 0.0)


class _Neighbourhood(Popularity):
    """Shared parts: the count popularity (Phase 0), the ``[M, N]`` seen-positive matrix,
    ``score`` by indexing :meth:`score_all`."""

    backbone: ClassVar[str | None] = None
    probabilistic: ClassVar[bool] = False
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        self.settings  # noqa: B018 - invalid settings raise ValueError here, before fitting

    @property
    def settings(self) -> Any:
        raise NotImplementedError

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        top = float(self.prior.max()) if len(self.prior) else 0.0
        self.pop = (self.prior / top if top > 0 else self.prior).astype(np.float64)  # [N]
        self.x = ctx.old_positive_matrix()  # [K_old, N]

    def evidence(self, seen: np.ndarray) -> np.ndarray:
        """``[M, N]`` score from the seen-positive matrix ``seen [M, N]`` (float32)."""
        raise NotImplementedError

    def pop_weight(self) -> float:
        return float(self.config["pop_weight"])

    def score_all(self, state: Rows) -> np.ndarray:
        """``[M, N]``: popularity for items without seen positives, else the evidence plus
        ``pop_weight * pop``."""
        ctx = self.ctx
        assert ctx is not None
        seen = ctx.positive_matrix(state).astype(np.float32)
        has = seen.sum(1) > 0
        out = np.broadcast_to(self.pop, seen.shape).astype(np.float64)
        if has.any():
            out[has] = self.evidence(seen[has]) + self.pop_weight() * self.pop[None, :]
        return out

    def score(self, state: Rows, rows: Rows) -> np.ndarray:
        return self.score_all(state)[rows.item, rows.target]


class CoocKnn(_Neighbourhood):
    name: ClassVar[str] = "cooc-knn"
    defaults: ClassVar[dict[str, Any]] = {**Popularity.defaults, "alpha": 0.5,
                                          "pop_weight": 0.01}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"alpha": (0.3, 0.45, 0.7, 1.0),
                                                  "pop_weight": (0.0, 0.01, 0.03)}

    phase_settings: ClassVar[frozenset[str]] = frozenset({"alpha", "pop_weight"})

    @property
    def settings(self) -> CoocConfig:
        return CoocConfig(alpha=float(self.config["alpha"]),
                          pop_weight=float(self.config["pop_weight"]))

    def evidence(self, seen: np.ndarray) -> np.ndarray:
        return cooc_evidence(self.x, seen, self.settings.alpha)


class Ease(_Neighbourhood):
    name: ClassVar[str] = "ease"
    defaults: ClassVar[dict[str, Any]] = {**Popularity.defaults, "lam": 50.0, "pop_weight": 0.0}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"lam": (2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
                                                          200.0, 500.0, 1000.0, 3000.0, 10000.0,
                                                          30000.0)}

    phase_settings: ClassVar[frozenset[str]] = frozenset({"pop_weight"})

    @property
    def settings(self) -> EaseConfig:
        return EaseConfig(lam=float(self.config["lam"]),
                          pop_weight=float(self.config["pop_weight"]))

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        self.index: EaseIndex = ease_index(ctx, self.settings.lam)

    def evidence(self, seen: np.ndarray) -> np.ndarray:
        """``seen @ B`` through the same :class:`~engine.emerflow.shared_space.EaseIndex` the
        product's propagation uses."""
        return self.index.scores(seen).astype(np.float64)


class TextKnn(_Neighbourhood):
    name: ClassVar[str] = "text-knn"
    text_variant: ClassVar[str] = "raw"
    defaults: ClassVar[dict[str, Any]] = {**Popularity.defaults, "k": 20, "temperature": 0.1,
                                          "pop_weight": 0.05}
    #: pop_weight stays at 0.05 (the best of the first round on both datasets, 2026-12-03);
    #: 12 of the 16 points are drawn, as for every method with a larger grid
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"k": (25, 50, 100, 200),
                                                  "temperature": (0.01, 0.02, 0.1, 0.3)}

    @property
    def settings(self) -> TextKnnConfig:
        return TextKnnConfig(k=int(self.config["k"]),
                             temperature=float(self.config["temperature"]),
                             pop_weight=float(self.config["pop_weight"]))

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        vecs = np.asarray(ctx.text_vectors(self.text_variant), dtype=np.float64)
        old = _unit(vecs[ctx.old_item_rows])  # [K, T]
        new = _unit(vecs[ctx.new_item_rows])  # [M, T]
        sim = new @ old.T  # [M, K]
        k = min(self.settings.k, sim.shape[1])
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # [M, k]
        s = np.take_along_axis(sim, top, axis=1) / self.settings.temperature
        w = np.exp(s - s.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)  # [M, k]
        weights = np.zeros_like(sim)  # [M, K]: softmax weight of each of the k neighbours
        np.put_along_axis(weights, top, w, axis=1)
        share = weights @ self.x.astype(np.float64)  # [M, N]
        self.neighbours = top
        self.base = share + self.settings.pop_weight * self.pop[None, :]

    def score_all(self, state: Rows) -> np.ndarray:
        """The same ``[M, N]`` in every phase (text only)."""
        return self.base


class TextCooc(TextKnn):
    """The sum of the two simple signals: ``text-knn``'s score plus ``weight`` times
    ``cooc-knn``'s co-occurrence evidence from the seen positives (protocol.md: a method that
    combines a text prior with interaction evidence must beat each of them and their sum).
    Phase 0 = ``text-knn``."""

    name: ClassVar[str] = "text-cooc"
    defaults: ClassVar[dict[str, Any]] = {**TextKnn.defaults, "alpha": 0.5, "weight": 1.0}
    #: the text part's and cooc part's settings come from text-knn's and cooc-knn's rounds;
    #: widened past 10 after the small-item round S1 chose MovieLens weight 10, the old edge
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"weight": (0.2, 0.3, 0.5, 0.7, 1.0, 1.5,
                                                             2.0, 3.0, 5.0, 10.0, 30.0, 100.0)}
    phase_settings: ClassVar[frozenset[str]] = frozenset({"alpha", "weight"})

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        CoocConfig(alpha=float(self.config["alpha"]), pop_weight=0.0)
        if float(self.config["weight"]) < 0:
            raise ValueError(f"text-cooc: weight must be >= 0, got {self.config['weight']}")

    def score_all(self, state: Rows) -> np.ndarray:
        """``[M, N]``: text-knn's score + weight * co-occurrence evidence of seen positives."""
        ctx = self.ctx
        assert ctx is not None
        seen = ctx.positive_matrix(state).astype(np.float32)
        if not seen.any():
            return self.base
        return self.base + float(self.config["weight"]) * cooc_evidence(
            self.x, seen, float(self.config["alpha"]))


class TextEase(TextKnn):
    """``text-knn``'s score plus ``beta`` times ``ease``'s evidence from the seen positives,
    each max-normalised per item (protocol.md: the strongest simple sum, the one a method
    combining a text prior with interaction evidence must beat). Phase 0 = ``text-knn``.

    One implementation per part: the text score is :class:`TextKnn`'s, the evidence the
    :class:`~engine.emerflow.shared_space.EaseIndex` that ``ease`` and the product use."""

    name: ClassVar[str] = "text-ease"
    defaults: ClassVar[dict[str, Any]] = {**TextKnn.defaults, "lam": 50.0, "beta": 1.0}
    #: the text part's and EASE's settings come from text-knn's and ease's rounds
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"beta": (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0,
                                                           1.5, 2.0, 3.0, 5.0, 10.0)}
    phase_settings: ClassVar[frozenset[str]] = frozenset({"beta"})

    def __init__(self, **overrides: Any):
        super().__init__(**overrides)
        EaseConfig(lam=float(self.config["lam"]), pop_weight=0.0)
        if float(self.config["beta"]) < 0:
            raise ValueError(f"text-ease: beta must be >= 0, got {self.config['beta']}")

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        self.index: EaseIndex = ease_index(ctx, float(self.config["lam"]))
        self.prior_norm = max_normalised(self.base)  # [M, N] text part, max 1 per item

    def evidence_norm(self, seen: np.ndarray) -> np.ndarray:
        """``[M, N]``: EASE's ``seen @ B`` divided per item by its maximum over the targets
        not in ``seen`` (0 for items without a seen positive)."""
        return max_normalised(self.index.scores(seen), over=seen == 0)

    def score_all(self, state: Rows) -> np.ndarray:
        """``[M, N]``: normalised text score + beta * normalised EASE evidence."""
        ctx = self.ctx
        assert ctx is not None
        seen = ctx.positive_matrix(state).astype(np.float32)
        if not seen.any():
            return self.prior_norm
        return self.prior_norm + float(self.config["beta"]) * self.evidence_norm(seen)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
