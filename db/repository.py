"""Repository: every read and write of EmerFlow Studio's research data.

This module is the repository's one import point; the functions live in :mod:`db.repo`, one
module per concern (workspaces, items, features, phases, decisions, LLM cache, benchmark runs).

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

from db.export_import import export_item, import_item
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
from db.repo.benchmarks import benchmark_runs, save_benchmark_run
from db.repo.decisions import interaction_history, interactions, record_decisions
from db.repo.features import (
    feature_versions,
    get_domain_features,
    latest_feature_version,
    save_domain_features,
    save_feature_version,
)
from db.repo.items import (
    create_item,
    create_item_with_features,
    find_duplicates,
    get_item,
    list_items,
    set_item_status,
)
from db.repo.llm_cache import llm_cache_get, llm_cache_put
from db.repo.phases import (
    current_phase,
    embeddings,
    item_version,
    record_refinement,
    save_phase0,
    snapshots,
)
from db.repo.workspaces import get_workspace, list_workspaces, upsert_workspace
from db.transactions import Db, read_session, unit_of_work
from db.validators import FEATURE_KEYS, SUGGESTED_FEATURE_KEYS, llm_cache_key, normalize_name

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
