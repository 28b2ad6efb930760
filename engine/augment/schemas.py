"""Validated shapes of the two LLM answers, and tolerant JSON extraction.

LLMs wrap JSON in prose or code fences, use odd key spellings and return lists where strings
were asked for. :func:`extract_json_object` finds the first JSON object in the text;
:func:`parse_suggested` / :func:`parse_filled` then validate it with pydantic and normalize it
(snake_case names, trimmed strings, bounded counts and lengths). Anything that can't be
salvaged raises :class:`SchemaError`, whose message is short enough to send back to the model
in a repair prompt.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.schema import MULTI_SEP

MAX_NAME_CHARS = 40
MAX_DESCRIPTOR_CHARS = 80
MAX_WHY_CHARS = 300
MAX_VALUE_CHARS = 300
MAX_SUGGESTIONS = 20
MAX_INPUT_CHARS = 100_000

#: Values that mean "unknown"; stored as the empty string.
UNKNOWN_VALUES = frozenset(
    {
        "",
        "unknown",
        "n/a",
        "na",
        "none",
        "null",
        "nil",
        "not available",
        "not known",
        "-",
        "?",
        "...",
        "…",
        "tbd",
        "unspecified",
        "not specified",
    }
)


class SchemaError(ValueError):
    """The LLM answer is not valid JSON of the expected shape (message fits a repair prompt)."""


def normalize_feature_name(raw: object) -> str:
    """``"Target Audience!"`` -> ``"target_audience"``: ASCII snake_case, at most 40 chars.

    Raises:
        ValueError: nothing usable is left (empty or only punctuation).
    """
    s = unicodedata.normalize("NFKD", str(raw)).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)  # camelCase -> camel_Case
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    s = re.sub(r"_+", "_", s)[:MAX_NAME_CHARS].strip("_")
    if not s:
        raise ValueError(f"feature name {str(raw)[:40]!r} has no letters or digits")
    if s[0].isdigit():
        s = ("f_" + s)[:MAX_NAME_CHARS]
    return s


def _clean_text(value: object, limit: int) -> str:
    s = " ".join(str(value).split())
    return s[:limit].rstrip()


class SuggestedFeature(BaseModel):
    """One feature proposed by the LLM.

    Attributes:
        name: snake_case column name.
        descriptor: human-readable label (``<Descriptor>: value`` serialization).
        why: one sentence on why it likely matters for interactions.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    descriptor: str = ""
    why: str = ""

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: object) -> str:
        if not isinstance(v, str):
            raise ValueError("name must be a string")
        return normalize_feature_name(v)

    @field_validator("descriptor", mode="before")
    @classmethod
    def _descriptor(cls, v: object) -> str:
        return "" if v is None else _clean_text(v, MAX_DESCRIPTOR_CHARS)

    @field_validator("why", mode="before")
    @classmethod
    def _why(cls, v: object) -> str:
        return "" if v is None else _clean_text(v, MAX_WHY_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _default_descriptor(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("name"), str):
            desc = data.get("descriptor")
            if desc is None or not str(desc).strip():
                try:
                    label = normalize_feature_name(data["name"]).replace("_", " ").capitalize()
                except ValueError:
                    return data
                data = {**data, "descriptor": label}
        return data


class SuggestedFeatures(BaseModel):
    """Answer of the ``suggest_features`` prompt: ``{"features": [...]}`` (1..20 entries)."""

    model_config = ConfigDict(extra="ignore")

    features: list[SuggestedFeature] = Field(min_length=1, max_length=MAX_SUGGESTIONS * 3)


class FilledValues(BaseModel):
    """Answer of the ``fill_values`` prompt: feature name -> value (``""`` when unknown)."""

    model_config = ConfigDict(extra="ignore")

    values: dict[str, str]

    @field_validator("values", mode="before")
    @classmethod
    def _values(cls, v: object) -> dict[str, str]:
        if not isinstance(v, Mapping):
            raise ValueError("values must be a JSON object")
        out: dict[str, str] = {}
        for key, raw in v.items():
            try:
                name = normalize_feature_name(key)
            except ValueError:
                continue
            out[name] = coerce_value(raw)
        return out


def coerce_value(raw: object) -> str:
    """One answer value as a string: lists joined with ``|``, unknown markers -> ``""``."""
    if raw is None or isinstance(raw, bool) and raw is False:
        return ""
    if isinstance(raw, Mapping):
        raw = [f"{k}: {v}" for k, v in raw.items()]
    if isinstance(raw, list | tuple):
        parts = [coerce_value(x) for x in raw]
        s = MULTI_SEP.join(p for p in parts if p)
    else:
        s = " ".join(str(raw).split())
    s = MULTI_SEP.join(
        p.strip() for p in s.split(MULTI_SEP) if p.strip().lower() not in UNKNOWN_VALUES
    )
    return "" if s.strip().lower() in UNKNOWN_VALUES else s[:MAX_VALUE_CHARS].rstrip()


_FENCE_RE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object found in ``text`` (code fences and surrounding prose ignored).

    A top-level JSON list is wrapped as ``{"features": [...]}`` only by
    :func:`parse_suggested`; here it is rejected.

    Raises:
        SchemaError: no JSON object in the text.
    """
    if not isinstance(text, str) or not text.strip():
        raise SchemaError("the answer is empty; expected one JSON object")
    text = text[:MAX_INPUT_CHARS]
    candidates = [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for cand in candidates:
        first = True
        for i, ch in enumerate(cand):
            if ch != "{":
                continue
            try:
                obj, _ = decoder.raw_decode(cand, i)
            except ValueError:
                if first:
                    # The outermost object may be cut off (max_tokens): keep its complete
                    # part rather than returning one of its nested objects.
                    salvaged = salvage_truncated_json(cand[i:])
                    if salvaged is not None:
                        return salvaged
                first = False
                continue
            if isinstance(obj, dict):
                return obj
    raise SchemaError("no JSON object found in the answer; reply with one JSON object only")


def salvage_truncated_json(text: str) -> dict[str, Any] | None:
    """Recover the complete part of a JSON object cut off mid-way (e.g. by ``max_tokens``).

    Cuts the text after the last complete nested value and closes the open brackets:
    ``{"features": [{"name": "a"}, {"na`` -> ``{"features": [{"name": "a"}]}``. Returns None
    when nothing complete can be recovered. Only used when no complete object exists.
    """
    start = text.find("{")
    if start < 0:
        return None
    stack: list[str] = []
    cuts: list[tuple[int, str]] = []
    in_str = escaped = False
    for i in range(start, min(len(text), MAX_INPUT_CHARS)):
        ch = text[i]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack[-1] != ch:
                return None
            stack.pop()
            if not stack:
                return None  # a complete object exists; not a truncation case
            cuts.append((i + 1, "".join(reversed(stack))))
    for pos, closers in reversed(cuts):
        try:
            obj = json.loads(text[start:pos] + closers)
        except ValueError:
            continue
        if isinstance(obj, dict) and obj:
            return obj
    return None


def _extract_json_list(text: str) -> list[Any] | None:
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text[:MAX_INPUT_CHARS]):
        if ch == "[":
            try:
                obj, _ = decoder.raw_decode(text, i)
            except ValueError:
                continue
            if isinstance(obj, list):
                return obj
    return None


def _short(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts)


def parse_suggested(
    text: str, exclude: Iterable[str] = (), limit: int = MAX_SUGGESTIONS
) -> list[SuggestedFeature]:
    """Validate a ``suggest_features`` answer.

    Accepts ``{"features": [...]}``, any object with a single list of feature objects, a bare
    list, or a ``{name: why}`` mapping. Entries with unusable names are dropped; duplicates
    and names in ``exclude`` (already existing features) are removed; at most ``limit`` kept.

    Raises:
        SchemaError: no usable feature in the answer.
    """
    try:
        obj: Any = extract_json_object(text)
    except SchemaError:
        obj = _extract_json_list(text) if isinstance(text, str) else None
        if obj is None:
            raise
    if isinstance(obj, list):
        obj = {"features": obj}
    raw = obj.get("features")
    if raw is None:
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) == 1:
            raw = lists[0]
        elif isinstance(obj.get("name"), str):
            raw = [obj]  # a single feature object
        else:
            raise SchemaError(
                'expected {"features": [{"name": ..., "descriptor": ..., "why": ...}]}'
            )
    if not isinstance(raw, list):
        raise SchemaError('"features" must be a JSON list of objects')
    excluded = set()
    for e in exclude:
        try:
            excluded.add(normalize_feature_name(e))
        except ValueError:
            pass
    kept: list[SuggestedFeature] = []
    seen: set[str] = set()
    errors: list[str] = []
    for entry in raw[: MAX_SUGGESTIONS * 3]:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            errors.append("each feature must be an object")
            continue
        entry = dict(entry)
        if "name" not in entry:
            for alt in ("feature", "feature_name", "key", "id"):
                if alt in entry:
                    entry["name"] = entry[alt]
                    break
        if "descriptor" not in entry:
            for alt in ("label", "description", "title"):
                if alt in entry:
                    entry["descriptor"] = entry[alt]
                    break
        if "why" not in entry:
            for alt in ("reason", "rationale", "justification"):
                if alt in entry:
                    entry["why"] = entry[alt]
                    break
        try:
            feat = SuggestedFeature.model_validate(entry)
        except ValidationError as exc:
            errors.append(_short(exc))
            continue
        if feat.name in seen or feat.name in excluded:
            continue
        seen.add(feat.name)
        kept.append(feat)
        if len(kept) >= limit:
            break
    if not kept:
        detail = f" ({errors[0]})" if errors else " (all were duplicates of existing features)"
        raise SchemaError("no usable new feature in the answer" + detail)
    return kept


def parse_filled(
    text: str, feature_names: Iterable[str], placeholders: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Validate a ``fill_values`` answer against the requested feature names.

    Accepts a flat ``{name: value}`` object or ``{"values": {...}}``. Keys are normalized to
    snake_case and matched to the requested names; extra keys are ignored; missing or unknown
    values become ``""`` (never invented). A value that only repeats the feature's name, or
    its label given in ``placeholders`` (name -> descriptor), counts as unknown.

    Returns:
        ``(values, missing)``: a value for every requested name, and the names left empty.

    Raises:
        SchemaError: no JSON object, or none of the requested names is present.
    """
    names = [normalize_feature_name(n) for n in feature_names]
    if not names:
        raise ValueError("parse_filled needs at least one feature name")
    obj = extract_json_object(text)
    inner = obj.get("values")
    if isinstance(inner, Mapping) and not (set(map(str, obj)) & set(names)):
        obj = dict(inner)
    try:
        filled = FilledValues.model_validate({"values": obj})
    except ValidationError as exc:  # pragma: no cover - the validator accepts any mapping
        raise SchemaError(_short(exc)) from None
    present = [n for n in names if n in filled.values]
    if not present:
        raise SchemaError(
            "none of the requested keys is present; use exactly these keys: " + ", ".join(names)
        )
    values = {n: filled.values.get(n, "") for n in names}
    # Small models echo the prompt's labels ("director": "Director"): that is no value.
    for n in names:
        echoes = {n.lower(), n.replace("_", " ").lower()}
        if placeholders and placeholders.get(n):
            echoes.add(placeholders[n].strip().lower())
        if values[n].strip().lower() in echoes:
            values[n] = ""
    missing = [n for n in names if not values[n]]
    return values, missing
