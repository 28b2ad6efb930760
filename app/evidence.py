"""Evidence per predicted gene: why a gene ranks where it does (no streamlit here).

For each gene of a ranking:

- the nearest established diseases (FAISS neighbours of the item's embedding) that have the gene,
  with their similarity, DisGeNET score and first-publication year;
- its co-association with the genes confirmed so far: how many old diseases have it together
  with a confirmed gene;
- phenotype overlap: how many of the item's HPO terms annotate old diseases that have the gene
  (when the item has phenotypes and the HPO annotations are available);
- a one-line "why this rank", and links to NCBI Gene, HGNC (the id page), OMIM gene, Ensembl.

The old diseases' associations come from the workspace's ``split.train`` (positives; it keeps
``item_id``, ``target_id``, ``label``, ``order`` and ``phase`` only). The year is decoded from
``order`` (DisGeNET: ``YearInitial * 10**10 + gene id``; demo: the year itself); scores are
read from DisGeNET's GDA file under ``$EMERFLOW_DATA`` when present (else shown as blank). A
neighbour's "best-known targets" are its highest-scoring genes (by score, then earliest year).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from app import lookup
from app.flows import ItemState
from engine.schema import ITEM_ID, LABEL, NAME, ORDER, TARGET_ID
from engine.workspace import Workspace

ORDER_GENE_FACTOR = 10**10  #: DisGeNET's ORDER = year * 10**10 + gene id (engine.data.disgenet)
MISSING_YEAR = 9999
N_NEIGHBOURS = 50  #: established diseases searched for each ranking
SHOW_NEIGHBOURS = 3  #: nearest diseases named per gene
BEST_KNOWN = 3  #: a neighbour's best-known targets shown

EVIDENCE_COLUMNS = ["nearest diseases with the gene", "co-association with confirmed",
                    "old diseases with the gene", "phenotype overlap", "why this rank"]
LINK_COLUMNS = ["NCBI Gene", "HGNC", "OMIM gene", "Ensembl"]


def order_year(order: int | float) -> int | None:
    """The publication year encoded in an ``order`` value, or None."""
    try:
        o = int(order)
    except (TypeError, ValueError):
        return None
    if 1800 <= o <= 2100:
        return o
    y = o // ORDER_GENE_FACTOR
    return int(y) if 1800 <= y <= 2100 and y != MISSING_YEAR else None


@dataclass
class AssociationIndex:
    """The old diseases' gene associations of one workspace.

    Attributes:
        genes_of: old disease -> its genes.
        diseases_of: gene -> old diseases having it.
        year: (disease, gene) -> first-publication year.
        score: (disease, gene) -> DisGeNET GDA score (empty without the GDA file).
        names: old disease id -> name.
        symbols: gene id -> symbol.
    """

    genes_of: dict[str, set[str]]
    diseases_of: dict[str, set[str]]
    year: dict[tuple[str, str], int] = field(default_factory=dict)
    score: dict[tuple[str, str], float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, ws: Workspace, scores: Mapping[tuple[str, str], float] | None = None
              ) -> AssociationIndex:
        train = ws.split.train
        pos = train[train[LABEL] == 1]
        items = pos[ITEM_ID].astype(str).to_numpy()
        targets = pos[TARGET_ID].astype(str).to_numpy()
        genes_of: dict[str, set[str]] = defaultdict(set)
        diseases_of: dict[str, set[str]] = defaultdict(set)
        year: dict[tuple[str, str], int] = {}
        for i, t, o in zip(items, targets, pos[ORDER].to_numpy(), strict=True):
            genes_of[i].add(t)
            diseases_of[t].add(i)
            y = order_year(o)
            if y is not None:
                year[(i, t)] = y
        names = dict(zip(ws.dataset.items[ITEM_ID].astype(str),
                         ws.dataset.items[NAME].astype(str), strict=True))
        tg = ws.dataset.targets
        sym_col = "symbol" if "symbol" in tg.columns else NAME
        symbols = dict(zip(tg[TARGET_ID].astype(str), tg[sym_col].astype(str), strict=True))
        score = {k: v for k, v in (scores or {}).items() if k[0] in genes_of}
        return cls(dict(genes_of), dict(diseases_of), year, score, names, symbols)

    def best_known(self, disease: str, n: int = BEST_KNOWN) -> list[str]:
        """A disease's highest-scoring genes (ties: earliest year, then id), as symbols."""
        genes = self.genes_of.get(disease, set())
        ranked = sorted(genes, key=lambda g: (-self.score.get((disease, g), 0.0),
                                              self.year.get((disease, g), MISSING_YEAR), g))
        return [self.symbols.get(g, g) for g in ranked[:n]]

    def co_association(self, gene: str, confirmed: Iterable[str]) -> tuple[int, list[str]]:
        """(old diseases having ``gene`` and a confirmed gene, the confirmed genes involved,
        most shared first)."""
        mine = self.diseases_of.get(gene, set())
        shared: set[str] = set()
        per: dict[str, int] = {}
        for c in confirmed:
            if c == gene:
                continue
            both = mine & self.diseases_of.get(c, set())
            if both:
                per[c] = len(both)
                shared |= both
        partners = sorted(per, key=lambda c: (-per[c], c))
        return len(shared), [f"{self.symbols.get(c, c)} ({per[c]})" for c in partners]


_INDEX: dict[tuple[str, str, str], AssociationIndex] = {}
_SCORES: dict[str, dict[tuple[str, str], float]] = {}


def gda_scores(root: str | None = None) -> dict[tuple[str, str], float]:
    """(CUI, gene id) -> score from DisGeNET's curated GDA file under the data root; empty
    when absent. Read once per root."""
    kn = lookup.knowledge(root)
    src = kn.sources
    if src is None or not src.has("gda"):
        return {}
    key = str(src.path("gda"))
    if key not in _SCORES:
        try:
            df = pd.read_csv(key, sep="\t", usecols=["geneId", "diseaseId", "score"],
                             dtype={"geneId": str, "diseaseId": str})
            _SCORES[key] = {(d.strip(), g.strip()): float(s) for d, g, s in zip(
                df["diseaseId"], df["geneId"], df["score"], strict=True)}
        except (ValueError, OSError, KeyError):
            _SCORES[key] = {}
    return _SCORES[key]


def association_index(ws: Workspace, root: str | None = None) -> AssociationIndex:
    """The workspace's :class:`AssociationIndex`, built once per workspace model and root."""
    src = lookup.knowledge(root).sources
    key = (ws.name, ws.model_version, str(src.root) if src is not None else "")
    if key not in _INDEX:
        _INDEX[key] = AssociationIndex.build(ws, gda_scores(root) if ws.domain == "disease"
                                             else None)
    return _INDEX[key]


def item_phenotypes(features: Sequence[Mapping[str, object]]) -> list[str]:
    """The HPO ids of an item's kept ``phenotype_ids`` feature (``[]`` when none)."""
    for f in features:
        if f.get("name") == lookup.PHENOTYPE_IDS and f.get("value"):
            return [p for p in str(f["value"]).split("|") if p.startswith("HP:")]
    return []


def _fmt_score(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def evidence_table(ws: Workspace, state: ItemState, gene_ids: Sequence[str], *,
                   phenotypes: Sequence[str] = (), root: str | None = None,
                   n_neighbours: int = N_NEIGHBOURS) -> pd.DataFrame:
    """Evidence columns (:data:`EVIDENCE_COLUMNS`) and links (:data:`LINK_COLUMNS`) for the
    given genes of the item's ranking, indexed by gene id (order kept)."""
    idx = association_index(ws, root)
    k = max(1, min(n_neighbours, len(idx.genes_of) or 1))
    neigh = ws.neighbours(state.prediction.embedding, k)
    sims = dict(zip(neigh[ITEM_ID].astype(str), neigh["similarity"].astype(float), strict=True))
    near_order = list(sims)
    top5 = set(near_order[:5])
    confirmed = [t for t, y in state.decisions.items() if int(y) == 1]
    ranks = dict(zip(state.prediction.targets[TARGET_ID].astype(str),
                     state.prediction.targets["rank"].astype(int), strict=True))
    n_targets = len(ranks)
    kn = lookup.knowledge(root)
    pheno = set(phenotypes)
    rows = []
    for g in (str(x) for x in gene_ids):
        have = idx.diseases_of.get(g, set())
        near = [d for d in near_order if d in have]
        parts = []
        for d in near[:SHOW_NEIGHBOURS]:
            y = idx.year.get((d, g))
            s = idx.score.get((d, g))
            bits = [f"sim {sims[d]:.2f}"]
            if s is not None:
                bits.append(f"score {_fmt_score(s)}")
            if y is not None:
                bits.append(str(y))
            parts.append(f"{idx.names.get(d, d)} ({', '.join(bits)})")
        n_shared, partners = idx.co_association(g, confirmed)
        co = (f"{n_shared} old disease(s) with {', '.join(partners[:3])}" if n_shared
              else ("none" if confirmed else "no gene confirmed yet"))
        overlap = ""
        if pheno and kn.hpo is not None:
            seen: set[str] = set()
            for d in have:
                seen.update(kn.hpo.annotations.get(d, ()))
            shared = pheno & seen
            overlap = f"{len(shared)} of {len(pheno)} HPO terms"
        rows.append({
            "gene id": g,
            "nearest diseases with the gene": "; ".join(parts),
            "co-association with confirmed": co,
            "old diseases with the gene": len(have),
            "phenotype overlap": overlap,
            "why this rank": _why(ranks.get(g), n_targets, near, top5, sims, idx, g,
                                  n_shared, partners, overlap),
        })
    out = pd.DataFrame(rows, columns=["gene id", *EVIDENCE_COLUMNS]).set_index("gene id")
    links = pd.DataFrame([_links(ws, g, root) for g in out.index], index=out.index,
                         columns=LINK_COLUMNS)
    return out.join(links)


def _links(ws: Workspace, gene_id: str, root: str | None) -> dict[str, str]:
    rec = lookup.gene_info(ws, gene_id, root)
    return rec.links() if ws.domain == "disease" else dict.fromkeys(LINK_COLUMNS, "")


def _why(rank: int | None, n: int, near: list[str], top5: set[str], sims: Mapping[str, float],
         idx: AssociationIndex, gene: str, n_shared: int, partners: list[str],
         overlap: str) -> str:
    head = f"#{rank} of {n}" if rank else "ranked"
    reasons = []
    in_top5 = [d for d in near if d in top5]
    if in_top5:
        d = in_top5[0]
        reasons.append(f"linked to {len(in_top5)} of the 5 nearest diseases "
                       f"(closest: {idx.names.get(d, d)}, sim {sims[d]:.2f})")
    elif near:
        d = near[0]
        reasons.append(f"linked to {len(near)} of the {len(sims)} nearest diseases "
                       f"(closest: {idx.names.get(d, d)}, sim {sims[d]:.2f})")
    if n_shared:
        reasons.append(f"co-associated with confirmed {partners[0].split(' ')[0]} in "
                       f"{n_shared} old disease(s)")
    if overlap and not overlap.startswith("0 "):
        reasons.append(f"shares {overlap}")
    n_have = len(idx.diseases_of.get(gene, ()))
    if not reasons:
        reasons.append(f"no near disease has it: the backbone's gene features and its "
                       f"{n_have} old disease(s) carry the score" if n_have else
                       "no old disease has it: ranked by its gene features alone")
    return f"{head}: " + "; ".join(reasons)


def with_evidence(ws: Workspace, state: ItemState, table: pd.DataFrame, *,
                  phenotypes: Sequence[str] = (), root: str | None = None) -> pd.DataFrame:
    """A ranked table (``app.predictions.ranked_targets``, disease) with the evidence and link
    columns added, for the page and every export. Movie tables are returned unchanged."""
    if ws.domain != "disease" or table.empty or "gene id" not in table.columns:
        return table
    ev = evidence_table(ws, state, table["gene id"].astype(str).tolist(),
                        phenotypes=phenotypes, root=root)
    out = table.drop(columns=[c for c in LINK_COLUMNS if c in table.columns])
    out = out.join(ev, on="gene id")
    first = [c for c in table.columns if c not in LINK_COLUMNS and c != "decision"]
    cols = [*first, *EVIDENCE_COLUMNS, *LINK_COLUMNS, "decision"]
    return out[[c for c in cols if c in out.columns]]


def neighbour_evidence(ws: Workspace, state: ItemState, root: str | None = None
                       ) -> pd.DataFrame:
    """Nearest established items with their best-known targets = highest-scoring genes."""
    n = state.prediction.neighbours.copy()
    idx = association_index(ws, root)
    n["best-known targets"] = [", ".join(idx.best_known(str(i))) for i in n[ITEM_ID]]
    n["similarity"] = n["similarity"].astype(float).round(4)
    n = n.drop(columns=[c for c in ("evidence",) if c in n.columns])
    return n.rename(columns={ITEM_ID: "item"})


__all__ = ["EVIDENCE_COLUMNS", "LINK_COLUMNS", "AssociationIndex", "association_index",
           "evidence_table", "gda_scores", "item_phenotypes", "neighbour_evidence",
           "order_year", "with_evidence"]
