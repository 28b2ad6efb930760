"""Prediction tables and charts data for the Predictions and Feedback pages (no streamlit).

Genes get NCBI Gene and HGNC links; users get their demographic columns; movies get the
predicted appeal per age band, gender and occupation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from urllib.parse import quote

import pandas as pd

from app.flows import ItemState
from engine.schema import DISEASE, MULTI_SEP, NAME, TARGET_ID
from engine.workspace import Workspace

NCBI_GENE_URL = "https://www.ncbi.nlm.nih.gov/gene/{}"
HGNC_URL = "https://www.genenames.org/tools/search/#!/?query={}"
USER_GROUPS = ("age", "gender", "occupation")


def ncbi_url(gene_id: str) -> str:
    return NCBI_GENE_URL.format(quote(str(gene_id)))


def hgnc_url(symbol: str) -> str:
    return HGNC_URL.format(quote(str(symbol)))


def hgnc_page(ws: Workspace, gene_id: str, symbol: str) -> str:
    """The gene's HGNC id page when HGNC/NCBI files know it, else an HGNC search by symbol."""
    from app import lookup

    rec = lookup.gene_info(ws, gene_id)
    return rec.links()["HGNC"] or hgnc_url(symbol)


def target_classes(ws: Workspace) -> list[str]:
    """Distinct protein classes of the targets (disease workspaces), sorted."""
    if "protein_class" not in ws.dataset.targets.columns:
        return []
    vals: set[str] = set()
    for v in ws.dataset.targets["protein_class"].dropna().astype(str):
        vals.update(p.strip() for p in v.split(MULTI_SEP) if p.strip())
    return sorted(vals)


_RATED: dict[tuple[str, str], frozenset[str]] = {}


def rated_targets(ws: Workspace) -> frozenset[str]:
    """Targets with at least one observed interaction in the workspace's training rows."""
    key = (ws.name, ws.model_version)
    if key not in _RATED:
        train = ws.split.train
        _RATED[key] = frozenset(train[TARGET_ID].astype(str).unique())
    return _RATED[key]


def score_range(state: ItemState) -> tuple[float, float]:
    """``(0, 1)`` for probabilities; otherwise the scores' own range, rounded outwards (a
    ranker may score with unbounded logits)."""
    scores = state.prediction.targets["score"].astype(float)
    if scores.empty:
        return 0.0, 1.0
    lo, hi = float(scores.min()), float(scores.max())
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    lo, hi = math.floor(lo * 100) / 100, math.ceil(hi * 100) / 100
    return lo, hi if hi > lo else lo + 1.0


def _decision(state: ItemState, target_id: str) -> str:
    return {1: "confirmed", 0: "rejected"}.get(state.decisions.get(str(target_id), -1), "")


def ranked_targets(ws: Workspace, state: ItemState, *, top_n: int = 25,
                   min_score: float | None = None, classes: Sequence[str] = ()) -> pd.DataFrame:
    """The ranking with display columns, filtered (score, protein class) then cut to top_n.

    Disease: rank, symbol, gene id, NCBI, HGNC, protein class, score, percentile, lift over
    popularity (when the ranker knows it), decision.
    Movie: rank, user, gender, age, occupation, score, percentile, lift, decision; only users
    with a rating in
    the workspace are ranked (ranks renumbered among them).
    """
    t = state.prediction.targets
    if ws.domain != DISEASE:
        # users without a single rating in the workspace (half of MovieLens-1M's users are
        # absent from the partial ratings file) are not ranked: their scores carry no taste
        active = rated_targets(ws)
        if active:
            t = t[t[TARGET_ID].astype(str).isin(active)].copy()
            t["rank"] = range(1, len(t) + 1)
    if min_score is not None:  # (None: no filter; scores may be logits below 0)
        t = t[t["score"] >= min_score]
    if classes and "protein_class" in t.columns:
        wanted = set(classes)
        mask = [bool(wanted & {p.strip() for p in v.split(MULTI_SEP)})
                for v in t["protein_class"].fillna("").astype(str)]
        t = t.loc[pd.Series(mask, index=t.index, dtype=bool)]
    t = t.head(top_n)
    ids = t[TARGET_ID].astype(str)
    if ws.domain == DISEASE:
        symbol = t["symbol"] if "symbol" in t.columns else t[NAME]
        out = pd.DataFrame({
            "rank": t["rank"].astype(int), "symbol": symbol.astype(str), "gene id": ids,
            "NCBI Gene": ids.map(ncbi_url),
            "HGNC": [hgnc_page(ws, i, sym) for i, sym in zip(ids, symbol.astype(str),
                                                              strict=True)],
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
    # target is than from popularity alone (shared-space ranker)
    if "percentile" in t.columns:
        out["percentile"] = t["percentile"].astype(float).round(2).to_numpy()
    if "lift" in t.columns:
        out["lift over popularity"] = t["lift"].astype(float).round(2).to_numpy()
    out["decision"] = [_decision(state, i) for i in ids]
    return out.reset_index(drop=True)


def appeal_by_group(ws: Workspace, state: ItemState) -> pd.DataFrame:
    """Mean predicted appeal of the movie per user group: attribute, group, appeal, users."""
    t = state.prediction.targets
    frames = []
    for col in USER_GROUPS:
        if col not in t.columns:
            continue
        g = t.groupby(t[col].astype(str))["score"].agg(["mean", "size"]).reset_index()
        g.columns = ["group", "appeal", "users"]
        g.insert(0, "attribute", col)
        frames.append(g)
    if not frames:
        return pd.DataFrame(columns=["attribute", "group", "appeal", "users"])
    return pd.concat(frames, ignore_index=True)


def neighbour_table(state: ItemState) -> pd.DataFrame:
    """Nearest established items: id, name, similarity, their best-known targets."""
    n = state.prediction.neighbours.copy()
    n["similarity"] = n["similarity"].astype(float).round(4)
    return n.rename(columns={"item_id": "item", "evidence": "best-known targets"})


__all__ = ["appeal_by_group", "hgnc_url", "ncbi_url", "neighbour_table", "ranked_targets",
           "hgnc_page", "rated_targets", "score_range", "target_classes"]
