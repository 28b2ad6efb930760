"""Neighbourhood baselines (engine.baselines.neighbourhood) on a tiny hand-made fixture:
confirmations lift co-associated held-out targets, EASE equals its textbook closed form,
text-knn follows the nearest established items, and the shared task sampler."""

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

NEIGHBOURHOOD = ("cooc-knn", "ease", "text-knn", "text-cooc")

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
    pop = method.prior / method.prior.max()
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
