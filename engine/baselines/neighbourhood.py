"""Neighbourhood baselines without a backbone (protocol.md; "Are we really making much
progress?", RecSys 2019): ``cooc-knn``, ``ease``, ``text-knn`` and their sum ``text-cooc``.

All three work on ``X [K_old, N]``, the old items' positive targets (``ctx.old_positive_matrix``:
DisGeNET associations, MovieLens ratings >= 4), and rank targets with dense matrix operations
(:meth:`score_all` ``[M, N]``; :meth:`score` indexes it). ``pop [N]`` is the ``popularity``
baseline's prior scaled to a maximum of 1.

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


class _Neighbourhood(Popularity):
    """Shared parts: the popularity prior (Phase 0), the ``[M, N]`` seen-positive matrix,
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
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"alpha": (0.3, 0.5, 0.7, 1.0),
                                                  "pop_weight": (0.0, 0.01, 0.1)}

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
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"lam": (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0,
                                                          100.0, 200.0, 500.0, 1000.0, 5000.0)}

    phase_settings: ClassVar[frozenset[str]] = frozenset({"pop_weight"})

    @property
    def settings(self) -> EaseConfig:
        return EaseConfig(lam=float(self.config["lam"]),
                          pop_weight=float(self.config["pop_weight"]))

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        key = f"ease:{self.settings.lam!r}"
        if key not in ctx._cache:  # one solve per context and lambda
            ctx._cache[key] = EaseIndex(self.x, self.settings.lam)
        self.index: EaseIndex = ctx._cache[key]

    def evidence(self, seen: np.ndarray) -> np.ndarray:
        """``seen @ B`` through the same :class:`~engine.emerflow.shared_space.EaseIndex` the
        product's propagation uses."""
        return self.index.scores(seen).astype(np.float64)


class TextKnn(_Neighbourhood):
    name: ClassVar[str] = "text-knn"
    text_variant: ClassVar[str] = "raw"
    defaults: ClassVar[dict[str, Any]] = {**Popularity.defaults, "k": 20, "temperature": 0.1,
                                          "pop_weight": 0.05}
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"k": (5, 10, 20, 50),
                                                  "temperature": (0.02, 0.05, 0.1, 1.0),
                                                  "pop_weight": (0.01, 0.05, 0.2)}

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
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {"k": (10, 20, 50), "temperature": (0.05, 0.1),
                                                  "alpha": (0.5, 1.0),
                                                  "weight": (0.5, 1.0, 2.0)}
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


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
