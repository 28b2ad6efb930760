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


# ---- deterministic tie-breaking (protocol.md: lower target index first) ------------------------
def _reference_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Top k of each row by a full stable sort: score descending, then index ascending."""
    return np.stack([sorted(range(scores.shape[1]), key=lambda j: (-row[j], j))[:k]
                     for row in scores])


def test_top_k_indices_breaks_ties_by_lower_index() -> None:
    from engine.metrics import top_k_indices

    rng = np.random.default_rng(0)
    for _ in range(100):
        m, n = int(rng.integers(1, 5)), int(rng.integers(1, 200))
        s = rng.integers(0, 4, (m, n)).astype(np.float64)  # heavy ties
        s[rng.random((m, n)) < 0.2] = -np.inf  # excluded targets rank last, by index too
        k = int(rng.integers(1, n + 1))
        np.testing.assert_array_equal(top_k_indices(s, k), _reference_top(s, k))
    with pytest.raises(ValueError, match="k must be"):
        top_k_indices(np.zeros((2, 3)), 4)


def test_ranking_metrics_ties_at_the_cut_go_to_lower_indices() -> None:
    """1,000 targets with one score: the top 100 are targets 0..99, whatever order a partial
    sort leaves (``argpartition`` alone put other targets there: recall 1.0 is the only
    deterministic answer). The same for a tie band crossing the cut after distinct scores."""
    from engine.metrics import ranking_metrics, top_k_jaccard

    n = 1000
    scores = np.zeros((3, n))
    scores[1, 900:] = 1.0  # 100 clear winners at the end, then the band
    scores[2, 950:] = 1.0  # 50 clear winners, then 50 places for a 950-wide band
    relevant = np.zeros((3, n), bool)
    relevant[0, :100] = True
    relevant[1, 900:] = True
    relevant[2, :50] = True
    relevant[2, 950:] = True
    cand = np.ones(n, bool)
    out = ranking_metrics(scores, relevant, np.zeros_like(relevant), cand, ks=(20, 100))
    np.testing.assert_allclose(out["recall@100"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(out["ndcg@100"], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(out["recall@20"], [0.2, 0.2, 0.2])
    # item 0's first 20 are targets 0..19: the relevant ones, so NDCG is ideal
    # the same lists for the Jaccard: two all-tied rows share their top-20 exactly
    assert top_k_jaccard(np.zeros((2, n)), cand, k=20) == 1.0
    assert top_k_jaccard(np.vstack([np.zeros(n), np.r_[np.zeros(n - 20), np.ones(20)]]),
                         cand, k=20) == 0.0
