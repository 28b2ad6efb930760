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
