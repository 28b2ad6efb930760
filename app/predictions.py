"""Prediction tables and charts data for the Predictions and Feedback pages (no streamlit).

Genes get NCBI Gene and HGNC links; users get their demographic columns; movies get the
predicted appeal per age band, gender and occupation, against each group's usual appeal
over the established movies.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from urllib.parse import quote

import numpy as np
import pandas as pd

from app.flows import ItemState
from engine import evidence as ev
from engine.schema import DISEASE, ITEM_ID, MULTI_SEP, TARGET_ID
from engine.workspace import Workspace, ranking_order

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


APPEAL_SAMPLE = 60  #: established items scored for a workspace's per-group baseline (at most)

_USUAL: dict[tuple[str, str], pd.DataFrame] = {}
_USUAL_LOCK = threading.Lock()


def _percentiles(scores: np.ndarray) -> np.ndarray:
    """Each target's percentile in the ranking of ``scores`` (share of the catalog ranked
    below, 0-100), as :class:`engine.workspace.RankedCatalog` computes it."""
    order = ranking_order(np.asarray(scores, np.float64))
    n = len(order)
    pct = np.empty(n, np.float64)
    pct[order] = 100.0 * (n - 1 - np.arange(n)) / max(n - 1, 1)
    return pct


def _group_codes(ws: Workspace) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per user attribute present in the target table: (group code per target row, groups)."""
    out = {}
    for col in USER_GROUPS:
        if col in ws.dataset.targets.columns:
            codes, groups = pd.factorize(ws.dataset.targets[col].astype(str), sort=True)
            out[col] = (codes, [str(g) for g in groups])
    return out


def usual_appeal(ws: Workspace) -> pd.DataFrame:
    """Each user group's usual mean percentile: attribute, group, usual, items.

    The workspace's established (old) items only: up to :data:`APPEAL_SAMPLE` of them, evenly
    spread over the sorted ids, each ranked from its dataset features as a new item would be
    (phase 0, ``Workspace.scores``); ``usual`` is the mean over those rankings of the group's
    mean percentile. Groups whose users the ranker places high for any movie (e.g. the most
    active ones) have a high usual value. Computed once per workspace model (the dashboard's
    warm-up does it in the background when a movie workspace is loaded).
    """
    key = (ws.name, ws.model_version)
    with _USUAL_LOCK:
        if key not in _USUAL:
            _USUAL[key] = _usual_appeal(ws)
        return _USUAL[key]


def _usual_appeal(ws: Workspace) -> pd.DataFrame:
    from app.flows.items import dataset_features

    groups = _group_codes(ws)
    cols = ["attribute", "group", "usual", "items"]
    if not groups:
        return pd.DataFrame(columns=cols)
    old = list(ws.split.old_items)
    pick = (old if len(old) <= APPEAL_SAMPLE else
            [old[i] for i in np.linspace(0, len(old) - 1, APPEAL_SAMPLE).round().astype(int)])
    rows = ws.dataset.items.set_index(ws.dataset.items[ITEM_ID].astype(str))
    sums = {c: np.zeros(len(g)) for c, (_, g) in groups.items()}
    n_items = 0
    for item_id in pick:
        feats = {f["name"]: f["value"] for f in dataset_features(ws, rows.loc[item_id].to_dict())}
        try:
            scores, _ = ws.scores(feats)
        except ValueError:  # nothing to serialize
            continue
        pct = _percentiles(scores)
        for col, (codes, g) in groups.items():
            counts = np.bincount(codes, minlength=len(g))
            sums[col] += np.bincount(codes, weights=pct, minlength=len(g)) / np.maximum(counts, 1)
        n_items += 1
    if not n_items:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(
        [(col, grp, float(sums[col][j] / n_items), n_items)
         for col, (_, g) in groups.items() for j, grp in enumerate(g)], columns=cols)


def appeal_by_group(ws: Workspace, state: ItemState) -> pd.DataFrame:
    """Predicted appeal of the movie per user group: attribute, group, appeal, usual,
    vs usual, users.

    ``appeal`` is the group's mean percentile in the movie's ranking (0-100; 50 = the middle
    of the ranking). It alone mostly says how the ranker places a group for *any* movie (the
    most active groups sit high whatever the film), so ``usual`` is that group's mean
    percentile over the established movies (:func:`usual_appeal`) and ``vs usual`` =
    ``appeal - usual`` (percentile points): positive = the group is drawn to this movie more
    than to the usual established one.
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
    cols = ["attribute", "group", "appeal", "usual", "vs usual", "users"]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)
    usual = usual_appeal(ws) if value == "percentile" else pd.DataFrame()
    if usual.empty:
        out["usual"] = np.nan
    else:
        out = out.merge(usual[["attribute", "group", "usual"]], on=["attribute", "group"],
                        how="left")
    out["vs usual"] = out["appeal"] - out["usual"]
    return out[cols]


def neighbour_table(state: ItemState) -> pd.DataFrame:
    """Nearest established items: id, name, similarity, their best-known targets."""
    n = state.prediction.neighbours.copy()
    n["similarity"] = n["similarity"].astype(float).round(4)
    return n.rename(columns={"item_id": "item", "evidence": "best-known targets"})


__all__ = ["appeal_by_group", "hgnc_url", "ncbi_url", "neighbour_table", "ranked_targets",
           "hgnc_page", "rated_targets", "score_range", "target_classes", "usual_appeal"]
