"""Prediction tables and charts data for the Predictions and Feedback pages (no streamlit).

Genes get NCBI Gene and HGNC links; users get their demographic columns; movies get the
predicted appeal per age band, gender and occupation.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import pandas as pd

from app.flows import ItemState
from engine import evidence as ev
from engine.schema import DISEASE, MULTI_SEP, TARGET_ID
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
    return ev.score_range(state.prediction.targets["score"])


def ranked_targets(ws: Workspace, state: ItemState, *, top_n: int = 25,
                   min_score: float | None = None, classes: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`engine.evidence.ranked_table` of the item's current ranking (movies: only users
    with a rating in the workspace are ranked, ranks renumbered among them)."""
    from app import lookup

    return ev.ranked_table(ws, state.prediction, state.decisions, top_n=top_n,
                           min_score=min_score, classes=classes,
                           genes=lookup.gene_resolver(ws) if ws.domain == DISEASE else None,
                           active=rated_targets(ws) if ws.domain != DISEASE else None)


def appeal_by_group(ws: Workspace, state: ItemState) -> pd.DataFrame:
    """Predicted appeal of the movie per user group: attribute, group, appeal, users.

    ``appeal`` is the group's mean percentile in the movie's ranking (0-100; 50 = no more
    drawn to it than the average user): readable whatever the ranker's score scale (the
    shared-space score is a log-probability near -18, where every group looked the same).
    """
    t = state.prediction.targets
    value = "percentile" if "percentile" in t.columns else "score"
    frames = []
    for col in USER_GROUPS:
        if col not in t.columns:
            continue
        g = t.groupby(t[col].astype(str))[value].agg(["mean", "size"]).reset_index()
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
