"""The learned ranker (engine.ltr): leave-fold-out training lists, the product ranker on a
demo workspace (score, refine, explain, save/load), and the bench method's registration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from engine.ltr import LtrConfig
from engine.ltr.features import BASE_FEATURES, BEST_K, Reference, feature_names, item_features
from engine.ltr.model import Tasks, simulate_tasks, training_lists


def _disjoint(n_items: int = 30, per: int = 6, t: int = 16, seed: int = 0):
    """Old items with disjoint positive targets and random texts."""
    rng = np.random.default_rng(seed)
    n = n_items * per
    x = sparse.csr_matrix((np.ones(n, np.float32),
                           (np.repeat(np.arange(n_items), per), np.arange(n))),
                          shape=(n_items, n + 5))
    return x, rng.normal(size=(n_items, t))


def _phase0_tasks(x) -> Tasks:
    """One Phase-0 list per item of ``x``: nothing decided, every positive relevant."""
    tasks = Tasks([], [], [], [])
    for i in range(x.shape[0]):
        tasks.item.append(i)
        tasks.confirmed.append(np.zeros(0, np.int64))
        tasks.rejected.append(np.zeros(0, np.int64))
        tasks.relevant.append(x[i].indices)
    return tasks


def _random_lists() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(feature names, 400 random feature rows, labels: the rows with ``vote`` > .7), four
    lists of 100, for checks that a setting reaches LightGBM."""
    names = feature_names(None)
    fx = np.random.default_rng(0).random((400, len(names))).astype(np.float32)
    return names, fx, (fx[:, names.index("vote")] > 0.7).astype(np.float32)


def test_training_lists_never_see_the_item_itself():
    x, text = _disjoint()
    tasks = Tasks([], [], [], [])
    for i in range(x.shape[0]):
        own = x[i].indices
        for p in range(2):
            tasks.item.append(i)
            tasks.confirmed.append(own[: 2 * p])
            tasks.rejected.append(np.zeros(0, np.int64))
            tasks.relevant.append(own[2 * p:])
    cfg = LtrConfig(folds=3, candidates=20, random_negatives=20, k=5, wide_k=10)
    feats, labels, sizes = training_lists(x, text, tasks, cfg, 0, None)
    names = feature_names(None)
    assert sizes.sum() == len(labels) == len(feats)
    pos = labels > 0
    unseen = pos & (feats[:, names.index("confirmed")] == 0)
    assert unseen.any()
    # an item's own targets belong to no other item: with the item out of its own
    # reference set, no neighbour channel may know them
    for name in ("vote", "vote_wide", "near5", "best_sim", "pop_share", "ease",
                 "cooc_max"):
        assert np.all(feats[unseen, names.index(name)] == 0), name
    assert np.all(feats[unseen, names.index("best_rank")] == BEST_K + 1)


def test_simulated_phases_follow_the_protocol():
    train = pd.DataFrame({"item_id": ["a"] * 10, "target_id": [str(i) for i in range(10)],
                          "label": [1, 0, 1, 1, 0, 1, 1, 1, 0, 1], "rank": list(range(10))})
    tasks = simulate_tasks(train, pd.Series({"a": 0}), pd.Series(
        {str(i): i for i in range(10)}), k=3, n_phases=2, cap=9)
    assert tasks.item == [0, 0, 0]
    assert [list(c) for c in tasks.confirmed] == [[], [0, 2], [0, 2, 3, 5]]
    assert [list(r) for r in tasks.rejected] == [[], [1], [1, 4]]
    assert [list(r) for r in tasks.relevant] == [[0, 2, 3, 5, 6, 7], [3, 5, 6, 7], [6, 7]]
    assert [list(h) for h in tasks.hidden] == [[9], [9], [9]]  # beyond the cap: left out
    window = simulate_tasks(train, pd.Series({"a": 0}), pd.Series(
        {str(i): i for i in range(10)}), k=3, n_phases=2, cap=9, test_window=True)
    # only what a new item's test set would hold (rank >= 2 * 3) is relevant in every phase
    assert [list(r) for r in window.relevant] == [[6, 7], [6, 7], [6, 7]]
    assert [list(c) for c in window.confirmed] == [list(c) for c in tasks.confirmed]


def test_features_shapes_and_decision_flags():
    x, text = _disjoint(10, 3)
    ref = Reference(x, text, 10.0)
    n = x.shape[1]
    conf = np.zeros((2, n), np.float32)
    rej = np.zeros((2, n), np.float32)
    conf[1, [0, 1]] = 1
    rej[1, 5] = 1
    fx = item_features(ref, ref.similarities(text[:2]), conf, rej, k=3, temperature=0.1,
                       wide_k=5)
    assert fx.shape == (2, n, len(BASE_FEATURES))
    col = {name: i for i, name in enumerate(BASE_FEATURES)}
    assert fx[1, 0, col["confirmed"]] == 1 and fx[1, 5, col["rejected"]] == 1
    assert fx[1, 2, col["cooc_max"]] == pytest.approx(1.0)  # item 0's third target
    assert fx[0, :, col["n_confirmed"]].max() == 0 and fx[1, 0, col["n_confirmed"]] == 2


def test_bench_method_registered():
    from engine.baselines import METHODS
    from engine.ranking.registry import RANKERS

    assert METHODS["emerflow-ltr"].name == "emerflow-ltr"
    assert "ltr" in RANKERS


@pytest.mark.slow
def test_demo_workspace_with_the_learned_ranker(tmp_path, encoder):
    from engine.build import build_dataset_workspace, workspace_dir
    from engine.config import WorkspaceConfig
    from engine.workspace_store import load_workspace

    cfg = WorkspaceConfig(dataset="demo-diseases", ranker="ltr",
                          ltr={"folds": 3, "n_estimators": 20, "candidates": 50,
                               "random_negatives": 50})
    ws = build_dataset_workspace("demo-diseases", config=cfg, encoder=encoder, home=tmp_path)
    assert ws.ranker.kind == "ltr"
    item = ws.dataset.items.iloc[0].to_dict()
    first = ws.predict(item)
    top = [str(t) for t in first.targets["target_id"].head(3)]
    decisions = {top[0]: 1, top[1]: 1, top[2]: 0}
    emb = ws.refine(first.embedding, item, list(decisions.items()))
    after = ws.predict(item, embedding=emb, decisions=decisions, pin_decisions=False)
    n = ws.ranker.n_targets
    for t in (top[0], top[1]):
        assert after.model_rank[t] <= max(1, n // 100)
    reasons = ws.explain(item, [str(after.targets["target_id"].iloc[5])], embedding=emb,
                         decisions=decisions)
    words = [r.text for rs in reasons.values() for r in rs]
    assert any("nearest" in w for w in words)
    loaded = load_workspace(workspace_dir("demo-diseases", tmp_path), encoder)
    again = loaded.predict(item, embedding=emb, decisions=decisions, pin_decisions=False)
    assert np.allclose(again.targets["score"].to_numpy(), after.targets["score"].to_numpy())


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("name", ["disgenet-curated", "movielens-1m-partial"])
def test_confirmed_targets_in_the_models_own_top_percent_on_real_workspaces(
        name, shared_data, encoder, tmp_path, monkeypatch):
    """Issue 16, item 3: after a refinement with a new item's real phase-I batch, every
    confirmed target's rank in the model's OWN ranking (no pinning) is in the top 1%."""
    from dataclasses import replace

    from engine.build import build_dataset_workspace
    from engine.schema import ITEM_ID, LABEL, TARGET_ID
    from engine.tuned import emerflow_workspace_config

    monkeypatch.setenv("EMERFLOW_DATA", str(shared_data))
    base = emerflow_workspace_config(name)
    ltr = {**(base.ltr or {}), "n_estimators": 30, "folds": 3}  # a quick build
    ws = build_dataset_workspace(name, config=replace(base, ranker="ltr", ltr=ltr),
                                 encoder=encoder, home=tmp_path)
    n = ws.ranker.n_targets
    top = max(1, int(np.ceil(n / 100)))
    items = ws.dataset.items.set_index(ws.dataset.items[ITEM_ID].astype(str))
    batch = ws.split.phases["I"]
    for item_id in ws.split.new_items[:4]:
        rows = batch[batch[ITEM_ID].astype(str) == str(item_id)]
        decisions = {str(t): int(y) for t, y in zip(rows[TARGET_ID], rows[LABEL], strict=True)}
        features = items.loc[str(item_id)].to_dict()
        first = ws.predict(features)
        emb = ws.refine(first.embedding, features, list(decisions.items()))
        after = ws.predict(features, embedding=emb, decisions=decisions, pin_decisions=False)
        confirmed = [t for t, y in decisions.items() if y > 0]
        assert confirmed
        ranks = [after.model_rank[t] for t in confirmed]
        assert max(ranks) <= top, (item_id, ranks, top)


def test_a_learned_product_builds_the_ltr_ranker_with_its_validated_settings():
    from engine.tuned import DATASET_SETTINGS, PRODUCT_METHOD, emerflow_workspace_config

    for dataset, product in PRODUCT_METHOD.items():
        if product.endswith("-ltr"):
            cfg = emerflow_workspace_config(dataset)
            assert cfg.ranker == "ltr"
            assert cfg.ltr == DATASET_SETTINGS[dataset]["methods"][product]["ltr"]
            LtrConfig.from_dict(cfg.ltr)  # every key is a setting of the ranker


def test_mates_vote_reaches_targets_no_neighbour_has_and_excludes_the_target_itself():
    from engine.ltr.features import mates_vote, memberships

    # targets 0,1,2 share attribute "a"; 3 has "b" alone; 4 has none
    a, ids = memberships([["a"], ["a"], ["a", "b"], ["b"], []])
    assert ids == ["a", "b"]
    vote = np.array([[0.6, 0.0, 0.0, 0.3, 0.9]])
    got = mates_vote(a, vote)[0]
    assert got[1] == pytest.approx(0.3)  # mates 0 and 2: (0.6 + 0) / 2; it has no vote itself
    assert got[0] == pytest.approx(0.0)  # its own 0.6 is not counted
    assert got[2] == pytest.approx((0.3 + 0.3) / 2)  # "a": (0.6+0)/2, "b": 0.3; averaged
    assert got[3] == pytest.approx(0.0)  # "b"'s other member (2) has no vote
    assert got[4] == 0.0  # no attributes


def test_gene_attributes_in_features_and_saved_config(tmp_path):
    from engine.ltr.features import attribute_features
    from engine.ltr.knowledge import knowledge_from_lists

    with pytest.raises(ValueError, match="unknown kinds"):
        LtrConfig(attributes=("colour",))
    cfg = LtrConfig.from_dict({"attributes": ["family", "tissue"], "monotone": True,
                               "item_level": True})
    assert cfg.attributes == ("family", "tissue") and cfg.to_dict()["attributes"] == [
        "family", "tissue"]
    x, text = _disjoint(8, 3)
    n = x.shape[1]
    fam = [["g1"] if t < 6 else [] for t in range(n)]
    know = knowledge_from_lists(fam, ["gene with protein product"] * n,
                                {"family": fam, "tissue": [["heart"]] * 3 + [[]] * (n - 3)})
    assert attribute_features(know) == ("family_vote", "tissue_vote", "tissue_shared")
    names = feature_names(know, item_level=True)
    ref = Reference(x, text, 10.0)
    conf = np.zeros((1, n), np.float32)
    conf[0, 0] = 1
    fx = item_features(ref, ref.similarities(text[:1]), conf, np.zeros_like(conf), k=3,
                       temperature=0.1, wide_k=5, knowledge=know, item_level=True)
    col = {name: i for i, name in enumerate(names)}
    assert fx.shape == (1, n, len(names))
    assert fx[0, 1, col["tissue_shared"]] == 1 and fx[0, 5, col["tissue_shared"]] == 0
    sims = np.sort(ref.similarities(text[:1])[0])[::-1]
    assert fx[0, 7, col["sim1"]] == pytest.approx(sims[0], abs=1e-6)
    assert fx[0, 7, col["simk"]] == pytest.approx(sims[:3].mean(), abs=1e-6)
    assert knowledge_from_lists(**{"families": know.to_json()["families"],
                                   "loci": know.to_json()["loci"],
                                   "attributes": know.to_json()["attributes"]}
                                ).attribute_lists == know.attribute_lists


def test_monotone_constraints_keep_more_evidence_from_lowering_a_score():
    from engine.ltr.model import MONOTONE, fit_booster

    rng = np.random.default_rng(0)
    names = feature_names(None)
    rows = 4000
    fx = rng.random((rows, len(names))).astype(np.float32)
    vote = names.index("vote")
    # labels that fall with the vote above .8 on these lists (an old-item quirk)
    y = ((fx[:, vote] > 0.5) & (fx[:, vote] < 0.8)).astype(np.float32)
    sizes = np.full(rows // 100, 100)
    cfg = LtrConfig(n_estimators=30, num_leaves=7, min_data_in_leaf=20, monotone=True,
                    threads=1)
    booster = fit_booster(fx, y, sizes, names, cfg, 0)
    grid = np.tile(fx[:1], (11, 1))
    grid[:, vote] = np.linspace(0, 1, 11)
    pred = booster.predict(grid)
    assert MONOTONE["vote"] == 1 and np.all(np.diff(pred) >= -1e-12)
    free = fit_booster(fx, y, sizes, names, LtrConfig(n_estimators=30, num_leaves=7,
                                                      min_data_in_leaf=20, threads=1), 0)
    assert np.any(np.diff(free.predict(grid)) < 0)  # unconstrained, it learns the dip


def test_extra_tasks_are_scored_against_all_old_items():
    from engine.ltr.model import ExtraTasks

    x, text = _disjoint(12, 4)
    tasks = _phase0_tasks(x)
    cfg = LtrConfig(folds=3, candidates=10, random_negatives=10, k=3, wide_k=5)
    # an extra item whose text equals old item 0's: its nearest neighbour is that item
    extra = ExtraTasks(Tasks([0], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)],
                             [x[0].indices]), text[:1].copy())
    f0, l0, s0 = training_lists(x, text, tasks, cfg, 0, None)
    f1, l1, s1 = training_lists(x, text, tasks, cfg, 0, None, extra=extra)
    assert len(s1) == len(s0) + 1
    last = f1[-s1[-1]:]
    names = feature_names(None)
    pos = l1[-s1[-1]:] > 0
    assert np.all(last[pos, names.index("near5")] >= 1)  # old item 0 is in the reference


def test_training_lists_do_not_depend_on_the_thread_count():
    """Folds are built on ``threads`` threads; every list's uniform negatives are drawn up
    front in fold order, so one thread and four give the same lists, extra items included."""
    from engine.ltr.model import ExtraTasks

    x, text = _disjoint(24, 5)
    tasks = _phase0_tasks(x)
    extra = ExtraTasks(Tasks([0, 1], [np.zeros(0, np.int64)] * 2, [np.zeros(0, np.int64)] * 2,
                             [x[0].indices, x[1].indices]), text[:2].copy())
    out = [training_lists(x, text, tasks,
                          LtrConfig(folds=4, candidates=8, random_negatives=12, k=3, wide_k=5,
                                    threads=threads), 0, None, extra=extra)
           for threads in (1, 4)]
    for a, b in zip(*out, strict=True):
        assert np.array_equal(a, b)
    assert len(out[0][2]) > 0  # lists with no relevant row are dropped
    # another seed draws other negatives
    other = training_lists(x, text, tasks, LtrConfig(folds=4, candidates=8, random_negatives=12,
                                                     k=3, wide_k=5), 1, None)
    assert not (len(other[1]) == len(out[0][1]) and np.array_equal(other[0], out[0][0]))


def test_monotone_method_reaches_lightgbm():
    from engine.ltr.model import MONOTONE_METHODS, fit_booster

    with pytest.raises(ValueError, match="monotone_method"):
        LtrConfig(monotone_method="strict")
    names, fx, y = _random_lists()
    for method in MONOTONE_METHODS:
        cfg = LtrConfig(monotone=True, monotone_method=method, n_estimators=3, num_leaves=3,
                        min_data_in_leaf=5, threads=1)
        booster = fit_booster(fx, y, np.full(4, 100), names, cfg, 0)
        assert booster.params["monotone_constraints_method"] == method


def test_recency_channel_is_each_targets_reference_times_and_leaves_the_item_out():
    from engine.ltr.features import RECENCY_FEATURES, target_recency

    times = sparse.csr_matrix(np.array([[2001.0, 0.0, np.nan],
                                        [1999.0, 2010.0, 0.0]]))
    times.eliminate_zeros()
    rec = target_recency(times)
    assert rec[0, 0] == 1999.0 and rec[1, 0] == 2000.0  # earliest, mean
    assert rec[0, 1] == rec[1, 1] == 2010.0
    assert np.isnan(rec[:, 2]).all()  # its only time is unknown
    with pytest.raises(ValueError, match="times are needed"):
        LtrConfig(recency=True).reference(times, np.eye(2))
    # in the training lists every item's own positives are left out of its times: with
    # disjoint targets, an unseen positive has no reference time at all
    x, text = _disjoint(12, 4)
    t = x.copy().astype(np.float64)
    t.data[:] = 2000.0 + np.arange(t.nnz)
    cfg = LtrConfig(folds=3, candidates=10, random_negatives=10, k=3, wide_k=5, recency=True)
    feats, labels, _ = training_lists(x, text, _phase0_tasks(x), cfg, 0, None, times=t)
    names = cfg.feature_names(None)
    assert names[-2:] == RECENCY_FEATURES
    assert np.isnan(feats[labels > 0][:, names.index("first_year")]).all()
    assert np.isfinite(feats[labels == 0][:, names.index("first_year")]).any()


def test_order_years_reads_each_domains_arrival_order():
    from engine.data.disgenet import MISSING_YEAR_KEY, ORDER_GENE_FACTOR
    from engine.training_data import order_years

    dg = np.array([2004 * ORDER_GENE_FACTOR + 185, MISSING_YEAR_KEY * ORDER_GENE_FACTOR + 7])
    years = order_years("disease", dg)
    assert years[0] == 2004.0 and np.isnan(years[1])
    ml = order_years("movie", np.array([978300760]))  # 2000-12-31 22:12:40 UTC
    assert 2000.99 < ml[0] < 2001.01  # fractional years of 365.25 days


def test_simple_sum_feature_is_the_text_ease_form():
    x, text = _disjoint(10, 3)
    ref = Reference(x, text, 10.0)
    n = x.shape[1]
    conf = np.zeros((1, n), np.float32)
    conf[0, [0, 1]] = 1
    with pytest.raises(ValueError, match="sum_beta"):
        LtrConfig(sum_beta=-1.0)
    names = feature_names(None, simple_sum=True)
    fx = item_features(ref, ref.similarities(text[:1]), conf, np.zeros_like(conf), k=3,
                       temperature=0.1, wide_k=5, sum_beta=2.0)
    col = {name: i for i, name in enumerate(names)}
    assert fx.shape[2] == len(names) and names[-1] == "simple_sum"
    want = fx[0, :, col["vote_norm"]] + 2.0 * fx[0, :, col["ease_norm"]]
    assert np.allclose(fx[0, :, col["simple_sum"]], want)
    assert np.ptp(want) > 0


def test_ridge_feature_is_the_primal_ridge_map_and_leaves_the_training_item_out():
    """``ridge`` (the learned text-to-target map) equals the primal closed form
    ``t (TᵀT + λI)⁻¹ TᵀX`` computed from the similarities alone, and in the training lists an
    item's own targets get no ridge score (it is fitted on the other folds only)."""
    x, text = _disjoint(12, 3, t=20)
    with pytest.raises(ValueError, match="ridge_lam"):
        LtrConfig(ridge_lam=-1.0)
    cfg = LtrConfig(ridge_lam=0.5, k=3, wide_k=5, folds=3, candidates=10, random_negatives=10)
    ref = cfg.reference(x, text)
    t = ref.text
    w = np.linalg.solve(t.T @ t + 0.5 * np.eye(t.shape[1]), t.T @ x.toarray())  # [T, N]
    query = np.random.default_rng(1).normal(size=(2, 20))
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    assert np.allclose(ref.ridge(ref.similarities(query)), q @ w, atol=1e-8)
    names = cfg.feature_names(None)
    assert names[-2:] == ("ridge", "ridge_norm")
    n = x.shape[1]
    fx = item_features(ref, ref.similarities(query), np.zeros((2, n)), np.zeros((2, n)), k=3,
                       temperature=0.1, wide_k=5)
    assert fx.shape[2] == len(names)
    assert np.allclose(fx[:, :, names.index("ridge")], q @ w, atol=1e-6)
    assert np.allclose(fx[:, :, names.index("ridge_norm")].max(1), 1.0)
    tasks = Tasks(list(range(12)), [np.zeros(0, np.int64)] * 12, [np.zeros(0, np.int64)] * 12,
                  [x[i].indices for i in range(12)])
    feats, labels, _ = training_lists(x, text, tasks, cfg, 0, None)
    assert np.all(feats[labels > 0, names.index("ridge")] == 0)  # disjoint targets
    assert np.any(feats[labels == 0, names.index("ridge")] != 0)


def test_base_scale_boosts_from_the_text_ease_sum():
    """With ``base_scale`` the trees learn corrections to ``base_scale * (vote_norm + base_beta *
    ease_norm)``: the ranker's score is the booster's output plus that sum, and a booster that
    has learned (almost) nothing ranks exactly as the sum does."""
    from engine.ltr.model import LtrRanker, fit_booster

    with pytest.raises(ValueError, match="base_scale"):
        LtrConfig(base_scale=-1.0)
    x, text = _disjoint(12, 3, t=20)
    cfg = LtrConfig(base_scale=5.0, base_beta=2.0, n_estimators=1, learning_rate=1e-6,
                    num_leaves=2, min_data_in_leaf=1, threads=1, k=3, wide_k=5)
    ref = cfg.reference(x, text)
    names = cfg.feature_names(None)
    n = x.shape[1]
    conf = np.zeros((2, n), np.float32)
    conf[1, [0, 1]] = 1
    fx = item_features(ref, ref.similarities(text[:2]), conf, np.zeros_like(conf), k=3,
                       temperature=0.1, wide_k=5).reshape(2 * n, -1)
    y = (np.arange(2 * n) % 7 == 0).astype(np.float32)
    booster = fit_booster(fx, y, np.array([n, n]), names, cfg, 0)
    ranker = LtrRanker(booster, cfg, ref, None, "disease")
    base = 5.0 * (fx[:, names.index("vote_norm")] + 2.0 * fx[:, names.index("ease_norm")])
    scores = ranker.predict_rows(fx)
    assert np.allclose(scores, booster.predict(fx) + base)
    assert np.ptp(base) > 0
    apart = base[:, None] > base[None, :] + 1e-3  # pairs the sum orders clearly
    assert apart.any() and np.all((scores[:, None] > scores[None, :])[apart])


def test_objective_setting_reaches_lightgbm():
    from engine.ltr.model import OBJECTIVES, fit_booster

    with pytest.raises(ValueError, match="objective"):
        LtrConfig(objective="pairwise")
    names, fx, y = _random_lists()
    for objective in OBJECTIVES:
        cfg = LtrConfig(objective=objective, n_estimators=5, num_leaves=3, min_data_in_leaf=5,
                        threads=1)
        booster = fit_booster(fx, y, np.full(4, 100), names, cfg, 0)
        assert booster.params["objective"] == objective
        pred = booster.predict(fx)
        assert pred[y > 0].mean() > pred[y == 0].mean()


def test_training_lists_cache_is_keyed_by_the_text():
    """The benchmark shares one lists cache between methods that differ only in their text
    (emerflow-ltr, emerflow-ltr-llm): other text vectors never reuse another text's lists."""
    from engine.data.protocol import split_dataset
    from engine.data.registry import get_dataset_entry
    from engine.ltr import train_ltr
    from engine.training_data import TrainingData

    entry = get_dataset_entry("demo-diseases")
    ds = entry.load(None)
    data = TrainingData(ds, split_dataset(ds, entry.protocol))
    k = len(data.split.old_items)
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(k, 8)), rng.normal(size=(k, 8))
    cfg = LtrConfig(folds=2, n_estimators=3, candidates=10, random_negatives=10, k=3, wide_k=5,
                    knowledge=False, threads=1)
    cache: dict = {}
    a = train_ltr(data, first, cfg, 0, lists_cache=cache)
    b = train_ltr(data, second, cfg, 0, lists_cache=cache)
    assert len(cache) == 2
    assert a.booster.model_to_string() != b.booster.model_to_string()
    again = train_ltr(data, first, cfg, 0, lists_cache=cache)
    assert len(cache) == 2 and again.booster.model_to_string() == a.booster.model_to_string()


def test_precomputed_cooccurrence_gives_the_same_features():
    """``Reference.precompute_cooc`` (``XᵀX`` kept for many items) changes no feature bit."""
    from engine.ltr.features import cooc_parts

    rng = np.random.default_rng(3)
    x = sparse.random(40, 30, density=0.2, random_state=3, format="csr")
    text = rng.normal(size=(40, 8))
    plain, kept = Reference(x, text, 5.0), Reference(x, text, 5.0)
    kept.precompute_cooc()
    assert plain.cooc is None and kept.cooc is not None
    rows = np.array([0, 4, 7])
    for a, b in zip(cooc_parts(plain, rows), cooc_parts(kept, rows), strict=True):
        assert np.array_equal(a, b)
    confirmed = np.zeros((3, 30), np.float32)
    confirmed[0, [1, 2]] = confirmed[2, [5, 9, 11]] = 1
    sims = rng.normal(size=(3, 40))
    args = dict(k=5, temperature=0.1, wide_k=10)
    got = item_features(kept, sims, confirmed, np.zeros_like(confirmed), **args)
    assert np.array_equal(got, item_features(plain, sims, confirmed, np.zeros_like(confirmed),
                                             **args))
    assert got[:, :, BASE_FEATURES.index("cooc_mean")].any()


def test_truncation_level_reaches_lambdarank_and_changes_the_model():
    from engine.ltr.model import fit_booster

    with pytest.raises(ValueError, match="truncation"):
        LtrConfig(truncation=0)
    rng = np.random.default_rng(1)
    names = feature_names(None)
    fx = rng.random((3000, len(names))).astype(np.float32)
    y = (fx[:, names.index("vote")] + 0.3 * rng.random(3000) > 0.9).astype(np.float32)
    sizes = np.full(30, 100)
    small = dict(n_estimators=10, num_leaves=7, min_data_in_leaf=20, threads=1)
    wide = fit_booster(fx, y, sizes, names, LtrConfig(**small), 0)
    short = fit_booster(fx, y, sizes, names, LtrConfig(truncation=3, **small), 0)
    assert wide.params["lambdarank_truncation_level"] == 100
    assert short.params["lambdarank_truncation_level"] == 3
    assert not np.array_equal(wide.predict(fx[:200]), short.predict(fx[:200]))


def test_category_keys_and_the_category_share_of_reference_items():
    from engine.ltr.features import category_keys

    assert category_keys("Drama|Comedy|Drama", "set") == ("Comedy", "Drama")
    assert category_keys(["Drama", "Comedy"], "combination") == ("Comedy|Drama",)
    assert category_keys("Drama", "") == () and category_keys(None, "set") == ()
    with pytest.raises(ValueError, match="category mode"):
        category_keys("Drama", "tree")
    # 4 reference items over 3 targets: "a" items have targets {0, 1} / {0}; "b": {2} / {1}
    x = sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]], np.float32))
    text = np.eye(4)
    ref = Reference(x, text, 10.0, categories=[("a",), ("a",), ("b",), ("b", "a")])
    names = feature_names(None, categories=True)
    zero = np.zeros((3, 3))
    fx = item_features(ref, ref.similarities(np.eye(4)[:3]), zero, zero, k=2,
                       temperature=0.1, wide_k=2, categories=[("a",), ("a", "b"), ("z",)])
    share = fx[:, :, names.index("cat_share")]
    # "a": 3 items (rows 0, 1, 3) -> target shares 2/3, 2/3, 0; "b": 2 items -> 0, 1/2, 1/2
    assert np.allclose(share[0], [2 / 3, 2 / 3, 0])
    assert np.allclose(share[1], [(2 / 3 + 0) / 2, (2 / 3 + 0.5) / 2, 0.25])
    assert np.allclose(share[2], 0)  # a key no reference item has
    assert np.allclose(fx[0, :, names.index("cat_norm")], [1, 1, 0])
    with pytest.raises(ValueError, match="category lists"):
        Reference(x, text, 10.0, categories=[("a",)])


def test_category_channel_in_training_lists_never_sees_the_item_itself():
    x, text = _disjoint()
    tasks = _phase0_tasks(x)
    cats = [(f"c{i % 3}",) for i in range(x.shape[0])]
    cfg = LtrConfig(folds=3, candidates=20, random_negatives=20, k=5, wide_k=10,
                    categories="set")
    with pytest.raises(ValueError, match="category keys are needed"):
        training_lists(x, text, tasks, cfg, 0, None)
    feats, labels, _ = training_lists(x, text, tasks, cfg, 0, None, categories=cats)
    names = cfg.feature_names(None)
    assert names[-2:] == ("cat_share", "cat_norm")
    pos = labels > 0
    # its own targets belong to no other item: the category share of the others is 0 there
    assert np.all(feats[pos, names.index("cat_share")] == 0)
    assert (feats[~pos, names.index("cat_share")] > 0).any()  # other items' targets


@pytest.mark.slow
def test_demo_workspace_reads_the_items_categories(tmp_path, encoder):
    from engine.build import build_dataset_workspace, workspace_dir
    from engine.config import WorkspaceConfig
    from engine.workspace_store import load_workspace

    cfg = WorkspaceConfig(dataset="demo-movies", ranker="ltr",
                          ltr={"folds": 3, "n_estimators": 30, "candidates": 50,
                               "random_negatives": 50, "categories": "combination",
                               "min_data_in_leaf": 20})
    ws = build_dataset_workspace("demo-movies", config=cfg, encoder=encoder, home=tmp_path)
    assert ws.ranker.names[-2:] == ("cat_share", "cat_norm")
    known = ws.ranker.ref.category_ids  # an item whose combination an established film has
    row = next(r for r in ws.dataset.items.to_dict("records")
               if ws.ranker.config.keys(r["genres"])[0] in known)
    item = {k: v for k, v in row.items() if k != "item_id"}
    assert ws.item_categories(item) == tuple(item["genres"].split("|"))
    with_cats = ws.predict(item)
    assert with_cats.categories == ws.item_categories(item)
    vec = ws.encoder.encode([with_cats.text])[0]
    col = ws.ranker.names.index("cat_share")
    fx = ws.ranker.scored_features(vec, ws.decisions({}), with_cats.categories)[0]
    assert fx[:, col].max() > 0
    # the memo keys on the categories too: the same text without them has no category share
    assert ws.ranker.scored_features(vec, ws.decisions({}))[0][:, col].max() == 0
    rows = ws.target_rows([str(with_cats.targets["target_id"].iloc[0])])
    words = [r.text for r in ws.ranker.explain(ws.encoder.encode([with_cats.text])[0],
                                               with_cats.embedding, ws.decisions({}), rows,
                                               ws.target_names, with_cats.categories)[0]]
    assert any("genre combination have it" in w for w in words), words
    # an item entered without genres: "why" says they are missing instead of "0% ... have it"
    bare = [r.text for r in ws.ranker.explain(vec, with_cats.embedding, ws.decisions({}), rows,
                                              ws.target_names, ())[0]]
    assert not any("have it" in w and "genre" in w for w in bare), bare
    assert any(w == "its genres are not given (the genres channel reads 0)" for w in bare), bare
    loaded = load_workspace(workspace_dir("demo-movies", tmp_path), encoder)
    again = loaded.predict(item)
    assert np.array_equal(again.targets["score"].to_numpy(),
                          with_cats.targets["score"].to_numpy())
