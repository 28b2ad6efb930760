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
