"""Items of a workspace: creation (with or without a first feature version), look-ups,
duplicate detection and status.

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import or_, select

from db.converters import _fv_record, _item_record
from db.limits import DEFAULT_CREATED_BY, DEFAULT_STATUS, MAX_NAME_LEN, MAX_SHORT_LEN
from db.models import ITEM_STATUSES, FeatureVersion, Item, Workspace
from db.records import FeatureVersionRecord, ItemRecord
from db.transactions import (
    Db,
    _add_item,
    _get_item,
    _lock_item,
    _workspace_by_name,
    _write_session,
    read_session,
)
from db.validators import (
    _check_choice,
    _check_domain,
    _check_features,
    _check_id,
    _check_item_id,
    _check_raw_features,
    _now,
    _req_str,
    normalize_name,
)


def create_item(
    db: Db,
    *,
    workspace: str,
    domain: str,
    name: str,
    external_id: str | int | None = None,
    raw_features: dict[str, Any],
    status: str = DEFAULT_STATUS,
    created_by: str = DEFAULT_CREATED_BY,
) -> ItemRecord:
    """Create an item in an existing workspace.

    Raises:
        NotFoundError: unknown workspace.
        DuplicateError: the workspace already has an item with this ``external_id``.
        ValidationError: any invalid field (``domain`` must match the workspace's).
    """
    workspace = _req_str("workspace", workspace, MAX_NAME_LEN)
    domain = _check_domain(domain)
    name = _req_str("name", name, MAX_NAME_LEN)
    ext = _check_id("external_id", external_id, allow_none=True)
    features = _check_raw_features("raw_features", raw_features)
    status = _check_choice("status", status, ITEM_STATUSES)
    created_by = _req_str("created_by", created_by, MAX_SHORT_LEN)
    with _write_session(db) as session:
        item = _add_item(
            session,
            workspace=workspace,
            domain=domain,
            name=name,
            external_id=ext,
            raw_features=features,
            status=status,
            created_by=created_by,
            created_at=_now(),
        )
        return _item_record(item, workspace)


def create_item_with_features(
    db: Db,
    *,
    workspace: str,
    domain: str,
    name: str,
    external_id: str | int | None = None,
    raw_features: dict[str, Any],
    features: list[dict[str, Any]],
    status: str = DEFAULT_STATUS,
    created_by: str = DEFAULT_CREATED_BY,
) -> tuple[ItemRecord, FeatureVersionRecord]:
    """Create an item and its feature version 1 in one transaction (all or nothing).

    Every value is validated before anything is written, so a refused feature (e.g. a
    too-long synonym) leaves no half-created item behind.

    Raises:
        NotFoundError: unknown workspace.
        DuplicateError: the workspace already has an item with this name or ``external_id``.
        ValidationError: any invalid field.
    """
    workspace = _req_str("workspace", workspace, MAX_NAME_LEN)
    domain = _check_domain(domain)
    name = _req_str("name", name, MAX_NAME_LEN)
    ext = _check_id("external_id", external_id, allow_none=True)
    raw = _check_raw_features("raw_features", raw_features)
    clean = _check_features("features", features)
    status = _check_choice("status", status, ITEM_STATUSES)
    created_by = _req_str("created_by", created_by, MAX_SHORT_LEN)
    now = _now()
    with _write_session(db) as session:
        item = _add_item(
            session, workspace=workspace, domain=domain, name=name, external_id=ext,
            raw_features=raw, status=status, created_by=created_by, created_at=now,
        )
        assert item.id is not None
        fv = FeatureVersion(item_id=item.id, version=1, features=clean, created_by=created_by,
                            created_at=now)
        session.add(fv)
        session.flush()
        return _item_record(item, workspace), _fv_record(fv)


def find_duplicates(
    db: Db, *, workspace: str, name: str, external_id: str | int | None = None
) -> list[ItemRecord]:
    """Items of ``workspace`` with the same normalized name or the same external id."""
    norm = normalize_name(_req_str("name", name, MAX_NAME_LEN))
    ext = _check_id("external_id", external_id, allow_none=True)
    with read_session(db) as session:
        ws = _workspace_by_name(session, workspace)
        if ws is None:
            return []
        cond = Item.normalized_name == norm
        if ext is not None:
            cond = or_(cond, Item.external_id == ext)
        rows = session.exec(
            select(Item).where(Item.workspace_id == ws.id, cond).order_by(Item.id)
        ).all()
        return [_item_record(r, ws.name) for r in rows]


def get_item(db: Db, item_id: int) -> ItemRecord:
    """The item ``item_id`` (:class:`NotFoundError` if unknown)."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        item = _get_item(session, item_id)
        ws = session.get(Workspace, item.workspace_id)
        assert ws is not None
        return _item_record(item, ws.name)


def list_items(db: Db, workspace: str, status: str | None = None) -> list[ItemRecord]:
    """Items of ``workspace`` (optionally only one status), oldest first; [] if no workspace."""
    if status is not None:
        status = _check_choice("status", status, ITEM_STATUSES)
    with read_session(db) as session:
        ws = _workspace_by_name(session, workspace)
        if ws is None:
            return []
        query = select(Item).where(Item.workspace_id == ws.id)
        if status is not None:
            query = query.where(Item.status == status)
        return [_item_record(r, ws.name) for r in session.exec(query.order_by(Item.id))]


def set_item_status(db: Db, item_id: int, status: str) -> ItemRecord:
    """Mark an item ``emerging`` or ``established``."""
    item_id = _check_item_id(item_id)
    status = _check_choice("status", status, ITEM_STATUSES)
    with _write_session(db) as session:
        item = _lock_item(session, item_id)
        item.status = status
        session.add(item)
        session.flush()
        ws = session.get(Workspace, item.workspace_id)
        assert ws is not None
        return _item_record(item, ws.name)


__all__ = [
    "create_item",
    "create_item_with_features",
    "find_duplicates",
    "get_item",
    "list_items",
    "set_item_status",
]
