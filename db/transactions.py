"""Write sessions (``BEGIN IMMEDIATE`` on SQLite, ``FOR UPDATE`` on PostgreSQL) and the SQL
helpers used inside one transaction.

Part of the repository (:mod:`db.repository` re-exports every name).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from db.database import write_engine
from db.errors import (
    DBError,
    DuplicateError,
    NotFoundError,
    ValidationError,
)
from db.models import (
    EmbeddingVersion,
    FeatureVersion,
    Interaction,
    InteractionEvent,
    Item,
    PredictionSnapshot,
    Workspace,
)
from db.records import (
    _Decision,
)
from db.validators import (
    normalize_name,
)

# Helpers: sessions and SQL ----------------------------------------------------------------------
#: What every repository function takes: an ``Engine`` (the function runs its own
#: transaction) or the ``Session`` of a :func:`unit_of_work` (it joins that transaction).
Db = Engine | Session


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One analyst action's transaction: ``BEGIN IMMEDIATE`` on SQLite (the write lock up
    front, so concurrent actions queue), committed when the block ends, rolled back when it
    raises. Pass the yielded session to repository functions so they all share it."""
    with Session(write_engine(engine), expire_on_commit=False) as session:
        with session.begin():
            yield session


@contextmanager
def read_session(db: Db) -> Iterator[Session]:
    """A session to read with: the caller's, or a new one on ``db``."""
    if isinstance(db, Session):
        yield db
        return
    with Session(db, expire_on_commit=False) as session:
        yield session


@contextmanager
def _write_session(db: Db) -> Iterator[Session]:
    """A write transaction: a savepoint inside the caller's unit of work (a refused write
    leaves the rest of that unit usable), else a new ``BEGIN IMMEDIATE`` transaction."""
    if isinstance(db, Session):
        with db.begin_nested():
            yield db
        return
    with unit_of_work(db) as session:
        yield session


def _insert(session: Session, table: Table) -> Any:
    """A dialect-specific INSERT supporting ``on_conflict_do_nothing/update``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise DBError(f"unsupported database dialect {dialect!r} (use SQLite or PostgreSQL)")


def _lock_item(session: Session, item_id: int) -> Item:
    """Load the item row and lock it against concurrent writers (``FOR UPDATE``)."""
    item = session.exec(select(Item).where(Item.id == item_id).with_for_update()).first()
    if item is None:
        raise NotFoundError("item_id", f"unknown item {item_id}")
    return item


def _get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFoundError("item_id", f"unknown item {item_id}")
    return item


def _phase_of(session: Session, item_id: int) -> int:
    top = session.exec(
        select(func.max(EmbeddingVersion.phase)).where(EmbeddingVersion.item_id == item_id)
    ).one()
    return int(top) if top is not None else 0


def _workspace_by_name(session: Session, name: str) -> Workspace | None:
    return session.exec(select(Workspace).where(Workspace.name == name)).first()


def _check_feature_version_exists(session: Session, item_id: int, version: int) -> None:
    if version == 0:
        return
    found = session.exec(
        select(FeatureVersion.id).where(
            FeatureVersion.item_id == item_id, FeatureVersion.version == version
        )
    ).first()
    if found is None:
        raise ValidationError("feature_version", f"item {item_id} has no feature version {version}")


def _apply_decisions(
    session: Session,
    item_id: int,
    decisions: list[_Decision],
    *,
    phase: int,
    analyst: str | None,
    source: str,
    now: datetime,
) -> int:
    """Upsert decisions; returns how many interactions were created or changed."""
    table = Interaction.__table__
    changed = 0
    for d in decisions:
        stmt = (
            _insert(session, table)
            .values(
                item_id=item_id,
                target_id=d.target_id,
                label=d.label,
                phase=phase,
                source=source,
                analyst=analyst,
                note=d.note,
                revision=1,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["item_id", "target_id"])
            .returning(table.c.id)
        )
        inserted = session.execute(stmt).first()
        if inserted is not None:
            revision = 1
        else:
            row = session.exec(
                select(Interaction)
                .where(Interaction.item_id == item_id, Interaction.target_id == d.target_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            note = d.note if d.note is not None else row.note
            if row.label == d.label and row.note == note:
                continue
            row.revision += 1
            row.label = d.label
            row.note = note
            row.source = source
            row.analyst = analyst
            row.updated_at = now
            session.add(row)
            revision = row.revision
            d = _Decision(d.target_id, d.label, note)
        session.add(
            InteractionEvent(
                item_id=item_id,
                target_id=d.target_id,
                revision=revision,
                label=d.label,
                phase=phase,
                source=source,
                analyst=analyst,
                note=d.note,
                created_at=now,
            )
        )
        session.flush()
        changed += 1
    return changed


def _upsert_embedding(
    session: Session,
    item_id: int,
    *,
    phase: int,
    feature_version: int,
    model_version: str,
    dim: int,
    vector: bytes,
    now: datetime,
) -> None:
    table = EmbeddingVersion.__table__
    values = {
        "feature_version": feature_version,
        "model_version": model_version,
        "dim": dim,
        "vector": vector,
        "created_at": now,
    }
    stmt = _insert(session, table).values(item_id=item_id, phase=phase, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["item_id", "phase"], set_=values))


def _insert_snapshot(
    session: Session, item_id: int, *, phase: int, topk: list[dict[str, Any]], now: datetime
) -> None:
    """Replace the item's snapshot of ``phase`` with ``topk``."""
    session.execute(
        delete(PredictionSnapshot).where(
            PredictionSnapshot.item_id == item_id, PredictionSnapshot.phase == phase
        )
    )
    session.add(PredictionSnapshot(item_id=item_id, phase=phase, created_at=now, topk=topk))
    session.flush()


def _add_item(
    session: Session,
    *,
    workspace: str,
    domain: str,
    name: str,
    external_id: str | None,
    raw_features: dict[str, Any],
    status: str,
    created_by: str,
    created_at: datetime,
) -> Item:
    ws = _workspace_by_name(session, workspace)
    if ws is None:
        raise NotFoundError("workspace", f"unknown workspace {workspace!r}")
    if ws.domain != domain:
        raise ValidationError(
            "domain", f"workspace {workspace!r} holds {ws.domain!r} items, not {domain!r}"
        )
    assert ws.id is not None
    table = Item.__table__
    stmt = (
        _insert(session, table)
        .values(
            workspace_id=ws.id,
            domain=domain,
            external_id=external_id,
            name=name,
            normalized_name=normalize_name(name),
            raw_features=raw_features,
            status=status,
            created_by=created_by,
            created_at=created_at,
        )
        .on_conflict_do_nothing()  # (workspace, normalized name), (workspace, external id)
        .returning(table.c.id)
    )
    row = session.execute(stmt).first()
    if row is None:
        same_name = session.exec(
            select(Item.id, Item.name).where(Item.workspace_id == ws.id,
                                             Item.normalized_name == normalize_name(name))
        ).first()
        if same_name is not None:
            raise DuplicateError(
                "name", f"workspace {workspace!r} already has an item named "
                f"{same_name[1]!r} (#{same_name[0]}); names differing only in case, spaces or "
                "punctuation are the same item"
            )
        raise DuplicateError(
            "external_id", f"workspace {workspace!r} already has an item {external_id!r}"
        )
    return _get_item(session, row[0])
