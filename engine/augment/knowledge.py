"""The ``knowledge`` augmentation provider: curated values first, then an LLM for the rest.

Curated values come from the files under ``$EMERFLOW_DATA`` (see :mod:`engine.knowledge`):
synonyms, UMLS/OMIM/Orphanet/MeSH/DO ids (``disease_mappings.tsv``) and HPO phenotypes
(``hpo/HPO&Orphanet_dis_symp.txt``). Each curated value is stored with ``source="dataset"``
and the tag ``curated: <file, version>`` under the key ``curated``. Features the files do not
know are asked from an OpenAI-compatible LLM when one is configured (``OPENAI_BASE_URL`` or
``OPENAI_API_KEY`` with ``EMERFLOW_LLM_PROVIDER=knowledge``); without one they stay empty.

:func:`knowledge_augmentations` gives the same curated text for every item of a dataset (no
interaction data is read) for the benchmark's ``emerflow-kb`` method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.augment.providers import (
    AugmentationError,
    LLMProvider,
    LLMSettings,
    OpenAIProvider,
)
from engine.knowledge import (
    CURATED_FEATURES,
    CURATED_KEY,
    ID_FEATURES,
    DiseaseRecord,
    Knowledge,
    KnowledgeSources,
    curated_features,
    sources_from_env,
)
from engine.schema import DISEASE, ITEM_ID, NAME

#: The text features ``emerflow-kb`` adds to the raw features (name -> descriptor).
KB_TEXT_FEATURES: dict[str, str] = {k: v for k, v in CURATED_FEATURES.items()
                                    if k not in ID_FEATURES}
MAX_KB_PHENOTYPES = 40  #: phenotype names serialized per item (the encoder truncates anyway)


@dataclass(frozen=True)
class CuratedFill:
    """What the knowledge provider filled for one item.

    Attributes:
        values: feature name -> value (``""`` when unknown).
        features: the full curated feature dicts (with ``curated`` tags), including ids the
            caller did not ask for.
        record: the resolved concept, or None.
        llm: provenance of the LLM that filled the rest, or None.
    """

    values: dict[str, str]
    features: list[dict] = field(default_factory=list)
    record: DiseaseRecord | None = None
    llm: dict[str, str] | None = None

    @property
    def missing(self) -> list[str]:
        return [k for k, v in self.values.items() if not v]


class KnowledgeProvider(LLMProvider):
    """Curated knowledge as an augmentation provider (``EMERFLOW_LLM_PROVIDER=knowledge``).

    ``complete_json`` (free-form prompts, e.g. feature suggestions) is forwarded to the fallback
    LLM when one is configured, else it fails readably.
    """

    name = "knowledge"
    enabled = True

    def __init__(self, settings: LLMSettings | None = None, *,
                 knowledge: Knowledge | None = None,
                 fallback: LLMProvider | None = None) -> None:
        self.settings = settings
        self._knowledge = knowledge
        self.fallback = fallback if fallback is not None else _fallback_from(settings)
        self.model = "curated" + (f" + {self.fallback.name}/{self.fallback.model}"
                                  if self.fallback is not None else "")
        self.endpoint = self.fallback.endpoint if self.fallback is not None else ""

    @property
    def knowledge(self) -> Knowledge:
        if self._knowledge is None:
            self._knowledge = Knowledge.load(sources_from_env(), genes=False)
        return self._knowledge

    def complete_json(self, system: str, user: str) -> str:
        if self.fallback is None:
            raise AugmentationError(
                "the knowledge provider fills curated features only; configure an LLM "
                "(OPENAI_BASE_URL / OPENAI_API_KEY) for free-form questions")
        return self.fallback.complete_json(system, user)

    def resolve(self, known: Mapping[str, object], external_id: str | None = None
                ) -> DiseaseRecord | None:
        """The concept of an item: its CUI (external id or ``umls_cui``), else its exact name."""
        kn = self.knowledge
        if kn.diseases is None:
            return None
        for cui in (external_id, known.get("umls_cui")):
            if cui and kn.diseases.get(str(cui)) is not None:
                return kn.diseases.get(str(cui))
        name = str(known.get(NAME) or "").strip()
        if name:
            try:
                return kn.resolve_disease(name)[0]
            except (ValueError, LookupError):
                return None
        return None

    def fill(self, domain: str, known: Mapping[str, object],
             features: Sequence[tuple[str, str]], *, external_id: str | None = None,
             cache: Any = None) -> CuratedFill:
        """Curated values of ``features`` (plus every curated feature), then the fallback LLM
        for requested features still empty.

        Raises:
            AugmentationError: the fallback LLM failed.
        """
        values = {name: "" for name, _ in features}
        rec = self.resolve(known, external_id) if domain == DISEASE else None
        curated: list[dict] = []
        if rec is not None:
            curated = curated_features(rec, self.knowledge.phenotypes_of(rec.cui))
            for f in curated:
                if f["name"] in values:
                    values[f["name"]] = f["value"]
        missing = [(n, d) for n, d in features if not values.get(n)]
        llm = None
        if missing and self.fallback is not None:
            from engine.augment.service import fill_values

            result = fill_values(self.fallback, domain, dict(known), missing, cache)
            for name, value in result.values.items():
                if value:
                    values[name] = value
            llm = dict(result.provenance)
        return CuratedFill(values=values, features=curated, record=rec, llm=llm)


def _fallback_from(settings: LLMSettings | None) -> LLMProvider | None:
    """An OpenAI-compatible provider from the same settings, when a server or key is set."""
    if settings is None or not (settings.base_url or settings.api_key):
        return None
    try:
        return OpenAIProvider(dataclasses.replace(settings, provider="openai"))
    except AugmentationError:
        return None


def knowledge_augmentations(dataset: Any, data_root: Path | str | None) -> pd.DataFrame:
    """Curated text features for every item of a disease dataset: ``item_id`` + the columns of
    :data:`KB_TEXT_FEATURES` (``""`` where unknown). Only the knowledge files are read (no
    interaction data), so old and new items get the same kind of text.

    Items are matched by UMLS CUI (their ``item_id``). An empty frame (just the columns) for a
    non-disease dataset or when no knowledge file exists under ``data_root``.

    Raises:
        ValueError: a present knowledge file is not in its expected format.
    """
    cols = [ITEM_ID, *KB_TEXT_FEATURES]
    src = sources_from_env(data_root) if data_root is not None else sources_from_env()
    if getattr(dataset, "domain", None) != DISEASE or src is None:
        return pd.DataFrame(columns=cols)
    kn = Knowledge.load(src, genes=False)
    rows = []
    for cui in dataset.items[ITEM_ID].astype(str):
        row = {ITEM_ID: cui, **{k: "" for k in KB_TEXT_FEATURES}}
        rec = kn.diseases.get(cui) if kn.diseases is not None else None
        phen = kn.phenotypes_of(cui)[:MAX_KB_PHENOTYPES]
        if rec is not None:
            for f in curated_features(rec, phen):
                if f["name"] in row:
                    row[f["name"]] = f["value"]
        elif phen:
            row["phenotypes"] = "; ".join(t.name or t.id for t in phen)
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def hpo_coverage(item_ids: Sequence[str], data_root: Path | str | None) -> dict[str, int]:
    """How many of ``item_ids`` have HPO annotations: ``{"items": n, "with_phenotypes": k}``."""
    src = sources_from_env(data_root) if data_root is not None else sources_from_env()
    kn = Knowledge.load(src, genes=False) if src is not None else Knowledge()
    annotated = kn.annotated
    ids = [str(i) for i in item_ids]
    return {"items": len(ids), "with_phenotypes": sum(1 for i in ids if i in annotated)}


__all__ = ["CURATED_KEY", "KB_TEXT_FEATURES", "CuratedFill", "KnowledgeProvider",
           "KnowledgeSources", "hpo_coverage", "knowledge_augmentations"]
