"""Repository: every read and write of EmerFlow Studio's research data.

Each public function takes ``db``: an ``Engine`` (the function is one transaction of its own)
or the ``Session`` of a :func:`unit_of_work` (it joins that transaction, so one analyst action
is one transaction), and returns plain frozen dataclasses (never ORM objects), so callers can
keep them after the session is closed.

Guarantees:

* **Validation first.** Every argument is checked before anything is written; a refusal
  raises :class:`db.errors.ValidationError` (a ``ValueError``) whose ``field`` names the field.
  Unknown items, labels other than 0/1, phases outside 0..3, over-long text (limits below),
  empty names, external/target ids that are not ``str``/``int``, NUL characters, non-finite
  numbers and anything that looks like a credential are refused.
* **No secrets.** String values matching :data:`SECRET_VALUE_PATTERNS` (``sk-...`` API keys,
  ``hf_...`` tokens, private keys, ...) and dict keys / feature names such as ``api_key``,
  ``password`` or ``token`` are refused everywhere, LLM cache included.
* **One row per (item, target).** Decisions are upserted with ``INSERT ... ON CONFLICT DO
  NOTHING`` followed by a locked read-modify-write, so two analysts confirming the same
  association at once leave one ``interaction`` row. Each change of label or note bumps
  ``interaction.revision`` and appends a row to ``interaction_event`` (the decision history);
  repeating an identical decision changes nothing.
* **Atomic refinement.** :func:`record_refinement` writes decisions, the phase embedding and
  the prediction snapshot in one transaction: if anything fails, the previous phase stays
  intact and visible.
* **Suggested features.** Each domain has at most one stored feature list
  (:func:`save_domain_features` upserts it); entries are ``{name, descriptor, why}`` only.
* **Phases.** The current phase of an item is the highest phase with an embedding (0 if none).
  Each (item, phase) has one embedding and one snapshot; re-running the *current* phase
  replaces them, earlier phases are never modified (:class:`db.errors.PhaseError`).

On SQLite, write transactions start with ``BEGIN IMMEDIATE`` (see ``db.database.write_engine``)
so concurrent writers queue on the busy timeout; on PostgreSQL the item row is locked
``FOR UPDATE`` so concurrent refinements of one item are serialized.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func
from sqlmodel import or_, select

from db.converters import (
    _embedding_record,
    _event_record,
    _feature_set_record,
    _fv_record,
    _interaction_record,
    _item_record,
    _snapshot_record,
    _ws_record,
)
from db.errors import (
    ConcurrentUpdateError,
    PhaseError,
    ValidationError,
)
from db.export_import import (
    export_item,
    import_item,
)
from db.limits import (
    DEFAULT_CREATED_BY,
    DEFAULT_STATUS,
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    FLOAT32_BYTES,
    MAX_DECISIONS,
    MAX_DIM,
    MAX_FEATURES,
    MAX_ID_LEN,
    MAX_JSON_CHARS,
    MAX_KEY_LEN,
    MAX_NAME_LEN,
    MAX_RESPONSE_LEN,
    MAX_SHORT_LEN,
    MAX_SNAPSHOT_LEN,
    MAX_TEXT_LEN,
    SECRET_KEY_SUFFIXES,
    SECRET_KEYS,
    SECRET_VALUE_PATTERNS,
)
from db.models import (
    FEATURE_SET_DOMAINS,
    INTERACTION_SOURCES,
    ITEM_STATUSES,
    MIN_PHASE,
    BenchmarkRun,
    DomainFeatureSet,
    EmbeddingVersion,
    FeatureVersion,
    Interaction,
    InteractionEvent,
    Item,
    LLMCache,
    PredictionSnapshot,
    Workspace,
)
from db.records import (
    BenchmarkRunRecord,
    DomainFeatureSetRecord,
    EmbeddingRecord,
    FeatureVersionRecord,
    InteractionEventRecord,
    InteractionRecord,
    ItemRecord,
    SnapshotRecord,
    WorkspaceRecord,
)
from db.transactions import (
    Db,
    _add_item,
    _apply_decisions,
    _check_feature_version_exists,
    _get_item,
    _insert,
    _insert_snapshot,
    _lock_item,
    _phase_of,
    _upsert_embedding,
    _workspace_by_name,
    _write_session,
    read_session,
    unit_of_work,
)
from db.validators import (
    FEATURE_KEYS,
    SUGGESTED_FEATURE_KEYS,
    _check_choice,
    _check_decisions,
    _check_domain,
    _check_features,
    _check_id,
    _check_int,
    _check_item_id,
    _check_json_doc,
    _check_model_version,
    _check_phase,
    _check_raw_features,
    _check_snapshot,
    _check_str,
    _check_suggested_features,
    _check_vector,
    _now,
    _opt_str,
    _req_str,
    _utc,
    llm_cache_key,
    normalize_name,
)


# Workspaces -------------------------------------------------------------------------------------
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


# Items ------------------------------------------------------------------------------------------
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


def item_version(db: Db, item_id: int, *, lock: bool = False) -> tuple[int, int]:
    """``(phase, phase_version)`` of the item: pass the version to :func:`record_refinement`
    as ``expected_version`` to refuse a refinement computed from an outdated state.

    ``lock``: inside a :func:`unit_of_work`, lock the item row until that unit ends
    (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already serializes writers)."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        item = _lock_item(session, item_id) if lock else _get_item(session, item_id)
        return _phase_of(session, item_id), int(item.phase_version or 0)


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


# Feature versions -------------------------------------------------------------------------------
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


# Phases, embeddings, decisions ------------------------------------------------------------------
def save_phase0(
    db: Db,
    item_id: int,
    *,
    feature_version: int,
    model_version: str,
    vector: bytes,
    dim: int,
    snapshot: list[dict[str, Any]],
) -> None:
    """Store the phase-0 embedding and top-k snapshot of the item (one transaction).

    Re-running replaces the phase-0 rows while the item is still in phase 0; once a later
    phase exists, :class:`PhaseError` is raised and nothing changes. ``feature_version`` must
    be one of the item's versions, or 0 for "raw features, no reviewed version".
    """
    item_id = _check_item_id(item_id)
    fv = _check_int("feature_version", feature_version, 0, 2**31 - 1)
    model_version = _check_model_version(model_version)
    raw, dim = _check_vector(vector, dim)
    topk = _check_snapshot("snapshot", snapshot)
    now = _now()
    with _write_session(db) as session:
        item = _lock_item(session, item_id)
        current = _phase_of(session, item_id)
        if current > 0:
            raise PhaseError("phase", f"item {item_id} is already in phase {current}")
        item.phase_version = int(item.phase_version or 0) + 1
        session.add(item)
        _check_feature_version_exists(session, item_id, fv)
        _upsert_embedding(
            session,
            item_id,
            phase=0,
            feature_version=fv,
            model_version=model_version,
            dim=dim,
            vector=raw,
            now=now,
        )
        _insert_snapshot(session, item_id, phase=0, topk=topk, now=now)


def record_refinement(
    db: Db,
    item_id: int,
    *,
    phase: int,
    decisions: list[dict[str, Any]],
    analyst: str,
    source: str,
    vector: bytes,
    dim: int,
    feature_version: int,
    model_version: str,
    snapshot: list[dict[str, Any]],
    expected_version: int | None = None,
) -> int:
    """Record a refinement to ``phase`` (1..3): decisions (with their notes), embedding and
    snapshot, atomically. Returns the item's new ``phase_version``.

    ``phase`` may be the current phase (re-run: replaces that phase's embedding and snapshot)
    or any later one; an earlier phase raises :class:`PhaseError`. With ``expected_version``
    (from :func:`item_version`, read before the refinement was computed), a refinement that
    another one overtook raises :class:`ConcurrentUpdateError`. If anything fails, nothing is
    written and the previous phase stays intact.
    """
    item_id = _check_item_id(item_id)
    phase = _check_phase("phase", phase, lo=MIN_PHASE)
    if phase == 0:
        raise PhaseError("phase", "phase 0 has no interactions; use save_phase0")
    clean = _check_decisions("decisions", decisions)
    analyst = _req_str("analyst", analyst, MAX_SHORT_LEN)
    source = _check_choice("source", source, INTERACTION_SOURCES)
    raw, dim = _check_vector(vector, dim)
    fv = _check_int("feature_version", feature_version, 0, 2**31 - 1)
    model_version = _check_model_version(model_version)
    topk = _check_snapshot("snapshot", snapshot)
    if expected_version is not None:
        expected_version = _check_int("expected_version", expected_version, 0, 2**62)
    now = _now()
    with _write_session(db) as session:
        item = _lock_item(session, item_id)
        current = _phase_of(session, item_id)
        version = int(item.phase_version or 0)
        if expected_version is not None and version != expected_version:
            raise ConcurrentUpdateError(
                "phase_version",
                f"item {item_id} was refined by someone else (now phase {current})",
                phase=current, version=version,
            )
        if phase < current:
            raise PhaseError("phase", f"item {item_id} is in phase {current}; cannot go to {phase}")
        item.phase_version = version + 1
        session.add(item)
        _check_feature_version_exists(session, item_id, fv)
        _apply_decisions(
            session, item_id, clean, phase=phase, analyst=analyst, source=source, now=now
        )
        _upsert_embedding(
            session,
            item_id,
            phase=phase,
            feature_version=fv,
            model_version=model_version,
            dim=dim,
            vector=raw,
            now=now,
        )
        _insert_snapshot(session, item_id, phase=phase, topk=topk, now=now)
        return version + 1


def record_decisions(
    db: Db,
    item_id: int,
    *,
    phase: int,
    decisions: list[dict[str, Any]],
    analyst: str | None,
    source: str,
) -> int:
    """Upsert decisions ``[{target_id, label, note?}]`` without refining the embedding.

    Returns the number of interactions created or changed (repeating an identical decision
    counts 0). A ``note`` of ``None`` keeps the existing note.
    """
    item_id = _check_item_id(item_id)
    phase = _check_phase("phase", phase)
    clean = _check_decisions("decisions", decisions)
    analyst = _opt_str("analyst", analyst, MAX_SHORT_LEN)
    source = _check_choice("source", source, INTERACTION_SOURCES)
    with _write_session(db) as session:
        _lock_item(session, item_id)
        return _apply_decisions(
            session, item_id, clean, phase=phase, analyst=analyst, source=source, now=_now()
        )


def current_phase(db: Db, item_id: int) -> int:
    """Highest phase (0..3) with a stored embedding; 0 when the item has none yet."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        return _phase_of(session, item_id)


def interactions(db: Db, item_id: int) -> list[InteractionRecord]:
    """Current decisions of the item (one per target), in arrival order."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(Interaction).where(Interaction.item_id == item_id).order_by(Interaction.id)
        )
        return [_interaction_record(r) for r in rows]


def interaction_history(
    db: Db, item_id: int, target_id: str | int | None = None
) -> list[InteractionEventRecord]:
    """Every revision of the item's decisions (optionally of one target), oldest first."""
    item_id = _check_item_id(item_id)
    target = _check_id("target_id", target_id, allow_none=True)
    with read_session(db) as session:
        _get_item(session, item_id)
        query = select(InteractionEvent).where(InteractionEvent.item_id == item_id)
        if target is not None:
            query = query.where(InteractionEvent.target_id == target)
        return [_event_record(r) for r in session.exec(query.order_by(InteractionEvent.id))]


def embeddings(db: Db, item_id: int) -> list[EmbeddingRecord]:
    """Embedding versions of the item, by phase."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(EmbeddingVersion)
            .where(EmbeddingVersion.item_id == item_id)
            .order_by(EmbeddingVersion.phase)
        )
        return [_embedding_record(r) for r in rows]


def snapshots(db: Db, item_id: int) -> list[SnapshotRecord]:
    """Prediction snapshots of the item, by phase."""
    item_id = _check_item_id(item_id)
    with read_session(db) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(PredictionSnapshot)
            .where(PredictionSnapshot.item_id == item_id)
            .order_by(PredictionSnapshot.phase, PredictionSnapshot.id)
        )
        return [_snapshot_record(r) for r in rows]


# LLM cache and benchmarks -----------------------------------------------------------------------
def llm_cache_get(db: Db, key: str) -> str | None:
    """The cached response for ``key``, or ``None``."""
    with read_session(db) as session:
        return session.exec(select(LLMCache.response).where(LLMCache.key == key)).first()


def llm_cache_put(
    db: Db,
    *,
    key: str,
    provider: str,
    model: str,
    prompt_version: str,
    input_hash: str,
    response: str,
) -> None:
    """Cache ``response`` under ``key`` (see :func:`llm_cache_key`); a second put is a no-op.

    Nothing credential-like is accepted in any field, the response included.
    """
    key = _req_str("key", key, MAX_KEY_LEN)
    provider = _req_str("provider", provider, MAX_SHORT_LEN)
    model = _req_str("model", model, MAX_SHORT_LEN)
    prompt_version = _req_str("prompt_version", prompt_version, MAX_SHORT_LEN)
    input_hash = _req_str("input_hash", input_hash, MAX_ID_LEN)
    response = _check_str("response", response, MAX_RESPONSE_LEN, required=False) or ""
    with _write_session(db) as session:
        stmt = _insert(session, LLMCache.__table__).values(
            key=key,
            provider=provider,
            model=model,
            prompt_version=prompt_version,
            input_hash=input_hash,
            response=response,
            created_at=_now(),
        )
        session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


def save_benchmark_run(
    db: Db, *, dataset: str, method: str, config: dict[str, Any], result: dict[str, Any]
) -> int:
    """Store one benchmark run; returns its id."""
    dataset = _req_str("dataset", dataset, MAX_NAME_LEN)
    method = _req_str("method", method, MAX_SHORT_LEN)
    config = _check_json_doc("config", config, dict)
    result = _check_json_doc("result", result, dict)
    with _write_session(db) as session:
        run = BenchmarkRun(
            dataset=dataset, method=method, config=config, result=result, created_at=_now()
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def benchmark_runs(
    db: Db, *, dataset: str | None = None, method: str | None = None
) -> list[BenchmarkRunRecord]:
    """Stored benchmark runs (optionally filtered), oldest first."""
    with read_session(db) as session:
        query = select(BenchmarkRun)
        if dataset is not None:
            query = query.where(BenchmarkRun.dataset == dataset)
        if method is not None:
            query = query.where(BenchmarkRun.method == method)
        return [
            BenchmarkRunRecord(
                id=r.id or 0,
                dataset=r.dataset,
                method=r.method,
                config=dict(r.config),
                result=dict(r.result),
                created_at=_utc(r.created_at),
            )
            for r in session.exec(query.order_by(BenchmarkRun.id))
        ]


# Suggested features per domain ------------------------------------------------------------------
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


#: The public names of the repository (records, limits, readers and writers, sessions).
__all__ = [
    "BenchmarkRunRecord",
    "DEFAULT_CREATED_BY",
    "DEFAULT_STATUS",
    "Db",
    "DomainFeatureSetRecord",
    "EXPORT_FORMAT",
    "EXPORT_FORMAT_VERSION",
    "EmbeddingRecord",
    "FEATURE_KEYS",
    "FLOAT32_BYTES",
    "FeatureVersionRecord",
    "InteractionEventRecord",
    "InteractionRecord",
    "ItemRecord",
    "MAX_DECISIONS",
    "MAX_DIM",
    "MAX_FEATURES",
    "MAX_ID_LEN",
    "MAX_JSON_CHARS",
    "MAX_KEY_LEN",
    "MAX_NAME_LEN",
    "MAX_RESPONSE_LEN",
    "MAX_SHORT_LEN",
    "MAX_SNAPSHOT_LEN",
    "MAX_TEXT_LEN",
    "SECRET_KEYS",
    "SECRET_KEY_SUFFIXES",
    "SECRET_VALUE_PATTERNS",
    "SUGGESTED_FEATURE_KEYS",
    "SnapshotRecord",
    "WorkspaceRecord",
    "benchmark_runs",
    "create_item",
    "create_item_with_features",
    "current_phase",
    "embeddings",
    "export_item",
    "feature_versions",
    "find_duplicates",
    "get_domain_features",
    "get_item",
    "get_workspace",
    "import_item",
    "interaction_history",
    "interactions",
    "item_version",
    "latest_feature_version",
    "list_items",
    "list_workspaces",
    "llm_cache_get",
    "llm_cache_key",
    "llm_cache_put",
    "normalize_name",
    "read_session",
    "record_decisions",
    "record_refinement",
    "save_benchmark_run",
    "save_domain_features",
    "save_feature_version",
    "save_phase0",
    "set_item_status",
    "snapshots",
    "unit_of_work",
    "upsert_workspace",
]
