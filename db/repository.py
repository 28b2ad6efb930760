"""Repository: every read and write of EmerFlow Studio's research data.

Each public function is one transaction on the given engine and returns plain frozen
dataclasses (never ORM objects), so callers can keep them after the session is closed.

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

import base64
import binascii
import json
import math
import re
import unicodedata
from array import array
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from numbers import Integral, Real
from typing import Any

from sqlalchemy import Table, delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, or_, select

from db.database import write_engine
from db.errors import (
    ConcurrentUpdateError,
    DBError,
    DuplicateError,
    NotFoundError,
    PhaseError,
    SecretRefusedError,
    ValidationError,
)
from db.models import (
    FEATURE_SET_DOMAINS,
    FEATURE_SOURCES,
    ID_LEN,
    INTERACTION_SOURCES,
    ITEM_STATUSES,
    KEY_LEN,
    MAX_PHASE,
    MIN_PHASE,
    NAME_LEN,
    SHORT_LEN,
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

# Limits -----------------------------------------------------------------------------------------
MAX_NAME_LEN = NAME_LEN  #: item, workspace and dataset names
MAX_SHORT_LEN = SHORT_LEN  #: analyst, created_by, model versions, providers, feature names
MAX_ID_LEN = ID_LEN  #: external ids and target ids
MAX_KEY_LEN = KEY_LEN  #: llm_cache keys
MAX_TEXT_LEN = 20_000  #: one feature value, raw feature value or note
MAX_RESPONSE_LEN = 2_000_000  #: one cached LLM response
MAX_JSON_CHARS = 5_000_000  #: serialized size of one JSON document (features, config, ...)
MAX_FEATURES = 1_000  #: features in one feature version
MAX_DECISIONS = 100_000  #: decisions in one call
MAX_SNAPSHOT_LEN = 10_000  #: entries in one top-k snapshot
MAX_DIM = 65_536  #: embedding dimension
FLOAT32_BYTES = 4

DEFAULT_STATUS = "emerging"
DEFAULT_CREATED_BY = "analyst"

#: Name and version of the export document format.
EXPORT_FORMAT = "emerflow-item"
EXPORT_FORMAT_VERSION = 1

#: String values that look like credentials; any match is refused.
SECRET_VALUE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]*[A-Za-z0-9]{16}"),  # OpenAI/Anthropic-style
    re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),  # Hugging Face tokens
    re.compile(r"(?<![A-Za-z0-9])gh[pousr]_[A-Za-z0-9]{36,}"),  # GitHub tokens
    re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"),  # AWS access key ids
    re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}"),  # Google API keys
    re.compile(r"(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{20,}"),
)
#: Normalized (lower-case, alphanumerics only) dict keys / feature names that are refused.
SECRET_KEYS: frozenset[str] = frozenset(
    {
        "apikey",
        "password",
        "passwd",
        "pwd",
        "secret",
        "secretkey",
        "clientsecret",
        "token",
        "accesstoken",
        "refreshtoken",
        "authtoken",
        "bearertoken",
        "idtoken",
        "sessiontoken",
        "authorization",
        "privatekey",
        "credentials",
    }
)
#: Normalized key suffixes that are refused (``openai_api_key``, ``db_password``, ...).
SECRET_KEY_SUFFIXES: tuple[str, ...] = (
    "apikey",
    "password",
    "secret",
    "secretkey",
    "accesstoken",
    "authtoken",
    "privatekey",
)
_DOMAIN_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")


# Records ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkspaceRecord:
    """A workspace. ``inputs``: source files -> checksums; ``model_versions``: free dict."""

    id: int
    name: str
    domain: str
    dataset: str
    inputs: dict[str, Any]
    model_versions: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ItemRecord:
    """An item. ``workspace`` is the workspace name; ``status`` is emerging|established."""

    id: int
    workspace_id: int
    workspace: str
    domain: str
    external_id: str | None
    name: str
    normalized_name: str
    raw_features: dict[str, Any]
    status: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class FeatureVersionRecord:
    """One version (1, 2, ...) of an item's reviewed features (list of feature dicts)."""

    id: int
    item_id: int
    version: int
    features: list[dict[str, Any]]
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class InteractionRecord:
    """The current decision on one (item, target); ``phase`` is the phase it first arrived in,
    ``source``/``analyst``/``note`` those of the latest revision."""

    id: int
    item_id: int
    target_id: str
    label: int
    phase: int
    source: str
    analyst: str | None
    note: str | None
    revision: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class InteractionEventRecord:
    """One revision of a decision (the history); ``phase`` is when that decision was made."""

    id: int
    item_id: int
    target_id: str
    revision: int
    label: int
    phase: int
    source: str
    analyst: str | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class EmbeddingRecord:
    """The item embedding of one phase; ``vector`` is ``dim`` float32 values (native order)."""

    id: int
    item_id: int
    phase: int
    feature_version: int
    model_version: str
    dim: int
    vector: bytes
    created_at: datetime


@dataclass(frozen=True)
class SnapshotRecord:
    """Top-k predictions at one phase: ``topk`` is ``[{rank, target_id, score}, ...]``."""

    id: int
    item_id: int
    phase: int
    created_at: datetime
    topk: list[dict[str, Any]]


@dataclass(frozen=True)
class BenchmarkRunRecord:
    """One stored benchmark run."""

    id: int
    dataset: str
    method: str
    config: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class DomainFeatureSetRecord:
    """The suggested feature list of one domain: ``features`` is ``[{name, descriptor, why}]``,
    ``provenance`` e.g. ``{provider, model, prompt_version}``."""

    id: int
    domain: str
    features: list[dict[str, str]]
    provenance: dict[str, Any]
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True)
class _Decision:
    target_id: str
    label: int
    note: str | None


# Helpers: time, names ---------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite returns naive values)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat()


def normalize_name(name: str) -> str:
    """Case-, accent-, space- and punctuation-insensitive form of a name.

    ``"Alzheimer's Disease"``, ``"alzheimers-disease"`` and ``"ALZHEIMERS  DISEASE"`` all give
    ``"alzheimersdisease"``.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return "".join(ch for ch in stripped.casefold() if ch.isalnum())


def llm_cache_key(provider: str, model: str, prompt_version: str, input_hash: str) -> str:
    """The canonical ``llm_cache`` key: ``provider:model:prompt_version:input_hash``."""
    return f"{provider}:{model}:{prompt_version}:{input_hash}"


# Helpers: validation ----------------------------------------------------------------------------
def _is_secret_key(key: str) -> bool:
    norm = "".join(ch for ch in key.lower() if ch.isalnum())
    return norm in SECRET_KEYS or norm.endswith(SECRET_KEY_SUFFIXES)


def _check_no_secret(field: str, value: str) -> None:
    for pattern in SECRET_VALUE_PATTERNS:
        if pattern.search(value):
            raise SecretRefusedError(
                field, "looks like a credential (API key/token); secrets are never stored"
            )


def _check_str(
    field: str,
    value: Any,
    max_len: int,
    *,
    required: bool = True,
    allow_none: bool = False,
) -> str | None:
    """A validated string (stripped of nothing); ``None`` only when ``allow_none``."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise ValidationError(field, "must not be empty")
    if len(value) > max_len:
        raise ValidationError(field, f"too long ({len(value)} > {max_len} characters)")
    if "\x00" in value:
        raise ValidationError(field, "must not contain NUL characters")
    _check_no_secret(field, value)
    return value


def _req_str(field: str, value: Any, max_len: int) -> str:
    result = _check_str(field, value, max_len)
    assert result is not None
    return result


def _opt_str(field: str, value: Any, max_len: int) -> str | None:
    return _check_str(field, value, max_len, required=False, allow_none=True)


def _check_id(field: str, value: Any, *, allow_none: bool = False) -> str | None:
    """An external/target id: a non-empty ``str`` or an ``int`` (stored as ``str``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, Integral)):
        raise ValidationError(field, f"must be a str or int id, got {type(value).__name__}")
    text = str(int(value)) if isinstance(value, Integral) else value.strip()
    if not text:
        raise ValidationError(field, "must not be empty")
    if len(text) > MAX_ID_LEN:
        raise ValidationError(field, f"too long ({len(text)} > {MAX_ID_LEN} characters)")
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValidationError(field, "must not contain whitespace or control characters")
    _check_no_secret(field, text)
    return text


def _check_int(field: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValidationError(field, f"must be an int, got {type(value).__name__}")
    number = int(value)
    if not lo <= number <= hi:
        raise ValidationError(field, f"must be between {lo} and {hi}, got {number}")
    return number


def _check_phase(field: str, value: Any, lo: int = MIN_PHASE) -> int:
    return _check_int(field, value, lo, MAX_PHASE)


def _check_label(field: str, value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, Integral) or int(value) not in (0, 1):
        raise ValidationError(field, f"label must be 0 or 1, got {value!r}")
    return int(value)


def _check_choice(field: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValidationError(field, f"must be one of {list(choices)}, got {value!r}")
    return str(value)


def _check_json(field: str, value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe copy of ``value``: finite numbers, no NUL, no secret keys or values."""
    if depth > 32:
        raise ValidationError(field, "nested too deeply")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValidationError(field, "numbers must be finite (no NaN/inf)")
        return number
    if isinstance(value, str):
        return _check_str(field, value, MAX_JSON_CHARS, required=False)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, f"keys must be strings, got {type(key).__name__}")
            sub = f"{field}.{key}"
            _check_str(sub, key, MAX_SHORT_LEN, required=False)
            if _is_secret_key(key):
                raise SecretRefusedError(sub, "credential-like keys are never stored")
            out[key] = _check_json(sub, item, depth=depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_check_json(f"{field}[{i}]", v, depth=depth + 1) for i, v in enumerate(value)]
    raise ValidationError(field, f"not JSON-serializable: {type(value).__name__}")


def _check_json_doc(field: str, value: Any, kind: type) -> Any:
    if not isinstance(value, Mapping if kind is dict else (list, tuple)):
        raise ValidationError(field, f"must be a {kind.__name__}, got {type(value).__name__}")
    clean = _check_json(field, value)
    size = len(json.dumps(clean))
    if size > MAX_JSON_CHARS:
        raise ValidationError(field, f"too large ({size} > {MAX_JSON_CHARS} characters)")
    return clean


def _check_scalar(field: str, value: Any) -> Any:
    """A feature value: str (bounded), int, finite float, bool or None."""
    if isinstance(value, str):
        return _check_str(field, value, MAX_TEXT_LEN, required=False)
    if value is None or isinstance(value, (bool, Real)):
        return _check_json(field, value)
    raise ValidationError(field, f"must be a str, number, bool or None, got {type(value).__name__}")


def _check_raw_features(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"must be a dict, got {type(value).__name__}")
    if len(value) > MAX_FEATURES:
        raise ValidationError(field, f"too many features ({len(value)} > {MAX_FEATURES})")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValidationError(field, f"keys must be strings, got {type(key).__name__}")
        sub = f"{field}.{key}"
        _req_str(sub, key, MAX_SHORT_LEN)
        if _is_secret_key(key):
            raise SecretRefusedError(sub, "credential-like feature names are never stored")
        out[key] = _check_scalar(sub, item)
    return out


#: Canonical keys of one feature dict, in storage order.
FEATURE_KEYS: tuple[str, ...] = (
    "name",
    "descriptor",
    "value",
    "keep",
    "source",
    "provider",
    "model",
    "prompt_version",
    "analyst",
    "edited_at",
)


def _check_features(field: str, features: Any) -> list[dict[str, Any]]:
    """Validate and normalize a feature list (all canonical keys present, extras kept)."""
    if not isinstance(features, (list, tuple)):
        raise ValidationError(field, f"must be a list, got {type(features).__name__}")
    if len(features) > MAX_FEATURES:
        raise ValidationError(field, f"too many features ({len(features)} > {MAX_FEATURES})")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, feature in enumerate(features):
        sub = f"{field}[{i}]"
        if not isinstance(feature, Mapping):
            raise ValidationError(sub, f"must be a dict, got {type(feature).__name__}")
        name = _req_str(f"{sub}.name", feature.get("name"), MAX_SHORT_LEN)
        if _is_secret_key(name):
            raise SecretRefusedError(f"{sub}.name", "credential-like feature names are refused")
        if name in seen:
            raise ValidationError(f"{sub}.name", f"duplicate feature name {name!r}")
        seen.add(name)
        if "value" not in feature:
            raise ValidationError(f"{sub}.value", "is required")
        keep = feature.get("keep", True)
        if not isinstance(keep, bool):
            raise ValidationError(f"{sub}.keep", "must be a bool")
        clean: dict[str, Any] = {
            "name": name,
            "descriptor": _opt_str(f"{sub}.descriptor", feature.get("descriptor"), MAX_SHORT_LEN),
            "value": _check_scalar(f"{sub}.value", feature["value"]),
            "keep": keep,
            "source": _check_choice(f"{sub}.source", feature.get("source"), FEATURE_SOURCES),
        }
        for key in ("provider", "model", "prompt_version", "analyst", "edited_at"):
            clean[key] = _opt_str(f"{sub}.{key}", feature.get(key), MAX_SHORT_LEN)
        extras = {k: v for k, v in feature.items() if k not in FEATURE_KEYS}
        clean.update(_check_json(sub, extras))
        out.append(clean)
    size = len(json.dumps(out))
    if size > MAX_JSON_CHARS:
        raise ValidationError(field, f"too large ({size} > {MAX_JSON_CHARS} characters)")
    return out


#: Keys of one suggested-feature dict (see :func:`save_domain_features`).
SUGGESTED_FEATURE_KEYS: tuple[str, ...] = ("name", "descriptor", "why")


def _check_suggested_features(field: str, features: Any) -> list[dict[str, str]]:
    """Validate a suggested feature list: ``[{name, descriptor, why}]``, unique names."""
    if not isinstance(features, (list, tuple)):
        raise ValidationError(field, f"must be a list, got {type(features).__name__}")
    if len(features) > MAX_FEATURES:
        raise ValidationError(field, f"too many features ({len(features)} > {MAX_FEATURES})")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, feature in enumerate(features):
        sub = f"{field}[{i}]"
        if not isinstance(feature, Mapping):
            raise ValidationError(sub, f"must be a dict, got {type(feature).__name__}")
        unknown = set(feature) - set(SUGGESTED_FEATURE_KEYS)
        if unknown:
            raise ValidationError(sub, f"unknown keys {sorted(map(str, unknown))}")
        name = _req_str(f"{sub}.name", feature.get("name"), MAX_SHORT_LEN)
        if _is_secret_key(name):
            raise SecretRefusedError(f"{sub}.name", "credential-like feature names are refused")
        if name in seen:
            raise ValidationError(f"{sub}.name", f"duplicate feature name {name!r}")
        seen.add(name)
        descriptor = _req_str(f"{sub}.descriptor", feature.get("descriptor"), MAX_SHORT_LEN)
        why = _check_str(f"{sub}.why", feature.get("why", ""), MAX_TEXT_LEN, required=False)
        out.append({"name": name, "descriptor": descriptor, "why": why or ""})
    return out


def _check_decisions(field: str, decisions: Any) -> list[_Decision]:
    if not isinstance(decisions, (list, tuple)):
        raise ValidationError(field, f"must be a list, got {type(decisions).__name__}")
    if len(decisions) > MAX_DECISIONS:
        raise ValidationError(field, f"too many decisions ({len(decisions)} > {MAX_DECISIONS})")
    out: list[_Decision] = []
    for i, decision in enumerate(decisions):
        sub = f"{field}[{i}]"
        if not isinstance(decision, Mapping):
            raise ValidationError(sub, f"must be a dict, got {type(decision).__name__}")
        unknown = set(decision) - {"target_id", "label", "note"}
        if unknown:
            raise ValidationError(sub, f"unknown keys {sorted(map(str, unknown))}")
        target = _check_id(f"{sub}.target_id", decision.get("target_id"))
        assert target is not None
        label = _check_label(f"{sub}.label", decision.get("label"))
        note = _check_str(
            f"{sub}.note", decision.get("note"), MAX_TEXT_LEN, required=False, allow_none=True
        )
        out.append(_Decision(target, label, note or None))
    return out


def _check_vector(vector: Any, dim: Any) -> tuple[bytes, int]:
    dim = _check_int("dim", dim, 1, MAX_DIM)
    if not isinstance(vector, (bytes, bytearray, memoryview)):
        raise ValidationError("vector", f"must be float32 bytes, got {type(vector).__name__}")
    raw = bytes(vector)
    if len(raw) != dim * FLOAT32_BYTES:
        raise ValidationError(
            "vector", f"has {len(raw)} bytes, expected dim*4 = {dim * FLOAT32_BYTES}"
        )
    values = array("f")
    values.frombytes(raw)
    if not all(math.isfinite(v) for v in values):
        raise ValidationError("vector", "contains NaN or infinite values")
    return raw, dim


def _check_snapshot(field: str, snapshot: Any) -> list[dict[str, Any]]:
    """Validate a top-k list; returns ``[{rank, target_id, score}]`` sorted by rank."""
    if not isinstance(snapshot, (list, tuple)):
        raise ValidationError(field, f"must be a list, got {type(snapshot).__name__}")
    if len(snapshot) > MAX_SNAPSHOT_LEN:
        raise ValidationError(field, f"too long ({len(snapshot)} > {MAX_SNAPSHOT_LEN})")
    out: list[dict[str, Any]] = []
    ranks: set[int] = set()
    for i, entry in enumerate(snapshot):
        sub = f"{field}[{i}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(sub, f"must be a dict, got {type(entry).__name__}")
        rank = _check_int(f"{sub}.rank", entry.get("rank"), 1, 10 * MAX_SNAPSHOT_LEN)
        if rank in ranks:
            raise ValidationError(f"{sub}.rank", f"duplicate rank {rank}")
        ranks.add(rank)
        target = _check_id(f"{sub}.target_id", entry.get("target_id"))
        score = entry.get("score")
        if isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score):
            raise ValidationError(f"{sub}.score", f"must be a finite number, got {score!r}")
        out.append({"rank": rank, "target_id": target, "score": float(score)})
    out.sort(key=lambda e: e["rank"])
    return out


def _check_item_id(item_id: Any) -> int:
    if isinstance(item_id, bool) or not isinstance(item_id, Integral):
        raise NotFoundError("item_id", f"must be an int item id, got {item_id!r}")
    return int(item_id)


def _check_domain(value: Any) -> str:
    domain = _req_str("domain", value, 32)
    if not _DOMAIN_RE.match(domain):
        raise ValidationError("domain", f"must be a lower-case identifier, got {domain!r}")
    return domain


def _check_model_version(value: Any) -> str:
    return _req_str("model_version", value, MAX_SHORT_LEN)


# Helpers: sessions and SQL ----------------------------------------------------------------------
@contextmanager
def _write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
    with Session(write_engine(engine), expire_on_commit=False) as session:
        with session.begin():
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


# Workspaces -------------------------------------------------------------------------------------
def upsert_workspace(
    engine: Engine,
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
    with _write_session(engine) as session:
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


def get_workspace(engine: Engine, name: str) -> WorkspaceRecord | None:
    """The workspace called ``name``, or ``None``."""
    with Session(engine) as session:
        ws = _workspace_by_name(session, name)
        return _ws_record(ws) if ws is not None else None


def list_workspaces(engine: Engine) -> list[WorkspaceRecord]:
    """All workspaces, by name."""
    with Session(engine) as session:
        return [_ws_record(w) for w in session.exec(select(Workspace).order_by(Workspace.name))]


# Items ------------------------------------------------------------------------------------------
def create_item(
    engine: Engine,
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
    with _write_session(engine) as session:
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
        .on_conflict_do_nothing()  # (workspace, name) and (workspace, external_id) unique
        .returning(table.c.id)
    )
    row = session.execute(stmt).first()
    if row is None:
        same_name = session.exec(
            select(Item.id).where(Item.workspace_id == ws.id, Item.name == name)
        ).first()
        if same_name is not None:
            raise DuplicateError(
                "name", f"workspace {workspace!r} already has an item named {name!r} "
                f"(#{same_name})"
            )
        raise DuplicateError(
            "external_id", f"workspace {workspace!r} already has an item {external_id!r}"
        )
    return _get_item(session, row[0])


def create_item_with_features(
    engine: Engine,
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
    with _write_session(engine) as session:
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


def item_version(engine: Engine, item_id: int) -> tuple[int, int]:
    """``(phase, phase_version)`` of the item: pass the version to :func:`record_refinement`
    as ``expected_version`` to refuse a refinement computed from an outdated state."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        item = _get_item(session, item_id)
        return _phase_of(session, item_id), int(item.phase_version or 0)


def find_duplicates(
    engine: Engine, *, workspace: str, name: str, external_id: str | int | None = None
) -> list[ItemRecord]:
    """Items of ``workspace`` with the same normalized name or the same external id."""
    norm = normalize_name(_req_str("name", name, MAX_NAME_LEN))
    ext = _check_id("external_id", external_id, allow_none=True)
    with Session(engine) as session:
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


def get_item(engine: Engine, item_id: int) -> ItemRecord:
    """The item ``item_id`` (:class:`NotFoundError` if unknown)."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        item = _get_item(session, item_id)
        ws = session.get(Workspace, item.workspace_id)
        assert ws is not None
        return _item_record(item, ws.name)


def list_items(engine: Engine, workspace: str, status: str | None = None) -> list[ItemRecord]:
    """Items of ``workspace`` (optionally only one status), oldest first; [] if no workspace."""
    if status is not None:
        status = _check_choice("status", status, ITEM_STATUSES)
    with Session(engine) as session:
        ws = _workspace_by_name(session, workspace)
        if ws is None:
            return []
        query = select(Item).where(Item.workspace_id == ws.id)
        if status is not None:
            query = query.where(Item.status == status)
        return [_item_record(r, ws.name) for r in session.exec(query.order_by(Item.id))]


def set_item_status(engine: Engine, item_id: int, status: str) -> ItemRecord:
    """Mark an item ``emerging`` or ``established``."""
    item_id = _check_item_id(item_id)
    status = _check_choice("status", status, ITEM_STATUSES)
    with _write_session(engine) as session:
        item = _lock_item(session, item_id)
        item.status = status
        session.add(item)
        session.flush()
        ws = session.get(Workspace, item.workspace_id)
        assert ws is not None
        return _item_record(item, ws.name)


# Feature versions -------------------------------------------------------------------------------
def save_feature_version(
    engine: Engine, item_id: int, features: list[dict[str, Any]], created_by: str
) -> FeatureVersionRecord:
    """Store ``features`` as the item's next feature version (1, 2, ...).

    Each feature dict needs ``name``, ``value`` and ``source`` (dataset|llm|analyst); the
    other canonical keys (:data:`FEATURE_KEYS`) default to ``None`` (``keep`` to ``True``).
    """
    item_id = _check_item_id(item_id)
    clean = _check_features("features", features)
    created_by = _req_str("created_by", created_by, MAX_SHORT_LEN)
    with _write_session(engine) as session:
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


def latest_feature_version(engine: Engine, item_id: int) -> FeatureVersionRecord | None:
    """The item's newest feature version, or ``None`` when it has none."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        _get_item(session, item_id)
        fv = session.exec(
            select(FeatureVersion)
            .where(FeatureVersion.item_id == item_id)
            .order_by(FeatureVersion.version.desc())  # type: ignore[attr-defined]
        ).first()
        return _fv_record(fv) if fv is not None else None


def feature_versions(engine: Engine, item_id: int) -> list[FeatureVersionRecord]:
    """All feature versions of the item, oldest first."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(FeatureVersion)
            .where(FeatureVersion.item_id == item_id)
            .order_by(FeatureVersion.version)
        )
        return [_fv_record(r) for r in rows]


# Phases, embeddings, decisions ------------------------------------------------------------------
def save_phase0(
    engine: Engine,
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
    with _write_session(engine) as session:
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
    engine: Engine,
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
    with _write_session(engine) as session:
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
    engine: Engine,
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
    with _write_session(engine) as session:
        _lock_item(session, item_id)
        return _apply_decisions(
            session, item_id, clean, phase=phase, analyst=analyst, source=source, now=_now()
        )


def current_phase(engine: Engine, item_id: int) -> int:
    """Highest phase (0..3) with a stored embedding; 0 when the item has none yet."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        _get_item(session, item_id)
        return _phase_of(session, item_id)


def interactions(engine: Engine, item_id: int) -> list[InteractionRecord]:
    """Current decisions of the item (one per target), in arrival order."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(Interaction).where(Interaction.item_id == item_id).order_by(Interaction.id)
        )
        return [_interaction_record(r) for r in rows]


def interaction_history(
    engine: Engine, item_id: int, target_id: str | int | None = None
) -> list[InteractionEventRecord]:
    """Every revision of the item's decisions (optionally of one target), oldest first."""
    item_id = _check_item_id(item_id)
    target = _check_id("target_id", target_id, allow_none=True)
    with Session(engine) as session:
        _get_item(session, item_id)
        query = select(InteractionEvent).where(InteractionEvent.item_id == item_id)
        if target is not None:
            query = query.where(InteractionEvent.target_id == target)
        return [_event_record(r) for r in session.exec(query.order_by(InteractionEvent.id))]


def embeddings(engine: Engine, item_id: int) -> list[EmbeddingRecord]:
    """Embedding versions of the item, by phase."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(EmbeddingVersion)
            .where(EmbeddingVersion.item_id == item_id)
            .order_by(EmbeddingVersion.phase)
        )
        return [_embedding_record(r) for r in rows]


def snapshots(engine: Engine, item_id: int) -> list[SnapshotRecord]:
    """Prediction snapshots of the item, by phase."""
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
        _get_item(session, item_id)
        rows = session.exec(
            select(PredictionSnapshot)
            .where(PredictionSnapshot.item_id == item_id)
            .order_by(PredictionSnapshot.phase, PredictionSnapshot.id)
        )
        return [_snapshot_record(r) for r in rows]


# LLM cache and benchmarks -----------------------------------------------------------------------
def llm_cache_get(engine: Engine, key: str) -> str | None:
    """The cached response for ``key``, or ``None``."""
    with Session(engine) as session:
        return session.exec(select(LLMCache.response).where(LLMCache.key == key)).first()


def llm_cache_put(
    engine: Engine,
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
    with _write_session(engine) as session:
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
    engine: Engine, *, dataset: str, method: str, config: dict[str, Any], result: dict[str, Any]
) -> int:
    """Store one benchmark run; returns its id."""
    dataset = _req_str("dataset", dataset, MAX_NAME_LEN)
    method = _req_str("method", method, MAX_SHORT_LEN)
    config = _check_json_doc("config", config, dict)
    result = _check_json_doc("result", result, dict)
    with _write_session(engine) as session:
        run = BenchmarkRun(
            dataset=dataset, method=method, config=config, result=result, created_at=_now()
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def benchmark_runs(
    engine: Engine, *, dataset: str | None = None, method: str | None = None
) -> list[BenchmarkRunRecord]:
    """Stored benchmark runs (optionally filtered), oldest first."""
    with Session(engine) as session:
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
    engine: Engine,
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
    with _write_session(engine) as session:
        stmt = _insert(session, DomainFeatureSet.__table__).values(domain=domain, **update)
        session.execute(stmt.on_conflict_do_update(index_elements=["domain"], set_=update))
        row = session.exec(select(DomainFeatureSet).where(DomainFeatureSet.domain == domain)).one()
        session.refresh(row)
        return _feature_set_record(row)


def get_domain_features(engine: Engine, domain: str) -> DomainFeatureSetRecord | None:
    """The stored suggested feature list of ``domain``, or ``None`` when there is none yet."""
    with Session(engine) as session:
        row = session.exec(
            select(DomainFeatureSet).where(DomainFeatureSet.domain == domain)
        ).first()
        return _feature_set_record(row) if row is not None else None


# Export / import --------------------------------------------------------------------------------
def export_item(engine: Engine, item_id: int) -> dict[str, Any]:
    """The item's whole history as one JSON-serializable document (no database ids).

    Vectors are base64 of the float32 bytes; timestamps are ISO 8601 UTC. The document does
    not name the workspace, so it can be imported into any workspace of the same domain.
    """
    item_id = _check_item_id(item_id)
    with Session(engine) as session:
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


def import_item(engine: Engine, doc: Mapping[str, Any], *, workspace: str) -> ItemRecord:
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

    with _write_session(engine) as session:
        new = _add_item(session, workspace=workspace, **item_fields)
        assert new.id is not None
        rows: list[Any] = [*fvs, *inters, *events, *embs, *snaps]
        for row in rows:
            row.item_id = new.id
        session.add_all(rows)
        session.flush()
        return _item_record(new, workspace)
