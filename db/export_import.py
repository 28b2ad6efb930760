"""Export of one item as a self-contained JSON document, and its import into a workspace.

Part of the repository (:mod:`db.repository` re-exports every name).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import select

from db.converters import (
    _item_record,
)
from db.errors import (
    ValidationError,
)
from db.limits import (
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    MAX_NAME_LEN,
    MAX_SHORT_LEN,
    MAX_TEXT_LEN,
)
from db.models import (
    INTERACTION_SOURCES,
    ITEM_STATUSES,
    SHORT_LEN,
    EmbeddingVersion,
    FeatureVersion,
    Interaction,
    InteractionEvent,
    PredictionSnapshot,
)
from db.records import (
    ItemRecord,
)
from db.transactions import (
    Db,
    _add_item,
    _get_item,
    _write_session,
    read_session,
)
from db.validators import (
    _check_choice,
    _check_domain,
    _check_features,
    _check_id,
    _check_int,
    _check_item_id,
    _check_label,
    _check_phase,
    _check_raw_features,
    _check_snapshot,
    _check_vector,
    _iso,
    _opt_str,
    _req_str,
    _utc,
)


# Export / import --------------------------------------------------------------------------------
def export_item(db: Db, item_id: int) -> dict[str, Any]:
    """The item's whole history as one JSON-serializable document (no database ids).

    Vectors are base64 of the float32 bytes; timestamps are ISO 8601 UTC. The document does
    not name the workspace, so it can be imported into any workspace of the same domain.
    """
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        item = _get_item(session, item_id)

        def rows(model: Any, *order: Any) -> list[Any]:
            return list(
                session.exec(select(model).where(model.item_id == item_id).order_by(*order))
            )

        return {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "item": {
                "domain": item.domain,
                "external_id": item.external_id,
                "name": item.name,
                "raw_features": dict(item.raw_features),
                "status": item.status,
                "created_by": item.created_by,
                "created_at": _iso(item.created_at),
            },
            "feature_versions": [
                {
                    "version": fv.version,
                    "features": [dict(f) for f in fv.features],
                    "created_by": fv.created_by,
                    "created_at": _iso(fv.created_at),
                }
                for fv in rows(FeatureVersion, FeatureVersion.version)
            ],
            "interactions": [
                {
                    "target_id": r.target_id,
                    "label": r.label,
                    "phase": r.phase,
                    "source": r.source,
                    "analyst": r.analyst,
                    "note": r.note,
                    "revision": r.revision,
                    "created_at": _iso(r.created_at),
                    "updated_at": _iso(r.updated_at),
                }
                for r in rows(Interaction, Interaction.id)
            ],
            "interaction_events": [
                {
                    "target_id": e.target_id,
                    "revision": e.revision,
                    "label": e.label,
                    "phase": e.phase,
                    "source": e.source,
                    "analyst": e.analyst,
                    "note": e.note,
                    "created_at": _iso(e.created_at),
                }
                for e in rows(InteractionEvent, InteractionEvent.id)
            ],
            "embeddings": [
                {
                    "phase": e.phase,
                    "feature_version": e.feature_version,
                    "model_version": e.model_version,
                    "dim": e.dim,
                    "vector_b64": base64.b64encode(bytes(e.vector)).decode("ascii"),
                    "created_at": _iso(e.created_at),
                }
                for e in rows(EmbeddingVersion, EmbeddingVersion.phase)
            ],
            "snapshots": [
                {"phase": s.phase, "created_at": _iso(s.created_at), "topk": list(s.topk)}
                for s in rows(PredictionSnapshot, PredictionSnapshot.phase, PredictionSnapshot.id)
            ],
        }


def _check_ts(field: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(field, "must be an ISO 8601 timestamp string")
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError as exc:
        raise ValidationError(field, f"not an ISO 8601 timestamp: {value!r}") from exc


def _list(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValidationError(key, "must be a list of objects")
    return value


def import_item(db: Db, doc: Mapping[str, Any], *, workspace: str) -> ItemRecord:
    """Import a document made by :func:`export_item` as a new item of ``workspace``.

    Everything is validated (same rules as the other writers) before the single write
    transaction; timestamps, revisions and analysts are kept, so exporting the imported item
    gives back the same document.
    """
    if not isinstance(doc, Mapping):
        raise ValidationError("doc", "must be a dict made by export_item")
    if doc.get("format") != EXPORT_FORMAT:
        raise ValidationError("format", f"not an {EXPORT_FORMAT!r} document")
    if doc.get("format_version") != EXPORT_FORMAT_VERSION:
        raise ValidationError(
            "format_version", f"unsupported version {doc.get('format_version')!r}"
        )
    workspace = _req_str("workspace", workspace, MAX_NAME_LEN)
    item = doc.get("item")
    if not isinstance(item, Mapping):
        raise ValidationError("item", "must be an object")
    item_fields = {
        "domain": _check_domain(item.get("domain")),
        "external_id": _check_id("item.external_id", item.get("external_id"), allow_none=True),
        "name": _req_str("item.name", item.get("name"), MAX_NAME_LEN),
        "raw_features": _check_raw_features("item.raw_features", item.get("raw_features")),
        "status": _check_choice("item.status", item.get("status"), ITEM_STATUSES),
        "created_by": _req_str("item.created_by", item.get("created_by"), MAX_SHORT_LEN),
        "created_at": _check_ts("item.created_at", item.get("created_at")),
    }

    fvs = []
    for i, fv in enumerate(_list(doc, "feature_versions")):
        f = f"feature_versions[{i}]"
        fvs.append(
            FeatureVersion(
                item_id=0,
                version=_check_int(f"{f}.version", fv.get("version"), 1, 2**31 - 1),
                features=_check_features(f"{f}.features", fv.get("features")),
                created_by=_req_str(f"{f}.created_by", fv.get("created_by"), MAX_SHORT_LEN),
                created_at=_check_ts(f"{f}.created_at", fv.get("created_at")),
            )
        )
    if len({fv.version for fv in fvs}) != len(fvs):
        raise ValidationError("feature_versions", "duplicate version numbers")

    def decision_fields(f: str, r: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "target_id": _check_id(f"{f}.target_id", r.get("target_id")),
            "label": _check_label(f"{f}.label", r.get("label")),
            "phase": _check_phase(f"{f}.phase", r.get("phase")),
            "source": _check_choice(f"{f}.source", r.get("source"), INTERACTION_SOURCES),
            "analyst": _opt_str(f"{f}.analyst", r.get("analyst"), MAX_SHORT_LEN),
            "note": _opt_str(f"{f}.note", r.get("note"), MAX_TEXT_LEN),
            "revision": _check_int(f"{f}.revision", r.get("revision"), 1, 2**31 - 1),
            "created_at": _check_ts(f"{f}.created_at", r.get("created_at")),
        }

    inters = []
    for i, r in enumerate(_list(doc, "interactions")):
        fields = decision_fields(f"interactions[{i}]", r)
        fields["updated_at"] = _check_ts(f"interactions[{i}].updated_at", r.get("updated_at"))
        inters.append(Interaction(item_id=0, **fields))
    if len({r.target_id for r in inters}) != len(inters):
        raise ValidationError("interactions", "duplicate target ids")
    events = [
        InteractionEvent(item_id=0, **decision_fields(f"interaction_events[{i}]", r))
        for i, r in enumerate(_list(doc, "interaction_events"))
    ]
    if len({(e.target_id, e.revision) for e in events}) != len(events):
        raise ValidationError("interaction_events", "duplicate (target_id, revision)")

    embs = []
    for i, e in enumerate(_list(doc, "embeddings")):
        f = f"embeddings[{i}]"
        b64 = e.get("vector_b64")
        if not isinstance(b64, str):
            raise ValidationError(f"{f}.vector_b64", "must be a base64 string")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"{f}.vector_b64", "invalid base64") from exc
        raw, dim = _check_vector(raw, e.get("dim"))
        embs.append(
            EmbeddingVersion(
                item_id=0,
                phase=_check_phase(f"{f}.phase", e.get("phase")),
                feature_version=_check_int(
                    f"{f}.feature_version", e.get("feature_version"), 0, 2**31 - 1
                ),
                model_version=_req_str(f"{f}.model_version", e.get("model_version"), SHORT_LEN),
                dim=dim,
                vector=raw,
                created_at=_check_ts(f"{f}.created_at", e.get("created_at")),
            )
        )
    if len({e.phase for e in embs}) != len(embs):
        raise ValidationError("embeddings", "duplicate phases")
    snaps = [
        PredictionSnapshot(
            item_id=0,
            phase=_check_phase(f"snapshots[{i}].phase", s.get("phase")),
            created_at=_check_ts(f"snapshots[{i}].created_at", s.get("created_at")),
            topk=_check_snapshot(f"snapshots[{i}].topk", s.get("topk")),
        )
        for i, s in enumerate(_list(doc, "snapshots"))
    ]

    with _write_session(db) as session:
        new = _add_item(session, workspace=workspace, **item_fields)
        assert new.id is not None
        rows: list[Any] = [*fvs, *inters, *events, *embs, *snaps]
        for row in rows:
            row.item_id = new.id
        session.add_all(rows)
        session.flush()
        return _item_record(new, workspace)
