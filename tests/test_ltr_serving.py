"""The learned ranker's fast serving path gives exactly the scores of the straightforward one.

Reference: the computation before the fast path (``item_features`` for the item, then
``booster.predict`` of every target row). The fast path (one tree walk per distinct split
pattern, :class:`engine.ltr.serving.SplitPatterns`; the per-item memo of features and scores)
must return bit-identical scores, rankings and explanations.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.ltr.serving import FeatureMemo, SplitPatterns, decision_key
from engine.ranking.base import Decisions


def _booster(x: np.ndarray, y: np.ndarray, cats: list[int], **params):
    import lightgbm as lgb

    ds = lgb.Dataset(x, y, categorical_feature=cats or "auto", free_raw_data=False)
    base = {"objective": "regression", "num_leaves": 15, "min_data_in_leaf": 5, "max_bin": 63,
            "verbose": -1, "seed": 0, "num_threads": 1, "deterministic": True}
    return lgb.train({**base, **params}, ds, num_boost_round=30)


@pytest.mark.parametrize("params", [{}, {"zero_as_missing": True}])
def test_split_patterns_predict_is_bit_identical(params):
    rng = np.random.default_rng(0)
    n = 3000
    x = np.column_stack([
        rng.integers(0, 4, n).astype(np.float32),          # few distinct values
        rng.normal(size=n).astype(np.float32),             # continuous
        np.where(rng.random(n) < 0.5, 0.0, rng.random(n)).astype(np.float32),  # many zeros
        rng.integers(0, 6, n).astype(np.float32),          # categorical
        np.zeros(n, np.float32),                           # never split on
    ])
    x[rng.random(n) < 0.05, 1] = np.nan
    y = x[:, 0] + np.nan_to_num(x[:, 1]) + 3 * (x[:, 2] > 0.3) + (x[:, 3] == 2)
    booster = _booster(x, y + rng.normal(scale=0.1, size=n), [3], **params)
    pat = SplitPatterns(booster, x.shape[1])
    assert pat.categorical[3] and not pat.used[4]
    # new rows: values exactly on thresholds, between them, zero, NaN, unseen categories
    t1 = pat.thresholds[1]
    z = np.column_stack([
        rng.integers(0, 5, n).astype(np.float32),
        rng.choice(np.concatenate([t1, t1 + 1e-9, rng.normal(size=50)]), n).astype(np.float32),
        np.where(rng.random(n) < 0.5, 0.0, rng.random(n)).astype(np.float32),
        rng.integers(-1, 8, n).astype(np.float32),
        rng.random(n).astype(np.float32),
    ])
    z[rng.random(n) < 0.05, 1] = np.nan
    z[rng.random(n) < 0.02, 3] = np.nan
    first, inverse = pat.groups(z)
    assert len(first) < n
    want = np.asarray(booster.predict(z, num_threads=1), np.float64)
    got = pat.predict(booster, z, 1)
    assert np.array_equal(want, got)


def test_memo_is_bounded_and_read_only():
    memo = FeatureMemo(max_entries=2)
    keys = [decision_key(np.full(4, i, np.float32), np.array([i]), np.zeros(0)) for i in range(3)]
    assert len(set(keys)) == 3
    for i, k in enumerate(keys):
        memo.put(k, np.full((5, 2), i, np.float32), np.full(5, i, np.float64))
    assert memo.get(keys[0]) is None and memo.get(keys[2]) is not None
    fx, s = memo.get(keys[1])
    with pytest.raises(ValueError):
        s[0] = 1.0
    # decision order does not matter; decisions do
    a = decision_key(np.ones(4, np.float32), np.array([3, 1]), np.array([2]))
    b = decision_key(np.ones(4, np.float32), np.array([1, 3]), np.array([2]))
    c = decision_key(np.ones(4, np.float32), np.array([1, 3]), np.array([4]))
    assert a == b != c


@pytest.mark.slow
def test_fast_scores_equal_the_straightforward_computation(tmp_path, encoder):
    """Demo workspace with the learned ranker: every score, ranking and explanation equals
    ``booster.predict`` of the full feature matrix, with and without decisions, memo hit or
    miss, one item or many."""
    from engine.build import build_dataset_workspace
    from engine.config import WorkspaceConfig
    from engine.workspace import ranking_order

    cfg = WorkspaceConfig(dataset="demo-diseases", ranker="ltr",
                          ltr={"folds": 3, "n_estimators": 40, "candidates": 50,
                               "random_negatives": 50})
    ws = build_dataset_workspace("demo-diseases", config=cfg, encoder=encoder, home=tmp_path)
    r = ws.ranker
    n = r.n_targets
    rng = np.random.default_rng(0)
    items = ws.dataset.items.head(12).to_dict("records")
    texts = np.stack([ws.encode(f)[1] for f in items]).astype(np.float32)
    conf = np.zeros((len(items), n), np.float32)
    rej = np.zeros_like(conf)
    for i in range(len(items)):
        rows = rng.choice(n, 2 * (i % 4), replace=False)
        conf[i, rows[: i % 4]] = 1
        rej[i, rows[i % 4:]] = 1

    def reference(i: int) -> np.ndarray:
        fx = r.features(texts[i][None], conf[i][None], rej[i][None])[0]
        return np.asarray(r.booster.predict(fx, num_threads=1), np.float64)

    ref = np.stack([reference(i) for i in range(len(items))])
    assert np.array_equal(r.score_many(texts, conf, rej, chunk=5), ref)
    for i in range(len(items)):
        dec = Decisions(np.flatnonzero(conf[i]), np.flatnonzero(rej[i]))
        for _ in range(2):  # miss, then memo hit
            s = r.score(texts[i], texts[i], dec).scores
            assert np.array_equal(s, ref[i])
            assert np.array_equal(ranking_order(s), np.argsort(-ref[i], kind="stable"))
        s[:] = 0.0  # a caller's copy: the memo is untouched
        assert np.array_equal(r.score(texts[i], texts[i], dec).scores, ref[i])
    # explain reads the memo's features: the same words and weights as from fresh features
    dec = Decisions(np.flatnonzero(conf[3]), np.flatnonzero(rej[3]))
    rows = np.arange(0, n, max(1, n // 20))
    cached = r.explain(texts[3], texts[3], dec, rows, ws.target_names)
    r.memo.clear()
    fresh = r.explain(texts[3], texts[3], dec, rows, ws.target_names)
    assert cached == fresh
    before = r.catalog_scorings
    r.score(texts[3], texts[3], dec)
    assert r.catalog_scorings == before  # explain filled the memo
