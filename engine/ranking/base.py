"""The product's ranking seam: what a workspace needs from whatever ranks its catalog.

A :class:`Ranker` turns an item's text vector (and the analyst's decisions) into a score for
every target of the catalog. The workspace (:mod:`engine.workspace`) holds exactly one ranker
and never looks inside it; :data:`RANKERS` maps a config's ``ranker`` name to the loader of a
saved one. Implementations: the shared-space EmerFlow (:mod:`engine.ranking.shared`) and the
learned ranker over its channels (:mod:`engine.ltr`).

Shapes: ``T`` text dimension, ``D`` embedding dimension, ``N`` targets, ``K`` established items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Decisions:
    """The analyst's decisions on one item, as target rows of the catalog.

    Attributes:
        confirmed: rows of confirmed targets ``[C]`` int64.
        rejected: rows of rejected targets ``[R]`` int64.
    """

    confirmed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        for name in ("confirmed", "rejected"):
            arr = np.asarray(getattr(self, name), np.int64).reshape(-1)
            object.__setattr__(self, name, arr)
        if np.intersect1d(self.confirmed, self.rejected).size:
            raise ValueError("Decisions: a target is both confirmed and rejected")

    @property
    def n_confirmed(self) -> int:
        return int(self.confirmed.size)

    def __bool__(self) -> bool:
        return bool(self.confirmed.size or self.rejected.size)


@dataclass(frozen=True)
class Scored:
    """What a ranker returns for one item.

    Attributes:
        scores: ``[N]`` float64, higher ranks first (ties: lower target row first).
        lift: ``[N]`` how much more likely than from popularity alone, when the ranker knows.
    """

    scores: np.ndarray
    lift: np.ndarray | None = None


@dataclass(frozen=True)
class Reason:
    """One plain-words part of "why this rank" for one target.

    Attributes:
        text: e.g. "3 of its 5 nearest diseases have it".
        weight: the part's contribution to the score (the ranker's own units).
    """

    text: str
    weight: float


@runtime_checkable
class Ranker(Protocol):
    """What the workspace ranks with. Every method is pure: no state changes per call."""

    #: the key of this ranker in :data:`RANKERS` (saved in the workspace config).
    kind: str

    @property
    def n_targets(self) -> int: ...

    def align(self, text: np.ndarray) -> np.ndarray:
        """Text vectors ``[B, T]`` -> phase-0 item embeddings ``[B, D]``."""

    def refine(self, prior: np.ndarray, decisions: Decisions) -> np.ndarray:
        """The phase update: the phase-0 embedding ``[D]`` and every decision so far ->
        the refined embedding ``[D]`` (the one update shared by training, bench, dashboard)."""

    def score(self, text: np.ndarray, embedding: np.ndarray, decisions: Decisions,
              categories: Sequence[str] = ()) -> Scored:
        """Score every target for one item: its text vector ``[T]``, current embedding ``[D]``,
        decisions and category values (film genres, MeSH classes; a ranker may ignore them)."""

    def explain(self, text: np.ndarray, embedding: np.ndarray, decisions: Decisions,
                rows: np.ndarray, target_names: Callable[[np.ndarray], list[str]],
                categories: Sequence[str] = ()) -> list[list[Reason]]:
        """Per target row in ``rows`` ``[M]``: the reasons of its score, largest first."""

    def item_vectors(self) -> np.ndarray:
        """Established items' vectors ``[K, D]`` (rows in ``split.old_items`` order) for the
        nearest-item index, in the same space as :meth:`align`'s output."""

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the ranker's ``state_dict``/model files into ``directory``; return the JSON
        info :data:`RANKERS`' loader needs."""
