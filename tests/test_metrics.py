"""Metrics: pooled AUC, F1 at the mean-score threshold, vectorized per-item AUC vs sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from engine.metrics import METRIC_KEYS, evaluate, per_item_auc


def test_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    items = rng.integers(0, 40, n).astype(str)
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n) + 0.4 * y, 1)  # many ties
    out = evaluate(y, s, items)
    assert tuple(out) == METRIC_KEYS
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    assert out["f1"] == pytest.approx(f1_score(y, (s > s.mean()).astype(int)))
    expected = np.mean([roc_auc_score(y[items == i], s[items == i]) for i in np.unique(items)])
    assert out["item_auc"] == pytest.approx(expected)


def test_items_with_one_class_are_skipped() -> None:
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.1, 0.8, 0.7, 0.2, 0.3])
    items = np.array(["a", "a", "b", "b", "c", "c"])
    per_item = per_item_auc(y, s, items)
    assert list(per_item.index) == ["a"] and per_item["a"] == 1.0
    out = evaluate(y, s, items)
    assert out["auc"] == 1.0 and out["item_auc"] == 1.0 and out["f1"] == 1.0


def test_single_class_gives_nan() -> None:
    out = evaluate([1, 1], [0.2, 0.4], ["a", "b"])
    assert math.isnan(out["auc"]) and math.isnan(out["item_auc"])
    assert out["f1"] == pytest.approx(f1_score([1, 1], [0, 1]))


@pytest.mark.parametrize(
    ("y", "s", "items"),
    [
        ([0, 1], [0.1], ["a", "a"]),
        ([], [], []),
        ([0, 2], [0.1, 0.2], ["a", "a"]),
        ([0, 1], [0.1, np.nan], ["a", "a"]),
    ],
)
def test_bad_inputs(y, s, items) -> None:
    with pytest.raises(ValueError):
        evaluate(y, s, items)


# ---- full-catalog ranking ---------------------------------------------------------------------
def test_ranking_metrics_by_hand() -> None:
    from engine.metrics import ranking_metrics

    # item 0: target 0 excluded (a seen positive), test positives 1 and 3; target 4 is not a
    # candidate. Ranking of the rest: 1 (.8, hit), 2 (.7), 3 (.6, hit), 5 (.1).
    # item 1: its only test positive (target 0) is ranked last of the 5 candidates.
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.95, 0.1],
                       [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
    relevant = np.array([[0, 1, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0]], bool)
    exclude = np.zeros_like(relevant)
    exclude[0, 0] = True
    cand = np.array([True, True, True, True, False, True])
    out = ranking_metrics(scores, relevant, exclude, cand, ks=(1, 3))
    assert set(out) == {"recall@1", "recall@3", "ndcg@3"}
    np.testing.assert_allclose(out["recall@1"], [0.5, 0.0])
    np.testing.assert_allclose(out["recall@3"], [1.0, 0.0])
    ideal = 1.0 + 1.0 / math.log2(3)
    np.testing.assert_allclose(out["ndcg@3"], [(1.0 + 1.0 / math.log2(4)) / ideal, 0.0])
    # k beyond the candidates: item 1's positive (rank 5) counts at k = 100
    out = ranking_metrics(scores, relevant, exclude, cand, ks=(20, 100))
    np.testing.assert_allclose(out["recall@100"], [1.0, 1.0])
    np.testing.assert_allclose(out["ndcg@100"][1], 1.0 / math.log2(6))


def test_ranking_metrics_recall_counts_every_test_positive_and_nan_without_any() -> None:
    from engine.metrics import ranking_metrics

    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    relevant = np.array([[1, 1, 0], [0, 0, 0]], bool)
    cand = np.array([True, False, True])  # test positive 1 is never ranked: recall <= 1/2
    out = ranking_metrics(scores, relevant, np.zeros_like(relevant), cand, ks=(2,))
    assert out["recall@2"][0] == 0.5 and math.isnan(out["recall@2"][1])
    with pytest.raises(ValueError, match="shapes differ"):
        ranking_metrics(scores, relevant[:1], relevant, cand)
    with pytest.raises(ValueError, match="NaN"):
        ranking_metrics(np.full((2, 3), np.nan), relevant, relevant, cand)


def test_paired_bootstrap_interval() -> None:
    from engine.metrics import paired_bootstrap

    rng = np.random.default_rng(3)
    diff = rng.normal(0.2, 0.5, 400)
    out = paired_bootstrap(diff, n=1000, seed=0)
    assert out["mean"] == pytest.approx(diff.mean())
    assert out["lo"] < out["mean"] < out["hi"]
    se = diff.std() / math.sqrt(len(diff))
    assert out["lo"] == pytest.approx(diff.mean() - 1.96 * se, abs=0.3 * se)
    assert out["hi"] == pytest.approx(diff.mean() + 1.96 * se, abs=0.3 * se)
    assert paired_bootstrap(diff, seed=0) == out  # deterministic
    assert paired_bootstrap([np.nan, 0.5, 0.5])["lo"] == 0.5  # NaN items dropped
    assert paired_bootstrap([np.nan])["mean"] is None


def test_top_k_jaccard() -> None:
    from engine.metrics import top_k_jaccard

    scores = np.array([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    # top-2: {0,1}, {0,1}, {3,2} -> pairs 1, 0, 0
    assert top_k_jaccard(scores, np.ones(4, bool), k=2) == pytest.approx(1 / 3)
