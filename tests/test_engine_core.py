"""Unit tests of the engine: serialization, encoder, fields, DeepFM, aligner, meta, refine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from engine.build import workspace_dir
from engine.config import (
    BackboneConfig,
    EncoderConfig,
    MetaConfig,
    RefineConfig,
    WorkspaceConfig,
)
from engine.index import ItemIndex
from engine.paper.aligner import Aligner
from engine.paper.deepfm import DeepFM, FieldLayout
from engine.paper.fields import FieldEncoder
from engine.paper.meta import MetaTrainer, TaskBatch, meta_loss
from engine.paper.tasks import ItemRows
from engine.ranking import Decisions
from engine.schema import FeatureSpec
from engine.text.serialize import serialize_features, serialize_item
from engine.workspace_store import load_workspace


# ---- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: MetaConfig(alpha=1.5),
        lambda: MetaConfig(inner_lr=0),
        lambda: BackboneConfig(embed_dim=0),
        lambda: BackboneConfig(dropout=1.0),
        lambda: RefineConfig(steps=-1),
        lambda: EncoderConfig(model=""),
        lambda: WorkspaceConfig(dataset=""),
    ],
)
def test_configs_reject_bad_values_early(make):
    with pytest.raises(ValueError):
        make()


def test_workspace_config_round_trips_through_json_dict():
    from engine.config import PosteriorConfig, SharedConfig

    cfg = WorkspaceConfig(dataset="demo-movies",
                          shared=SharedConfig(update=PosteriorConfig(beta=3.0)))
    assert WorkspaceConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        WorkspaceConfig.from_dict({**cfg.to_dict(), "surprise": 1})


# ---- serialization (Eq. 2) --------------------------------------------------------------------
def test_serialize_descriptor_value_pairs_skipping_missing():
    text = serialize_features(
        [
            ("Title", "Heat"),
            ("Year", 1995.0),
            ("Genres", "Action|Crime"),
            ("Director", None),
            ("Budget", "unknown"),
            ("Note", "  two  words "),
        ]
    )
    assert text == "Title: Heat; Year: 1995; Genres: Action, Crime; Note: two words"


def test_serialize_item_appends_augmented_features_after_raw():
    specs = [
        FeatureSpec("title", "text", "Title", backbone=False),
        FeatureSpec("genres", "multi", "Genres"),
        FeatureSpec("user_only", "categorical", "Hidden", text=False),
    ]
    text = serialize_item(
        {"title": "Alien", "genres": "Horror|Sci-Fi", "user_only": "x"},
        specs,
        {"director": "Ridley Scott"},
        {"director": "Director"},
    )
    assert text == "Title: Alien; Genres: Horror, Sci-Fi; Director: Ridley Scott"


# ---- encoder (Eq. 3) --------------------------------------------------------------------------
def test_encoder_batches_caches_and_normalizes(encoder, monkeypatch):
    texts = [
        "Title: Heat; Genres: Crime",
        "Disease name: cystic fibrosis",
        "Title: Heat; Genres: Crime",
    ]
    vecs = encoder.encode(texts)
    assert vecs.shape == (3, encoder.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vecs[0], vecs[2])
    single = encoder.encode_one("Disease name: cystic fibrosis")
    np.testing.assert_allclose(single, vecs[1], atol=1e-5)
    # related texts are closer than unrelated ones: the real model, not random weights
    a, b, c = encoder.encode(
        [
            "a space opera about a starship crew",
            "science fiction film set on a spaceship",
            "a hereditary kidney disease",
        ]
    )
    assert a @ b > a @ c
    calls = []

    def spy(batch):
        calls.append(batch)
        raise AssertionError("cached texts must not be re-encoded")

    monkeypatch.setattr(encoder, "_encode_batch", spy)
    encoder.encode(texts)
    assert calls == []


def test_encoder_cache_persists_to_disk(encoder, tmp_path):
    path = tmp_path / "cache.npz"
    encoder.encode(["persist me"])
    encoder.save_cache(path)
    from engine.text.encoder import TextEncoder, text_key

    with np.load(path) as data:
        assert text_key("persist me") in set(data["keys"].tolist())
    assert isinstance(TextEncoder, type)


# ---- fields and DeepFM ------------------------------------------------------------------------
def _frame():
    return pd.DataFrame(
        {
            "genres": ["Action|Crime", "Comedy", None],
            "year": [1990, 2000, None],
            "kind": ["a", "b", "a"],
        }
    )


def test_field_encoder_handles_multi_numeric_and_unknown_values():
    specs = [
        FeatureSpec("genres", "multi", "Genres"),
        FeatureSpec("year", "numeric", "Year"),
        FeatureSpec("kind", "categorical", "Kind"),
    ]
    enc = FieldEncoder.fit(_frame(), specs, buckets=4, max_multi=3)
    idx = enc.transform(_frame())
    assert idx.shape == (3, 3 + 1 + 1)
    assert (idx[0, :2] > 0).all() and idx[0, 2] == 0  # two genres, one pad slot
    assert idx[2, 3] == 0  # missing year -> pad
    unknown = enc.transform([{"genres": "Western", "year": 1995, "kind": "zzz"}])
    assert unknown[0, 0] == 0 and unknown[0, 4] == 0
    assert FieldEncoder.from_dict(enc.to_dict()).transform(_frame()).equal(idx)


def _tiny_backbone(seed: int = 0) -> DeepFM:
    torch.manual_seed(seed)
    return DeepFM(
        FieldLayout((11, 4), (1, 2)),
        FieldLayout((6,), (1,)),
        n_items=5,
        config=BackboneConfig(hidden=(8,), dropout=0.0),
    )


def test_deepfm_score_all_matches_forward():
    model = _tiny_backbone().eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    targets = torch.tensor([[i % 11, 1, (i % 3)] for i in range(10)])
    item = torch.tensor([[3]])
    vec = torch.randn(1, 16)
    with torch.no_grad():
        direct = model(targets, item.expand(10, -1), vec.expand(10, -1))
        fast = model.score_all(model.precompute_targets(targets), item, vec)[0]
    assert fast.shape == (10,)
    torch.testing.assert_close(direct, fast, rtol=1e-5, atol=1e-5)



def test_deepfm_score_all_in_chunks_is_bit_identical_to_each_chunk_alone():
    """Chunks reuse one set of activation buffers (the last chunk is shorter): every value
    must equal scoring each chunk on its own exactly (GEMM results may depend on the number
    of rows, so the chunk size is part of the contract), with two hidden layers and dropout
    in the MLP, and match ``forward``."""
    torch.manual_seed(0)
    model = DeepFM(FieldLayout((11, 4), (1, 2)), FieldLayout((6,), (1,)), n_items=5,
                   config=BackboneConfig(hidden=(8, 4), dropout=0.5)).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    targets = torch.tensor([[i % 11, 1, (i % 3)] for i in range(10)])
    items = torch.tensor([[1], [3], [5], [2], [4]])
    vecs = torch.randn(5, 16)
    cache = model.precompute_targets(targets)
    whole = model.score_all(cache, items, vecs)
    assert whole.shape == (5, 10)
    for chunk in (1, 2, 3):
        alone = torch.cat([model.score_all(cache, items[s : s + chunk], vecs[s : s + chunk])
                           for s in range(0, 5, chunk)])
        assert torch.equal(model.score_all(cache, items, vecs, chunk), alone)
    with torch.no_grad():
        direct = model(targets.repeat(5, 1), items.repeat_interleave(10, 0),
                       vecs.repeat_interleave(10, 0)).reshape(5, 10)
    torch.testing.assert_close(direct, whole, rtol=1e-5, atol=1e-5)

# ---- aligner + meta-learning (Eq. 4-7) --------------------------------------------------------
def _task_batch(m: int = 4, shot: int = 6, text_dim: int = 12) -> TaskBatch:
    g = torch.Generator().manual_seed(1)

    def tgt() -> torch.Tensor:
        return torch.stack(
            [
                torch.randint(0, 11, (m, shot), generator=g),
                torch.randint(0, 4, (m, shot), generator=g),
                torch.randint(0, 4, (m, shot), generator=g),
            ],
            -1,
        )

    return TaskBatch(
        text=torch.randn(m, text_dim, generator=g),
        item_idx=torch.randint(0, 6, (m, 1), generator=g),
        target_a=tgt(),
        label_a=torch.randint(0, 2, (m, shot), generator=g).float(),
        target_b=tgt(),
        label_b=torch.randint(0, 2, (m, shot), generator=g).float(),
    )


def test_aligner_maps_text_space_to_embedding_space():
    al = Aligner(384, 16)
    assert al(torch.randn(7, 384)).shape == (7, 16)
    with pytest.raises(ValueError):
        Aligner(0, 16)


def test_meta_gradient_reaches_aligner_not_frozen_backbone():
    backbone = _tiny_backbone()
    for p in backbone.parameters():
        p.requires_grad_(False)
    aligner = Aligner(12, 16)
    loss, parts = meta_loss(backbone, aligner, _task_batch(), MetaConfig(alpha=0.1, shot=6))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in aligner.parameters())
    assert all(p.grad is None for p in backbone.parameters())
    assert parts["total"] == pytest.approx(0.1 * parts["cold"] + 0.9 * parts["warm"], rel=1e-5)


def test_nowarm_alpha_one_is_the_cold_loss_only():
    backbone = _tiny_backbone()
    aligner = Aligner(12, 16)
    _, parts = meta_loss(backbone, aligner, _task_batch(), MetaConfig(alpha=1.0, shot=6))
    assert parts["total"] == pytest.approx(parts["cold"])


@pytest.fixture(scope="module")
def movies_ws(demo_home, encoder):
    return load_workspace(workspace_dir("demo-movies", demo_home), encoder)


def test_one_meta_step_lowers_the_warm_loss_on_demo_data(movies_ws):
    """The paper's DeepFM path (benchmark only) on the demo catalog's old items."""
    from engine.paper.backbones import build_backbone
    from engine.paper.tables import layout

    ws = movies_ws
    bcfg = BackboneConfig()
    item_fields = FieldEncoder.fit(ws.dataset.items, ws.dataset.item_features,
                                   bcfg.numeric_buckets, bcfg.max_multi)
    target_fields = FieldEncoder.fit(ws.dataset.targets, ws.dataset.target_features,
                                     bcfg.numeric_buckets, bcfg.max_multi)
    tables_items = item_fields.transform(ws.dataset.items)
    target_table = target_fields.transform(ws.dataset.targets)
    item_pos = {iid: i for i, iid in enumerate(ws.dataset.items["item_id"])}
    old = [str(i) for i in ws.split.old_items]
    train = ws.split.train
    old_pos = {iid: i for i, iid in enumerate(old)}
    rows = ItemRows.from_arrays(
        train["item_id"].map(old_pos).to_numpy(),
        ws.target_pos.loc[train["target_id"].astype(str)].to_numpy(),
        train["label"].to_numpy(np.float32),
        len(old),
    )
    texts = torch.from_numpy(
        ws.encoder.encode(
            [
                ws.serialize(r)
                for r in ws.dataset.items.set_index("item_id")
                .loc[old]
                .reset_index()
                .to_dict("records")
            ]
        )
    )
    torch.manual_seed(0)
    backbone = build_backbone(bcfg, layout(target_fields), layout(item_fields), len(old)).eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    aligner = Aligner(ws.encoder.dim, 16)
    cfg = MetaConfig(alpha=0.1, shot=10, tasks_per_batch=64, lr=1e-3)
    trainer = MetaTrainer(
        backbone,
        aligner,
        cfg,
        target_table,
        tables_items[torch.tensor([item_pos[i] for i in old])],
        texts,
        rows,
    )
    batch = trainer.make_batch(np.arange(min(64, len(old))), np.random.default_rng(0))
    aligner.eval()
    before = meta_loss(backbone, aligner, batch, cfg)[1]["warm"]
    trainer.step(batch)
    aligner.eval()
    after = meta_loss(backbone, aligner, batch, cfg)[1]["warm"]
    assert after < before


# ---- refinement -------------------------------------------------------------------------------
def test_refinement_raises_scores_of_confirmed_positives(movies_ws):
    ws = movies_ws
    assert ws.ranker.kind == "twotower"  # the product's shared-space ranker
    feats = ws.dataset.items.iloc[0].to_dict()
    pred = ws.predict(feats)
    _, vec = ws.encode(feats)

    def model_scores(emb):
        return ws.ranker.channels(vec, emb, Decisions())["model"]

    # confirm three users from the middle of the ranking, reject three others
    pos = pred.targets["target_id"].iloc[[100, 200, 300]].astype(str).tolist()
    neg = pred.targets["target_id"].iloc[[150, 250, 350]].astype(str).tolist()
    p_rows = ws.target_pos.loc[pos].to_numpy()
    n_rows = ws.target_pos.loc[neg].to_numpy()
    s0 = model_scores(pred.embedding)
    # confirmations alone: the confirmed users' model scores rise on average, and in the
    # ranking the analyst sees they are never below where they were
    emb = ws.refine(pred.embedding, feats, [(t, 1) for t in pos])
    # the chance that the item's next confirmed user is one of those confirmed rises
    assert ws.ranker.probabilities(emb)[p_rows].sum() > ws.ranker.probabilities(
        pred.embedding)[p_rows].sum()
    after = ws.predict(feats, embedding=emb, decisions={t: 1 for t in pos})
    rank_after = dict(zip(after.targets["target_id"].astype(str), after.targets["rank"],
                          strict=True))
    rank_before = dict(zip(pred.targets["target_id"].astype(str), pred.targets["rank"],
                           strict=True))
    assert all(rank_after[t] <= rank_before[t] for t in pos)
    # confirmations and rejections: the refined embedding separates the two groups better
    decided = [(t, 1) for t in pos] + [(t, 0) for t in neg]
    emb = ws.refine(pred.embedding, feats, decided)
    s1 = model_scores(emb)
    assert s1[p_rows].mean() - s1[n_rows].mean() > s0[p_rows].mean() - s0[n_rows].mean()
    shown = ws.predict(feats, embedding=emb, decisions=dict(decided))
    assert set(shown.targets["target_id"].astype(str).tail(3)) == set(neg)  # rejected: last
    assert not np.allclose(emb, pred.embedding)
    with pytest.raises(ValueError, match="unknown target"):
        ws.refine(pred.embedding, feats, [("no-such-user", 1)])
    with pytest.raises(ValueError, match="0 or 1"):
        ws.refine(pred.embedding, feats, [(pos[0], 2)])


def test_zero_refine_steps_leave_the_embedding_unchanged(movies_ws):
    from engine.emerflow.shared_space import SharedRanker

    sh = movies_ws.ranker
    cfg = dataclasses.replace(sh.config, update=dataclasses.replace(sh.config.update, steps=0))
    ws = dataclasses.replace(movies_ws, ranker=SharedRanker(sh.model, sh.aligner, sh.ease, cfg))
    feats = ws.dataset.items.iloc[1].to_dict()
    pred = ws.predict(feats)
    out = ws.refine(pred.embedding, feats, [(pred.targets["target_id"].iloc[0], 1)])
    np.testing.assert_allclose(out, pred.embedding)


# ---- workspace and index ----------------------------------------------------------------------
def test_saved_workspace_reloads_to_identical_predictions(movies_ws, demo_home, encoder):
    again = load_workspace(workspace_dir("demo-movies", demo_home), encoder)
    feats = movies_ws.dataset.items.iloc[5].to_dict()
    a, b = movies_ws.predict(feats), again.predict(feats)
    np.testing.assert_allclose(a.embedding, b.embedding, rtol=1e-6)
    pd.testing.assert_frame_equal(a.targets.head(20), b.targets.head(20))
    assert list(a.neighbours["item_id"]) == list(b.neighbours["item_id"])
    assert movies_ws.dataset.synthetic and movies_ws.dataset.label.endswith("(synthetic)")


def test_neighbours_are_established_items_with_evidence(movies_ws):
    ws = movies_ws
    old_id = str(ws.split.old_items[0])
    feats = ws.dataset.items.set_index("item_id").loc[old_id].to_dict()
    nb = ws.predict(feats).neighbours
    assert nb["item_id"].iloc[0] == old_id  # an established item is its own nearest neighbour
    # the generated embedding lands next to the backbone's own embedding of the item
    assert nb["similarity"].iloc[0] > 0.9
    assert nb["similarity"].is_monotonic_decreasing and nb["item_id"].is_unique
    assert set(nb["item_id"]) <= set(map(str, ws.split.old_items))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_item_index_finds_true_neighbours(kind):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2000, 16)).astype(np.float32)
    ids = [f"i{i}" for i in range(2000)]
    index = ItemIndex.build(vecs, ids, kind=kind)
    hits = index.search(vecs[:50] + 1e-3, k=1)
    assert sum(h[0][0] == ids[i] for i, h in enumerate(hits)) >= 48
    with pytest.raises(ValueError):
        ItemIndex.build(vecs, ids, kind="lsh")
