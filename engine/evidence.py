"""The ranked table and its evidence, as the dashboard and ``emerflow rank`` show them.

Pure functions of a workspace, a :class:`~engine.workspace.Prediction` and the item's decisions
(``{target_id: 1 confirmed / 0 rejected}``); the dashboard (:mod:`app.predictions`,
:mod:`app.evidence`) and the batch ranking (:mod:`engine.batch`) call the same ones, so a gene's
row reads the same in the browser, in an export and in a batch file.

For each gene of a ranking:

- the nearest established diseases (nearest-item index of the item's embedding) that have the
  gene, with their similarity, DisGeNET score and first-publication year;
- its co-association with the genes confirmed so far: how many old diseases have it together
  with a confirmed gene;
- phenotype overlap: how many of the item's HPO terms annotate old diseases that have the gene
  (when the item has phenotypes and the HPO annotations are available);
- a one-line "why this rank", and links to NCBI Gene, HGNC (the id page), OMIM gene, Ensembl.

The old diseases' associations come from the workspace's ``split.train`` (positives). The year
is decoded from ``order`` (DisGeNET: ``YearInitial * 10**10 + gene id``; demo: the year itself);
scores are read from DisGeNET's GDA file when given (else blank). A neighbour's "best-known
targets" are its highest-scoring genes (by score, then earliest year).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from engine.knowledge.genes import GeneRecord, GeneResolver
from engine.schema import DISEASE, ITEM_ID, LABEL, MULTI_SEP, NAME, ORDER, TARGET_ID
from engine.workspace import Prediction, Workspace

ORDER_GENE_FACTOR = 10**10  #: DisGeNET's ORDER = year * 10**10 + gene id (engine.data.disgenet)
MISSING_YEAR = 9999
N_NEIGHBOURS = 50  #: established diseases searched for each ranking
SHOW_NEIGHBOURS = 3  #: nearest diseases named per gene
BEST_KNOWN = 3  #: a neighbour's best-known targets shown

EVIDENCE_COLUMNS = ["nearest diseases with the gene", "co-association with confirmed",
                    "old diseases with the gene", "phenotype overlap", "why this rank"]
LINK_COLUMNS = ["NCBI Gene", "HGNC", "OMIM gene", "Ensembl"]
#: Target id column of a disease table (a movie table names its targets ``user``).
GENE_ID = "gene id"
DECISION = "decision"

NCBI_GENE_URL = "https://www.ncbi.nlm.nih.gov/gene/{}"
HGNC_SEARCH_URL = "https://www.genenames.org/tools/search/#!/?query={}"


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


def decision_label(decisions: Mapping[str, int], target_id: str) -> str:
    """``confirmed`` / ``rejected`` / ``""`` for one target."""
    return {1: "confirmed", 0: "rejected"}.get(int(decisions.get(str(target_id), -1)), "")


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
        """From the workspace's old-item positives; ``scores`` (CUI, gene id) -> GDA score."""
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


def read_gda_scores(path: Path) -> dict[tuple[str, str], float]:
    """(CUI, gene id) -> score from DisGeNET's curated GDA file (read once per path and
    modification time); empty when the file cannot be read as one."""
    path = Path(path)
    if not path.is_file():
        return {}
    return _gda_scores_at(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _gda_scores_at(path: str, mtime: int) -> dict[tuple[str, str], float]:
    try:
        df = pd.read_csv(path, sep="\t", usecols=["geneId", "diseaseId", "score"],
                         dtype={"geneId": str, "diseaseId": str})
    except (ValueError, OSError, KeyError):
        return {}
    return {(d.strip(), g.strip()): float(s) for d, g, s in zip(
        df["diseaseId"], df["geneId"], df["score"], strict=True)}


def workspace_genes(ws: Workspace, genes: GeneResolver | None) -> GeneResolver:
    """A resolver over the workspace's targets: ``genes`` (NCBI gene_info + HGNC) restricted
    to the workspace's genes when given (disease workspaces), plus the target table's own
    symbols for the rest."""
    targets = ws.dataset.targets
    own = GeneResolver.from_targets(targets, TARGET_ID, NAME)
    if genes is None or ws.domain != DISEASE:
        return own
    rich = genes.restrict(set(targets[TARGET_ID].astype(str)))
    if not len(rich):
        return own
    missing = [g for gid, g in own.genes.items() if rich.get(gid) is None]
    return GeneResolver([*rich.genes.values(), *missing]) if missing else rich


def gene_record(resolver: GeneResolver | None, gene_id: str) -> GeneRecord:
    """The record of a gene (a bare one named by its id when the resolver lacks it)."""
    rec = resolver.get(str(gene_id)) if resolver is not None else None
    return rec if rec is not None else GeneRecord(gene_id=str(gene_id), symbol=str(gene_id))


def _hgnc_page(resolver: GeneResolver | None, gene_id: str, symbol: str) -> str:
    return (gene_record(resolver, gene_id).links()["HGNC"]
            or HGNC_SEARCH_URL.format(quote(str(symbol))))


def _class_mask(values: pd.Series, classes: Sequence[str]) -> np.ndarray:
    """Rows whose protein class (``MULTI_SEP``-joined) has one of ``classes``."""
    wanted = set(classes)
    return np.array([bool(wanted & {p.strip() for p in v.split(MULTI_SEP)})
                     for v in values.fillna("").astype(str)], dtype=bool)


_MEMBER_MASKS: dict[tuple[int, frozenset[str]], tuple[pd.DataFrame, np.ndarray]] = {}


def _member_mask(source: pd.DataFrame, keep: frozenset[str]) -> np.ndarray:
    """``[N]`` whether each row of a target table is in ``keep``. The last few are kept (the
    rated users are one set per workspace), each with its table so the key stays its own."""
    key = (id(source), keep)
    hit = _MEMBER_MASKS.get(key)
    if hit is not None and hit[0] is source:
        return hit[1]
    mask = source[TARGET_ID].astype(str).isin(keep).to_numpy()
    if len(_MEMBER_MASKS) >= 4:
        _MEMBER_MASKS.pop(next(iter(_MEMBER_MASKS)))
    _MEMBER_MASKS[key] = (source, mask)
    return mask


def _shown_rows(ws: Workspace, prediction: Prediction, top_n: int, min_score: float | None,
                classes: Sequence[str], active: Iterable[str] | None) -> pd.DataFrame:
    """The ranked rows :func:`ranked_table` shows: rated users only (movies, ranks renumbered
    among them), then ``score >= min_score``, then the protein classes, then the first
    ``top_n``. From a :class:`~engine.workspace.RankedCatalog` only those rows are gathered
    (the same rows and values as filtering the full table)."""
    keep = None
    if ws.domain != DISEASE and active is not None:
        keep = frozenset(str(a) for a in active) or None
    ranked = prediction.ranked
    if ranked is None or prediction.materialized:
        t = prediction.targets
        if keep is not None:
            t = t[t[TARGET_ID].astype(str).isin(keep)].copy()
            t["rank"] = range(1, len(t) + 1)
        if min_score is not None:  # (None: no filter; scores may be logits below 0)
            t = t[t["score"] >= min_score]
        if classes and "protein_class" in t.columns:
            t = t.loc[pd.Series(_class_mask(t["protein_class"], classes), index=t.index,
                                dtype=bool)]
        return t.head(top_n)
    src = ranked.source
    pos = np.arange(len(ranked))
    if keep is not None:
        pos = pos[_member_mask(src, keep)[ranked.order]]
    new_rank = np.arange(1, len(pos) + 1)
    sel = np.ones(len(pos), bool)
    if min_score is not None:
        sel &= ranked.scores[pos] >= min_score
    if classes and "protein_class" in src.columns:
        sel &= _class_mask(src["protein_class"], classes)[ranked.order[pos]]
    idx = np.flatnonzero(sel)[:top_n]
    t = ranked.table(pos[idx])
    if keep is not None:
        t["rank"] = new_rank[idx]
    return t


def ranked_table(ws: Workspace, prediction: Prediction, decisions: Mapping[str, int], *,
                 top_n: int = 25, min_score: float | None = None, classes: Sequence[str] = (),
                 genes: GeneResolver | None = None, active: Iterable[str] | None = None
                 ) -> pd.DataFrame:
    """The ranking with display columns, filtered (score, protein class) then cut to top_n.

    Disease: rank, symbol, gene id, NCBI Gene, HGNC, protein class, score, percentile, lift
    over popularity (when the ranker knows it), decision.
    Movie: rank, user, gender, age, occupation, score, percentile, lift, decision; when
    ``active`` (the users with a rating) is given only they are ranked (ranks renumbered).

    Raises:
        ValueError: ``top_n`` below 1.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    t = _shown_rows(ws, prediction, top_n, min_score, classes, active)
    ids = t[TARGET_ID].astype(str)
    if ws.domain == DISEASE:
        symbol = (t["symbol"] if "symbol" in t.columns else t[NAME]).astype(str)
        out = pd.DataFrame({
            "rank": t["rank"].astype(int), "symbol": symbol, GENE_ID: ids,
            "NCBI Gene": ids.map(lambda i: NCBI_GENE_URL.format(quote(str(i)))),
            "HGNC": [_hgnc_page(genes, i, s) for i, s in zip(ids, symbol, strict=True)],
            "protein class": (t["protein_class"].fillna("").astype(str).str.replace(
                MULTI_SEP, ", ") if "protein_class" in t.columns else ""),
            "score": t["score"].astype(float),
        })
    else:
        out = pd.DataFrame({"rank": t["rank"].astype(int), "user": ids})
        for col in ("gender", "age", "occupation"):
            if col in t.columns:
                out[col] = t[col].astype(str)
        out["score"] = t["score"].astype(float)
    # how the score reads: the share of the catalog ranked below, and how much more likely the
    # target is than from popularity alone
    if "percentile" in t.columns:
        out["percentile"] = t["percentile"].astype(float).round(2).to_numpy()
    if "lift" in t.columns:
        out["lift over popularity"] = t["lift"].astype(float).round(2).to_numpy()
    out[DECISION] = [decision_label(decisions, i) for i in ids]
    return out.reset_index(drop=True)


def ranks_of_targets(prediction: Prediction, target_ids: Sequence[str]) -> dict[str, int]:
    """``{target_id: rank}`` in the prediction's table for the given targets only (one
    vectorised membership test; not a dict over the whole catalog; no table gathered when
    the prediction has not built it)."""
    if prediction.ranked is not None and not prediction.materialized:
        return prediction.ranked.ranks_of(target_ids)
    t = prediction.targets
    ids = t[TARGET_ID].astype(str)
    hit = ids.isin({str(x) for x in target_ids}).to_numpy()
    return dict(zip(ids[hit], t["rank"].to_numpy()[hit].astype(int).tolist(), strict=True))


#: Columns a candidate-list table adds in front of the ranked table's.
RANK_IN_LIST = "rank in list"


def candidate_table(ws: Workspace, prediction: Prediction, decisions: Mapping[str, int],
                    candidates: Sequence[str], *, genes: GeneResolver | None = None,
                    active: Iterable[str] | None = None) -> pd.DataFrame:
    """The ranking restricted to a candidate list (e.g. the genes carrying a patient's
    variants): :func:`ranked_table` columns for the candidates only, with ``rank in list``
    first; ``rank`` and ``percentile`` stay those of the whole catalog.

    Raises:
        ValueError: no candidate is a target of the workspace.
    """
    wanted = {str(c) for c in candidates}
    t = prediction.targets
    sub = t[t[TARGET_ID].astype(str).isin(wanted)]
    if sub.empty:
        raise ValueError("none of the candidates is in the workspace's catalog")
    if ws.domain != DISEASE and active is not None:
        # catalog rank among the rated users, as the full table shows it
        keep = frozenset(str(a) for a in active)
        if keep:
            rated = t[t[TARGET_ID].astype(str).isin(keep)].copy()
            rated["rank"] = range(1, len(rated) + 1)
            sub = rated[rated[TARGET_ID].astype(str).isin(wanted)]
            if sub.empty:
                raise ValueError("none of the candidates has a rating in the workspace")
    restricted = Prediction(text=prediction.text, embedding=prediction.embedding,
                            targets=sub.reset_index(drop=True),
                            neighbours=prediction.neighbours,
                            categories=prediction.categories)
    out = ranked_table(ws, restricted, decisions, top_n=len(sub), genes=genes)
    out.insert(0, RANK_IN_LIST, range(1, len(out) + 1))
    return out


def _fmt_score(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def evidence_table(ws: Workspace, prediction: Prediction, decisions: Mapping[str, int],
                   gene_ids: Sequence[str], *, index: AssociationIndex,
                   hpo_annotations: Mapping[str, Sequence[str]] | None = None,
                   phenotypes: Sequence[str] = (), genes: GeneResolver | None = None,
                   n_neighbours: int = N_NEIGHBOURS) -> pd.DataFrame:
    """Evidence columns (:data:`EVIDENCE_COLUMNS`) and links (:data:`LINK_COLUMNS`) for the
    given genes of the item's ranking, indexed by gene id (order kept).

    ``hpo_annotations`` (CUI -> HP ids) and the item's ``phenotypes`` (HP ids) give the
    phenotype overlap; without either it is blank.
    """
    k = max(1, min(n_neighbours, len(index.genes_of) or 1))
    neigh = ws.neighbours(prediction.embedding, k)
    sims = dict(zip(neigh[ITEM_ID].astype(str), neigh["similarity"].astype(float), strict=True))
    near_order = list(sims)
    top5 = set(near_order[:5])
    confirmed = [t for t, y in decisions.items() if int(y) == 1]
    ranks = ranks_of_targets(prediction, gene_ids)
    n_targets = prediction.n_targets
    pheno = set(phenotypes)
    why = ranker_reasons(ws, prediction, decisions, [str(x) for x in gene_ids])
    rows = []
    for g in (str(x) for x in gene_ids):
        have = index.diseases_of.get(g, set())
        near = [d for d in near_order if d in have]
        parts = []
        for d in near[:SHOW_NEIGHBOURS]:
            y = index.year.get((d, g))
            s = index.score.get((d, g))
            bits = [f"sim {sims[d]:.2f}"]
            if s is not None:
                bits.append(f"score {_fmt_score(s)}")
            if y is not None:
                bits.append(str(y))
            parts.append(f"{index.names.get(d, d)} ({', '.join(bits)})")
        n_shared, partners = index.co_association(g, confirmed)
        co = (f"{n_shared} old disease(s) with {', '.join(partners[:3])}" if n_shared
              else ("none" if confirmed else "no gene confirmed yet"))
        overlap = ""
        if pheno and hpo_annotations is not None:
            seen: set[str] = set()
            for d in have:
                seen.update(hpo_annotations.get(d, ()))
            overlap = f"{len(pheno & seen)} of {len(pheno)} HPO terms"
        rows.append({
            GENE_ID: g,
            "nearest diseases with the gene": "; ".join(parts),
            "co-association with confirmed": co,
            "old diseases with the gene": len(have),
            "phenotype overlap": overlap,
            "why this rank": why.get(g) or why_rank(ranks.get(g), n_targets, near, top5, sims,
                                                    index, g, n_shared, partners, overlap),
        })
    out = pd.DataFrame(rows, columns=[GENE_ID, *EVIDENCE_COLUMNS]).set_index(GENE_ID)
    links = pd.DataFrame([_links(ws, g, genes) for g in out.index], index=out.index,
                         columns=LINK_COLUMNS)
    return out.join(links)


def _links(ws: Workspace, gene_id: str, genes: GeneResolver | None) -> dict[str, str]:
    if ws.domain != DISEASE:
        return dict.fromkeys(LINK_COLUMNS, "")
    return gene_record(genes, gene_id).links()


#: Parts of the ranker's own explanation shown per target.
WHY_PARTS = 3


def ranker_reasons(ws: Workspace, prediction: Prediction, decisions: Mapping[str, int],
                   target_ids: Sequence[str], *, parts: int = WHY_PARTS) -> dict[str, str]:
    """"Why this rank" from the ranker itself: its score parts for each target, in plain words,
    largest first, with their weights (the learned ranker: LightGBM's per-feature
    contributions, ``pred_contrib``, summed per channel). ``{}`` when the ranker explains
    nothing."""
    ids = [str(t) for t in target_ids if str(t) in ws.target_pos.index]
    if not ids:
        return {}
    vec = ws.encoder.encode([prediction.text])[0]
    reasons = ws.ranker.explain(vec, prediction.embedding, ws.decisions(decisions),
                                ws.target_rows(ids), ws.target_names, prediction.categories)
    ranks = ranks_of_targets(prediction, ids)
    n = prediction.n_targets
    out = {}
    for t, rs in zip(ids, reasons, strict=True):
        said = [f"{r.text} ({r.weight:+.2f})" for r in rs[:parts] if r.text]
        if said:
            out[t] = f"#{ranks.get(t, '?')} of {n}: " + "; ".join(said)
    return out


def why_rank(rank: int | None, n: int, near: list[str], top5: set[str],
             sims: Mapping[str, float], idx: AssociationIndex, gene: str, n_shared: int,
             partners: list[str], overlap: str) -> str:
    """The one-line "why this rank" of a gene."""
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


def with_evidence(ws: Workspace, prediction: Prediction, decisions: Mapping[str, int],
                  table: pd.DataFrame, *, index: AssociationIndex | None,
                  hpo_annotations: Mapping[str, Sequence[str]] | None = None,
                  phenotypes: Sequence[str] = (), genes: GeneResolver | None = None
                  ) -> pd.DataFrame:
    """A :func:`ranked_table` with the evidence and link columns added (disease; ``index``
    required), as the page and every export show it; a movie table gets the ranker's own "why
    this rank" column only."""
    if ws.domain != DISEASE and not table.empty and "user" in table.columns:
        why = ranker_reasons(ws, prediction, decisions, table["user"].astype(str).tolist())
        out = table.copy()
        at = list(out.columns).index(DECISION) if DECISION in out.columns else len(out.columns)
        out.insert(at, "why this rank", [why.get(str(u), "") for u in out["user"]])
        return out
    if ws.domain != DISEASE or table.empty or GENE_ID not in table.columns or index is None:
        return table
    ev = evidence_table(ws, prediction, decisions, table[GENE_ID].astype(str).tolist(),
                        index=index, hpo_annotations=hpo_annotations, phenotypes=phenotypes,
                        genes=genes)
    out = table.drop(columns=[c for c in LINK_COLUMNS if c in table.columns])
    out = out.join(ev, on=GENE_ID)
    first = [c for c in table.columns if c not in LINK_COLUMNS and c != DECISION]
    cols = [*first, *EVIDENCE_COLUMNS, *LINK_COLUMNS, DECISION]
    return out[[c for c in cols if c in out.columns]]


def score_range(scores: pd.Series) -> tuple[float, float]:
    """``(0, 1)`` for probabilities; otherwise the scores' own range, rounded outwards."""
    scores = scores.astype(float)
    if scores.empty:
        return 0.0, 1.0
    lo, hi = float(scores.min()), float(scores.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    lo, hi = math.floor(lo * 100) / 100, math.ceil(hi * 100) / 100
    return lo, hi if hi > lo else lo + 1.0


__all__ = ["BEST_KNOWN", "DECISION", "EVIDENCE_COLUMNS", "GENE_ID", "LINK_COLUMNS",
           "RANK_IN_LIST", "AssociationIndex", "candidate_table", "decision_label",
           "evidence_table", "gene_record", "order_year", "ranked_table", "ranks_of_targets",
           "read_gda_scores",
           "score_range", "why_rank", "with_evidence", "workspace_genes"]
