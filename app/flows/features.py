"""Features: save a feature version (with the phase-0 re-embedding, one transaction), the
domain's suggested feature list, and the feature reads. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from app.flows.common import engine_inputs, predict_phase0
from db import repository as repo
from db.repository import DomainFeatureSetRecord, FeatureVersionRecord
from engine.workspace import Workspace


def save_features(db: Engine, ws: Workspace, item_id: int,
                  features: Sequence[Mapping[str, Any]], *, analyst: str = "analyst",
                  reembed: bool = True) -> FeatureVersionRecord:
    """Store ``features`` as the item's next feature version; with ``reembed``, an item still in
    Phase 0 is encoded again from that version (embedding and snapshot replaced). One
    transaction with the item locked: the version and the re-embedding land together or not
    at all.

    Raises:
        ValueError: the database refused a feature (``db.errors.ValidationError``).
    """
    with repo.unit_of_work(db) as s:
        fv = repo.save_feature_version(s, item_id, list(features),
                                       created_by=analyst or "analyst")
        if reembed and repo.current_phase(s, item_id) == 0:
            predict_phase0(s, ws, item_id)
    return fv


def latest_feature_version(db: Engine, item_id: int) -> FeatureVersionRecord | None:
    """The item's newest feature version (None when it has none)."""
    return repo.latest_feature_version(db, item_id)


def feature_versions(db: Engine, item_id: int) -> list[FeatureVersionRecord]:
    """Every feature version of the item, oldest first."""
    return repo.feature_versions(db, item_id)


def item_inputs(db: Engine, ws: Workspace, item_id: int
                ) -> tuple[dict[str, object], dict[str, str], dict[str, str]]:
    """:func:`engine_inputs` of the item's latest feature version (one read)."""
    with repo.read_session(db) as s:
        item = repo.get_item(s, item_id)
        fv = repo.latest_feature_version(s, item_id)
    return engine_inputs(ws, item, fv)


def domain_features(db: Engine, domain: str) -> DomainFeatureSetRecord | None:
    """The stored suggested-feature list of ``domain`` (None when none yet)."""
    return repo.get_domain_features(db, domain)


def save_domain_features(db: Engine, *, domain: str, features: Sequence[Mapping[str, Any]],
                         provenance: Mapping[str, Any], updated_by: str
                         ) -> DomainFeatureSetRecord:
    """Store ``domain``'s suggested-feature list (one transaction; replaces the stored one).

    Raises:
        ValueError: the database refused it (``db.errors.ValidationError``).
    """
    return repo.save_domain_features(db, domain=domain, features=list(features),
                                     provenance=dict(provenance), updated_by=updated_by)
