"""The one registry of datasets: name -> (loader, protocol preset, domain).

Real datasets are read from a data root (default ``$EMERFLOW_DATA`` or ``../shared/data``
beside the working directory is NOT assumed: pass it explicitly or set ``EMERFLOW_DATA``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.data.base import Dataset
from engine.data.demo import DEMO_DISEASES, DEMO_MOVIES, demo_diseases, demo_movies
from engine.data.protocol import DISGENET_PROTOCOL, MOVIELENS_PROTOCOL, ProtocolConfig
from engine.schema import DISEASE, MOVIE

#: Demo thresholds: the spec's protocol scaled to the demo catalogs' interaction counts.
DEMO_MOVIES_PROTOCOL = ProtocolConfig(old_min_exclusive=60, new_min=25, new_max=60, k=5)
DEMO_DISEASES_PROTOCOL = ProtocolConfig(
    old_min_exclusive=30, new_min=12, new_max=30, k=3, min_test_positives=3
)


@dataclass(frozen=True)
class DatasetEntry:
    """How to load one dataset and which protocol preset splits it."""

    name: str
    domain: str
    protocol: ProtocolConfig
    load: Callable[[Path | None], Dataset]
    synthetic: bool = False



def data_root(root: Path | None = None) -> Path:
    """The directory holding real datasets: ``root``, else ``$EMERFLOW_DATA``."""
    if root is not None:
        return root
    from engine.settings import get_settings

    env = get_settings().data
    if env is None:
        raise FileNotFoundError(
            "no data directory: pass --data-root or set EMERFLOW_DATA to the folder holding "
            "movielens-1m/ and disgenet/ (as in shared/data)"
        )
    return env


def _movielens(root: Path | None) -> Dataset:
    from engine.data.movielens import load_movielens

    return load_movielens(data_root(root) / "movielens-1m")


def _disgenet(root: Path | None) -> Dataset:
    from engine.data.disgenet import load_disgenet_dir

    return load_disgenet_dir(data_root(root))


DATASETS: dict[str, DatasetEntry] = {
    DEMO_MOVIES: DatasetEntry(
        DEMO_MOVIES, MOVIE, DEMO_MOVIES_PROTOCOL, lambda _root: demo_movies(), synthetic=True
    ),
    DEMO_DISEASES: DatasetEntry(
        DEMO_DISEASES,
        DISEASE,
        DEMO_DISEASES_PROTOCOL,
        lambda _root: demo_diseases(),
        synthetic=True,
    ),
    "movielens-1m-partial": DatasetEntry(
        "movielens-1m-partial", MOVIE, MOVIELENS_PROTOCOL, _movielens
    ),
    "disgenet-curated": DatasetEntry("disgenet-curated", DISEASE, DISGENET_PROTOCOL, _disgenet),
}


def get_dataset_entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}") from None
