"""Curated biomedical knowledge: disease lookup, HPO phenotypes, gene resolver and links.

:class:`Knowledge` bundles what is available under one data root (every file optional):

- :class:`~engine.knowledge.diseases.DiseaseIndex` over DisGeNET ``disease_mappings.tsv``, with
  the curated GDA file's own disease names and CUIs as a fallback;
- :class:`~engine.knowledge.diseases.HpoTerms`: HPO names (the mappings' HPO rows) and the
  CUI -> HPO annotations (``hpo/HPO&Orphanet_dis_symp.txt``);
- :class:`~engine.knowledge.genes.GeneResolver` over NCBI gene_info + HGNC.

:func:`curated_features` turns a resolved disease into feature dicts tagged
``"curated: <file, version>"``. Nothing here reads interaction data.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.knowledge.diseases import (
    DiseaseIndex,
    DiseaseNotFoundError,
    DiseaseRecord,
    HpoTerm,
    HpoTerms,
    normalize_hpo_id,
    phenotype_ids,
    serialize_phenotypes,
)
from engine.knowledge.genes import (
    HPO_URL,
    MESH_URL,
    OMIM_URL,
    ORPHANET_URL,
    UMLS_URL,
    AmbiguousGeneError,
    GeneLookupError,
    GeneRecord,
    GeneResolver,
    UnknownGeneError,
    gene_links,
)
from engine.knowledge.sources import (
    CURATED_PREFIX,
    KNOWLEDGE_FILES,
    KnowledgeSources,
    curated_tag,
    is_curated,
    sources_from_env,
)

#: Feature names the curated disease knowledge fills (name -> descriptor), in serialization order.
CURATED_FEATURES: dict[str, str] = {
    "synonyms": "Synonyms",
    "phenotypes": "Phenotypes (HPO)",
    "phenotype_ids": "HPO term ids",
    "umls_cui": "UMLS CUI",
    "omim_ids": "OMIM",
    "orphanet_ids": "Orphanet",
    "mesh_ids": "MeSH",
    "do_ids": "Disease Ontology",
}
#: Curated features that are ids only: kept as features and links, left out of the text the
#: encoder reads (ids carry no meaning for a sentence encoder).
ID_FEATURES = ("phenotype_ids", "umls_cui", "omim_ids", "orphanet_ids", "mesh_ids", "do_ids")
MAX_SYNONYMS = 12
#: ``source`` of curated feature dicts, and the key holding their ``"curated: ..."`` tag.
CURATED_SOURCE = "dataset"
CURATED_KEY = "curated"


@dataclass
class Knowledge:
    """What is known under one data root; any part may be None (file absent)."""

    sources: KnowledgeSources | None = None
    diseases: DiseaseIndex | None = None
    hpo: HpoTerms | None = None
    genes: GeneResolver | None = None

    @classmethod
    def load(cls, sources: KnowledgeSources | None, *, genes: bool = True) -> Knowledge:
        """Read the files present under ``sources`` (each once per process).

        Raises:
            ValueError: a present file is not in its expected format.
        """
        if sources is None:
            return cls()
        maps = sources.path("disease_mappings") if sources.has("disease_mappings") else None
        gda = sources.path("gda") if sources.has("gda") else None
        diseases = (DiseaseIndex.from_file(maps, gda) if maps is not None or gda is not None
                    else None)
        hpo = HpoTerms.load(sources.path("hpo") if sources.has("hpo") else None, diseases)
        resolver = None
        if genes and sources.has("gene_info"):
            resolver = GeneResolver.from_files(
                sources.path("gene_info"), sources.path("hgnc") if sources.has("hgnc") else None)
        return cls(sources=sources, diseases=diseases, hpo=hpo, genes=resolver)

    @property
    def annotated(self) -> set[str]:
        return set(self.hpo.annotations) if self.hpo is not None else set()

    def resolve_disease(self, query: str) -> list[DiseaseRecord]:
        """Candidates for a name, synonym or id, annotated concepts first.

        Raises:
            ValueError: empty query, or no disease mappings under the data root.
            DiseaseNotFoundError: nothing matches.
        """
        if self.diseases is None:
            raise ValueError("Disease lookup needs disgenet/disease_mappings.tsv (or the "
                             "curated gene-disease association file) under EMERFLOW_DATA.")
        return self.diseases.resolve(query, self.annotated)

    def phenotypes_of(self, cui: str) -> list[HpoTerm]:
        return self.hpo.of_disease(cui) if self.hpo is not None else []


def disease_links(rec: DiseaseRecord) -> dict[str, str]:
    """UMLS, OMIM, Orphanet and MeSH links of a resolved disease (first code of each)."""
    out = {"UMLS": UMLS_URL.format(rec.cui)}
    for vocab, label, url in (("OMIM", "OMIM", OMIM_URL), ("ORDO", "Orphanet", ORPHANET_URL),
                              ("MSH", "MeSH", MESH_URL)):
        codes = rec.ids.get(vocab, ())
        if codes:
            out[label] = url.format(codes[0])
    return out


def curated_features(rec: DiseaseRecord, phenotypes: list[HpoTerm] | None = None, *,
                     sources: KnowledgeSources | None = None) -> list[dict]:
    """Feature dicts (``name``, ``descriptor``, ``value``, ``source``, ``keep``) for a resolved
    disease: synonyms, HPO phenotypes (names, then ids), UMLS/OMIM/Orphanet/MeSH/DO ids.

    ``source`` is ``"dataset"`` (the feature-source vocabulary of the database is dataset / llm /
    analyst) and the extra key ``curated`` holds the tag of the file each value came from
    (``"curated: <file, version>"``; the GDA file for a CUI only the association file knows);
    empty values are omitted.
    """
    del sources  # the tags name the files by key; kept for a future per-root version
    maps, hpo = curated_tag(rec.source), curated_tag("hpo")
    values: dict[str, tuple[str, str]] = {
        "synonyms": (", ".join(rec.synonyms[:MAX_SYNONYMS]), maps),
        "umls_cui": (rec.cui, maps),
        "omim_ids": (", ".join(rec.curie("OMIM")), maps),
        "orphanet_ids": (", ".join(rec.curie("ORDO")), maps),
        "mesh_ids": (", ".join(rec.curie("MSH")), maps),
        "do_ids": (", ".join(rec.curie("DO")), maps),
    }
    if phenotypes:
        values["phenotypes"] = (serialize_phenotypes(phenotypes), hpo)
        values["phenotype_ids"] = (phenotype_ids(phenotypes), hpo)
    out = []
    for name, descriptor in CURATED_FEATURES.items():
        value, source = values.get(name, ("", ""))
        if value:
            out.append({"name": name, "descriptor": descriptor, "value": value,
                        "source": CURATED_SOURCE, CURATED_KEY: source,
                        "keep": name not in ID_FEATURES})
    return out


__all__ = [
    "CURATED_FEATURES", "CURATED_KEY", "CURATED_PREFIX", "CURATED_SOURCE", "HPO_URL",
    "ID_FEATURES", "KNOWLEDGE_FILES",
    "AmbiguousGeneError", "DiseaseIndex", "DiseaseNotFoundError", "DiseaseRecord",
    "GeneLookupError", "GeneRecord", "GeneResolver", "HpoTerm", "HpoTerms", "Knowledge",
    "KnowledgeSources", "UnknownGeneError", "curated_features", "curated_tag", "disease_links",
    "gene_links", "is_curated", "normalize_hpo_id", "sources_from_env",
]
