"""Speed bench sections of size and throughput (:mod:`bench.speed`): a million candidate
targets, the text encoder, the nearest-item index."""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Sequence

import numpy as np

from bench.speed_common import (
    EF_SWEEP,
    TOP_N,
    _la,
    loadavg,
    log,
    new_item_features,
    peak_mb,
    reset_peak,
    rss_mb,
    stats_ms,
    timed,
)


# ---- scale -------------------------------------------------------------------------------------
def synthetic_target_workspace(ws, n: int, rng: np.random.Generator):
    """A copy of ``ws`` whose candidate targets are ``n`` rows sampled (with replacement) from
    its real ones, ranked by a :class:`SharedRanker` over the same sampled targets (built
    outside the timing; its static size is reported)."""
    import torch

    from engine.emerflow.shared_space import EaseIndex, SharedRanker
    from engine.models.twotower import TwoTower
    from engine.schema import NAME, TARGET_ID
    from engine.workspace import Workspace

    sh = ws.ranker
    if not isinstance(sh, SharedRanker):
        raise TypeError(f"scale needs a twotower workspace, got {sh.kind}")
    src = rng.integers(0, len(ws.dataset.targets), size=n)
    model = TwoTower(sh.model.item_id.num_embeddings, n, sh.model.config)
    rows = torch.from_numpy(src)
    with torch.no_grad():
        model.item_id.weight.copy_(sh.model.item_id.weight)
        model.target.weight.copy_(sh.model.target.weight[rows])
        model.bias.copy_(sh.model.bias[rows])
    for p in model.parameters():
        p.requires_grad_(False)
    ranker = SharedRanker(model, sh.aligner, EaseIndex(sh.ease.x[:, src], sh.ease.lam),
                          sh.config)
    ids = np.array([f"syn{i}" for i in range(n)], dtype=object)
    targets = ws.dataset.targets.iloc[src].reset_index(drop=True)
    targets[TARGET_ID] = ids
    targets[NAME] = ids
    dataset = dataclasses.replace(ws.dataset, targets=targets)
    syn = Workspace(config=ws.config, dataset=dataset, split=ws.split, encoder=ws.encoder,
                    ranker=ranker, index=ws.index, meta=ws.meta)
    static = (model.target.weight.nbytes + model.bias.nbytes + ranker.ease.diag_p.nbytes
              + ranker.ease.x.data.nbytes + ranker.ease.x.indices.nbytes)
    return syn, {"ranker_static_mb": round(static / 2**20, 1),
                 "target_table_mb": round(
                     float(targets.memory_usage(deep=True).sum()) / 2**20, 1)}


def bench_scale_targets(ws, sizes: Sequence[int], reps: int) -> list[dict]:
    from engine.ranking.base import Decisions

    feats = new_item_features(ws)
    out = []
    rng = np.random.default_rng(0)
    for n in sizes:
        log(f"scale: {n} synthetic targets")
        syn, sizes_mb = synthetic_target_workspace(ws, n, rng)
        for _, f in feats[:reps]:
            syn.encoder.encode([syn.serialize(f)])  # text cached: the warm path
        syn.predict(feats[0][1])  # warm-up
        gc.collect()
        base = rss_mb()
        can_peak = reset_peak()
        times, t_score, t_rank, t_full = [], [], [], []
        r = reps if n < 1_000_000 else max(3, reps // 2)
        la = loadavg()
        for i in range(r):
            f = feats[i % len(feats)][1]
            # what a page shows: the prediction and its top rows (the table's string
            # columns are gathered for those rows only); the complete table timed apart
            t0 = time.perf_counter()
            pred = syn.predict(f)
            pred.top(TOP_N)
            times.append(time.perf_counter() - t0)
            dt, _ = timed(lambda p=pred: p.targets)
            t_full.append(dt)
            vec = syn.encoder.encode([pred.text])[0]
            dt, scored = timed(syn.ranker.score, vec, pred.embedding, Decisions())
            t_score.append(dt)
            dt, _ = timed(syn.rank, np.asarray(scored.scores, np.float64), scored.lift)
            t_rank.append(dt)
            del pred, scored
        peak = peak_mb() if can_peak else float("nan")
        row = {"n_targets": n, **sizes_mb, "predict": stats_ms(times),
               "score": stats_ms(t_score), "rank": stats_ms(t_rank),
               "full_table": stats_ms(t_full), "shown_rows": TOP_N,
               "rss_before_mb": round(base, 1),
               "extra_peak_mb": round(peak - base, 1) if can_peak else None}
        out.append(_la(row, la))
        del syn
        gc.collect()
    return out


# ---- encode ------------------------------------------------------------------------------------
def bench_encode(texts: list[str], repeats: int, modes: Sequence[str]) -> dict:
    """Items/s of :meth:`TextEncoder.encode` over distinct real item texts (cache cleared
    before each run), for each quantization mode."""
    from engine.text.encoder import TextEncoder

    texts = list(dict.fromkeys(t for t in texts if t))
    out: dict = {"n_texts": len(texts), "mean_chars": round(float(np.mean(
        [len(t) for t in texts])), 1), "modes": {}}
    for mode in modes:
        enc = TextEncoder(quantize=mode)
        enc.encode(texts[: min(64, len(texts))])  # warm-up
        times, cpu = [], []
        la = loadavg()
        for _ in range(repeats):
            enc._cache.clear()  # cold: every text really goes through the model
            c0 = time.process_time()
            dt, _ = timed(enc.encode, texts)
            cpu.append(time.process_time() - c0)
            times.append(dt)
        med = float(np.median(times))
        out["modes"][mode] = _la({
            "batch_size": enc.config.batch_size, "seconds": [round(t, 3) for t in times],
            "cpu_seconds": [round(t, 3) for t in cpu],
            "items_per_s_median": round(len(texts) / med, 1),
            "items_per_s_best": round(len(texts) / min(times), 1)}, la)
        if "mean_tokens" not in out:
            tok = enc.tokenizer(texts, truncation=True, max_length=enc.config.max_length)
            out["mean_tokens"] = round(float(np.mean([len(t) for t in tok["input_ids"]])), 1)
        del enc
        gc.collect()
    from engine.text.encoder import DEFAULT_QUANTIZE

    out["default_mode"] = DEFAULT_QUANTIZE
    out["items_per_s_median"] = out["modes"].get(DEFAULT_QUANTIZE, {}).get("items_per_s_median")
    return out


def text_knn_recall(ws, modes: Sequence[str], k: int = 100, temperature: float = 0.02,
                    pop_weight: float = 0.05, at: int = 100, fold: int = 5) -> dict:
    """Text-knn Recall@``at`` on the old-item split of ``ws`` for each encoder mode: every
    ``fold``-th established item is a query ranked from its text alone by the other
    established items (``engine.baselines`` text-knn: softmax(cosine / temperature) over the
    ``k`` nearest texts times their positives, plus ``pop_weight`` x count popularity scaled
    to max 1; DisGeNET's tuned k 100, temperature .02, pop_weight .05); recall = hits in the
    top ``at`` / the query's positives, averaged."""
    from engine.text.encoder import TextEncoder
    from engine.training_data import TrainingData

    data = TrainingData(ws.dataset, ws.split)
    texts = data.old_texts()
    x = data.old_positives().astype(np.float64)  # [K, N]
    rows = np.arange(len(texts))
    q, b = rows[rows % fold == 0], rows[rows % fold != 0]
    count = x[b].sum(0)
    pop = count / max(count.max(), 1.0)
    out: dict = {"dataset": ws.name, "n_queries": int(len(q)), "n_base": int(len(b)),
                 "k": k, "temperature": temperature, "pop_weight": pop_weight, "at": at,
                 "modes": {}}
    for mode in modes:
        enc = TextEncoder(quantize=mode)
        la = loadavg()
        dt, vecs = timed(enc.encode, texts)
        v = np.asarray(vecs, np.float64)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        sim = v[q] @ v[b].T  # [Q, B]
        kk = min(k, sim.shape[1])
        top = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        z = np.take_along_axis(sim, top, axis=1) / temperature
        w = np.exp(z - z.max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        weights = np.zeros_like(sim)
        np.put_along_axis(weights, top, w, axis=1)
        score = weights @ x[b] + pop_weight * pop[None, :]
        hits = []
        for i, row in enumerate(q):
            truth = np.flatnonzero(x[row])
            if truth.size == 0:
                continue
            best = np.argpartition(-score[i], at - 1)[:at] if score.shape[1] > at else \
                np.arange(score.shape[1])
            hits.append(len(np.intersect1d(best, truth)) / truth.size)
        out["modes"][mode] = _la({"recall": round(float(np.mean(hits)), 5),
                                  "encode_s": round(dt, 2),
                                  "items_per_s": round(len(texts) / dt, 1)}, la)
        del enc
        gc.collect()
    base = out["modes"].get("none", {}).get("recall")
    for d in out["modes"].values():
        if base is not None:
            d["delta_vs_none"] = round(d["recall"] - base, 5)
    return out


# ---- index -------------------------------------------------------------------------------------
def bench_index(sizes: Sequence[int], n_queries: int, dim: int, hnsw_m: int = 32,
                ef_default: int = 64) -> list[dict]:
    """``ItemIndex`` exact (flat) vs HNSW over ``n`` random unit vectors of the product's
    embedding dimension (no cluster structure: the hard case for ANN), recall@10 vs exact."""
    from engine.index import ItemIndex

    out = []
    rng = np.random.default_rng(1)
    for n in sizes:
        log(f"index: {n} items (dim {dim})")
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        ids = [str(i) for i in range(n)]
        queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
        row: dict = {"n_items": n, "dim": dim, "n_queries": n_queries}
        la = loadavg()
        gc.collect()
        m0 = rss_mb()
        dt, flat = timed(ItemIndex.build, vecs, ids, "flat")
        row["flat"] = {"build_s": round(dt, 3), "rss_delta_mb": round(rss_mb() - m0, 1)}
        exact = flat.search(queries, 10)
        lat = []
        for q in queries:
            d, _ = timed(flat.search, q, 10)
            lat.append(d)
        row["flat"]["query"] = stats_ms(lat)
        m0 = rss_mb()
        dt, hnsw = timed(ItemIndex.build, vecs, ids, "hnsw", hnsw_m=hnsw_m,
                         ef_search=ef_default)
        row["hnsw"] = {"M": hnsw_m, "build_s": round(dt, 2),
                       "rss_delta_mb": round(rss_mb() - m0, 1), "sweep": []}
        for ef in EF_SWEEP:
            hnsw.index.hnsw.efSearch = ef
            lat, hits = [], 0
            for q, truth in zip(queries, exact, strict=True):
                d, got = timed(hnsw.search, q, 10)
                lat.append(d)
                hits += len({i for i, _ in got[0]} & {i for i, _ in truth})
            row["hnsw"]["sweep"].append({"ef_search": ef, "recall_at_10":
                                         round(hits / (10 * len(queries)), 4),
                                         "query": stats_ms(lat)})
        row["hnsw"]["default_ef_search"] = ef_default
        out.append(_la(row, la))
        del flat, hnsw, vecs
        gc.collect()
    return out
