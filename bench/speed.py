"""Speed harness (issue 7): warm latency, throughput, training speed and scale curves.

Run from the repository root::

    .venv/bin/python -m bench.speed            # full run on the real datasets, prints a table
    .venv/bin/python -m bench.speed --check    # same, then exits 1 when a target is missed
    .venv/bin/python -m bench.speed --check-file results/speed/latest.json   # check only
    .venv/bin/python -m bench.speed --quick --out /tmp/x   # tiny demo-sized smoke run

Sections (``--sections``): ``predict`` (one new item: serialize + encode + align + score every
target + rank + FAISS top-10 neighbours, cold text and cached text), ``refine`` (one phase
update from the item's first K interactions + re-ranking), ``encode`` (text encoder
throughput), ``train`` (backbone pretraining and aligner meta-training, one epoch each),
``scale`` (predict with 10k/100k/1M synthetic candidate targets; exact vs HNSW index with
10k/100k/1M synthetic items).

Workspaces are built once with :func:`engine.build.build_dataset_workspace` into the cache
home (``--home``, default ``$EMERFLOW_HOME/speed-cache`` or ``~/.cache/emerflow-speed``) and
reused. Results go to ``<out>/latest.json`` and ``<out>/<git short sha>.json``; timings are
never asserted by the test suite, only by ``--check``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import engine  # noqa: F401  (first: sets the OpenMP defaults before torch loads)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "speed"
#: ``$EMERFLOW_DATA``, else ``shared/data`` beside the repository (the project's layout).
DEFAULT_DATA = Path(
    os.environ.get("EMERFLOW_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
REAL_DATASETS = ("disgenet-curated", "movielens-1m-partial")
QUICK_DATASETS = ("demo-diseases",)
QUICK_DEMO = (400, 150)  #: (genes, diseases) of the --quick demo catalog
SECTIONS = ("predict", "refine", "encode", "train", "scale")
EF_SWEEP = (16, 32, 64, 128, 256)

#: The targets of issue 7 (2 CPU cores, warm). ``--check`` compares against these.
TARGETS = {
    "predict_disgenet_p50_ms": 60.0,
    "predict_disgenet_p95_ms": 150.0,
    "refine_p50_ms": 150.0,
    "encode_items_per_s": 150.0,
    "scale_1m_targets_predict_p50_ms": 500.0,
    "scale_1m_targets_extra_mb": 2048.0,
    "scale_1m_items_recall10": 0.95,
    "scale_1m_items_query_p50_ms": 5.0,
}


# ---- machine and measurement helpers -----------------------------------------------------------
def default_home() -> Path:
    env = os.environ.get("EMERFLOW_HOME")
    if env:
        return Path(env).expanduser() / "speed-cache"
    return Path.home() / ".cache" / "emerflow-speed"


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_info() -> dict:
    import faiss
    import torch
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        affinity = os.cpu_count()
    mem_gb = None
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem_gb = round(int(m.group(1)) / 2**20, 1) if m else None
    except OSError:
        pass
    return {
        "cpu_model": cpu, "cpu_count": os.cpu_count(), "cpus_usable": affinity,
        "mem_total_gb": mem_gb, "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "faiss": faiss.__version__, "transformers": transformers.__version__,
        "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "loadavg_start": loadavg(),
    }


def stats_ms(samples_s: Sequence[float]) -> dict:
    a = np.asarray(samples_s, dtype=np.float64) * 1000.0
    if len(a) == 0:
        return {"n": 0}
    return {"n": int(len(a)), "p50_ms": round(float(np.median(a)), 3),
            "p95_ms": round(float(np.percentile(a, 95)), 3), "mean_ms": round(float(a.mean()), 3),
            "min_ms": round(float(a.min()), 3), "max_ms": round(float(a.max()), 3)}


def _status_kb(key: str) -> int:
    m = re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024.0


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024.0


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')} load {loadavg()[0]:.2f}] {msg}", file=sys.stderr,
          flush=True)


# ---- workspaces --------------------------------------------------------------------------------
def quick_config(name: str):
    from engine.config import BackboneConfig, MetaConfig, WorkspaceConfig

    return WorkspaceConfig(dataset=name, backbone=BackboneConfig(epochs=1),
                           meta=MetaConfig(epochs=1))


def get_workspace(name: str, home: Path, data_root: Path, encoder, quick: bool):
    """Load the cached workspace of ``name`` (building it once), with the shared encoder.

    The shared encoder starts without the workspace's text cache, so new items' texts are
    really encoded; :func:`preload_cache` loads it for the sections that want it.
    """
    from engine.build import build_dataset_workspace, workspace_dir
    from engine.workspace_store import load_workspace, workspace_exists

    directory = workspace_dir(name, home)
    if not workspace_exists(directory):
        log(f"building workspace {name} into {directory} (once)")
        t0 = time.perf_counter()
        if quick and name == "demo-diseases":
            # smoke-test size: a smaller generated catalog, one epoch of everything
            from engine.data.demo import demo_diseases
            from engine.data.protocol import split_dataset
            from engine.data.registry import get_dataset_entry
            from engine.workspace import build_workspace

            dataset = demo_diseases(n_genes=QUICK_DEMO[0], n_diseases=QUICK_DEMO[1])
            split = split_dataset(dataset, get_dataset_entry(name).protocol)
            build_workspace(dataset, split, quick_config(name), encoder).save(directory)
        else:
            cfg = quick_config(name) if quick else None
            build_dataset_workspace(name, config=cfg, data_root=data_root, encoder=encoder,
                                    home=home)
        log(f"built {name} in {time.perf_counter() - t0:.1f}s")
    return load_workspace(directory, encoder=encoder)


def new_item_features(ws) -> list[tuple[str, dict]]:
    from engine.schema import ITEM_ID

    items = ws.dataset.items
    new = set(map(str, ws.split.new_items))
    rows = items[items[ITEM_ID].astype(str).isin(new)]
    return [(str(r[ITEM_ID]), r) for r in rows.to_dict("records")]


def uncache(ws, text: str) -> None:
    from engine.text.encoder import text_key

    ws.encoder._cache.pop(text_key(text), None)


# ---- sections ----------------------------------------------------------------------------------
def bench_predict(ws, reps: int, warmup: int = 3) -> dict:
    feats = new_item_features(ws)
    n_items = len(feats)
    res: dict = {"n_targets": len(ws.dataset.targets), "n_indexed_items": len(ws.index.ids),
                 "n_new_items": n_items, "neighbours_k": 10, "loadavg_before": loadavg()}
    for i in range(warmup):
        ws.predict(feats[i % n_items][1], n_neighbours=10)
    cold, cached, cold_cpu, cached_cpu = [], [], [], []
    for i in range(reps):
        f = feats[i % n_items][1]
        uncache(ws, ws.serialize(f))  # cold text: the encoder really runs
        c0 = time.process_time()
        dt, pred = timed(ws.predict, f, n_neighbours=10)
        cold_cpu.append(time.process_time() - c0)
        cold.append(dt)
        assert len(pred.targets) == len(ws.dataset.targets) and len(pred.neighbours) > 0
    for i in range(reps):
        f = feats[i % n_items][1]
        ws.encoder.encode([ws.serialize(f)])  # ensure cached
        c0 = time.process_time()
        dt, _ = timed(ws.predict, f, n_neighbours=10)
        cached_cpu.append(time.process_time() - c0)
        cached.append(dt)
    # per-stage breakdown (cold text), the same calls Workspace.predict makes
    stages: dict[str, list[float]] = {k: [] for k in
                                      ("serialize", "encode", "align", "score", "rank",
                                       "neighbours")}
    for i in range(reps):
        f = feats[i % n_items][1]
        dt, text = timed(ws.serialize, f)
        stages["serialize"].append(dt)
        uncache(ws, text)
        dt, vec = timed(ws.encoder.encode, [text])
        stages["encode"].append(dt)
        dt, emb = timed(ws.align, vec)
        emb = emb[0]
        stages["align"].append(dt)
        dt, scores = timed(ws.score, emb, f)
        stages["score"].append(dt)
        dt, _ = timed(ws.rank, scores)
        stages["rank"].append(dt)
        dt, _ = timed(ws.neighbours, emb, 10)
        stages["neighbours"].append(dt)
    res.update({"cold_text": stats_ms(cold), "cached_text": stats_ms(cached),
                "cold_text_cpu": stats_ms(cold_cpu), "cached_text_cpu": stats_ms(cached_cpu),
                "stages_cold": {k: stats_ms(v) for k, v in stages.items()},
                "loadavg_after": loadavg()})
    return res


def refine_cases(ws, k: int) -> list[tuple[dict, list[tuple[str, int]]]]:
    """(features, first K interactions) of new items from their phase-I rows.

    Positives-only data: the K positives (Workspace.refine adds the sampled negatives, as the
    analyst flow does); rated data: the K rated rows.
    """
    from engine.schema import ITEM_ID, LABEL, ORDER, TARGET_ID

    phase = ws.split.phases["I"].sort_values([ITEM_ID, ORDER])
    if ws.dataset.positives_only:
        phase = phase[phase[LABEL] == 1]
    by_item = {str(i): g for i, g in phase.groupby(ITEM_ID)}
    out = []
    for item_id, feat in new_item_features(ws):
        g = by_item.get(item_id)
        if g is None or len(g) < k:
            continue
        pairs = [(str(t), int(y)) for t, y in zip(g[TARGET_ID].head(k), g[LABEL].head(k),
                                                  strict=True)]
        out.append((feat, pairs))
    return out


def bench_refine(ws, reps: int, k: int, warmup: int = 3) -> dict:
    cases = refine_cases(ws, k)
    if not cases:
        return {"error": f"no new item with {k} phase-I interactions"}
    embs = [ws.predict(f, n_neighbours=10).embedding for f, _ in cases[: min(reps, len(cases))]]
    res: dict = {"k": k, "positives_only": bool(ws.dataset.positives_only),
                 "steps": ws.config.refine.steps, "n_cases": len(embs),
                 "loadavg_before": loadavg()}
    for i in range(warmup):
        f, pairs = cases[i % len(embs)]
        ws.refine(embs[i % len(embs)], f, pairs)
    t_ref, t_rank, t_total, t_cpu = [], [], [], []
    for i in range(reps):
        f, pairs = cases[i % len(embs)]
        e = embs[i % len(embs)]
        c0 = time.process_time()
        t0 = time.perf_counter()
        new = ws.refine(e, f, pairs)
        t1 = time.perf_counter()
        pred = ws.predict(f, embedding=new, n_neighbours=10)  # re-rank targets + neighbours
        t2 = time.perf_counter()
        t_cpu.append(time.process_time() - c0)
        assert len(pred.targets) == len(ws.dataset.targets)
        t_ref.append(t1 - t0)
        t_rank.append(t2 - t1)
        t_total.append(t2 - t0)
    res.update({"refine": stats_ms(t_ref), "rerank": stats_ms(t_rank),
                "total": stats_ms(t_total), "total_cpu": stats_ms(t_cpu),
                "loadavg_after": loadavg()})
    return res


def bench_encode(encoder, texts: list[str], repeats: int) -> dict:
    texts = list(dict.fromkeys(t for t in texts if t))
    encoder.encode(texts[: min(64, len(texts))])  # warm-up
    times, cpu = [], []
    la = loadavg()
    for _ in range(repeats):
        encoder._cache.clear()  # cold: every text really goes through the model
        c0 = time.process_time()
        dt, _ = timed(encoder.encode, texts)
        cpu.append(time.process_time() - c0)
        times.append(dt)
    tok = encoder.tokenizer(texts[: min(512, len(texts))], truncation=True,
                            max_length=encoder.config.max_length)["input_ids"]
    med = float(np.median(times))
    return {"n_texts": len(texts), "batch_size": encoder.config.batch_size,
            "mean_chars": round(float(np.mean([len(t) for t in texts])), 1),
            "mean_tokens": round(float(np.mean([len(t) for t in tok])), 1),
            "seconds": [round(t, 3) for t in times],
            "cpu_seconds": [round(t, 3) for t in cpu],  # process CPU: ~2x wall = both CPUs ours
            "items_per_s_median": round(len(texts) / med, 1),
            "items_per_s_best": round(len(texts) / min(times), 1),
            "loadavg_before": la, "loadavg_after": loadavg()}


def bench_train(ws, epochs: int, max_rows: int | None = None) -> dict:
    """One (or ``epochs``) pretraining epoch of a fresh backbone and of aligner meta-training."""
    import torch

    from engine.paper.aligner import Aligner
    from engine.paper.meta import MetaTrainer
    from engine.paper.tasks import ItemRows
    from engine.paper.backbones import build_backbone
    from engine.paper.train import pretrain_backbone
    from engine.schema import ITEM_ID, LABEL, TARGET_ID
    from engine.workspace import _layout, item_texts, make_tables

    cfg = ws.config
    dataset, split = ws.dataset, ws.split
    tables = make_tables(dataset, split, ws.item_fields, ws.target_fields)
    old_ids = [str(i) for i in split.old_items]
    old_rows = tables.item_pos.loc[old_ids].to_numpy()
    old_table = tables.item_table[torch.from_numpy(old_rows.copy())]
    train = split.train
    t_rows = tables.target_pos.loc[train[TARGET_ID].astype(str)].to_numpy()
    o_rows = tables.old_pos.loc[train[ITEM_ID].astype(str)].to_numpy()
    labels = train[LABEL].to_numpy(dtype=np.float32)
    meta_rows = ItemRows.from_arrays(o_rows, t_rows, labels, len(old_ids))
    if max_rows is not None and len(train) > max_rows:  # --quick: pretrain on a slice
        train = train.iloc[:max_rows]
        t_rows, o_rows, labels = t_rows[:max_rows], o_rows[:max_rows], labels[:max_rows]
    res: dict = {"train_rows": int(len(train)), "old_items": len(old_ids),
                 "batch_size": cfg.backbone.batch_size, "loadavg_before": loadavg()}

    torch.manual_seed(cfg.seed)
    bb = build_backbone(cfg.backbone, _layout(ws.target_fields), _layout(ws.item_fields),
                        len(old_ids))
    bcfg = dataclasses.replace(cfg.backbone, epochs=epochs)
    ep_times: list[float] = []
    last = [time.perf_counter()]

    def tick(e: int, n: int, loss: float) -> None:
        now = time.perf_counter()
        ep_times.append(now - last[0])
        last[0] = now

    pretrain_backbone(bb, tables.target_table, old_table, t_rows, o_rows, labels, bcfg, cfg.seed,
                      tick)
    per = float(np.median(ep_times))
    res["backbone"] = {"epochs_timed": epochs, "epoch_s": [round(t, 2) for t in ep_times],
                       "epoch_s_median": round(per, 2), "rows_per_s": round(len(train) / per, 1)}

    texts = item_texts(dataset)
    vecs = ws.encoder.encode(texts)  # cached by preload_cache, else encoded here (not timed)
    aligner = Aligner(ws.encoder.dim, cfg.backbone.embed_dim, cfg.aligner)
    rows = meta_rows
    mcfg = dataclasses.replace(cfg.meta, epochs=epochs)
    trainer = MetaTrainer(ws.backbone, aligner, mcfg, tables.target_table, old_table,
                          torch.from_numpy(vecs[old_rows]), rows)
    ep_times.clear()
    last[0] = time.perf_counter()
    trainer.fit(cfg.seed, tick)
    ws.backbone.eval()
    per = float(np.median(ep_times))
    tasks = len(old_ids)
    scored = tasks * 2 * cfg.meta.shot  # rows scored per epoch (batch a + batch b per task)
    res["meta"] = {"epochs_timed": epochs, "epoch_s": [round(t, 3) for t in ep_times],
                   "epoch_s_median": round(per, 3), "tasks_per_s": round(tasks / per, 1),
                   "rows_per_s": round(scored / per, 1), "shot": cfg.meta.shot,
                   "tasks_per_batch": cfg.meta.tasks_per_batch,
                   "product_epochs": cfg.meta.epochs}
    res["build_timings_s"] = ws.meta.get("timings_s", {})
    res["loadavg_after"] = loadavg()
    return res


def synthetic_target_workspace(ws, n: int, rng: np.random.Generator, chunk: int = 100_000):
    """A shallow copy of ``ws`` whose candidate targets are ``n`` rows sampled from its real ones.

    The target table and :class:`TargetCache` are built chunk-wise (not timed, not counted as
    the predict call's extra memory; their size is reported separately).
    """
    import pandas as pd
    import torch

    from engine.paper.deepfm import TargetCache
    from engine.schema import NAME, TARGET_ID

    src = rng.integers(0, len(ws.dataset.targets), size=n)
    table = ws.target_table[torch.from_numpy(src)]
    parts = [ws.backbone.precompute_targets(table[s : s + chunk]) for s in range(0, n, chunk)]
    cache = TargetCache(**{f.name: torch.cat([getattr(p, f.name) for p in parts])
                           for f in dataclasses.fields(TargetCache)})
    ids = np.array([f"syn{i}" for i in range(n)], dtype=object)
    targets = ws.dataset.targets.iloc[src].reset_index(drop=True)
    targets[TARGET_ID] = ids
    targets[NAME] = ids
    syn = copy.copy(ws)
    syn.dataset = dataclasses.replace(ws.dataset, targets=targets)
    syn.target_table = table
    syn.target_pos = pd.Series(np.arange(n), index=ids)
    syn.target_cache = cache
    static = sum(getattr(cache, f.name).nbytes for f in dataclasses.fields(TargetCache))
    if ws.shared is not None:  # the shared-space ranker over the same sampled targets
        from engine.emerflow.shared_space import EaseIndex, SharedRanker
        from engine.models.twotower import TwoTower

        sh = ws.shared
        model = TwoTower(sh.model.item_id.num_embeddings, n, sh.model.config)
        rows = torch.from_numpy(src)
        with torch.no_grad():
            model.item_id.weight.copy_(sh.model.item_id.weight)
            model.target.weight.copy_(sh.model.target.weight[rows])
            model.bias.copy_(sh.model.bias[rows])
        for p in model.parameters():
            p.requires_grad_(False)
        syn.shared = SharedRanker(model, sh.aligner, EaseIndex(sh.ease.x[:, src], sh.ease.lam),
                                  sh.config)
        static += model.target.weight.nbytes + model.bias.nbytes
    return syn, {"target_cache_mb": round(static / 2**20, 1),
                 "target_table_mb": round(table.nbytes / 2**20, 1)}


def bench_scale_targets(ws, sizes: Sequence[int], reps: int) -> list[dict]:
    feats = new_item_features(ws)
    out = []
    rng = np.random.default_rng(0)
    for n in sizes:
        log(f"scale: {n} synthetic targets")
        syn, sizes_mb = synthetic_target_workspace(ws, n, rng)
        f0 = feats[0][1]
        emb = syn.embed_text(syn.serialize(f0))
        syn.predict(f0, n_neighbours=10)  # warm-up
        gc.collect()
        base = rss_mb()
        can_peak = reset_peak()
        times, t_score, t_rank = [], [], []
        r = max(3, reps if n < 1_000_000 else max(3, reps // 3))
        la = loadavg()
        for i in range(r):
            f = feats[i % len(feats)][1]
            dt, _ = timed(syn.predict, f, n_neighbours=10)  # text cached: warm
            times.append(dt)
            dt, scores = timed(syn.score, emb, f)
            t_score.append(dt)
            dt, _ = timed(syn.rank, scores)
            t_rank.append(dt)
        peak = peak_mb() if can_peak else float("nan")
        out.append({"n_targets": n, **sizes_mb, "predict": stats_ms(times),
                    "score": stats_ms(t_score), "rank": stats_ms(t_rank),
                    "rss_before_mb": round(base, 1),
                    "extra_peak_mb": round(peak - base, 1) if can_peak else None,
                    "loadavg_before": la, "loadavg_after": loadavg()})
        del syn, scores
        gc.collect()
    return out


def bench_scale_index(sizes: Sequence[int], n_queries: int, dim: int = 16,
                      hnsw_m: int = 32, ef_default: int = 64) -> list[dict]:
    import faiss  # noqa: F401  (version is in the machine block)

    from engine.index import ItemIndex

    out = []
    rng = np.random.default_rng(1)
    for n in sizes:
        log(f"scale: {n} indexed items (dim {dim})")
        vecs = rng.standard_normal((n, dim)).astype(np.float32)
        ids = [str(i) for i in range(n)]
        queries = rng.standard_normal((n_queries, dim)).astype(np.float32)
        row: dict = {"n_items": n, "dim": dim, "n_queries": n_queries, "loadavg_before": loadavg()}
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
        hnsw.index.hnsw.efSearch = ef_default
        row["hnsw"]["default_ef_search"] = ef_default
        row["loadavg_after"] = loadavg()
        out.append(row)
        del flat, hnsw, vecs
        gc.collect()
    return out


# ---- report ------------------------------------------------------------------------------------
def summary_rows(doc: dict) -> list[tuple[str, str, str]]:
    """(figure, value, load average) rows for the printed table."""
    rows: list[tuple[str, str, str]] = []
    r = doc["results"]

    def la(d: dict) -> str:
        b, a = d.get("loadavg_before"), d.get("loadavg_after")
        return f"{b[0]:.2f}->{a[0]:.2f}" if b and a else ""

    for name, d in r.get("predict", {}).items():
        for kind in ("cold", "cached"):
            w, c = d[f"{kind}_text"], d.get(f"{kind}_text_cpu", {})
            rows.append((f"predict {name} ({d['n_targets']} targets) {kind} text",
                         f"p50 {w['p50_ms']:.1f} ms  p95 {w['p95_ms']:.1f} ms  "
                         f"(process CPU p50 {c.get('p50_ms', float('nan')):.1f} ms)", la(d)))
        st = "  ".join(f"{k} {v['p50_ms']:.1f}" for k, v in d["stages_cold"].items())
        rows.append((f"  stages p50 ms {name}", st, ""))
    for name, d in r.get("refine", {}).items():
        if "error" in d:
            rows.append((f"refine {name}", d["error"], ""))
            continue
        rows.append((f"refine+rerank {name} (K={d['k']})",
                     f"p50 {d['total']['p50_ms']:.1f} ms  p95 {d['total']['p95_ms']:.1f} ms "
                     f"(refine {d['refine']['p50_ms']:.1f} + rerank {d['rerank']['p50_ms']:.1f}; "
                     f"CPU p50 {d.get('total_cpu', {}).get('p50_ms', float('nan')):.1f})",
                     la(d)))
    if "encode" in r:
        d = r["encode"]
        rows.append((f"encode {d['n_texts']} texts (~{d['mean_tokens']:.0f} tokens, bs "
                     f"{d['batch_size']})", f"{d['items_per_s_median']:.1f} items/s (CPUs used "
                     f"{np.median(d.get('cpu_seconds', [np.nan])) / np.median(d['seconds']):.2f})",
                     la(d)))
    for name, d in r.get("train", {}).items():
        b, m = d["backbone"], d["meta"]
        rows.append((f"pretrain epoch {name} ({d['train_rows']} rows)",
                     f"{b['epoch_s_median']:.1f} s  {b['rows_per_s']:.0f} rows/s", la(d)))
        rows.append((f"meta-train epoch {name} ({d['old_items']} tasks)",
                     f"{m['epoch_s_median']:.2f} s  {m['tasks_per_s']:.0f} tasks/s "
                     f"{m['rows_per_s']:.0f} rows/s", ""))
    sc = r.get("scale", {})
    for d in sc.get("targets", []):
        ex = d["extra_peak_mb"]
        rows.append((f"scale {d['n_targets']:>9,} targets predict",
                     f"p50 {d['predict']['p50_ms']:.1f} ms p95 {d['predict']['p95_ms']:.1f} ms "
                     f"(score {d['score']['p50_ms']:.1f} rank {d['rank']['p50_ms']:.1f}) extra "
                     f"{ex} MB cache {d['target_cache_mb']} MB", la(d)))
    for d in sc.get("index", []):
        rows.append((f"scale {d['n_items']:>9,} items flat",
                     f"p50 {d['flat']['query']['p50_ms']:.3f} ms  build {d['flat']['build_s']} s",
                     la(d)))
        sw = "  ".join(f"ef{s['ef_search']}: R@10 {s['recall_at_10']:.3f} "
                       f"{s['query']['p50_ms']:.3f} ms" for s in d["hnsw"]["sweep"])
        rows.append((f"scale {d['n_items']:>9,} items hnsw (build {d['hnsw']['build_s']} s)",
                     sw, ""))
    return rows


def print_table(doc: dict) -> None:
    m = doc["machine"]
    print(f"\nEmerFlow speed @ {doc['commit']}{' (dirty)' if doc['dirty'] else ''} "
          f"{doc['created_at']}  mode={'quick' if doc['args']['quick'] else 'full'}")
    print(f"machine: {m['cpu_model']}, {m['cpus_usable']} usable CPUs, {m['mem_total_gb']} GB; "
          f"torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss']} "
          f"({m['faiss_omp_threads']} omp threads); load avg start {m['loadavg_start']} "
          f"end {doc.get('loadavg_end')}")
    rows = summary_rows(doc)
    w0 = max((len(a) for a, _, _ in rows), default=10)
    print(f"{'figure':<{w0}}  {'load 1m':<12}  value")
    for a, b, c in rows:
        print(f"{a:<{w0}}  {c:<12}  {b}")
    for c in doc.get("checks", []):
        print(f"CHECK {'ok  ' if c['ok'] else 'MISS'} {c['name']}: {c['value']} "
              f"(target {c['op']} {c['target']})")


def evaluate(doc: dict) -> list[dict]:
    """Compare a result document with :data:`TARGETS`; figures not measured are skipped."""
    r = doc["results"]
    checks = []

    def add(name: str, value: float | None, op: str) -> None:
        if value is None:
            return
        target = TARGETS[name]
        ok = value < target if op == "<" else value >= target
        checks.append({"name": name, "value": value, "target": target, "op": op, "ok": ok})

    d = r.get("predict", {}).get("disgenet-curated")
    if d:
        add("predict_disgenet_p50_ms", d["cold_text"]["p50_ms"], "<")
        add("predict_disgenet_p95_ms", d["cold_text"]["p95_ms"], "<")
    for name, d in r.get("refine", {}).items():
        if "total" in d:
            c = {"name": "refine_p50_ms", "value": d["total"]["p50_ms"]}
            add(c["name"], c["value"], "<")
            checks[-1]["name"] = f"refine_p50_ms[{name}]"
    if "encode" in r:
        add("encode_items_per_s", r["encode"]["items_per_s_median"], ">=")
    for d in r.get("scale", {}).get("targets", []):
        if d["n_targets"] >= 1_000_000:
            add("scale_1m_targets_predict_p50_ms", d["predict"]["p50_ms"], "<")
            add("scale_1m_targets_extra_mb", d["extra_peak_mb"], "<")
    for d in r.get("scale", {}).get("index", []):
        if d["n_items"] >= 1_000_000:
            best = select_ef(d)
            add("scale_1m_items_recall10", best["recall_at_10"], ">=")
            add("scale_1m_items_query_p50_ms", best["query"]["p50_ms"], "<")
            checks[-1]["ef_search"] = checks[-2]["ef_search"] = best["ef_search"]
    return checks


def select_ef(index_row: dict) -> dict:
    """The fastest efSearch meeting the recall target, else the one with the best recall."""
    sweep = index_row["hnsw"]["sweep"]
    good = [s for s in sweep if s["recall_at_10"] >= TARGETS["scale_1m_items_recall10"]]
    if good:
        return min(good, key=lambda s: s["query"]["p50_ms"])
    return max(sweep, key=lambda s: s["recall_at_10"])


# ---- main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: demo datasets, few repetitions, small scale sizes")
    p.add_argument("--check", action="store_true",
                   help="after measuring, exit 1 when a target of issue 7 is missed")
    p.add_argument("--check-file", type=Path,
                   help="only check an existing result JSON against the targets")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--datasets", help="comma-separated dataset names (default: real datasets, "
                   "or the demo ones with --quick)")
    p.add_argument("--home", type=Path, default=None, help="workspace cache home")
    p.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    p.add_argument("--reps", type=int, default=None, help="repetitions per latency figure")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads before measuring (default: leave torch's own)")
    p.add_argument("--target-sizes", default=None, help="e.g. 10000,100000,1000000")
    p.add_argument("--index-sizes", default=None, help="e.g. 10000,100000,1000000")
    p.add_argument("--train-epochs", type=int, default=1)
    p.add_argument("--tag", default="", help="suffix of the per-commit JSON file name")
    return p.parse_args(argv)


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    datasets = (args.datasets.split(",") if args.datasets
                else list(QUICK_DATASETS if quick else REAL_DATASETS))
    home = args.home or default_home()
    if quick and args.home is None:
        home = default_home() / "quick"
    reps = args.reps or (3 if quick else 100)
    target_sizes = _ints(args.target_sizes) if args.target_sizes else (
        [1000] if quick else [10_000, 100_000, 1_000_000])
    index_sizes = _ints(args.index_sizes) if args.index_sizes else (
        [1000] if quick else [10_000, 100_000, 1_000_000])

    from engine.data.registry import get_dataset_entry
    from engine.text.encoder import TextEncoder

    doc: dict = {
        "schema": 1, "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", "engine")),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": {"quick": quick, "sections": sections, "datasets": datasets, "reps": reps,
                 "threads": args.threads, "target_sizes": target_sizes,
                 "index_sizes": index_sizes, "train_epochs": args.train_epochs,
                 "home": str(home)},
        "targets": TARGETS, "results": {},
    }
    t_start = time.perf_counter()
    encoder = TextEncoder()
    workspaces = {}
    need_ws = any(s in sections for s in ("predict", "refine", "train", "scale", "encode"))
    if need_ws:
        for name in datasets:
            workspaces[name] = get_workspace(name, home, args.data_root, encoder, quick)
    res = doc["results"]
    if "predict" in sections:
        res["predict"] = {}
        for name, ws in workspaces.items():
            log(f"predict {name}")
            res["predict"][name] = bench_predict(ws, reps)
    if "refine" in sections:
        res["refine"] = {}
        for name, ws in workspaces.items():
            log(f"refine {name}")
            k = get_dataset_entry(name).protocol.k
            res["refine"][name] = bench_refine(ws, max(3, reps // 2), k)
    if "encode" in sections:
        log("encode throughput")
        texts: list[str] = []
        for ws in workspaces.values():
            texts += [ws.serialize(r) for r in ws.dataset.items.to_dict("records")]
        rng = np.random.default_rng(0)
        texts = list(dict.fromkeys(texts))
        pick = rng.permutation(len(texts))[: (16 if quick else 512)]
        res["encode"] = bench_encode(encoder, [texts[i] for i in pick], 1 if quick else 5)
    if "train" in sections:
        res["train"] = {}
        for name, ws in workspaces.items():
            cache = Path(home) / "workspaces" / name / "text_cache.npz"
            if cache.exists():
                encoder._load_cache(cache)
            log(f"train {name}")
            res["train"][name] = bench_train(ws, args.train_epochs, 2048 if quick else None)
    if "scale" in sections:
        base = next((workspaces[n] for n in ("disgenet-curated", "demo-diseases")
                     if n in workspaces), next(iter(workspaces.values()), None))
        res["scale"] = {}
        if base is not None:
            res["scale"]["base_workspace"] = base.name
            res["scale"]["targets"] = bench_scale_targets(base, target_sizes,
                                                          max(5, reps // 5))
        res["scale"]["index"] = bench_scale_index(index_sizes, 20 if quick else 500)
    doc["loadavg_end"] = loadavg()
    doc["wall_s"] = round(time.perf_counter() - t_start, 1)
    doc["checks"] = evaluate(doc)
    return doc


def write(doc: dict, out: Path, tag: str = "") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    name = doc["commit"] + (f"-{tag}" if tag else "") + ("-quick" if doc["args"]["quick"] else "")
    paths = [out / ("latest-quick.json" if doc["args"]["quick"] else "latest.json"),
             out / f"{name}.json"]
    text = json.dumps(doc, indent=1, default=float)
    for p in paths:
        p.write_text(text + "\n")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.check_file:
        doc = json.loads(args.check_file.read_text())
        doc["checks"] = evaluate(doc)
        print_table(doc)
        missed = [c["name"] for c in doc["checks"] if not c["ok"]]
        return 1 if missed else 0
    doc = run(args)
    paths = write(doc, args.out, args.tag)
    print_table(doc)
    print("wrote " + ", ".join(str(p) for p in paths))
    if args.check:
        missed = [c["name"] for c in doc["checks"] if not c["ok"]]
        if missed:
            print(f"missed targets: {missed}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
