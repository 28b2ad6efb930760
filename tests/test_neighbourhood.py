"""Neighbourhood baselines (engine.baselines.neighbourhood) on a tiny hand-made fixture:
confirmations lift co-associated held-out targets, EASE equals its textbook closed form,
text-knn follows the nearest established items, text-ease is its normalised sum with EASE,
the Phase-0 fallback is the count popularity, and the shared task sampler."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_baselines import TINY_DISEASES, make_context

from engine.baselines import METHODS
from engine.data.base import Dataset
from engine.paper.tasks import ItemRows
from engine.schema import FeatureSpec

NEIGHBOURHOOD = ("cooc-knn", "ease", "text-knn", "text-cooc", "text-ease")

#: Old diseases and their genes: g1..g3 go together, g4..g6 together; g7 is the most popular.
OLD = {"o1": ["g1", "g2", "g7"], "o2": ["g1", "g2", "g3", "g7"], "o3": ["g2", "g3", "g7"],
       "o4": ["g4", "g5", "g7"], "o5": ["g4", "g6", "g7"], "o6": ["g5", "g6", "g7"]}
GENES = [f"g{i}" for i in range(1, 9)]


def _fixture() -> tuple[Dataset, pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    kinds = {"o1": "eye retina", "o2": "eye retina", "o3": "eye retina", "o4": "lung fibrosis",
             "o5": "lung fibrosis", "o6": "lung fibrosis", "n1": "eye retina",
             "n2": "lung fibrosis"}
    items = pd.DataFrame({"item_id": list(kinds), "name": list(kinds),
                          "kind": list(kinds.values())})
    targets = pd.DataFrame({"target_id": GENES, "name": GENES, "grp": ["x"] * len(GENES)})
    ds = Dataset(name="hand-nb", domain="disease", items=items, targets=targets,
                 interactions=pd.DataFrame(columns=["item_id", "target_id", "label", "order"]),
                 item_features=[FeatureSpec("kind", "categorical", "Kind")],
                 target_features=[FeatureSpec("grp", "categorical", "Group")],
                 positives_only=True)
    rows = [(o, g, 1) for o, gs in OLD.items() for g in gs] + [("o1", "g8", 0), ("o4", "g8", 0)]
    train = _frame(rows, "train")
    # n1 (an eye disease) confirms g1 in phase I; its held-out genes are g2, g3 (co-associated
    # with g1) and nothing else. n2 (a lung disease) confirms g4; held out g5, g6.
    phases = {"I": _frame([("n1", "g1", 1), ("n1", "g8", 0), ("n2", "g4", 1), ("n2", "g8", 0)],
                          "I")}
    test = _frame([("n1", "g2", 1), ("n1", "g3", 1), ("n1", "g5", 0), ("n1", "g6", 0),
                   ("n2", "g5", 1), ("n2", "g6", 1), ("n2", "g2", 0), ("n2", "g3", 0)], "test")
    return ds, train, phases, test


def _frame(rows, phase):
    return pd.DataFrame([{"item_id": i, "target_id": t, "label": y, "order": k, "rank": k,
                          "phase": phase} for k, (i, t, y) in enumerate(rows)])


@pytest.fixture(scope="module")
def ctx():
    from engine.data.protocol import Split

    torch.set_num_threads(1)
    ds, train, phases, test = _fixture()
    split = Split(old_items=list(OLD), new_items=["n1", "n2"], train=train, phases=phases,
                  test=test)
    return make_context(ds, TINY_DISEASES, split=split)


def _rank(scores: np.ndarray, ctx, item: int, gene: str, exclude: set[str] = frozenset()) -> int:
    """1-based rank of ``gene`` among the genes not in ``exclude`` for new item ``item``."""
    pos = ctx.tables.target_pos
    keep = [g for g in GENES if g not in exclude]
    s = {g: scores[item, pos[g]] for g in keep}
    return 1 + sum(v > s[gene] for v in s.values())


@pytest.mark.parametrize("name", ("cooc-knn", "ease"))
def test_confirmation_lifts_co_associated_held_out_targets(name, ctx):
    method = METHODS[name]()
    method.fit(ctx)
    assert method.probabilistic is False and method.backbone is None
    state0 = method.start()
    phase0 = method.score_all(state0)
    count = ctx.target_popularity()  # old-disease associations per gene
    pop = count / count.max()
    np.testing.assert_allclose(phase0, np.broadcast_to(pop, phase0.shape))  # Phase 0 = popularity
    batch = ctx.rows(ctx.split.phases["I"])
    state1 = method.update(state0, batch, batch)
    after = method.score_all(state1)
    for item, held, other, seen in ((0, ("g2", "g3"), ("g5", "g6"), "g1"),
                                    (1, ("g5", "g6"), ("g2", "g3"), "g4")):
        before_ranks = [_rank(phase0, ctx, item, h, {seen}) for h in held]
        after_ranks = [_rank(after, ctx, item, h, {seen}) for h in held]
        assert all(a <= b for a, b in zip(after_ranks, before_ranks, strict=True))
        assert sum(after_ranks) < sum(before_ranks)
        for h in held:
            for o in other:
                assert after[item, ctx.tables.target_pos[h]] > after[
                    item, ctx.tables.target_pos[o]]
    # the two diseases now get different top-2 genes (popularity gave both the same)
    top = np.argsort(-after, axis=1)[:, :2]
    assert set(top[0]) != set(top[1])
    rows = ctx.rows(ctx.split.test).unlabelled()
    np.testing.assert_allclose(method.score(state1, rows), after[rows.item, rows.target])


def test_ease_equals_the_closed_form(ctx):
    lam = 3.0
    method = METHODS["ease"](lam=lam, pop_weight=0.0)
    method.fit(ctx)
    x = ctx.old_positive_matrix().astype(np.float64)
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    batch = ctx.rows(ctx.split.phases["I"])
    seen = ctx.positive_matrix(batch).astype(np.float64)
    np.testing.assert_allclose(method.score_all(batch), seen @ b, atol=1e-9)
    with pytest.raises(ValueError, match="lam must be > 0"):
        METHODS["ease"](lam=0.0)


def test_cooc_is_cosine_at_alpha_half(ctx):
    method = METHODS["cooc-knn"](alpha=0.5, pop_weight=0.0)
    method.fit(ctx)
    batch = ctx.rows(ctx.split.phases["I"])
    x = ctx.old_positive_matrix().astype(np.float64)
    norm = np.sqrt(x.sum(0))
    cos = (x.T @ x) / np.maximum(np.outer(norm, norm), 1e-12)
    seen = ctx.positive_matrix(batch).astype(np.float64)
    np.testing.assert_allclose(method.score_all(batch), seen @ cos, atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        METHODS["cooc-knn"](alpha=1.5)


def test_text_knn_follows_the_nearest_established_items(ctx):
    method = METHODS["text-knn"](k=3, temperature=0.05, pop_weight=0.01)
    method.fit(ctx)
    s = method.score_all(method.start())
    pos = ctx.tables.target_pos
    # n1 reads like the eye diseases o1..o3, n2 like the lung diseases o4..o6
    assert {ctx.old_items[i] for i in method.neighbours[0]} == {"o1", "o2", "o3"}
    assert {ctx.old_items[i] for i in method.neighbours[1]} == {"o4", "o5", "o6"}
    assert s[0, pos["g2"]] > s[0, pos["g5"]] and s[1, pos["g5"]] > s[1, pos["g2"]]
    # the same score in every phase
    batch = ctx.rows(ctx.split.phases["I"])
    np.testing.assert_array_equal(method.score_all(method.update(method.start(), batch, batch)),
                                  s)
    with pytest.raises(ValueError, match="k must be >= 1"):
        METHODS["text-knn"](k=0)


def test_neighbourhood_methods_are_registered_and_tunable():
    for name in NEIGHBOURHOOD:
        cls = METHODS[name]
        assert cls.grid and set(cls.grid) <= set(cls.defaults)
        assert cls.probabilistic is False and cls.backbone is None


def test_text_cooc_is_the_sum_of_text_knn_and_cooc(ctx):
    from engine.baselines.neighbourhood import cooc_evidence

    text = METHODS["text-knn"](k=3, temperature=0.05, pop_weight=0.01)
    both = METHODS["text-cooc"](k=3, temperature=0.05, pop_weight=0.01, alpha=0.5, weight=2.0)
    for m in (text, both):
        m.fit(ctx)
    np.testing.assert_allclose(both.score_all(both.start()), text.score_all(text.start()))
    batch = ctx.rows(ctx.split.phases["I"])
    seen = ctx.positive_matrix(batch).astype(np.float32)
    expected = text.score_all(batch) + 2.0 * cooc_evidence(ctx.old_positive_matrix(), seen, 0.5)
    np.testing.assert_allclose(both.score_all(both.update(both.start(), batch, batch)), expected)
    with pytest.raises(ValueError, match="weight"):
        METHODS["text-cooc"](weight=-1.0)


def test_text_ease_is_the_normalised_sum_of_text_knn_and_ease(ctx):
    from engine.baselines.neighbourhood import max_normalised

    text = METHODS["text-knn"](k=3, temperature=0.05, pop_weight=0.01)
    ease = METHODS["ease"](lam=3.0)
    both = METHODS["text-ease"](k=3, temperature=0.05, pop_weight=0.01, lam=3.0, beta=0.5)
    for m in (text, ease, both):
        m.fit(ctx)
    prior = text.score_all(text.start())
    # Phase 0: the text prior divided by each item's maximum (text-knn's ranking)
    np.testing.assert_allclose(both.score_all(both.start()), prior / prior.max(1, keepdims=True))
    assert both.index is ease.index  # one EASE solve per context and lambda, shared
    batch = ctx.rows(ctx.split.phases["I"])
    seen = ctx.positive_matrix(batch)
    evidence = np.asarray(ease.score_all(batch), np.float64)  # seen @ B (every item has one)
    top = np.where(seen, -np.inf, evidence).max(1, keepdims=True)  # over the unseen targets
    expected = prior / prior.max(1, keepdims=True) + 0.5 * evidence / top
    after = both.score_all(both.update(both.start(), batch, batch))
    np.testing.assert_allclose(after, expected, rtol=1e-9, atol=1e-12)
    # the held-out genes of each disease outrank the other group's genes after Phase I
    pos = ctx.tables.target_pos
    for item, held, other in ((0, ("g2", "g3"), ("g5", "g6")), (1, ("g5", "g6"), ("g2", "g3"))):
        assert min(after[item, pos[h]] for h in held) > max(after[item, pos[o]] for o in other)
    # beta tuned with a fitted method: phase setting, no refit
    assert both.with_settings(beta=2.0).index is both.index
    np.testing.assert_allclose(max_normalised(np.array([[2.0, -1.0], [-1.0, -2.0]])),
                               [[1.0, -0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="beta"):
        METHODS["text-ease"](beta=-1.0)
    with pytest.raises(ValueError, match="lam"):
        METHODS["text-ease"](lam=0.0)


def test_phase0_fallback_is_the_count_not_the_rate():
    """Rated data: user u1 has 3 positives in 6 old ratings (rate .5), u2 one positive in one
    rating (rate 1.0). ``popularity`` and every neighbourhood baseline's Phase 0 rank u1 first;
    ``popularity-rate`` ranks u2 first."""
    from engine.data.protocol import Split

    items = pd.DataFrame({"item_id": ["o1", "o2", "o3", "o4", "o5", "o6", "n1"],
                          "name": ["a b", "a c", "b c", "a d", "b d", "c d", "a b"],
                          "kind": ["k"] * 7})
    users = ["u1", "u2", "u3"]
    targets = pd.DataFrame({"target_id": users, "name": users, "grp": ["x"] * 3})
    ds = Dataset(name="hand-rated", domain="movie", items=items, targets=targets,
                 interactions=pd.DataFrame(columns=["item_id", "target_id", "label", "order"]),
                 item_features=[FeatureSpec("kind", "categorical", "Kind")],
                 target_features=[FeatureSpec("grp", "categorical", "Group")],
                 positives_only=False)
    train = _frame([(f"o{i}", "u1", int(i <= 3)) for i in range(1, 7)]
                   + [("o1", "u2", 1), ("o2", "u3", 0)], "train")
    phases = {"I": _frame([("n1", "u3", 0)], "I")}
    test = _frame([("n1", "u1", 1), ("n1", "u2", 1), ("n1", "u3", 0)], "test")
    split = Split(old_items=[f"o{i}" for i in range(1, 7)], new_items=["n1"], train=train,
                  phases=phases, test=test)
    c = make_context(ds, TINY_DISEASES, split=split)
    u1, u2 = c.tables.target_pos["u1"], c.tables.target_pos["u2"]
    for name in ("popularity", "cooc-knn", "ease"):
        method = METHODS[name]()
        method.fit(c)
        s = method.score_all(method.start())
        assert s[0, u1] > s[0, u2], name
    rate = METHODS["popularity-rate"](prior_strength=1.0)
    rate.fit(c)
    s = rate.score_all(rate.start())
    g = 4 / 8  # global positive rate of the old rows
    np.testing.assert_allclose([s[0, u1], s[0, u2]], [(3 + g) / (6 + 1), (1 + g) / (1 + 1)])
    assert s[0, u2] > s[0, u1]
    pop = METHODS["popularity"]()
    pop.fit(c)
    np.testing.assert_allclose(pop.score_all(pop.start())[0, [u1, u2]], [3.0, 1.0])


# ---- the one task sampler ---------------------------------------------------------------------
def test_sampler_draws_from_all_rows_of_each_item():
    counts = [300, 30, 45]
    item = np.repeat(np.arange(3), counts)
    rows = ItemRows.from_arrays(item, np.arange(len(item)), np.ones(len(item)), 3)
    rng = np.random.default_rng(0)
    seen = [set() for _ in counts]
    for _ in range(50):
        (ta, _la), (tb, _lb) = rows.split_two(np.arange(3), 20, rng)
        for k in range(3):
            a, b = set(ta[k].tolist()), set(tb[k].tolist())
            lo, hi = int(rows.start[k]), int(rows.start[k] + rows.count[k])
            assert all(lo <= r < hi for r in a | b)
            if counts[k] >= 40:  # disjoint batches without repeats
                assert len(a) == 20 and len(b) == 20 and not a & b
            seen[k] |= a | b
    assert len(seen[0]) > 250  # rows far beyond the first 40 are drawn (old: only 40 ever)
    assert max(seen[0]) - rows.start[0] > 200
    assert seen[1] == set(range(300, 330))  # fewer than 2*shot rows: with replacement
    t, y = rows.sample(np.array([0]), 20, rng)
    assert t.shape == (1, 20) and len(set(t[0].tolist())) == 20
