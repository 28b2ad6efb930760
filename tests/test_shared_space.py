"""The shared-space EmerFlow: backbone, the one phase update, aligner, ranking (small fixtures).

The fixture is a tiny catalog with two blocks of targets: items of block A have targets 0-9,
items of block B targets 10-19, and their text vectors say which block they are in.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import PosteriorConfig, SharedConfig, SharedMetaConfig, TwoTowerConfig
from engine.emerflow.shared_space import (
    EaseIndex,
    posterior_update,
    train_shared,
)
from engine.models.twotower import TwoTower, pretrain_twotower
from engine.ranking import Decisions

N_TARGETS = 40


def _catalog(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(text vectors [K, 8], positives [K, N]) of 30 old items in two blocks."""
    rng = np.random.default_rng(seed)
    k = 30
    x = np.zeros((k, N_TARGETS), np.float32)
    text = rng.normal(0, 0.1, (k, 8)).astype(np.float32)
    for i in range(k):
        block = i % 2
        genes = rng.choice(np.arange(10) + 10 * block, size=6, replace=False)
        x[i, genes] = 1.0
        x[i, 30 + rng.integers(0, 10)] = 1.0  # a popular-ish shared tail
        text[i, block] += 1.0
    return text, x


@pytest.fixture(scope="module")
def ranker():
    text, x = _catalog()
    cfg = SharedConfig(TwoTowerConfig(dim=16, epochs=150, lr=0.05),
                       PosteriorConfig(steps=3, lr=0.5, prior_weight=0.1, beta=1.0),
                       SharedMetaConfig(epochs=80, lr=1e-2, hidden=32, temperature=0.2,
                                        ease_lam=5.0))
    return train_shared(text, x, cfg, seed=0)



def test_a_shared_backbone_cache_pretrains_once_and_changes_nothing(ranker):
    """The benchmark shares one pretrained backbone between methods that differ only in their
    text: a second training from the cache (other text) equals a training without it."""
    text, x = _catalog()
    cfg = ranker.config
    cache: dict = {}
    first = train_shared(text, x, cfg, seed=0, backbones=cache)
    assert len(cache) == 1
    for a, b in zip(first.model.state_dict().values(), ranker.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    other = text[::-1].copy()
    cached = train_shared(other, x, cfg, seed=0, backbones=cache)
    fresh = train_shared(other, x, cfg, seed=0)
    assert len(cache) == 1
    assert not cached.model.training
    assert not any(p.requires_grad for p in cached.model.parameters())
    assert np.array_equal(cached.align(other[:5]), fresh.align(other[:5]))
    train_shared(text, x, cfg, seed=1, backbones=cache)
    assert len(cache) == 2

def test_configs_fail_early():
    with pytest.raises(ValueError, match="dim"):
        TwoTowerConfig(dim=0)
    with pytest.raises(ValueError, match="steps"):
        PosteriorConfig(steps=-1)
    with pytest.raises(ValueError, match="alpha"):
        SharedMetaConfig(alpha=2.0)
    with pytest.raises(ValueError, match="do not match"):
        pretrain_twotower(TwoTower(3, 5, TwoTowerConfig(dim=4, epochs=1)), np.zeros((2, 5)), 0)


def test_pretraining_fits_the_old_items():
    _, x = _catalog()
    model = TwoTower(len(x), N_TARGETS, TwoTowerConfig(dim=16, epochs=150, lr=0.05))
    losses = pretrain_twotower(model, x, seed=0)
    assert losses[-1] < losses[0] - 0.5
    with torch.no_grad():
        top = model.log_probs(model.item_id.weight).topk(6, dim=1).indices.numpy()
    hit = np.take_along_axis(x, top, 1).mean()
    assert hit > 0.8  # each old item's own targets come first
    assert not any(p.requires_grad for p in model.parameters())


def test_different_items_get_different_rankings(ranker):
    text = np.zeros((2, 8), np.float32)
    text[0, 0], text[1, 1] = 1.0, 1.0
    emb = ranker.align(text)
    a = set(np.argsort(-ranker.score(text[0], emb[0], Decisions()).scores)[:10])
    b = set(np.argsort(-ranker.score(text[1], emb[1], Decisions()).scores)[:10])
    assert len(a & b) / len(a | b) < 0.3
    assert len(a & set(range(10))) >= 6 and len(b & set(range(10, 20))) >= 6


def test_confirming_raises_confirmed_and_lifts_co_associated(ranker):
    # an item whose text says block A, but the analyst confirms block-B targets 10, 11, 12
    text = np.zeros((1, 8), np.float32)
    text[0, 0] = 1.0
    prior = ranker.align(text)[0]
    def update_scores(emb, dec):  # the phase update and propagation (the text vote is fixed)
        ch = ranker.channels(text[0], emb, dec)
        return ch["model"] + ch["propagation"]

    before = update_scores(prior, Decisions())
    confirmed = np.array([10, 11, 12])
    emb = ranker.refine(prior, Decisions(confirmed))
    after = update_scores(emb, Decisions(confirmed))
    rank = lambda s, t: int((s > s[t]).sum())  # noqa: E731
    for t in confirmed:
        assert rank(after, t) <= rank(before, t)
    held_out = np.arange(13, 20)  # co-associated with the confirmed ones in old items
    assert all(rank(after, t) < rank(before, t) for t in held_out)
    assert np.mean([rank(after, t) for t in held_out]) < 15


def test_update_is_the_identity_without_decisions_and_differentiable():
    model = TwoTower(4, 6, TwoTowerConfig(dim=3, epochs=1))
    prior = torch.randn(2, 3, requires_grad=True)
    none = torch.zeros(2, 6)
    out = posterior_update(model, prior, none, none, PosteriorConfig(steps=2))
    assert torch.allclose(out, prior)
    confirmed = none.clone()
    confirmed[0, 1] = 1.0
    out = posterior_update(model, prior, confirmed, None, PosteriorConfig(steps=2))
    assert torch.allclose(out[1], prior[1]) and not torch.allclose(out[0], prior[0])
    out.sum().backward()  # meta-training differentiates through the deployed update
    assert prior.grad is not None


def test_ease_index_matches_the_dense_closed_form():
    _, x = _catalog()
    lam = 5.0
    g = x.T.astype(np.float64) @ x + lam * np.eye(N_TARGETS)
    p = np.linalg.inv(g)
    b = np.eye(N_TARGETS) - p / np.diag(p)[None, :]
    seen = np.zeros((2, N_TARGETS), np.float32)
    seen[0, [1, 2]] = 1
    seen[1, [15]] = 1
    np.testing.assert_allclose(EaseIndex(x, lam).scores(seen), seen @ b, atol=1e-4)
