"""Evaluation metrics of the protocol: pooled AUC, F1 at the mean-score threshold, item AUC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, roc_auc_score

#: Keys of the dict :func:`evaluate` returns (and of each phase in the result files).
METRIC_KEYS: tuple[str, ...] = ("auc", "f1", "item_auc")


def per_item_auc(
    y_true: np.ndarray, y_score: np.ndarray, item_ids: Sequence | np.ndarray
) -> pd.Series:
    """AUC of each item having both classes (index: item id), vectorized with group ranks.

    Uses the Mann–Whitney form ``(sum of positive ranks - P(P+1)/2) / (P * N)`` with average
    ranks for ties, which equals ``sklearn.metrics.roc_auc_score`` on each item.
    """
    frame = pd.DataFrame(
        {
            "item": np.asarray(item_ids),
            "y": np.asarray(y_true, dtype=np.int64),
            "s": np.asarray(y_score, dtype=np.float64),
        }
    )
    frame["r"] = frame.groupby("item", sort=False)["s"].rank(method="average")
    grouped = frame.assign(pr=frame["r"] * frame["y"]).groupby("item", sort=True)
    n_pos = grouped["y"].sum().astype(np.float64)
    n_all = grouped["y"].size().astype(np.float64)
    n_neg = n_all - n_pos
    rank_sum = grouped["pr"].sum()
    valid = (n_pos > 0) & (n_neg > 0)
    auc = (rank_sum[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2) / (n_pos[valid] * n_neg[valid])
    return auc.rename("auc")


def evaluate(
    y_true: Sequence | np.ndarray, y_score: Sequence | np.ndarray, item_ids: Sequence | np.ndarray
) -> dict[str, float]:
    """Protocol metrics over the evaluated rows.

    Args:
        y_true: 0/1 labels.
        y_score: predicted probabilities (any monotone score works for the AUCs).
        item_ids: item of each row (for the per-item AUC).

    Returns:
        ``auc``: AUC over all rows pooled (NaN if only one class); ``f1``: F1 of predicting 1
        where the score is strictly above the mean score of the evaluated rows (CVAR's
        threshold); ``item_auc``: mean AUC over items having both classes (NaN if none).

    Raises:
        ValueError: inputs of different lengths, empty, labels not 0/1, or non-finite scores.
    """
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    items = np.asarray(item_ids)
    if not (len(y) == len(s) == len(items)):
        raise ValueError(
            f"evaluate: lengths differ (y_true {len(y)}, y_score {len(s)}, item_ids {len(items)})"
        )
    if len(y) == 0:
        raise ValueError("evaluate: no rows to evaluate")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("evaluate: y_true must hold only 0 and 1")
    if not np.isfinite(s).all():
        raise ValueError("evaluate: y_score holds NaN or infinite values")
    y = y.astype(np.int64)
    auc = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")
    f1 = float(f1_score(y, (s > s.mean()).astype(np.int64), zero_division=0.0))
    item_auc = per_item_auc(y, s, items)
    return {
        "auc": auc,
        "f1": f1,
        "item_auc": float(item_auc.mean()) if len(item_auc) else float("nan"),
    }


#: Full-catalog ranking metrics recorded per phase (protocol.md "Full-catalog ranking").
RANKING_KEYS: tuple[str, ...] = ("recall@20", "recall@100", "ndcg@100")


def ranking_metrics(
    scores: np.ndarray,
    relevant: np.ndarray,
    exclude: np.ndarray,
    candidate_mask: np.ndarray,
    ks: Sequence[int] = (20, 100),
) -> dict[str, np.ndarray]:
    """Per-item full-catalog ranking metrics (binary gains), vectorized over items.

    Every candidate target of an item is ranked by score (higher first); targets outside
    ``candidate_mask`` and targets in ``exclude`` (the item's positives already seen in its
    phase batches) are not ranked.

    Args:
        scores: ``[M, N]`` score of every target for each item (higher = better).
        relevant: ``[M, N]`` bool, the item's test positives.
        exclude: ``[M, N]`` bool, targets never ranked for that item (seen positives).
        candidate_mask: ``[N]`` bool, the catalog (targets eligible for every item).
        ks: cut-offs; Recall@k for every k, NDCG at the largest k.

    Returns:
        ``{"recall@k": [M] for each k, "ndcg@K": [M]}`` with K = max(ks). Recall@k = hits in
        the top k / number of test positives (all of them, ranked or not); NDCG@K = DCG of the
        top K / DCG of an ideal top K holding min(#test positives, K) hits. Items without test
        positives get NaN.

    Raises:
        ValueError: shapes disagree, ks empty or not positive, or scores not finite.
    """
    s = np.asarray(scores, dtype=np.float64)
    rel = np.asarray(relevant, dtype=bool)
    exc = np.asarray(exclude, dtype=bool)
    cand = np.asarray(candidate_mask, dtype=bool)
    if s.ndim != 2 or rel.shape != s.shape or exc.shape != s.shape or cand.shape != s.shape[1:]:
        raise ValueError(
            f"ranking_metrics: shapes differ (scores {s.shape}, relevant {rel.shape}, "
            f"exclude {exc.shape}, candidate_mask {cand.shape})"
        )
    if not ks or min(ks) <= 0:
        raise ValueError(f"ranking_metrics: ks must be positive cut-offs, got {tuple(ks)}")
    if not np.isfinite(s).all():
        raise ValueError("ranking_metrics: scores hold NaN or infinite values")
    m, n = s.shape
    kmax = min(int(max(ks)), n)
    ranked = np.where(cand[None, :] & ~exc, s, -np.inf)
    top = top_k_indices(ranked, kmax)  # [M, kmax], ties: lower target index first
    rows = np.arange(m)[:, None]
    valid = np.isfinite(ranked[rows, top])  # fewer candidates than kmax -> -inf padding
    hit = rel[rows, top] & valid  # [M, kmax]
    n_rel = rel.sum(1).astype(np.float64)
    denom = np.where(n_rel > 0, n_rel, np.nan)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"recall@{k}"] = hit[:, : min(int(k), kmax)].sum(1) / denom
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))  # [kmax]
    dcg = (hit * discount).sum(1)
    ideal_n = np.minimum(n_rel, kmax).astype(np.int64)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[ideal_n]
    out[f"ndcg@{int(max(ks))}"] = dcg / np.where(ideal > 0, ideal, np.nan)
    return out


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` highest-scoring columns of every row, best first ``[M, k]``; ties broken
    deterministically by the lower column index first (protocol.md), never by the order a
    partial sort happens to leave.

    ``argpartition`` picks k columns per row and gives the k-th score ``thr``; in rows where
    more columns than places left share ``thr`` (the tie band spills over the cut), the columns
    above ``thr`` are kept and the band's lowest-indexed columns fill the remaining places.
    Only the k chosen columns are then sorted by (score desc, index asc). Cost O(M N) plus
    O(M k log k), like ``argpartition`` alone.

    Args:
        scores: ``[M, N]`` float scores (``-inf`` allowed: such columns rank last, by index).
        k: how many columns per row (``1 <= k <= N``).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"top_k_indices: scores must be [M, N], got shape {s.shape}")
    m, n = s.shape
    if not 1 <= k <= n:
        raise ValueError(f"top_k_indices: k must be in [1, {n}], got {k}")
    if np.isnan(s).any():
        raise ValueError("top_k_indices: scores hold NaN")
    rows = np.arange(m)[:, None]
    if k == n:
        chosen = np.tile(np.arange(n), (m, 1))
    else:
        chosen = np.argpartition(-s, k - 1, axis=1)[:, :k]  # [M, k], any tie order
        thr = s[rows, chosen].min(1, keepdims=True)  # [M, 1]: the k-th highest score
        n_at_or_above = (s >= thr).sum(1)
        for r in np.flatnonzero(n_at_or_above > k):  # rows whose tie band crosses the cut
            row, t = s[r], thr[r, 0]
            above = np.flatnonzero(row > t)
            band = np.flatnonzero(row == t)[: k - above.size]  # lowest indices of the band
            chosen[r] = np.concatenate([above, band])
    order = np.lexsort((chosen, -s[rows, chosen]), axis=1)  # score desc, then index asc
    return np.ascontiguousarray(chosen[rows, order])


def paired_bootstrap(diff: Sequence[float] | np.ndarray, n: int = 1000, seed: int = 0
                     ) -> dict[str, float | None]:
    """Mean of per-item differences with a 95% percentile bootstrap interval over items.

    Args:
        diff: ``[M]`` per-item difference (method A - method B on the same items); NaN items
            (no test positives) are dropped.
        n: resamples of the items (with replacement).
        seed: seed of the resampling.

    Returns:
        ``{"mean", "lo", "hi"}`` (2.5th and 97.5th percentiles of the resampled means);
        all None when no item is left.
    """
    if n <= 0:
        raise ValueError(f"paired_bootstrap: n must be > 0, got {n}")
    d = np.asarray(diff, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"mean": None, "lo": None, "hi": None}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n, d.size))].mean(1)
    return {"mean": float(d.mean()), "lo": float(np.percentile(means, 2.5)),
            "hi": float(np.percentile(means, 97.5))}


def top_k_jaccard(scores: np.ndarray, candidate_mask: np.ndarray, k: int = 20) -> float:
    """Mean Jaccard overlap of the top-k targets over all pairs of different items.

    Args:
        scores: ``[M, N]`` scores (higher = better); candidate_mask: ``[N]`` bool.

    Returns:
        Mean over the M(M-1)/2 pairs (NaN when M < 2).
    """
    s = np.where(np.asarray(candidate_mask, bool)[None, :], np.asarray(scores, np.float64),
                 -np.inf)
    m, n = s.shape
    if m < 2:
        return float("nan")
    kk = min(k, n)
    top = top_k_indices(s, kk)  # ties: lower target index first
    ind = np.zeros((m, n), np.float32)
    ind[np.arange(m)[:, None], top] = 1.0
    inter = ind @ ind.T  # [M, M]
    jac = inter / (2 * kk - inter)
    iu = np.triu_indices(m, 1)
    return float(jac[iu].mean())
