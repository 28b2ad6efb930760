"""Validation of every argument before anything is written (raises
``db.errors.ValidationError``), names and time helpers.

Part of the repository (:mod:`db.repository` re-exports every name).
"""

from __future__ import annotations

import json
import math
import unicodedata
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from numbers import Integral, Real
from typing import Any

from db.errors import (
    NotFoundError,
    SecretRefusedError,
    ValidationError,
)
from db.limits import (
    _DOMAIN_RE,
    FLOAT32_BYTES,
    MAX_DECISIONS,
    MAX_DIM,
    MAX_FEATURES,
    MAX_ID_LEN,
    MAX_JSON_CHARS,
    MAX_SHORT_LEN,
    MAX_SNAPSHOT_LEN,
    MAX_TEXT_LEN,
    SECRET_KEY_SUFFIXES,
    SECRET_KEYS,
    SECRET_VALUE_PATTERNS,
)
from db.models import (
    FEATURE_SOURCES,
    MAX_PHASE,
    MIN_PHASE,
)
from db.records import (
    _Decision,
)


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
