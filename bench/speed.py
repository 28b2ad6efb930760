"""Speed of the product path (issue 17, item 5): builds, predict with evidence, one Feedback
submit end to end, a million candidate targets, the text encoder, the nearest-item index.

Run from the repository root::

    .venv/bin/python -m bench.speed            # full run on the real datasets, prints a table
    .venv/bin/python -m bench.speed --check    # same, then exits 1 when a target is missed
    .venv/bin/python -m bench.speed --check-file results/speed/latest.json   # check only
    .venv/bin/python -m bench.speed --quick --out /tmp/x   # tiny demo-sized smoke run

Sections (``--sections``):

- ``build``: :func:`engine.build.build_dataset_workspace` from scratch (text cache empty) for
  every registered product ranker (``engine.ranking.registry.RANKERS``: ``twotower``, and
  ``ltr`` once registered); per stage from ``ws.meta["timings_s"]`` plus load + split and save.
- ``predict``: a new item -> the ranked table with evidence the Predictions page shows:
  :meth:`Workspace.predict`, :func:`engine.evidence.ranked_table` (top 25) and
  :func:`engine.evidence.with_evidence`; cold text (MiniLM really runs) and cached text, with a
  per-stage breakdown.
- ``feedback``: one Feedback submit on a real SQLite database through the app's flow functions:
  four decisions -> :func:`app.flows.confirm_and_refine` -> the page's rerun
  (:func:`app.flows.predict_item`, :func:`app.predictions.ranked_targets`) -> the history
  (:func:`app.history.rank_history`, :func:`app.history.drift`,
  :func:`app.history.decision_log`); the catalog scorings per submit are counted.
- ``scale``: 10k/100k/1M candidate targets: a synthetic :class:`SharedRanker` over targets
  sampled from the real genes; warm predict p50 and the extra peak memory.
- ``encode``: text encoder items/s (float and dynamic int8).
- ``index``: :class:`engine.index.ItemIndex` exact (flat) vs HNSW with an efSearch sweep.

The data root and the home come from :func:`engine.settings.get_settings` (``EMERFLOW_DATA``,
``EMERFLOW_HOME``; ``--data-root``/``--home`` override). Results go to ``<out>/latest.json`` and
``<out>/<git short sha>.json``; timings are never asserted by the test suite, only by
``--check``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import engine  # noqa: F401  (first: sets the OpenMP defaults before torch loads)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "speed"
REAL_DATASETS = ("disgenet-curated", "movielens-1m-partial")
QUICK_DATASETS = ("demo-diseases",)
QUICK_DEMO = (400, 150)  #: (genes, diseases) of the --quick demo catalog
SECTIONS = ("build", "predict", "feedback", "scale", "encode", "index")
EF_SWEEP = (16, 32, 64, 128, 256)
TOP_N = 25  #: rows of the ranked table (the Predictions and Feedback pages' default)
N_DECISIONS = 4  #: decisions per Feedback submit

#: The targets of issue 17 (2 CPU cores, warm). ``--check`` compares against these.
TARGETS = {
    "build_twotower_s": 30.0,
    "build_ltr_s": 60.0,
    "predict_p50_ms": 40.0,
    "feedback_submit_p50_ms": 150.0,
    "scale_1m_targets_predict_p50_ms": 400.0,
    "encode_items_per_s": 150.0,
}


# ---- machine and measurement helpers -----------------------------------------------------------
def settings_paths(home: Path | None, data_root: Path | None) -> tuple[Path, Path | None]:
    """(bench home, data root): the arguments, else ``EMERFLOW_HOME/speed-cache`` and
    ``EMERFLOW_DATA`` through the settings object."""
    from engine.settings import get_settings

    s = get_settings()
    return (home or Path(s.home) / "speed-cache"), (data_root or s.data)


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
    import pandas as pd

    return {
        "cpu_model": cpu, "cpu_count": os.cpu_count(), "cpus_usable": affinity,
        "mem_total_gb": mem_gb, "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "faiss": faiss.__version__, "transformers": transformers.__version__,
        "numpy": np.__version__, "pandas": pd.__version__,
        "torch_threads": torch.get_num_threads(),
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


def _la(res: dict, before: list[float]) -> dict:
    res["loadavg_before"] = before
    res["loadavg_after"] = loadavg()
    return res


# ---- workspaces --------------------------------------------------------------------------------
def ranker_kinds() -> list[str]:
    """The product rankers registered now (``twotower``; ``ltr`` once engine/ltr registers)."""
    from engine.ranking.registry import RANKERS

    return list(RANKERS)


def product_ranker(name: str, kinds: Sequence[str]) -> str:
    """The ranker the dashboard builds for ``name`` (``engine.tuned``), when measured here."""
    from engine.tuned import emerflow_workspace_config

    kind = emerflow_workspace_config(name).ranker
    return kind if kind in kinds else kinds[0]


def workspace_config(name: str, kind: str, quick: bool):
    """The dashboard's settings of ``name`` with ranker ``kind`` (``--quick``: few epochs)."""
    from engine.tuned import emerflow_workspace_config

    cfg = emerflow_workspace_config(name)
    cfg = dataclasses.replace(cfg, ranker=kind)
    if quick:
        if kind == "ltr":  # smoke size: few trees (only the fields the ranker has)
            from engine.ltr import LtrConfig

            names = {f.name for f in dataclasses.fields(LtrConfig)}
            small = {k: v for k, v in (("n_estimators", 10), ("folds", 2)) if k in names}
            cfg = dataclasses.replace(cfg, ltr={**(cfg.ltr or {}), **small})
        sh = cfg.shared
        tt = dataclasses.replace(sh.twotower, epochs=min(sh.twotower.epochs, 3))
        meta = dataclasses.replace(sh.meta, epochs=min(sh.meta.epochs, 3))
        cfg = dataclasses.replace(cfg, shared=dataclasses.replace(sh, twotower=tt, meta=meta))
    return cfg


def build_one(name: str, kind: str, home: Path, data_root: Path | None, encoder,
              quick: bool):
    """Build (and save) the workspace of ``name`` with ranker ``kind`` from scratch: the
    encoder's text cache is emptied first, so every established item's text is encoded."""
    from engine.build import build_dataset_workspace, workspace_dir
    from engine.workspace_build import build_workspace
    from engine.workspace_store import save_workspace

    encoder._cache.clear()
    cfg = workspace_config(name, kind, quick)
    whome = home / kind
    marks: dict[str, tuple[float, float]] = {}  # stage -> (first, last) progress call

    def progress(stage: str, frac: float, message: str) -> None:
        now = time.perf_counter()
        marks[stage] = (marks.get(stage, (now, now))[0], now)

    t0 = time.perf_counter()
    if quick and name == "demo-diseases":
        # smoke-test size: a smaller generated catalog
        from engine.data.demo import demo_diseases
        from engine.data.protocol import split_dataset
        from engine.data.registry import get_dataset_entry

        dataset = demo_diseases(n_genes=QUICK_DEMO[0], n_diseases=QUICK_DEMO[1])
        split = split_dataset(dataset, get_dataset_entry(name).protocol)
        t_load = time.perf_counter() - t0
        ws = build_workspace(dataset, split, cfg, encoder, progress)
        t1 = time.perf_counter()
        directory = workspace_dir(name, whome)
        directory.mkdir(parents=True, exist_ok=True)
        save_workspace(ws, directory)
        t_save = time.perf_counter() - t1
    else:
        ws = build_dataset_workspace(name, config=cfg, data_root=data_root, encoder=encoder,
                                     home=whome, progress=progress)
        t_load = marks.get("encode", (t0, t0))[0] - t0
        t_save = None
    total = time.perf_counter() - t0
    stages = dict(ws.meta.get("timings_s", {}))
    if t_save is None:
        t_save = max(0.0, total - t_load - sum(stages.values()))
    # inside the ranker stage: from the previous stage's last progress call to its own last
    ranker_parts: dict[str, float] = {}
    prev = None
    for k, (_, last) in sorted(marks.items(), key=lambda kv: kv[1][0]):
        if prev is not None and k not in ("load", "encode", "index"):
            ranker_parts[k] = round(last - prev, 3)
        prev = last
    if ranker_parts and "ranker" in stages:
        ranker_parts["rest"] = round(stages["ranker"] - sum(ranker_parts.values()), 3)
    return ws, {"total_s": round(total, 3), "stages_s": stages, "ranker_parts_s": ranker_parts,
                "model_s": round(sum(stages.values()), 3),
                "load_split_s": round(t_load, 3), "save_s": round(t_save, 3),
                "n_items": len(ws.dataset.items), "n_targets": len(ws.dataset.targets),
                "n_old_items": len(ws.index.ids), "ranker": ws.ranker_kind}


def get_workspace(name: str, kind: str, home: Path, data_root: Path | None, encoder,
                  quick: bool):
    """The saved workspace of (``name``, ``kind``) under ``home``, built once when missing."""
    from engine.build import workspace_dir
    from engine.workspace_store import load_workspace, workspace_exists

    directory = workspace_dir(name, home / kind)
    if workspace_exists(directory):
        return load_workspace(directory, encoder=encoder)
    log(f"building workspace {name} ({kind}) into {directory} (once)")
    return build_one(name, kind, home, data_root, encoder, quick)[0]


def new_item_features(ws) -> list[tuple[str, dict]]:
    """(item id, the dataset's raw feature row) of the split's new items."""
    from engine.schema import ITEM_ID

    items = ws.dataset.items
    new = set(map(str, ws.split.new_items))
    rows = items[items[ITEM_ID].astype(str).isin(new)]
    return [(str(r[ITEM_ID]), r) for r in rows.to_dict("records")]


def uncache(ws, text: str) -> None:
    ws.encoder._cache.pop(ws.encoder.key(text), None)


def raw_features(ws, row: dict) -> dict[str, str]:
    """The New item form's values of a dataset row: the item features with a value, as text."""
    out = {}
    for spec in ws.dataset.item_features:
        v = row.get(spec.name)
        if isinstance(v, (list, tuple, np.ndarray)):
            v = "|".join(str(x) for x in v)
        if v is None or (isinstance(v, float) and v != v) or not str(v).strip():
            continue
        out[spec.name] = str(v)
    return out


# ---- build -------------------------------------------------------------------------------------
def bench_build(datasets: Sequence[str], kinds: Sequence[str], home: Path,
                data_root: Path | None, encoder, quick: bool) -> dict:
    out: dict = {}
    for name in datasets:
        out[name] = {}
        for kind in kinds:
            log(f"build {name} ({kind}) from scratch")
            la = loadavg()
            gc.collect()
            _, res = build_one(name, kind, home, data_root, encoder, quick)
            out[name][kind] = _la(res, la)
            log(f"built {name} ({kind}) in {res['total_s']:.1f}s: {res['stages_s']}")
    return out


# ---- predict -----------------------------------------------------------------------------------
class EvidenceContext:
    """What the Predictions page builds once per workspace (engine.batch's context): the gene
    resolver, the association index, the HPO annotations, the rated users (movies)."""

    def __init__(self, ws, data_root: Path | None):
        from engine.batch import BatchContext
        from engine.knowledge import Knowledge, sources_from_env

        self.ctx = BatchContext(ws, Knowledge.load(sources_from_env(data_root)))

    def table(self, ws, pred, decisions: dict[str, int]):
        from engine import evidence as ev

        c = self.ctx
        t = ev.ranked_table(ws, pred, decisions, top_n=TOP_N, genes=c.genes, active=c.active)
        t0 = time.perf_counter()
        t = ev.with_evidence(ws, pred, decisions, t, index=c.index, hpo_annotations=c.hpo,
                             genes=c.genes)
        return t, time.perf_counter() - t0


def bench_predict(ws, reps: int, data_root: Path | None, warmup: int = 3) -> dict:
    feats = new_item_features(ws)
    n_items = len(feats)
    la = loadavg()
    t0 = time.perf_counter()
    evc = EvidenceContext(ws, data_root)
    res: dict = {"n_targets": len(ws.dataset.targets), "n_indexed_items": len(ws.index.ids),
                 "n_new_items": n_items, "top_n": TOP_N, "ranker": ws.ranker_kind,
                 "context_build_s": round(time.perf_counter() - t0, 3)}
    for i in range(warmup):
        evc.table(ws, ws.predict(feats[i % n_items][1]), {})
    cold, cached, cold_cpu = [], [], []
    stage_names = ("serialize", "encode", "align", "score", "rank", "neighbours", "table",
                   "evidence")
    stages: dict[str, list[float]] = {k: [] for k in stage_names}
    for i in range(reps):
        f = feats[i % n_items][1]
        uncache(ws, ws.serialize(f))  # cold text: the encoder really runs
        c0 = time.process_time()
        t0 = time.perf_counter()
        pred = ws.predict(f)
        table, _ = evc.table(ws, pred, {})
        cold.append(time.perf_counter() - t0)
        cold_cpu.append(time.process_time() - c0)
        assert len(pred.targets) == len(ws.dataset.targets) and len(table) > 0
    for i in range(reps):
        f = feats[i % n_items][1]
        t0 = time.perf_counter()
        pred = ws.predict(f)
        evc.table(ws, pred, {})
        cached.append(time.perf_counter() - t0)
    for i in range(reps):  # the calls Workspace.predict makes, one by one (cold text)
        from engine.ranking.base import Decisions

        f = feats[i % n_items][1]
        dt, text = timed(ws.serialize, f)
        stages["serialize"].append(dt)
        uncache(ws, text)
        dt, vec = timed(ws.encoder.encode, [text])
        stages["encode"].append(dt)
        dt, emb = timed(ws.ranker.align, vec)
        stages["align"].append(dt)
        dt, scored = timed(ws.ranker.score, vec[0], emb[0], Decisions())
        stages["score"].append(dt)
        dt, _ = timed(ws.rank, np.asarray(scored.scores, np.float64), scored.lift)
        stages["rank"].append(dt)
        dt, _ = timed(ws.neighbours, emb[0], 5)
        stages["neighbours"].append(dt)
        pred = ws.predict(f)
        t0 = time.perf_counter()
        _, dt_ev = evc.table(ws, pred, {})
        stages["table"].append(time.perf_counter() - t0 - dt_ev)
        stages["evidence"].append(dt_ev)
    res.update({"cold_text": stats_ms(cold), "cached_text": stats_ms(cached),
                "cold_text_cpu": stats_ms(cold_cpu),
                "stages_cold": {k: stats_ms(v) for k, v in stages.items()}})
    return _la(res, la)


# ---- feedback ----------------------------------------------------------------------------------
class ScoreCounter:
    """Counts the ranker's catalog scorings (``ranker.score`` calls) while active."""

    def __init__(self, ws):
        self.ws, self.n = ws, 0

    def __enter__(self) -> ScoreCounter:
        inner = self.ws.ranker.score

        def counted(*a, **k):
            self.n += 1
            return inner(*a, **k)

        self.ws.ranker.score = counted
        return self

    def __exit__(self, *exc: object) -> None:
        del self.ws.ranker.score  # back to the class's method


def decisions_for(ws, item_id: str, ranking, decided: dict[str, int],
                  n: int = N_DECISIONS) -> list[tuple[str, int]]:
    """The analyst's ``n`` new decisions in the top of the shown ranking: the item's real
    positives there are confirmed (at most half), the highest-ranked others rejected."""
    from engine.schema import ITEM_ID, LABEL, TARGET_ID

    truth: set[str] = set()
    for ph in ws.split.phases.values():  # the item's held-out positives, every phase
        truth |= set(ph.loc[(ph[ITEM_ID].astype(str) == item_id) & (ph[LABEL] == 1),
                            TARGET_ID].astype(str))
    truth -= set(decided)
    shown = [str(t) for t in ranking[TARGET_ID].head(200) if str(t) not in decided]
    yes = [t for t in shown if t in truth][: n // 2]
    if not yes:  # none of its targets in the top: confirm one of them found by search
        yes = sorted(truth)[:1]
    no = [t for t in shown if t not in truth and t not in yes][: n - len(yes)]
    return [(t, 1) for t in yes] + [(t, 0) for t in no]


def bench_feedback(ws, reps: int, db_dir: Path, warmup: int = 2) -> dict:
    """One Feedback submit per sample, end to end on a SQLite database: 4 decisions ->
    ``confirm_and_refine`` -> the page's rerun (``predict_item``, the ranked table) -> the
    history (``rank_history``, ``drift``, ``decision_log``). Each sample is a fresh item
    created and shown at phase 0 outside the timing, then refined phase 0 -> I; a second
    submit on the same item (I -> II) is timed as well."""
    from app import flows, history
    from app import predictions as preds
    from engine.schema import NAME

    url = f"sqlite:///{db_dir / 'speed.db'}"
    opened = flows.open_database(url)
    db = opened.engine
    flows.ensure_workspace(db, ws)
    feats = [(i, f) for i, f in new_item_features(ws)]
    la = loadavg()
    parts = ("confirm_and_refine", "reload", "table", "history")
    samples: dict[int, dict[str, list[float]]] = {p: {k: [] for k in (*parts, "total")}
                                                  for p in (1, 2)}
    counts: dict[int, list[int]] = {1: [], 2: []}
    n = reps + warmup
    for i in range(n):
        item_id, f = feats[i % len(feats)]
        item = flows.new_item(db, ws, name=f"{f.get(NAME, item_id)} #{i}",
                              features=raw_features(ws, f),
                              allow_duplicate=True)
        state = flows.predict_item(db, ws, item.id)  # the page shown at phase 0
        for phase in (1, 2):
            dec = decisions_for(ws, item_id, state.prediction.targets, state.decisions)
            with ScoreCounter(ws) as sc:
                t0 = time.perf_counter()
                flows.confirm_and_refine(db, ws, item.id, dec, expected_phase=state.phase)
                t1 = time.perf_counter()
                state = flows.predict_item(db, ws, item.id)  # st.rerun: the page again
                t2 = time.perf_counter()
                preds.ranked_targets(ws, state, top_n=TOP_N)
                t3 = time.perf_counter()
                history.rank_history(db, ws, item.id)
                history.drift(db, item.id)
                history.decision_log(db, item.id)
                t4 = time.perf_counter()
            assert state.phase == phase
            if i < warmup:
                continue
            s = samples[phase]
            for k, v in zip((*parts, "total"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0),
                            strict=True):
                s[k].append(v)
            counts[phase].append(sc.n)
    db.dispose()
    res: dict = {"n_targets": len(ws.dataset.targets), "decisions": N_DECISIONS,
                 "top_n": TOP_N, "database": "sqlite (file)", "ranker": ws.ranker_kind}
    for phase in (1, 2):
        key = "submit_phase0_to_I" if phase == 1 else "submit_phaseI_to_II"
        res[key] = {k: stats_ms(v) for k, v in samples[phase].items()}
        res[key]["catalog_scorings"] = int(np.median(counts[phase])) if counts[phase] else None
    return _la(res, la)


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
        times, t_score, t_rank = [], [], []
        r = reps if n < 1_000_000 else max(3, reps // 2)
        la = loadavg()
        for i in range(r):
            f = feats[i % len(feats)][1]
            dt, pred = timed(syn.predict, f)
            times.append(dt)
            vec = syn.encoder.encode([pred.text])[0]
            dt, scored = timed(syn.ranker.score, vec, pred.embedding, Decisions())
            t_score.append(dt)
            dt, _ = timed(syn.rank, np.asarray(scored.scores, np.float64), scored.lift)
            t_rank.append(dt)
            del pred, scored
        peak = peak_mb() if can_peak else float("nan")
        row = {"n_targets": n, **sizes_mb, "predict": stats_ms(times),
               "score": stats_ms(t_score), "rank": stats_ms(t_rank),
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
    for mode, d in out["modes"].items():
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


# ---- report ------------------------------------------------------------------------------------
def _lastr(d: dict) -> str:
    b, a = d.get("loadavg_before"), d.get("loadavg_after")
    return f"{b[0]:.2f}->{a[0]:.2f}" if b and a else ""


def summary_rows(doc: dict) -> list[tuple[str, str, str]]:
    """(figure, value, load average) rows for the printed table."""
    rows: list[tuple[str, str, str]] = []
    r = doc["results"]
    for name, kinds in r.get("build", {}).items():
        for kind, d in kinds.items():
            st = "  ".join(f"{k} {v:.1f}" for k, v in d["stages_s"].items())
            rows.append((f"build {name} ({kind})",
                         f"model {d['model_s']:.1f} s (total {d['total_s']:.1f} s: load+split "
                         f"{d['load_split_s']:.1f}, {st}, save {d['save_s']:.1f})", _lastr(d)))
    for name, d in r.get("predict", {}).items():
        for kind in ("cold", "cached"):
            w = d[f"{kind}_text"]
            rows.append((f"predict+evidence {name} ({d['n_targets']} targets) {kind} text",
                         f"p50 {w['p50_ms']:.1f} ms  p95 {w['p95_ms']:.1f} ms", _lastr(d)))
        st = "  ".join(f"{k} {v['p50_ms']:.1f}" for k, v in d["stages_cold"].items())
        rows.append((f"  stages p50 ms {name}", st, ""))
    for name, d in r.get("feedback", {}).items():
        for key in ("submit_phase0_to_I", "submit_phaseI_to_II"):
            s = d[key]
            parts = "  ".join(f"{k} {s[k]['p50_ms']:.1f}" for k in
                              ("confirm_and_refine", "reload", "table", "history"))
            rows.append((f"feedback submit {name} {key[7:]}",
                         f"p50 {s['total']['p50_ms']:.1f} ms p95 {s['total']['p95_ms']:.1f} ms "
                         f"({parts}; {s['catalog_scorings']} catalog scorings)", _lastr(d)))
    for d in r.get("scale", {}).get("targets", []):
        rows.append((f"scale {d['n_targets']:>9,} targets predict",
                     f"p50 {d['predict']['p50_ms']:.1f} ms p95 {d['predict']['p95_ms']:.1f} ms "
                     f"(score {d['score']['p50_ms']:.1f} rank {d['rank']['p50_ms']:.1f}) extra "
                     f"{d['extra_peak_mb']} MB, ranker {d['ranker_static_mb']} MB", _lastr(d)))
    enc = r.get("encode")
    if enc:
        for mode, d in enc["modes"].items():
            rows.append((f"encode {enc['n_texts']} texts (~{enc['mean_tokens']:.0f} tokens, "
                         f"{mode})", f"{d['items_per_s_median']:.1f} items/s (CPUs used "
                         f"{np.median(d['cpu_seconds']) / np.median(d['seconds']):.2f})",
                         _lastr(d)))
    if enc and "text_knn_recall" in enc:
        q = enc["text_knn_recall"]
        rows.append((f"text-knn R@{q['at']} {q['dataset']} old items ({q['n_queries']} queries)",
                     "  ".join(f"{m} {d['recall']:.4f} ({d.get('delta_vs_none', 0):+.4f}, "
                               f"{d['items_per_s']:.0f} items/s)"
                               for m, d in q["modes"].items()), ""))
    for d in r.get("index", []):
        rows.append((f"index {d['n_items']:>9,} items flat",
                     f"p50 {d['flat']['query']['p50_ms']:.3f} ms  build {d['flat']['build_s']} s",
                     _lastr(d)))
        sw = "  ".join(f"ef{s['ef_search']}: R@10 {s['recall_at_10']:.3f} "
                       f"{s['query']['p50_ms']:.3f} ms" for s in d["hnsw"]["sweep"])
        rows.append((f"index {d['n_items']:>9,} items hnsw (build {d['hnsw']['build_s']} s)",
                     sw, ""))
    return rows


def print_table(doc: dict) -> None:
    m = doc["machine"]
    print(f"\nEmerFlow speed @ {doc['commit']}{' (dirty)' if doc['dirty'] else ''} "
          f"{doc['created_at']}  mode={'quick' if doc['args']['quick'] else 'full'}")
    print(f"machine: {m['cpu_model']}, {m['cpus_usable']} usable CPUs, {m['mem_total_gb']} GB; "
          f"torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss']}; "
          f"load avg start {m['loadavg_start']} end {doc.get('loadavg_end')}")
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

    def add(name: str, value: float | None, op: str, where: str = "") -> None:
        if value is None:
            return
        target = TARGETS[name]
        ok = value < target if op == "<" else value <= target if op == "<=" else value >= target
        checks.append({"name": f"{name}[{where}]" if where else name, "value": value,
                       "target": target, "op": op, "ok": ok})

    for name, kinds in r.get("build", {}).items():
        for kind, d in kinds.items():
            key = f"build_{kind}_s"
            if key in TARGETS:
                add(key, d["model_s"], "<=", name)
    for name, d in r.get("predict", {}).items():
        add("predict_p50_ms", d["cold_text"]["p50_ms"], "<=", name)
    for name, d in r.get("feedback", {}).items():
        add("feedback_submit_p50_ms", d["submit_phase0_to_I"]["total"]["p50_ms"], "<=", name)
    for d in r.get("scale", {}).get("targets", []):
        if d["n_targets"] >= 1_000_000:
            add("scale_1m_targets_predict_p50_ms", d["predict"]["p50_ms"], "<")
    if "encode" in r:
        add("encode_items_per_s", r["encode"].get("items_per_s_median"), ">=")
    return checks


# ---- main --------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: demo catalog, few repetitions, small scale sizes")
    p.add_argument("--check", action="store_true",
                   help="after measuring, exit 1 when a target of issue 17 is missed")
    p.add_argument("--check-file", type=Path,
                   help="only check an existing result JSON against the targets")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--datasets", help="comma-separated dataset names (default: real datasets, "
                   "or the demo one with --quick)")
    p.add_argument("--rankers", default=None,
                   help="rankers to build (default: every registered product ranker)")
    p.add_argument("--home", type=Path, default=None,
                   help="bench home (default: $EMERFLOW_HOME/speed-cache)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="data root (default: $EMERFLOW_DATA through the settings)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    p.add_argument("--reps", type=int, default=None, help="repetitions per latency figure")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads before measuring (default: leave torch's own)")
    p.add_argument("--target-sizes", default=None, help="e.g. 10000,100000,1000000")
    p.add_argument("--index-sizes", default=None, help="e.g. 10000,100000,1000000")
    p.add_argument("--encode-modes", default="none,dynamic-int8",
                   help="encoder quantization modes to measure")
    p.add_argument("--tag", default="", help="suffix of the per-commit JSON file name")
    p.add_argument("--merge", type=Path, default=None,
                   help="start from this result JSON and replace only the sections run now "
                        "(a section rerun when the load was high)")
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
    home, data_root = settings_paths(args.home, args.data_root)
    if quick and args.home is None:
        home = home / "quick"
    kinds = args.rankers.split(",") if args.rankers else ranker_kinds()
    reps = args.reps or (3 if quick else 60)
    target_sizes = _ints(args.target_sizes) if args.target_sizes else (
        [1000] if quick else [10_000, 100_000, 1_000_000])
    index_sizes = _ints(args.index_sizes) if args.index_sizes else (
        [1000] if quick else [10_000, 100_000, 1_000_000])
    modes = [m for m in args.encode_modes.split(",") if m]

    from engine.text.encoder import TextEncoder

    doc: dict = {
        "schema": 2, "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--",
                           "engine", "bench", "app")),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "args": {"quick": quick, "sections": sections, "datasets": datasets, "rankers": kinds,
                 "reps": reps, "threads": args.threads, "target_sizes": target_sizes,
                 "index_sizes": index_sizes, "encode_modes": modes, "home": str(home)},
        "targets": TARGETS, "results": {},
    }
    t_start = time.perf_counter()
    res = doc["results"]
    partial = args.out / "partial.json"

    def checkpoint(section: str) -> None:
        """Keep what is measured so far (a killed run loses at most one section)."""
        args.out.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(doc, indent=1, default=float) + "\n")
        log(f"{section} done")
    encoder = TextEncoder()
    workspaces: dict = {}
    if "build" in sections:
        res["build"] = bench_build(datasets, kinds, home, data_root, encoder, quick)
        checkpoint("build")
    need = {"predict", "feedback", "scale", "encode", "index"} & set(sections)
    if need:
        for name in datasets:  # the dashboard's own ranker of each dataset
            workspaces[name] = get_workspace(name, product_ranker(name, kinds), home,
                                             data_root, encoder, quick)
    if "predict" in sections:
        res["predict"] = {}
        for name, ws in workspaces.items():
            log(f"predict {name}")
            res["predict"][name] = bench_predict(ws, reps, data_root)
            checkpoint("predict")
    if "feedback" in sections:
        res["feedback"] = {}
        for name, ws in workspaces.items():
            log(f"feedback {name}")
            with tempfile.TemporaryDirectory(prefix="speed-db-") as tmp:
                res["feedback"][name] = bench_feedback(ws, max(3, reps // 2), Path(tmp))
                checkpoint("feedback")
    if "scale" in sections:
        name = next((n for n in ("disgenet-curated", "demo-diseases") if n in workspaces),
                    next(iter(workspaces), None))
        base = None
        if name is not None:  # the synthetic catalog is a SharedRanker's
            base = (workspaces[name] if workspaces[name].ranker_kind == "twotower"
                    else get_workspace(name, "twotower", home, data_root, encoder, quick))
        res["scale"] = {"base_workspace": base.name if base is not None else None,
                        "targets": bench_scale_targets(base, target_sizes, max(5, reps // 5))
                        if base is not None else []}
        checkpoint("scale")
    if "encode" in sections:
        log("encode throughput")
        texts: list[str] = []
        for ws in workspaces.values():
            texts += [ws.serialize(r) for r in ws.dataset.items.to_dict("records")]
        rng = np.random.default_rng(0)
        texts = list(dict.fromkeys(t for t in texts if t))
        pick = rng.permutation(len(texts))[: (16 if quick else 512)]
        res["encode"] = bench_encode([texts[i] for i in pick], 1 if quick else 5, modes)
        base = next((workspaces[n] for n in ("disgenet-curated", "demo-diseases")
                     if n in workspaces), None)
        if base is not None and len(modes) > 1:
            log(f"encode quality: text-knn recall on {base.name}'s old items")
            res["encode"]["text_knn_recall"] = text_knn_recall(base, modes)
        checkpoint("encode")
    if "index" in sections:
        dim = next(iter(workspaces.values())).ranker.item_vectors().shape[1] if workspaces \
            else 64
        res["index"] = bench_index(index_sizes, 20 if quick else 500, dim)
    partial.unlink(missing_ok=True)
    doc["loadavg_end"] = loadavg()
    doc["wall_s"] = round(time.perf_counter() - t_start, 1)
    if args.merge is not None and args.merge.exists():
        old = json.loads(args.merge.read_text())
        merged = {**old.get("results", {}), **res}
        doc["merged_from"] = {"commit": old.get("commit"), "created_at": old.get("created_at"),
                              "sections": sorted(set(old.get("results", {})) - set(res))}
        doc["results"] = merged
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
