"""The analyst flows: where the engine meets the database. No streamlit import here.

This package is the app's only importer of :mod:`db.repository` (a test parses every app
module to keep it so). Each analyst action is one unit of work (``db.repository.unit_of_work``,
one transaction): create an item (:mod:`~app.flows.items`), save a feature version with its
phase-0 re-embedding (:mod:`~app.flows.features`), predict (:mod:`~app.flows.predict`),
decide + refine (:mod:`~app.flows.decide`); the other functions are thin reads (item, feature
versions, phase history) and the LLM answer cache (:mod:`~app.flows.llm_cache`).

Each function takes the trained :class:`engine.workspace.Workspace` where it needs one and a
SQLAlchemy engine, and returns plain values, so the flows are tested as ordinary Python.
"""

from __future__ import annotations

from app.flows.common import (
    MAX_PHASE,
    SNAPSHOT_K,
    DuplicateItemError,
    ItemState,
    StaleItemError,
    engine_inputs,
    phase_label,
)
from app.flows.database import OpenedDatabase, ensure_workspace, open_database
from app.flows.decide import confirm_and_refine
from app.flows.features import (
    domain_features,
    feature_versions,
    item_inputs,
    latest_feature_version,
    save_domain_features,
    save_features,
)
from app.flows.history import interaction_history, interactions, phase_embeddings, snapshots
from app.flows.items import (
    current_phase,
    dataset_features,
    entered_features,
    get_item,
    items_with_phase,
    list_items,
    new_item,
)
from app.flows.llm_cache import llm_cache_get, llm_cache_put
from app.flows.predict import predict_item, reuse_or_predict, top_targets_table
from db.repository import FeatureVersionRecord, ItemRecord

__all__ = [
    "MAX_PHASE",
    "SNAPSHOT_K",
    "DuplicateItemError",
    "FeatureVersionRecord",
    "ItemRecord",
    "ItemState",
    "OpenedDatabase",
    "StaleItemError",
    "confirm_and_refine",
    "current_phase",
    "dataset_features",
    "domain_features",
    "engine_inputs",
    "ensure_workspace",
    "entered_features",
    "feature_versions",
    "get_item",
    "interaction_history",
    "interactions",
    "item_inputs",
    "items_with_phase",
    "latest_feature_version",
    "list_items",
    "llm_cache_get",
    "llm_cache_put",
    "new_item",
    "open_database",
    "phase_embeddings",
    "phase_label",
    "predict_item",
    "reuse_or_predict",
    "save_domain_features",
    "save_features",
    "snapshots",
    "top_targets_table",
]
