"""Items: create one (one transaction), and the reads of the reopen list. No streamlit here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Engine

from app.flows.common import DuplicateItemError, as_text
from app.flows.database import ensure_workspace
from db import repository as repo
from db.errors import DuplicateError
from db.repository import ItemRecord
from engine.schema import NAME
from engine.workspace import Workspace


def dataset_features(ws: Workspace, values: Mapping[str, object]) -> list[dict]:
    """Feature-version entries for the dataset's raw item features."""
    out = []
    for spec in ws.dataset.item_features:
        value = values.get(spec.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out.append(
            {
                "name": spec.name,
                "descriptor": spec.descriptor,
                "value": as_text(value),
                "source": "dataset",
                "keep": True,
            }
        )
    return out


def entered_features(ws: Workspace, values: Mapping[str, object], analyst: str) -> list[dict]:
    """Form values the dataset has no feature for (e.g. a free-text description of a
    disease in DisGeNET, which lists none): kept as analyst-sourced features, so they are
    serialized after the dataset's features instead of being dropped."""
    known = {s.name for s in ws.dataset.item_features} | {NAME}
    out = []
    for key, value in values.items():
        if key in known or value is None or not str(value).strip():
            continue
        out.append(
            {
                "name": key,
                "descriptor": key.replace("_", " ").capitalize(),
                "value": as_text(value),
                "source": "analyst",
                "analyst": analyst,
                "keep": True,
            }
        )
    return out


def new_item(
    db: Engine,
    ws: Workspace,
    *,
    name: str,
    features: Mapping[str, object],
    external_id: str | None = None,
    analyst: str = "analyst",
    allow_duplicate: bool = False,
    extra_features: Sequence[Mapping[str, object]] = (),
) -> ItemRecord:
    """Create an emerging item with its raw features as feature version 1.

    ``extra_features`` (e.g. the analyst's synonyms) are appended to version 1 as given:
    feature dicts with ``name``, ``descriptor``, ``value`` and ``source``.

    Raises:
        ValueError: empty name.
        DuplicateItemError: an item with the same normalized name or external id exists.
    """
    name = (name or "").strip()
    if not name:
        raise ValueError("Name is required.")
    raw = {k: as_text(v) for k, v in features.items() if v not in (None, "", [])}
    raw[NAME] = name
    with repo.unit_of_work(db) as s:  # one transaction: workspace row, checks, item + v1
        ensure_workspace(s, ws)
        if not allow_duplicate:
            dups = repo.find_duplicates(s, workspace=ws.name, name=name, external_id=external_id)
            if dups:
                raise DuplicateItemError(dups)
        try:
            item, _ = repo.create_item_with_features(
                s,
                workspace=ws.name,
                domain=ws.domain,
                name=name,
                external_id=external_id or None,
                raw_features=raw,
                features=[
                    *dataset_features(ws, raw),
                    *entered_features(ws, raw, analyst),
                    *(dict(f) for f in extra_features),
                ],
                created_by=analyst,
            )
        except DuplicateError as exc:
            # a copy under an identical (normalized) name: the database keeps names unique
            dups = repo.find_duplicates(s, workspace=ws.name, name=name,
                                        external_id=external_id)
            if dups and not allow_duplicate:
                raise DuplicateItemError(dups) from exc
            raise ValueError(
                f"An item named {name!r} already exists in this workspace; give the new one a "
                "different name."
            ) from exc
    return item


def get_item(db: Engine, item_id: int) -> ItemRecord:
    """The item.

    Raises:
        ValueError: no such item (``db.errors.NotFoundError``) or a malformed id.
    """
    return repo.get_item(db, item_id)


def list_items(db: Engine, workspace: str) -> list[ItemRecord]:
    """The workspace's items, oldest first."""
    return repo.list_items(db, workspace)


def current_phase(db: Engine, item_id: int) -> int:
    """The item's phase: the highest phase with an embedding (0 when none)."""
    return repo.current_phase(db, item_id)


def items_with_phase(db: Engine, workspace: str) -> list[tuple[ItemRecord, int]]:
    """``(item, current phase)`` of every item of the workspace, in one read."""
    with repo.read_session(db) as s:
        return [(it, repo.current_phase(s, it.id)) for it in repo.list_items(s, workspace)]
