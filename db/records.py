"""The frozen dataclasses the repository returns (never ORM objects).

Part of the repository (:mod:`db.repository` re-exports every name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


# Records ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkspaceRecord:
    """A workspace. ``inputs``: source files -> checksums; ``model_versions``: free dict."""

    id: int
    name: str
    domain: str
    dataset: str
    inputs: dict[str, Any]
    model_versions: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ItemRecord:
    """An item. ``workspace`` is the workspace name; ``status`` is emerging|established."""

    id: int
    workspace_id: int
    workspace: str
    domain: str
    external_id: str | None
    name: str
    normalized_name: str
    raw_features: dict[str, Any]
    status: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class FeatureVersionRecord:
    """One version (1, 2, ...) of an item's reviewed features (list of feature dicts)."""

    id: int
    item_id: int
    version: int
    features: list[dict[str, Any]]
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class InteractionRecord:
    """The current decision on one (item, target); ``phase`` is the phase it first arrived in,
    ``source``/``analyst``/``note`` those of the latest revision."""

    id: int
    item_id: int
    target_id: str
    label: int
    phase: int
    source: str
    analyst: str | None
    note: str | None
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class InteractionEventRecord:
    """One revision of a decision (the history); ``phase`` is when that decision was made."""

    id: int
    item_id: int
    target_id: str
    revision: int
    label: int
    phase: int
    source: str
    analyst: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class EmbeddingRecord:
    """The item embedding of one phase; ``vector`` is ``dim`` float32 values (native order)."""

    id: int
    item_id: int
    phase: int
    feature_version: int
    model_version: str
    dim: int
    vector: bytes
    created_at: datetime


@dataclass(frozen=True)
class SnapshotRecord:
    """Top-k predictions at one phase: ``topk`` is ``[{rank, target_id, score}, ...]``."""

    id: int
    item_id: int
    phase: int
    created_at: datetime
    topk: list[dict[str, Any]]


@dataclass(frozen=True)
class BenchmarkRunRecord:
    """One stored benchmark run."""

    id: int
    dataset: str
    method: str
    config: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class DomainFeatureSetRecord:
    """The suggested feature list of one domain: ``features`` is ``[{name, descriptor, why}]``,
    ``provenance`` e.g. ``{provider, model, prompt_version}``."""

    id: int
    domain: str
    features: list[dict[str, str]]
    provenance: dict[str, Any]
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class _Decision:
    target_id: str
    label: int
    note: str | None
