"""Feature augmentation and review: suggested features per domain, LLM values per item,
the analyst's edits as new feature versions with per-feature provenance. No streamlit here.

Feature dicts follow ``db.repository.save_feature_version`` (every version is stored by
:func:`app.flows.save_features`): ``name``, ``descriptor``, ``value``, ``keep``, ``source``
(dataset | llm | analyst), ``provider``/``model``/``prompt_version`` for LLM values,
``analyst``/``edited_at`` for edits, plus the extra key ``llm_value``: the LLM's original
answer, kept when the analyst overrides it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from app import flows
from app.flows import FeatureVersionRecord
from engine.augment import (
    PROMPT_VERSION,
    AugmentationError,
    LLMProvider,
    ResponseCache,
    SuggestedFeature,
    fill_values,
    normalize_feature_name,
    suggest_features,
)
from engine.augment.knowledge import CURATED_KEY, KnowledgeProvider
from engine.workspace import Workspace

REVIEW_COLUMNS = ["name", "descriptor", "value", "source", "llm original", "keep"]
ProgressFn = Callable[[float, str], None]


# ---- suggested features, stored once per domain (table domain_feature_set) ---------------------
def load_suggested(db: Engine, domain: str) -> list[dict[str, str]]:
    """The stored feature list of ``domain`` (``[]`` when none yet)."""
    stored = flows.domain_features(db, domain)
    if stored is None:
        return []
    return [f for f in stored.features if isinstance(f, dict) and f.get("name")]


def save_suggested(db: Engine, domain: str, features: Sequence[Mapping[str, Any]], *,
                   updated_by: str = "analyst", provenance: Mapping[str, Any] | None = None
                   ) -> list[dict[str, str]]:
    """Validate (snake_case names, unique, descriptor defaults) and store in one transaction.

    Raises:
        ValueError: a row without a usable name or descriptor (message names the row); the
            database's ``ValidationError`` (also a ``ValueError``) for anything it refuses,
            credentials in the provenance included.
    """
    clean: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, f in enumerate(features, start=1):
        raw_name = str(f.get("name") or "").strip()
        desc = str(f.get("descriptor") or "").strip()
        if not raw_name and not desc:
            continue
        try:
            name = normalize_feature_name(raw_name or desc)
        except ValueError:
            raise ValueError(f"Row {i}: the feature needs a name with letters or digits.") from None
        if name in seen:
            raise ValueError(f"Row {i}: duplicate feature {name!r}.")
        seen.add(name)
        clean.append({"name": name, "descriptor": desc or name.replace("_", " ").capitalize(),
                      "why": str(f.get("why") or "").strip()})
    stored = flows.save_domain_features(db, domain=domain, features=clean,
                                       provenance=dict(provenance or {}),
                                       updated_by=(updated_by or "").strip() or "analyst")
    return stored.features


def suggest_for_domain(db: Engine, provider: LLMProvider, ws: Workspace,
                       cache: ResponseCache | None, n: int = 8, *, analyst: str = "analyst"
                       ) -> list[dict[str, str]]:
    """Ask the LLM for new features of the workspace's domain and store them (merged with the
    stored list). With provider ``none`` nothing is asked and the stored list is returned.

    Raises:
        AugmentationError: the LLM failed (readable message).
    """
    stored = load_suggested(db, ws.domain)
    if not provider.enabled:
        return stored
    got: list[SuggestedFeature] = suggest_features(
        provider, ws.domain, [*ws.dataset.item_features, *[(f["name"], f["descriptor"])
                                                           for f in stored]], cache, n=n)
    merged = [*stored, *[f.model_dump() for f in got]]
    return save_suggested(db, ws.domain, merged, updated_by=analyst,
                          provenance={**provider.describe(), "prompt_version": PROMPT_VERSION})


# ---- per-item values ----------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def current_features(db: Engine, item_id: int) -> list[dict[str, Any]]:
    fv = flows.latest_feature_version(db, item_id)
    return [dict(f) for f in fv.features] if fv else []


def augment_item(db: Engine, ws: Workspace, item_id: int, provider: LLMProvider,
                 features: Sequence[Mapping[str, str]], cache: ResponseCache, *,
                 analyst: str = "analyst", progress: ProgressFn | None = None
                 ) -> FeatureVersionRecord:
    """Fill the values of ``features`` for the item with the LLM; store a new feature version.

    LLM values land with ``source=llm`` and their provenance; a feature the analyst already
    edited keeps the analyst's value (the new LLM answer goes to ``llm_value``). Features the
    LLM did not know are stored empty and un-ticked.

    Raises:
        ValueError: no features to fill, or provider ``none`` (fill by hand instead).
        AugmentationError: the LLM failed (readable message).
    """
    if isinstance(provider, KnowledgeProvider):
        return fill_curated(db, ws, item_id, features, provider=provider, cache=cache,
                            analyst=analyst, progress=progress)
    if not features:
        raise ValueError("No features to fill: suggest features first, or add them by hand.")
    if not provider.enabled:
        raise ValueError("Provider 'none' fills nothing: type the values in the table.")
    item = flows.get_item(db, item_id)
    progress = progress or (lambda f, m: None)
    progress(0.1, f"asking {provider.name} / {provider.model} for {len(features)} features…")
    known = {k: v for k, v in item.raw_features.items() if v not in (None, "")}
    result = fill_values(provider, ws.domain, known,
                         [(f["name"], f.get("descriptor") or f["name"]) for f in features], cache)
    progress(0.8, "cached answer" if result.cached else "answer validated")
    descs = {normalize_feature_name(f["name"]): f.get("descriptor") or f["name"] for f in features}
    rows = current_features(db, item_id)
    by_name = {r["name"]: r for r in rows}
    for name, value in result.values.items():
        llm = {"provider": result.provenance["provider"], "model": result.provenance["model"],
               "prompt_version": result.provenance["prompt_version"], "llm_value": value}
        old = by_name.get(name)
        if old is not None and old.get("source") == "analyst":
            old.update({k: v for k, v in llm.items() if k == "llm_value"})
            continue
        new = {"name": name, "descriptor": descs.get(name, name), "value": value,
               "source": "llm", "keep": bool(value), **llm}
        if old is not None:
            old.clear()
            old.update(new)
        else:
            rows.append(new)
            by_name[name] = new
    fv = flows.save_features(db, ws, item_id, rows, analyst=analyst, reembed=False)
    progress(1.0, f"saved feature version {fv.version}")
    return fv


def fill_curated(db: Engine, ws: Workspace, item_id: int,
                 features: Sequence[Mapping[str, str]] = (), *,
                 provider: KnowledgeProvider | None = None, cache: ResponseCache | None = None,
                 analyst: str = "analyst", progress: ProgressFn | None = None
                 ) -> FeatureVersionRecord:
    """Curated values (synonyms, ids, HPO phenotypes) for the item, then the provider's LLM for
    the requested ``features`` still empty; stored as a new feature version.

    Curated values carry ``source=dataset`` and ``curated: <file, version>``; a feature the
    analyst edited keeps the analyst's value (the curated one goes to ``curated_value``).

    Raises:
        ValueError: no curated knowledge for the item and nothing else to fill.
        AugmentationError: the fallback LLM failed.
    """
    provider = provider or KnowledgeProvider()
    progress = progress or (lambda f, m: None)
    item = flows.get_item(db, item_id)
    progress(0.1, "looking the item up in the curated files…")
    pairs = [(normalize_feature_name(f["name"]), f.get("descriptor") or f["name"])
             for f in features]
    got = provider.fill(ws.domain, item.raw_features, pairs, external_id=item.external_id,
                        cache=cache)
    if got.record is None and not got.llm:
        raise ValueError("No curated knowledge for this item: give it a UMLS CUI or a name "
                         "from the disease mappings (New item → Find a disease), and set "
                         "EMERFLOW_DATA.")
    progress(0.7, "curated values found" if got.record is not None else "no curated match")
    rows = current_features(db, item_id)
    by_name = {r["name"]: r for r in rows}
    new_rows: list[dict[str, Any]] = [dict(f) for f in got.features]
    descs = dict(pairs)
    curated_names = {f["name"] for f in new_rows}
    for name, value in got.values.items():
        if name in curated_names or not value or got.llm is None:
            continue
        new_rows.append({"name": name, "descriptor": descs.get(name, name), "value": value,
                         "source": "llm", "keep": True, "provider": got.llm.get("provider"),
                         "model": got.llm.get("model"),
                         "prompt_version": got.llm.get("prompt_version"), "llm_value": value})
    for new in new_rows:
        old = by_name.get(new["name"])
        if old is not None and old.get("source") == "analyst":
            if new.get(CURATED_KEY):
                old["curated_value"] = new["value"]
                old["curated_source"] = new[CURATED_KEY]
            continue
        if old is not None:
            old.clear()
            old.update(new)
        else:
            rows.append(new)
            by_name[new["name"]] = new
    fv = flows.save_features(db, ws, item_id, rows, analyst=analyst)
    progress(1.0, f"saved feature version {fv.version}")
    return fv


def curated_frame(features: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The curated values alone (feature, value, source file, in text): shown apart from LLM and
    analyst values. A curated value the analyst overrode is listed with its curated original."""
    rows = []
    for f in features:
        if f.get(CURATED_KEY):
            rows.append({"feature": f.get("descriptor") or f["name"], "value": str(f["value"]),
                         "source": f[CURATED_KEY], "in text": bool(f.get("keep", True))})
        elif f.get("curated_value"):
            rows.append({"feature": f.get("descriptor") or f["name"],
                         "value": str(f["curated_value"]),
                         "source": f"{f.get('curated_source') or 'curated'} (overridden by the "
                                   "analyst)", "in text": False})
    return pd.DataFrame(rows, columns=["feature", "value", "source", "in text"])


def source_groups(features: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many features come from each origin: dataset, curated, LLM, analyst."""
    out = {"dataset": 0, "curated": 0, "LLM": 0, "analyst": 0}
    for f in features:
        if f.get(CURATED_KEY):
            out["curated"] += 1
        elif f.get("source") == "llm":
            out["LLM"] += 1
        elif f.get("source") == "analyst":
            out["analyst"] += 1
        else:
            out["dataset"] += 1
    return out


# ---- review table -------------------------------------------------------------------------------
def source_label(f: Mapping[str, Any]) -> str:
    """``dataset`` / ``curated: <file, version>`` / ``LLM openai gpt-4o-mini (prompt v1)`` /
    ``analyst alice @ time``."""
    if f.get(CURATED_KEY) and f.get("source") == "dataset":
        return str(f[CURATED_KEY])
    src = f.get("source")
    if src == "llm":
        return f"LLM {f.get('provider') or ''} {f.get('model') or ''} " \
               f"(prompt {f.get('prompt_version') or '?'})".replace("  ", " ")
    if src == "analyst":
        who = f.get("analyst") or "analyst"
        when = f.get("edited_at") or ""
        return f"analyst: {who}" + (f" @ {when}" if when else "")
    return str(src or "")


def review_frame(features: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The table the analyst edits: name, descriptor, value, source, llm original, keep."""
    rows = [{"name": f["name"], "descriptor": f.get("descriptor") or f["name"],
             "value": "" if f.get("value") is None else str(f.get("value")),
             "source": source_label(f), "llm original": f.get("llm_value") or "",
             "keep": bool(f.get("keep", True))} for f in features]
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def apply_review(previous: Sequence[Mapping[str, Any]], edited: pd.DataFrame, *,
                 analyst: str) -> list[dict[str, Any]] | None:
    """The next feature list from the edited table, or None when nothing changed.

    A changed value or descriptor makes the feature ``source=analyst`` (with analyst name and
    time); the LLM's original stays in ``llm_value``. A changed ``keep`` alone keeps the
    source. New rows need a descriptor (the name is derived from it); deleted rows go.

    Raises:
        ValueError: a new row without descriptor, or two rows with the same name.
    """
    analyst = (analyst or "").strip() or "analyst"
    old = {f["name"]: dict(f) for f in previous}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, row in enumerate(edited.to_dict("records"), start=1):
        name, desc, value = _cell(row.get("name")), _cell(row.get("descriptor")), \
            _cell(row.get("value"))
        keep = bool(row.get("keep")) if row.get("keep") is not None else True
        if not name:
            if not desc and not value:
                continue  # an empty added row
            if not desc:
                raise ValueError(f"Row {i}: a new feature needs a descriptor.")
            try:
                name = normalize_feature_name(desc)
            except ValueError:
                raise ValueError(f"Row {i}: the descriptor needs letters or digits.") from None
        if name in seen:
            raise ValueError(f"Row {i}: duplicate feature {name!r}.")
        seen.add(name)
        prev = old.get(name)
        if prev is None:
            out.append({"name": name, "descriptor": desc or name, "value": value, "keep": keep,
                        "source": "analyst", "analyst": analyst, "edited_at": _now()})
            continue
        f = dict(prev)
        prev_value = _cell(prev.get("value"))
        prev_desc = _cell(prev.get("descriptor")) or name
        if value != prev_value or (desc and desc != prev_desc):
            if f.get("source") == "llm" and "llm_value" not in f:
                f["llm_value"] = prev_value
            if f.get(CURATED_KEY):  # a curated value overridden: the tag moves aside
                f["curated_value"] = prev_value
                f["curated_source"] = f.pop(CURATED_KEY)
            f.update(value=value, descriptor=desc or prev_desc, source="analyst",
                     analyst=analyst, edited_at=_now())
        f["keep"] = keep
        out.append(f)
    same = (len(out) == len(previous)
            and all(a == dict(b) for a, b in zip(out, previous, strict=True)))
    return None if same else out


def save_review(db: Engine, ws: Workspace, item_id: int, edited: pd.DataFrame, *,
                analyst: str) -> FeatureVersionRecord | None:
    """Store the edited table as the next feature version; re-embed while in Phase 0.

    Returns the new version, or None when nothing changed.
    """
    rows = apply_review(current_features(db, item_id), edited, analyst=analyst)
    if rows is None:
        return None
    fv = flows.save_features(db, ws, item_id, rows, analyst=analyst)
    return fv


def set_feature(db: Engine, ws: Workspace, item_id: int, *, descriptor: str, value: str,
                analyst: str, name: str | None = None) -> FeatureVersionRecord | None:
    """Add or change one feature (the quick form beside the table)."""
    if not (descriptor or name or "").strip():
        raise ValueError("Give the feature a descriptor (e.g. 'Mechanism').")
    if not (value or "").strip():
        raise ValueError("Give the feature a value.")
    table = review_frame(current_features(db, item_id))
    key = name or normalize_feature_name(descriptor)
    mask = table["name"] == key
    if mask.any():
        table.loc[mask, "value"] = value.strip()
        if descriptor.strip():
            table.loc[mask, "descriptor"] = descriptor.strip()
        table.loc[mask, "keep"] = True
    else:
        table.loc[len(table)] = {"name": key, "descriptor": descriptor.strip(),
                                 "value": value.strip(), "source": "", "llm original": "",
                                 "keep": True}
    return save_review(db, ws, item_id, table, analyst=analyst)


def serialized_text(db: Engine, ws: Workspace, item_id: int) -> str:
    """Exactly what the text encoder sees for the item's latest feature version."""
    raw, aug, desc = flows.item_inputs(db, ws, item_id)
    return ws.serialize(raw, aug, desc)


def version_history(db: Engine, item_id: int) -> pd.DataFrame:
    rows = []
    for fv in flows.feature_versions(db, item_id):
        srcs = pd.Series([f.get("source") for f in fv.features]).value_counts().to_dict()
        rows.append({"version": fv.version, "by": fv.created_by,
                     "at": fv.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                     "features": len(fv.features),
                     "sources": ", ".join(f"{k}: {v}" for k, v in srcs.items())})
    return pd.DataFrame(rows)


__all__ = ["AugmentationError", "apply_review", "augment_item", "curated_frame", "fill_curated",
           "load_suggested", "source_groups",
           "review_frame", "save_review", "save_suggested", "serialized_text", "set_feature",
           "suggest_for_domain", "version_history"]
