"""Benchmarked methods (engine.baselines): every method through all phases on tiny data,
counting baselines against hand-computed values, and no method reading test rows."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from engine.baselines import METHODS, BenchContext, EmbeddingMethod, Rows
from engine.bench import BenchSettings, TextVectors, pretrained_backbone, run_phases
from engine.config import BackboneConfig, PaperConfig
from engine.data.base import Dataset
from engine.data.demo import demo_diseases, demo_movies
from engine.data.protocol import ProtocolConfig, Split, split_dataset
from engine.metrics import RANKING_KEYS, top_k_jaccard
from engine.paper.fields import FieldEncoder
from engine.paper.tables import make_tables
from engine.schema import FeatureSpec
from engine.training_data import TrainingData

TINY_MOVIES = ProtocolConfig(old_min_exclusive=60, new_min=25, new_max=60, k=5)
TINY_DISEASES = ProtocolConfig(old_min_exclusive=30, new_min=12, new_max=30, k=3,
                               min_test_positives=3)
TINY_BACKBONE = BackboneConfig(epochs=1, hidden=(16,), batch_size=512)
#: Few steps/epochs so that every method runs in well under a second on tiny data.
FAST = {"meta_epochs": 2, "tasks_per_batch": 16, "shot": 5}
FAST_OVERRIDES = {
    "metaemb": FAST, "emerflow-nollm": FAST, "emerflow-nowarm": FAST, "emerflow": FAST,
    "emerflow-augonly": FAST,
    "cvar": {"epochs": 2, "tasks_per_batch": 16, "shot": 5},
    "mwuf": {"epochs": 2, "tasks_per_batch": 16, "shot": 5},
}


class HashEncoder:
    """A deterministic stand-in for the text encoder: bag of hashed words, L2-normalized."""

    dim = 32
    cache_path = None

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, progress=None):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for r, text in enumerate(texts):
            for word in text.lower().split():
                h = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
                out[r, h % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-6)

    def save_cache(self, path=None):
        return None


def make_context(dataset: Dataset, protocol: ProtocolConfig, seed: int = 0,
                 split: Split | None = None, augmented: pd.DataFrame | None = None,
                 pretrain: bool = True) -> BenchContext:
    """A bench context on ``dataset`` with a tiny pretrained backbone (``pretrain=False``:
    none, for methods without a backbone) and the hashed-words text encoder."""
    split = split or split_dataset(dataset, protocol)
    settings = BenchSettings(backbone=TINY_BACKBONE)
    item_fields = FieldEncoder.fit(dataset.items, dataset.item_features, 10, 8)
    target_fields = FieldEncoder.fit(dataset.targets, dataset.target_features, 10, 8)
    tables = make_tables(TrainingData(dataset, split), item_fields, target_fields)
    config = PaperConfig(dataset=dataset.name, seed=seed, backbone=settings.backbone)
    backbone = pretrained_backbone(dataset, split, config, tables, item_fields, target_fields,
                                   None, lambda _m: None)[0] if pretrain else None
    needed = np.arange(len(dataset.items))
    texts = TextVectors(dataset, needed, None, settings.encoder, augmented,
                        "no augmentations in this test", lambda _m: None, HashEncoder())
    return BenchContext(dataset=dataset, split=split, config=config, seed=seed, tables=tables,
                        backbone=backbone, text_vectors=texts)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def movies():
    return demo_movies(n_users=300, n_movies=120)


@pytest.fixture(scope="module")
def movie_ctx(movies):
    return make_context(movies, TINY_MOVIES)


@pytest.fixture(scope="module")
def disease_ctx():
    return make_context(demo_diseases(n_genes=400, n_diseases=120), TINY_DISEASES)


def _method(name: str):
    return METHODS[name](**FAST_OVERRIDES.get(name, {}))


RUNNABLE = [n for n, cls in METHODS.items() if not (cls.uses_llm or cls.uses_knowledge)]
#: Methods whose Phase-0 ranking is the same list for every new item (a popularity).
SAME_LIST_AT_PHASE0 = ("popularity", "popularity-rate", "item-mean", "cooc-knn", "ease")


@pytest.mark.parametrize("name", RUNNABLE)
@pytest.mark.parametrize("ctx_name", ["movie_ctx", "disease_ctx"])
def test_every_method_runs_all_phases(name, ctx_name, request):
    ctx = request.getfixturevalue(ctx_name)
    method = _method(name)
    method.fit(ctx)
    run = run_phases(method, ctx)
    result = run.metrics
    assert list(result) == ["0", "I", "II", "III"]
    for phase, metrics in result.items():
        assert set(metrics) == {"auc", "f1", "item_auc", *RANKING_KEYS}
        assert 0.0 <= metrics["auc"] <= 1.0 and np.isfinite(metrics["auc"])
        assert 0.0 <= metrics["recall@20"] <= metrics["recall@100"] <= 1.0
        assert 0.0 <= metrics["ndcg@100"] <= 1.0
        # F1 thresholds probabilities only (protocol): null for counting/neighbourhood scores
        assert np.isfinite(metrics["f1"]) == METHODS[name].probabilistic
        assert len(run.per_item[phase]["ndcg@100"]) == ctx.n_new
    # the diversity is the Phase-0 top-20 overlap of these very scores (deterministic ties)
    phase0 = np.asarray(method.score_all(method.start()), np.float64)
    jaccard = run.diversity["top20_jaccard_phase0"]
    assert jaccard == top_k_jaccard(phase0, ctx.candidate_mask, 20)
    if name in SAME_LIST_AT_PHASE0:  # one list for every new item at Phase 0
        assert jaccard == 1.0
    elif name.startswith("text-"):  # text neighbours: each new item its own list
        assert jaccard < 0.9


def test_llm_methods_need_augmentations(movie_ctx):
    from engine.baselines import MethodNotAvailable

    for name in ("emerflow", "emerflow-augonly"):
        with pytest.raises(MethodNotAvailable, match="no augmentations"):
            _method(name).fit(movie_ctx)


def test_llm_methods_run_with_augmentations(movies):
    aug = pd.DataFrame({"item_id": movies.items["item_id"],
                        "mood": ["dark" if i % 2 else "light" for i in range(len(movies.items))]})
    ctx = make_context(movies, TINY_MOVIES, augmented=aug)
    raw = ctx.text_vectors("raw")
    both = ctx.text_vectors("raw+aug")
    assert not np.allclose(raw, both)
    assert "Mood: dark" in ctx.text_vectors.texts("aug")[1]
    for name in ("emerflow", "emerflow-augonly"):
        method = _method(name)
        method.fit(ctx)
        assert set(run_phases(method, ctx).metrics) == {"0", "I", "II", "III"}


# ---- counting baselines on a hand-made example ------------------------------------------------
def _hand_dataset(positives_only: bool) -> Dataset:
    items = pd.DataFrame({"item_id": ["o1", "o2", "n1"], "name": ["o1", "o2", "n1"],
                          "kind": ["a", "b", "a"]})
    targets = pd.DataFrame({"target_id": ["u1", "u2", "u3"], "name": ["u1", "u2", "u3"],
                            "grp": ["x", "y", "x"]})
    return Dataset(name="hand", domain="disease" if positives_only else "movie", items=items,
                   targets=targets,
                   interactions=pd.DataFrame(columns=["item_id", "target_id", "label", "order"]),
                   item_features=[FeatureSpec("kind", "categorical", "Kind")],
                   target_features=[FeatureSpec("grp", "categorical", "Group")],
                   positives_only=positives_only)


def _frame(rows, phase):
    return pd.DataFrame([{"item_id": i, "target_id": t, "label": y, "order": k, "rank": k,
                          "phase": phase} for k, (i, t, y) in enumerate(rows)])


def test_counting_baselines_by_hand_rated():
    ds = _hand_dataset(False)
    train = _frame([("o1", "u1", 1), ("o1", "u2", 0), ("o2", "u1", 1), ("o2", "u3", 0)], "train")
    phase_i = _frame([("n1", "u1", 1), ("n1", "u2", 1)], "I")
    test = _frame([("n1", "u1", 1), ("n1", "u2", 0), ("n1", "u3", 1)], "test")
    split = Split(old_items=["o1", "o2"], new_items=["n1"], train=train, phases={"I": phase_i},
                  test=test)
    ctx = make_context(ds, TINY_MOVIES, split=split)
    rows = ctx.rows(test).unlabelled()
    # popularity: each user's number of old-item positives (u1: 2, u2 and u3: 0)
    pop = METHODS["popularity"]()
    pop.fit(ctx)
    expected = np.array([2.0, 0.0, 0.0])
    np.testing.assert_allclose(pop.score(pop.start(), rows), expected)
    # popularity-rate: the smoothed positive rate of each user's old-item rows
    rate = METHODS["popularity-rate"](prior_strength=2.0)
    rate.fit(ctx)
    g = 0.5  # global positive rate of the train rows
    np.testing.assert_allclose(rate.score(rate.start(), rows),
                               [(2 + 2 * g) / 4, (0 + 2 * g) / 3, (0 + 2 * g) / 3])
    # item-mean: the count scaled to max 1, plus the item's smoothed rate centred on g
    im = METHODS["item-mean"](prior_strength=2.0)
    im.fit(ctx)
    np.testing.assert_allclose(im.score(im.start(), rows), expected / 2.0)  # phase 0
    batch = ctx.rows(phase_i)
    state = im.update(im.start(), batch, batch)
    item_rate = (2 + 2 * g) / (2 + 2)
    np.testing.assert_allclose(im.score(state, rows), expected / 2.0 + item_rate - g)
    # popularity does not move with phases
    np.testing.assert_allclose(pop.score(pop.update(pop.start(), batch, batch), rows), expected)
    with pytest.raises(ValueError, match="unknown settings"):
        METHODS["popularity"](prior_strength=2.0)  # a count has nothing to smooth


def test_counting_baselines_by_hand_positives_only():
    ds = _hand_dataset(True)
    # old disease o1: genes u1, u2; o2: u1, u3 (positives; negatives as sampled rows)
    train = _frame([("o1", "u1", 1), ("o1", "u3", 0), ("o1", "u2", 1), ("o2", "u1", 1),
                    ("o2", "u3", 1), ("o2", "u2", 0)], "train")
    phase_i = _frame([("n1", "u2", 1), ("n1", "u3", 0)], "I")
    test = _frame([("n1", "u1", 1), ("n1", "u3", 0)], "test")
    split = Split(old_items=["o1", "o2"], new_items=["n1"], train=train, phases={"I": phase_i},
                  test=test)
    ctx = make_context(ds, TINY_DISEASES, split=split)
    pop = METHODS["popularity"]()
    pop.fit(ctx)
    rows = ctx.rows(test).unlabelled()
    np.testing.assert_allclose(pop.score(pop.start(), rows), [2.0, 1.0])  # old associations
    im = METHODS["item-mean"]()
    im.fit(ctx)
    batch = ctx.rows(phase_i)
    state = im.update(im.start(), batch, batch)
    # seen gene u2 shares old disease o1 with u1 (co = 1) and none with u3 (co = 0)
    np.testing.assert_allclose(im.score(state, rows), [np.log1p(2) + np.log1p(1), np.log1p(1)])


# ---- the protocol's popularity on the real data --------------------------------------------
def _real_context(name: str, data_root) -> BenchContext:
    """A bench context on a real dataset's test split without a backbone (the counting and
    co-occurrence baselines never touch it)."""
    from engine.data.registry import get_dataset_entry

    entry = get_dataset_entry(name)
    return make_context(entry.load(data_root), entry.protocol, pretrain=False)


@pytest.mark.needs_data
@pytest.mark.slow
def test_real_movielens_count_popularity_beats_the_rate_prior(shared_data):
    """protocol.md: on movielens-1m-partial the count of a user's old-item positives ranks the
    full catalog far better than the smoothed positive rate (Recall@100 ~.26 vs ~.09), and
    cooc-knn's and ease's Phase 0 is that count (identical metrics)."""
    ctx = _real_context("movielens-1m-partial", shared_data)
    runs = {}
    for name, settings in (("popularity", {}), ("popularity-rate", {"prior_strength": 5.0}),
                           ("cooc-knn", {}), ("ease", {"lam": 3000.0})):
        method = METHODS[name](**settings)
        method.fit(ctx)
        runs[name] = run_phases(method, ctx).metrics
    count, rate = runs["popularity"], runs["popularity-rate"]
    for phase in ("0", "III"):
        assert count[phase]["recall@100"] > 0.2, count[phase]
        assert rate[phase]["recall@100"] < 0.15, rate[phase]
        assert count[phase]["ndcg@100"] > 2 * rate[phase]["ndcg@100"]
    for name in ("cooc-knn", "ease"):  # Phase-0 fallback: the count popularity
        for key in RANKING_KEYS:
            assert runs[name]["0"][key] == count["0"][key], (name, key)
        assert runs[name]["III"]["recall@100"] > count["III"]["recall@100"] + 0.05


# ---- no method reads test rows --------------------------------------------------------------
@pytest.mark.parametrize("name", RUNNABLE)
def test_test_labels_never_change_updates_or_scores(name, movies, movie_ctx):
    split = movie_ctx.split
    poisoned = split.test.copy()
    poisoned["label"] = 1 - poisoned["label"]
    bad = Split(old_items=split.old_items, new_items=split.new_items, train=split.train,
                phases=split.phases, test=poisoned, config=split.config)
    ctx_bad = replace(movie_ctx, split=bad, _cache={})
    scores = []
    for ctx in (movie_ctx, ctx_bad):
        method = _method(name)
        method.fit(ctx)
        test = ctx.rows(ctx.split.test).unlabelled()
        state = method.start()
        per_phase = [method.score(state, test)]
        seen = Rows.empty()
        for phase in ("I", "II", "III"):
            batch = ctx.rows(ctx.split.phases[phase])
            seen = seen.concat(batch)
            state = method.update(state, batch, seen)
            per_phase.append(method.score(state, test))
        scores.append(per_phase)
    for a, b in zip(*scores, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_rows_padded_layout():
    rows = Rows(np.array([1, 0, 1]), np.array([5, 6, 7]), np.array([1.0, 0.0, 0.0], np.float32))
    target, label, mask = rows.padded(3)
    assert target.shape == (3, 2)
    assert target[1].tolist() == [5, 7] and target[0].tolist() == [6, 0]
    assert mask.sum(1).tolist() == [1.0, 2.0, 0.0]
    assert torch.equal(label[1], torch.tensor([1.0, 0.0]))


# ---- full-catalog scores agree with the row scores --------------------------------------------
@pytest.mark.parametrize("name", RUNNABLE)
def test_score_all_agrees_with_score(name, movie_ctx):
    """``score_all [M, N]`` ranks as ``score`` does: equal scores (embedding methods: logits
    whose sigmoid is the row probability), with every target of every new item."""
    ctx = movie_ctx
    method = _method(name)
    method.fit(ctx)
    batch = ctx.rows(ctx.split.phases["I"])
    state = method.update(method.start(), batch, batch)
    full = np.asarray(method.score_all(state), dtype=np.float64)
    assert full.shape == (ctx.n_new, ctx.n_targets)
    rows = ctx.rows(ctx.split.test).unlabelled()
    picked = full[rows.item, rows.target]
    if isinstance(method, EmbeddingMethod):
        picked = 1.0 / (1.0 + np.exp(-picked))
    np.testing.assert_allclose(picked, method.score(state, rows), rtol=1e-4, atol=1e-5)


def test_candidate_mask_rated_is_users_with_an_old_rating(movie_ctx, disease_ctx):
    train_users = set(movie_ctx.split.train["target_id"].astype(str))
    ids = movie_ctx.tables.target_pos.index.astype(str)
    expected = np.array([str(t) in train_users for t in ids])
    order = movie_ctx.tables.target_pos.to_numpy()
    mask = np.zeros(movie_ctx.n_targets, bool)
    mask[order] = expected
    np.testing.assert_array_equal(movie_ctx.candidate_mask, mask)
    assert disease_ctx.candidate_mask.all()


@pytest.mark.parametrize("name", ["item-mean", "backbone"])
def test_generic_score_all_default_equals_the_dense_override(name, disease_ctx):
    """``Method.score_all``'s default (``score`` over chunks of pairs) gives what the dense
    overrides give (embedding methods: the sigmoid of their logits)."""
    from engine.baselines import Method

    ctx = disease_ctx
    method = _method(name)
    method.fit(ctx)
    batch = ctx.rows(ctx.split.phases["I"])
    state = method.update(method.start(), batch, batch)
    dense = np.asarray(method.score_all(state), dtype=np.float64)
    if isinstance(method, EmbeddingMethod):
        dense = 1.0 / (1.0 + np.exp(-dense))
    np.testing.assert_allclose(Method.score_all(method, state), dense, rtol=1e-4, atol=1e-5)


def test_invalid_settings_fail_at_construction():
    """Typed settings are checked when a method is built, before any fitting."""
    with pytest.raises(ValueError, match="unknown settings"):
        METHODS["backbone"](refine_step=3)
    with pytest.raises(ValueError, match="RefineConfig.lr"):
        METHODS["cvar"](refine_lr=0.0)
    with pytest.raises(ValueError, match="RefineConfig.steps"):
        METHODS["mwuf"](refine_steps=-1)
    with pytest.raises(ValueError, match="MetaConfig.alpha"):
        METHODS["metaemb"](alpha=2.0)
    with pytest.raises(ValueError, match="AlignerConfig.dropout"):
        METHODS["emerflow-nollm"](aligner_dropout=1.5)
