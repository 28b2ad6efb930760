"""Workspaces: one row per named workspace (its domain, dataset, inputs, model versions).

Part of :mod:`db.repository` (see its docstring for the guarantees every function keeps).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from db.converters import _ws_record
from db.errors import ValidationError
from db.limits import MAX_NAME_LEN
from db.models import Workspace
from db.records import WorkspaceRecord
from db.transactions import Db, _insert, _workspace_by_name, _write_session, read_session
from db.validators import _check_domain, _check_json_doc, _now, _req_str


def upsert_workspace(
    db: Db,
    *,
    name: str,
    domain: str,
    dataset: str,
    inputs: dict[str, Any],
    model_versions: dict[str, Any],
) -> WorkspaceRecord:
    """Create the workspace ``name`` or update its dataset, inputs and model versions.

    The domain of an existing workspace cannot change (its items belong to that domain).
    """
    name = _req_str("name", name, MAX_NAME_LEN)
    domain = _check_domain(domain)
    dataset = _req_str("dataset", dataset, MAX_NAME_LEN)
    inputs = _check_json_doc("inputs", inputs, dict)
    model_versions = _check_json_doc("model_versions", model_versions, dict)
    now = _now()
    table = Workspace.__table__
    with _write_session(db) as session:
        existing = _workspace_by_name(session, name)
        if existing is not None and existing.domain != domain:
            raise ValidationError(
                "domain", f"workspace {name!r} is a {existing.domain!r} workspace, not {domain!r}"
            )
        update = {
            "dataset": dataset,
            "inputs": inputs,
            "model_versions": model_versions,
            "updated_at": now,
        }
        stmt = _insert(session, table).values(name=name, domain=domain, created_at=now, **update)
        session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=update))
        ws = session.exec(select(Workspace).where(Workspace.name == name)).one()
        session.refresh(ws)
        return _ws_record(ws)


def get_workspace(db: Db, name: str) -> WorkspaceRecord | None:
    """The workspace called ``name``, or ``None``."""
    with read_session(db) as session:
        ws = _workspace_by_name(session, name)
        return _ws_record(ws) if ws is not None else None


def list_workspaces(db: Db) -> list[WorkspaceRecord]:
    """All workspaces, by name."""
    with read_session(db) as session:
        return [_ws_record(w) for w in session.exec(select(Workspace).order_by(Workspace.name))]


__all__ = [
    "get_workspace",
    "list_workspaces",
    "upsert_workspace",
]
