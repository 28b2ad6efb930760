"""Lookups for the pages: disease resolution with autocomplete, HPO phenotypes, gene resolution.

Reads the curated knowledge under ``$EMERFLOW_DATA`` (see :mod:`engine.knowledge`); every part
is optional, and without any file the gene resolver falls back to the workspace's own target
table (symbols), so the demo catalog works too. No streamlit import here; the files are read
once per process (``engine.knowledge`` caches per path).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from engine.evidence import workspace_genes
from engine.knowledge import (
    CURATED_FEATURES,
    CURATED_KEY,
    AmbiguousGeneError,
    DiseaseNotFoundError,
    DiseaseRecord,
    GeneLookupError,
    GeneRecord,
    GeneResolver,
    HpoTerm,
    Knowledge,
    UnknownGeneError,
    curated_features,
    curated_tag,
    disease_links,
    sources_from_env,
)
from engine.knowledge.diseases import phenotype_ids, serialize_phenotypes
from engine.schema import DISEASE, ITEM_ID, NAME
from engine.workspace import Workspace

PHENOTYPES = "phenotypes"
PHENOTYPE_IDS = "phenotype_ids"

_KNOWLEDGE: dict[str, Knowledge] = {}
_KNOWLEDGE_LOCK = threading.Lock()
_GENES_LOCK = threading.Lock()


def knowledge(root: str | None = None) -> Knowledge:
    """The curated knowledge under ``root`` (default ``$EMERFLOW_DATA``); an empty
    :class:`Knowledge` when no data root is set. Loaded once per root.

    Raises:
        ValueError: a present file is not in its expected format.
    """
    src = sources_from_env(root)
    if src is None:
        return Knowledge()
    key = str(src.root.resolve())
    with _KNOWLEDGE_LOCK:  # one read per root, also while the server's warm-up reads it
        if key not in _KNOWLEDGE:
            # genes (NCBI + HGNC, ~2 s) are read on first use by the gene resolver, not here
            _KNOWLEDGE[key] = Knowledge.load(src, genes=False)
        return _KNOWLEDGE[key]


def _gene_knowledge(root: str | None = None) -> GeneResolver | None:
    """NCBI gene_info + HGNC under the data root (read once), or None."""
    kn = knowledge(root)
    src = kn.sources
    with _GENES_LOCK:  # one read, also while the server's warm-up reads the files
        if kn.genes is None and src is not None and src.has("gene_info"):
            kn.genes = GeneResolver.from_files(src.path("gene_info"),
                                               src.path("hgnc") if src.has("hgnc") else None)
    return kn.genes


def warm_data_root(root: str | None = None) -> None:
    """Read the data root's knowledge that no workspace is needed for (disease and HPO files,
    NCBI + HGNC genes, DisGeNET GDA scores) into this process's caches: what the dashboard's
    server does in the background when it starts serving, so the first analyst's pages and
    the workspace's evidence warm-up find the files read."""
    from engine.evidence import read_gda_scores

    src = knowledge(root).sources
    if src is None:
        return
    _gene_knowledge(root)
    if src.has("gda"):
        read_gda_scores(src.path("gda"))


def data_root_set() -> bool:
    from engine.settings import get_settings

    return get_settings().data is not None


# ---- diseases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiseaseResolution:
    """A resolved disease, ready to pre-fill the New item form.

    Attributes:
        record: the chosen concept.
        candidates: every concept the query matched (best first).
        phenotypes: its HPO annotations (may be empty).
        known: the workspace's own raw features when the CUI is in its catalog.
    """

    record: DiseaseRecord
    candidates: tuple[DiseaseRecord, ...] = ()
    phenotypes: tuple[HpoTerm, ...] = ()
    known: dict[str, str] = field(default_factory=dict)

    @property
    def phenotype_labels(self) -> list[str]:
        return [t.label for t in self.phenotypes]

    @property
    def synonyms_text(self) -> str:
        return ", ".join(self.record.synonyms[:12])

    def links_frame(self) -> pd.DataFrame:
        """vocabulary, id, link: UMLS, OMIM, Orphanet, MeSH (and DO ids without a link)."""
        links = disease_links(self.record)
        rows = [{"vocabulary": "UMLS", "id": self.record.cui, "link": links["UMLS"]}]
        for vocab, label in (("OMIM", "OMIM"), ("ORDO", "Orphanet"), ("MSH", "MeSH"),
                             ("DO", "Disease Ontology")):
            for i, curie in enumerate(self.record.curie(vocab)):
                code = self.record.ids[vocab][i]
                url = links.get(label, "") if i == 0 else ""
                if url and vocab == "OMIM":
                    url = url.rsplit("/", 1)[0] + "/" + code
                rows.append({"vocabulary": label, "id": curie, "link": url})
        return pd.DataFrame(rows, columns=["vocabulary", "id", "link"])


def disease_suggestions(query: str, limit: int = 15, root: str | None = None) -> list[str]:
    """Autocomplete labels (``"Marfan Syndrome (C0024796)"``) for what the analyst typed."""
    kn = knowledge(root)
    if kn.diseases is None:
        return []
    return [r.label for r in kn.diseases.autocomplete(query, limit=limit)]


def resolve_disease(query: str, ws: Workspace | None = None,
                    root: str | None = None) -> DiseaseResolution:
    """Resolve a name, synonym, label or id (CUI, OMIM, ORPHA, MeSH, DO, HP).

    Every disease of the curated association file resolves by its name and its CUI, also
    where ``disease_mappings.tsv`` lacks it (then the record has the association file's name
    and no synonyms or vocabulary ids: ``record.source == "gda"``).

    Raises:
        ValueError: empty query or no disease mappings (readable message).
        DiseaseNotFoundError: nothing matches.
    """
    kn = knowledge(root)
    text = (query or "").strip()
    m = re.search(r"\((C\d{7})\)\s*$", text)
    candidates = kn.resolve_disease(m.group(1) if m else text)
    rec = candidates[0]
    known: dict[str, str] = {}
    if ws is not None and ws.domain == DISEASE:
        rows = ws.dataset.items[ws.dataset.items[ITEM_ID] == rec.cui]
        if len(rows):
            known = {k: str(v) for k, v in rows.iloc[0].items()
                     if k not in (ITEM_ID, NAME) and v is not None and str(v) not in ("", "nan")}
    return DiseaseResolution(record=rec, candidates=tuple(candidates),
                             phenotypes=tuple(kn.phenotypes_of(rec.cui)), known=known)


def hpo_options(root: str | None = None) -> list[str]:
    """Every named HPO term as ``"Name (HP:nnnnnnn)"``, sorted by name (for a multiselect)."""
    kn = knowledge(root)
    if kn.hpo is None:
        return []
    return [f"{n} ({i})" for i, n in sorted(kn.hpo.names.items(), key=lambda x: x[1].lower())]


def hpo_suggestions(query: str, limit: int = 15, root: str | None = None) -> list[str]:
    kn = knowledge(root)
    return [t.label for t in kn.hpo.search(query, limit)] if kn.hpo is not None else []


def phenotypes_from_text(text: str, root: str | None = None, *, keep_negated: bool = False
                         ) -> list[tuple[str, str]]:
    """HPO term candidates named in a pasted clinical description, as ``(label, why)`` pairs
    for the New item page (``"Arachnodactyly (HP:0001166)"``, ``'"arachnodactyly"'``); terms
    after "no", "without", "denies" ... in the same clause are left out unless
    ``keep_negated``. Empty without HPO names under the data root."""
    kn = knowledge(root)
    if kn.hpo is None:
        return []
    out = []
    for hit in kn.hpo.from_text(text):
        if hit.negated and not keep_negated:
            continue
        why = f'"{hit.phrase}"' + (" (negated in the text)" if hit.negated else "")
        out.append((hit.term.label, why))
    return out


def parse_phenotypes(values: Sequence[str], root: str | None = None) -> list[HpoTerm]:
    """HPO terms from the multiselect's labels or typed ids/names.

    Raises:
        ValueError: a value that is neither an HP id nor a known name.
    """
    kn = knowledge(root)
    if kn.hpo is None:
        out = []
        for v in values:
            m = re.search(r"HP[:_](\d{7})", str(v), re.I)
            if not m:
                raise ValueError(f"Unknown HPO term {v!r}: give an HP id (HP:0001250).")
            out.append(HpoTerm(f"HP:{m.group(1)}", ""))
        return out
    return kn.hpo.parse(values)


def disease_features(resolution: DiseaseResolution | None, phenotypes: Sequence[str],
                     synonyms: str, analyst: str) -> list[dict]:
    """Feature dicts for a new disease: the curated ids of the resolved concept, its synonyms
    and the phenotypes, each with provenance.

    Synonyms and phenotypes equal to the curated ones keep the curated tag; edited ones become
    ``source=analyst`` with the curated original in ``curated_value``.

    Raises:
        ValueError: an unknown phenotype.
    """
    terms = parse_phenotypes([p for p in phenotypes if str(p).strip()])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    out: list[dict] = []
    curated: dict[str, dict] = {}
    if resolution is not None:
        curated = {f["name"]: f for f in curated_features(resolution.record,
                                                          list(resolution.phenotypes))}
    syn_parts = [p.strip() for p in re.split(r"[,;\n]", synonyms or "") if p.strip()]
    syn_value = ", ".join(syn_parts)
    for name in CURATED_FEATURES:
        f = dict(curated.get(name, {}))
        if name == "synonyms":
            f = _with_edit(f, name, syn_value, analyst, now)
        elif name == PHENOTYPES:
            f = _with_edit(f, name, serialize_phenotypes(terms), analyst, now,
                           source=curated_tag("hpo"))
        elif name == PHENOTYPE_IDS:
            f = _with_edit(f, name, phenotype_ids(terms), analyst, now, keep=False)
        if f and f.get("value"):
            out.append(f)
    return out


def _with_edit(f: dict, name: str, value: str, analyst: str, now: str, *,
               source: str | None = None, keep: bool | None = None) -> dict:
    if not value:
        return {}
    if f and f.get("value") == value:
        return f
    new = {"name": name, "descriptor": CURATED_FEATURES[name], "value": value,
           "source": "analyst", "analyst": analyst, "edited_at": now,
           "keep": bool(f.get("keep", True)) if keep is None else keep}
    if f.get("value"):
        new["curated_value"] = f["value"]
        new["curated_source"] = f.get(CURATED_KEY) or source or ""
    return new


# ---- genes -------------------------------------------------------------------------------------


_RESOLVERS: dict[tuple[str, str, str], GeneResolver] = {}
_RESOLVERS_LOCK = threading.Lock()


def gene_resolver(ws: Workspace, root: str | None = None) -> GeneResolver:
    """Resolver over the workspace's targets: NCBI gene_info + HGNC aliases when available
    (restricted to the workspace's genes), plus the target table's own symbols. Built once per
    workspace model and data root."""
    src = sources_from_env(root)
    key = (ws.name, ws.model_version, str(src.root) if src is not None else "")
    with _RESOLVERS_LOCK:  # one build per key, also when a background warm-up is under way
        if key not in _RESOLVERS:
            _RESOLVERS[key] = _build_resolver(ws, root)
        return _RESOLVERS[key]


def _build_resolver(ws: Workspace, root: str | None) -> GeneResolver:
    return workspace_genes(ws, _gene_knowledge(root) if ws.domain == DISEASE else None)


def resolve_gene(ws: Workspace, query: str, root: str | None = None) -> GeneRecord:
    """The workspace gene ``query`` names (symbol, alias, NCBI/HGNC/Ensembl id).

    Raises:
        ValueError: empty query.
        UnknownGeneError: not a gene of the workspace.
        AmbiguousGeneError: an alias of several genes (the message lists them).
    """
    return gene_resolver(ws, root).resolve(query)


def gene_info(ws: Workspace, gene_id: str, root: str | None = None) -> GeneRecord:
    """The record of a workspace gene (symbol from the target table when no file)."""
    rec = gene_resolver(ws, root).get(str(gene_id))
    return rec if rec is not None else GeneRecord(gene_id=str(gene_id), symbol=str(gene_id))


__all__ = ["AmbiguousGeneError", "DiseaseNotFoundError", "DiseaseResolution",
           "GeneLookupError", "UnknownGeneError", "data_root_set", "disease_features",
           "disease_suggestions", "gene_info", "gene_resolver", "hpo_options",
           "hpo_suggestions", "knowledge", "parse_phenotypes", "phenotypes_from_text",
           "resolve_disease", "resolve_gene", "warm_data_root"]
