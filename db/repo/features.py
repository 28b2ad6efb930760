"""Features: an item's numbered feature versions and each domain's suggested feature list.

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from db.converters import _feature_set_record, _fv_record
from db.errors import ValidationError
from db.limits import MAX_JSON_CHARS, MAX_SHORT_LEN
from db.models import FEATURE_SET_DOMAINS, DomainFeatureSet, FeatureVersion
from db.records import DomainFeatureSetRecord, FeatureVersionRecord
from db.transactions import Db, _get_item, _insert, _lock_item, _write_session, read_session
from db.validators import (
    _check_choice,
    _check_features,
    _check_item_id,
    _check_json_doc,
    _check_suggested_features,
    _now,
    _req_str,
)


def save_feature_version(
    db: Db, item_id: int, features: list[dict[str, Any]], created_by: str
) -> FeatureVersionRecord:
    """Store ``features`` as the item's next feature version (1, 2, ...).

    Each feature dict needs ``name``, ``value`` and ``source`` (dataset|llm|analyst); the
    other canonical keys (:data:`FEATURE_KEYS`) default to ``None`` (``keep`` to ``True``).
    """
    item_id = _check_item_id(item_id)
    clean = _check_features("features", features)
    created_by = _req_str("created_by", created_by, MAX_SHORT_LEN)
    with _write_session(db) as session:
        _lock_item(session, item_id)
        top = session.exec(
            select(func.max(FeatureVersion.version)).where(FeatureVersion.item_id == item_id)
        ).one()
        fv = FeatureVersion(
            item_id=item_id,
            version=(top or 0) + 1,
            features=clean,
            created_by=created_by,
            created_at=_now(),
        )
        session.add(fv)
        session.flush()
        return _fv_record(fv)


def latest_feature_version(db: Db, item_id: int) -> FeatureVersionRecord | None:
    """The item's newest feature version, or ``None`` when it has none."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        fv = session.exec(
            select(FeatureVersion)
            .where(FeatureVersion.item_id == item_id)
            .order_by(FeatureVersion.version.desc())  # type: ignore[attr-defined]
        ).first()
        return _fv_record(fv) if fv is not None else None


def feature_versions(db: Db, item_id: int) -> list[FeatureVersionRecord]:
    """All feature versions of the item, oldest first."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(FeatureVersion)
            .where(FeatureVersion.item_id == item_id)
            .order_by(FeatureVersion.version)
        )
        return [_fv_record(r) for r in rows]


def save_domain_features(
    db: Db,
    *,
    domain: str,
    features: list[dict[str, Any]],
    provenance: dict[str, Any],
    updated_by: str,
) -> DomainFeatureSetRecord:
    """Store (create or replace) the suggested feature list of ``domain`` (movie|disease).

    ``features`` is ``[{name, descriptor, why}]`` (``why`` optional) with unique names;
    ``provenance`` says who suggested it (``{provider, model, prompt_version}``), never a
    credential.
    """
    domain = _check_choice("domain", domain, FEATURE_SET_DOMAINS)
    clean = _check_suggested_features("features", features)
    provenance = _check_json_doc("provenance", provenance, dict)
    updated_by = _req_str("updated_by", updated_by, MAX_SHORT_LEN)
    size = len(json.dumps(clean))
    if size > MAX_JSON_CHARS:
        raise ValidationError("features", f"too large ({size} > {MAX_JSON_CHARS} characters)")
    update = {
        "features": clean,
        "provenance": provenance,
        "updated_by": updated_by,
        "updated_at": _now(),
    }
    with _write_session(db) as session:
        stmt = _insert(session, DomainFeatureSet.__table__).values(domain=domain, **update)
        session.execute(stmt.on_conflict_do_update(index_elements=["domain"], set_=update))
        row = session.exec(select(DomainFeatureSet).where(DomainFeatureSet.domain == domain)).one()
        session.refresh(row)
        return _feature_set_record(row)


def get_domain_features(db: Db, domain: str) -> DomainFeatureSetRecord | None:
    """The stored suggested feature list of ``domain``, or ``None`` when there is none yet."""
    with read_session(db) as session:
        row = session.exec(
            select(DomainFeatureSet).where(DomainFeatureSet.domain == domain)
        ).first()
        return _feature_set_record(row) if row is not None else None


__all__ = [
    "feature_versions",
    "get_domain_features",
    "latest_feature_version",
    "save_domain_features",
    "save_feature_version",
]
