"""The one registry of product rankers: a config's ``ranker`` name -> how to build and load it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.ranking.base import Ranker
from engine.training_data import TrainingData

#: progress(stage, fraction 0..1, message)
ProgressFn = Callable[[str, float, str], None]


class NoEstablishedItemsError(ValueError):
    """The catalog has no established (old) items: nothing to learn a ranking from."""


@dataclass(frozen=True)
class RankerEntry:
    """How to train a ranker (``build(data, old_text [K, T], config, progress)``, where
    ``config`` is the :class:`engine.config.WorkspaceConfig`) and load a saved one
    (``load(directory, info, data)``)."""

    build: Callable[[TrainingData, np.ndarray, Any, ProgressFn], Ranker]
    load: Callable[[Path, dict[str, Any], TrainingData], Ranker]


def _build_twotower(data: TrainingData, old_text: np.ndarray, config: Any,
                    progress: ProgressFn) -> Ranker:
    from engine.emerflow.shared_space import train_shared

    return train_shared(old_text, data.old_positives(), config.shared, config.seed, progress)


def _load_twotower(directory: Path, info: dict[str, Any], data: TrainingData) -> Ranker:
    from engine.emerflow.shared_space import SharedRanker

    return SharedRanker.load(directory, info, data.old_positives_sparse)


def _build_ltr(data: TrainingData, old_text: np.ndarray, config: Any,
               progress: ProgressFn) -> Ranker:
    from engine.ltr import LtrConfig, train_ltr

    return train_ltr(data, old_text, LtrConfig.from_dict(config.ltr), config.seed, progress)


def _load_ltr(directory: Path, info: dict[str, Any], data: TrainingData) -> Ranker:
    from engine.ltr import LtrRanker

    return LtrRanker.load(directory, info, data.old_positives_sparse)


RANKERS: dict[str, RankerEntry] = {
    "twotower": RankerEntry(_build_twotower, _load_twotower),
    "ltr": RankerEntry(_build_ltr, _load_ltr),
}


def ranker_entry(kind: str) -> RankerEntry:
    """The registry entry of ``kind`` (ValueError naming the known ones)."""
    try:
        return RANKERS[kind]
    except KeyError:
        raise ValueError(f"unknown ranker {kind!r}; known: {sorted(RANKERS)}") from None


def build_ranker(kind: str, data: TrainingData, old_text: np.ndarray, config: Any,
                 progress: ProgressFn) -> Ranker:
    """Train the ranker ``kind`` on the old items of ``data``.

    Raises:
        NoEstablishedItemsError: the split has no old items (a clear message for the UI).
    """
    if not data.old_ids:
        raise NoEstablishedItemsError(
            f"{data.dataset.name}: no established items (none above the old-item threshold) — "
            "a ranking needs items with known targets to learn from; add interactions or "
            "lower the protocol's old-item threshold")
    return ranker_entry(kind).build(data, old_text, config, progress)
