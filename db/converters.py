"""ORM rows -> the frozen records of :mod:`db.records`.

Part of the repository (:mod:`db.repository` re-exports every name).
"""

from __future__ import annotations

from db.models import (
    DomainFeatureSet,
    EmbeddingVersion,
    FeatureVersion,
    Interaction,
    InteractionEvent,
    Item,
    PredictionSnapshot,
    Workspace,
)
from db.records import (
    DomainFeatureSetRecord,
    EmbeddingRecord,
    FeatureVersionRecord,
    InteractionEventRecord,
    InteractionRecord,
    ItemRecord,
    SnapshotRecord,
    WorkspaceRecord,
)
from db.validators import (
    _utc,
)


# Converters -------------------------------------------------------------------------------------
def _ws_record(ws: Workspace) -> WorkspaceRecord:
    assert ws.id is not None
    return WorkspaceRecord(
        id=ws.id,
        name=ws.name,
        domain=ws.domain,
        dataset=ws.dataset,
        inputs=dict(ws.inputs),
        model_versions=dict(ws.model_versions),
        created_at=_utc(ws.created_at),
        updated_at=_utc(ws.updated_at),
    )


def _item_record(item: Item, workspace: str) -> ItemRecord:
    assert item.id is not None
    return ItemRecord(
        id=item.id,
        workspace_id=item.workspace_id,
        workspace=workspace,
        domain=item.domain,
        external_id=item.external_id,
        name=item.name,
        normalized_name=item.normalized_name,
        raw_features=dict(item.raw_features),
        status=item.status,
        created_by=item.created_by,
        created_at=_utc(item.created_at),
    )


def _fv_record(fv: FeatureVersion) -> FeatureVersionRecord:
    assert fv.id is not None
    return FeatureVersionRecord(
        id=fv.id,
        item_id=fv.item_id,
        version=fv.version,
        features=[dict(f) for f in fv.features],
        created_by=fv.created_by,
        created_at=_utc(fv.created_at),
    )


def _interaction_record(row: Interaction) -> InteractionRecord:
    assert row.id is not None
    return InteractionRecord(
        id=row.id,
        item_id=row.item_id,
        target_id=row.target_id,
        label=row.label,
        phase=row.phase,
        source=row.source,
        analyst=row.analyst,
        note=row.note,
        revision=row.revision,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _event_record(row: InteractionEvent) -> InteractionEventRecord:
    assert row.id is not None
    return InteractionEventRecord(
        id=row.id,
        item_id=row.item_id,
        target_id=row.target_id,
        revision=row.revision,
        label=row.label,
        phase=row.phase,
        source=row.source,
        analyst=row.analyst,
        note=row.note,
        created_at=_utc(row.created_at),
    )


def _embedding_record(row: EmbeddingVersion) -> EmbeddingRecord:
    assert row.id is not None
    return EmbeddingRecord(
        id=row.id,
        item_id=row.item_id,
        phase=row.phase,
        feature_version=row.feature_version,
        model_version=row.model_version,
        dim=row.dim,
        vector=bytes(row.vector),
        created_at=_utc(row.created_at),
    )


def _snapshot_record(row: PredictionSnapshot) -> SnapshotRecord:
    assert row.id is not None
    return SnapshotRecord(
        id=row.id,
        item_id=row.item_id,
        phase=row.phase,
        created_at=_utc(row.created_at),
        topk=[dict(e) for e in row.topk],
    )


def _feature_set_record(row: DomainFeatureSet) -> DomainFeatureSetRecord:
    assert row.id is not None
    return DomainFeatureSetRecord(
        id=row.id,
        domain=row.domain,
        features=[dict(f) for f in row.features],
        provenance=dict(row.provenance),
        updated_by=row.updated_by,
        updated_at=_utc(row.updated_at),
    )
