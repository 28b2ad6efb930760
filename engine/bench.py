"""The benchmark of protocol.md: every method of ``engine.baselines.METHODS`` on one split.

Per seed, one backbone is pretrained on the old items and frozen (cached on disk as a
``state_dict`` + JSON and reloaded with ``weights_only=True``); every method starts from it.
Phase 0 scores each new item's test rows; then the phase-I batch updates the item
representation and the test rows are scored again; then II; then III. Metrics per phase: pooled
AUC, F1 at the mean-probability threshold (null for methods whose scores are not
probabilities) and mean per-item AUC (``engine.metrics.evaluate``), and the full-catalog
ranking (``engine.metrics.ranking_metrics``: Recall@20, Recall@100, NDCG@100 over every
candidate target, seen positives excluded); mean and std over seeds, written to
``results/<dataset>/<method>.json`` with the method's backbone, the seed-mean per-item
NDCG@100/Recall@100 (``per_item``, for the paired bootstrap of ``engine.bench_report``) and the
Phase-0 top-20 Jaccard overlap of new items (``diversity``).

Tuning (:func:`tune`): every method gets the same number of validation trials drawn from its
``grid``, chosen by validation NDCG@100 on the OLD-item validation split; chosen settings live
in ``engine.tuned``.

Resumable: backbone checkpoints, text encodings and finished (method, seed) results are cached
under ``cache_dir`` (default ``$EMERFLOW_HOME/bench-cache``) keyed by a hash of everything
they depend on; a rerun reuses them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.baselines import METHODS, BenchContext, Method, MethodNotAvailable, Rows
from engine.config import BackboneConfig, EncoderConfig, PaperConfig
from engine.csv_safety import restore
from engine.data.base import Dataset
from engine.data.protocol import ProtocolConfig, Split, split_dataset, validation_split
from engine.data.registry import get_dataset_entry
from engine.metrics import (
    METRIC_KEYS,
    RANKING_KEYS,
    evaluate,
    ranking_metrics,
    top_k_jaccard,
)
from engine.paper.backbones import build_backbone
from engine.paper.deepfm import DeepFM
from engine.paper.fields import FieldEncoder
from engine.paper.tables import layout as _layout
from engine.paper.tables import make_tables
from engine.paper.train import pretrain_backbone
from engine.schema import ITEM_ID, PHASES
from engine.settings import emerflow_home
from engine.training_data import TrainingData, item_texts
from engine.tuned import DATASET_SETTINGS, emerflow_workspace_config

Progress = Callable[[str], None]
#: Bumped whenever what a cached per-seed run file holds changes (2: ranking, per-item,
#: diversity blocks; F1 null for non-probabilistic methods; the all-rows task sampler).
CACHE_VERSION = 2
#: Per-item metrics kept (seed mean) in result files for the paired bootstrap.
PER_ITEM_KEYS: tuple[str, ...] = ("ndcg@100", "recall@100")
#: Top-k of the diversity measure (mean pairwise Jaccard of new items' top-k at phase 0).
DIVERSITY_K = 20

# Re-exported for callers that imported the tuned settings from here (engine/build.py).
__all__ = ["DATASET_SETTINGS", "emerflow_workspace_config"]

def _print(msg: str) -> None:
    print(msg, flush=True)


def default_cache_dir() -> Path:
    return emerflow_home() / "bench-cache"


def default_augment_path(dataset: str) -> Path:
    """Where ``emerflow augment`` writes a dataset's batch output."""
    return emerflow_home() / "augment" / f"{dataset}.csv"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def machine_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except (OSError, subprocess.SubprocessError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {cores} cores, torch {torch.__version__} ({torch.get_num_threads()} "
            f"threads), {platform.system()} {platform.release()}")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_memory_mb() -> float:
    """Peak resident set size of this process so far (``getrusage`` maxrss, Linux KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_augmentations(path: Path | None) -> tuple[pd.DataFrame | None, dict | None, str]:
    """(augmentation frame item_id -> features, llm info, reason when absent)."""
    if path is None or not path.is_file():
        return None, None, f"no LLM augmentations found at {path}"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).map(restore)
    if ITEM_ID not in frame.columns:
        return None, None, f"{path}: no {ITEM_ID} column"
    if "augment_error" in frame.columns:
        frame = frame[frame["augment_error"] == ""]
    frame = frame.drop(columns=[c for c in ("augment_error", "augment_cached") if c in frame])
    if frame.empty or len(frame.columns) < 2:
        return None, None, f"{path}: no successfully augmented items"
    meta_path = path.with_suffix(".json")
    llm: dict = {"provider": None, "model": None, "prompt_version": None, "source": str(path)}
    if meta_path.is_file():
        doc = json.loads(meta_path.read_text())
        info = doc.get("llm", doc)
        llm.update({k: info.get(k) for k in ("provider", "model", "prompt_version") if k in info})
        llm.update({k: doc[k] for k in ("features", "features_source") if k in doc})
    llm["items_augmented"] = len(frame)
    if llm["prompt_version"] is None:
        try:
            from engine.augment import PROMPT_VERSION

            llm["prompt_version"] = PROMPT_VERSION
        except ImportError:
            pass
    return frame, llm, ""


class TextVectors:
    """Lazily encoded text vectors per variant (``raw``, ``raw+aug``, ``aug``), cached on disk."""

    def __init__(self, dataset: Dataset, needed_rows: np.ndarray, cache_dir: Path | None,
                 encoder_config: EncoderConfig, augmented: pd.DataFrame | None,
                 missing_reason: str, progress: Progress, encoder: Any = None):
        self.dataset = dataset
        self.needed = np.asarray(needed_rows)
        self.cache_dir = cache_dir
        self.encoder_config = encoder_config
        self.augmented = augmented
        self.missing_reason = missing_reason
        self.progress = progress
        self._encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def encoder(self) -> Any:
        if self._encoder is None:
            from engine.text.encoder import TextEncoder

            name = _digest(self.encoder_config.__dict__)
            path = self.cache_dir / f"text-{name}.npz" if self.cache_dir else None
            self._encoder = TextEncoder(self.encoder_config, cache_path=path)
        return self._encoder

    def texts(self, variant: str) -> list[str]:
        if variant == "raw":
            return item_texts(self.dataset)
        if self.augmented is None:
            raise MethodNotAvailable(self.missing_reason)
        base = self.dataset if variant == "raw+aug" else replace(self.dataset, item_features=[])
        return item_texts(base, self.augmented)

    def __call__(self, variant: str) -> np.ndarray:
        if variant not in self._vectors:
            t0 = time.perf_counter()
            texts = self.texts(variant)
            enc = self.encoder()
            self.progress(f"  encoding {len(self.needed)} item texts ({variant})")
            vecs = enc.encode([texts[i] for i in self.needed])
            if self.cache_dir is not None and getattr(enc, "cache_path", None) is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                enc.save_cache()
            full = np.zeros((len(texts), vecs.shape[1]), np.float32)
            full[self.needed] = vecs
            self._vectors[variant] = full
            self.seconds += time.perf_counter() - t0
        return self._vectors[variant]


# ---- backbone -----------------------------------------------------------------------------------
def _backbone_key(dataset: Dataset, split: Split, config: BackboneConfig, seed: int) -> str:
    return _digest({"v": CACHE_VERSION, "dataset": dataset.name, "inputs": dataset.inputs,
                    "split": split.summary(), "split_name": split.dataset,
                    "old": _digest(list(split.old_items)), "backbone": config.__dict__,
                    "features": [(f.name, f.kind, f.backbone) for f in
                                 (*dataset.item_features, *dataset.target_features)],
                    "seed": seed})


def pretrained_backbone(dataset: Dataset, split: Split, config: PaperConfig, tables: Any,
                        item_fields: FieldEncoder, target_fields: FieldEncoder,
                        cache_dir: Path | None, progress: Progress) -> tuple[DeepFM, bool]:
    """The seed's backbone pretrained on old items, frozen; (model, loaded_from_cache)."""
    old_ids = [str(i) for i in split.old_items]
    model = build_backbone(config.backbone, _layout(target_fields), _layout(item_fields),
                           len(old_ids))
    key = _backbone_key(dataset, split, config.backbone, config.seed)
    path = cache_dir / f"backbone-{key}.pt" if cache_dir else None
    if path is not None and path.is_file() and path.with_suffix(".json").is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        progress(f"  backbone: reused cached checkpoint {path.name}")
        return model, True
    torch.manual_seed(config.seed)
    model = build_backbone(config.backbone, _layout(target_fields), _layout(item_fields),
                           len(old_ids))
    old_rows = tables.item_pos.loc[old_ids].to_numpy().copy()
    train = split.train
    losses = pretrain_backbone(
        model, tables.target_table, tables.item_table[torch.from_numpy(old_rows)],
        tables.target_pos.loc[train["target_id"].astype(str)].to_numpy(),
        tables.old_pos.loc[train["item_id"].astype(str)].to_numpy(),
        train["label"].to_numpy(dtype=np.float32), config.backbone, config.seed,
        lambda e, n, loss: progress(f"  backbone epoch {e}/{n}: loss {loss:.4f}"))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
        path.with_suffix(".json").write_text(json.dumps(
            {"dataset": dataset.name, "seed": config.seed, "backbone": config.backbone.__dict__,
             "split": split.summary(), "losses": losses,
             "created_at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=1))
    return model, False


# ---- one method through the phases ----------------------------------------------------------
@dataclass
class PhaseRun:
    """One method's run through the phases on one seed.

    Attributes:
        metrics: phase -> {auc, f1, item_auc, recall@20, recall@100, ndcg@100} (means over
            items for the ranking metrics; f1 NaN for non-probabilistic methods).
        per_item: phase -> {metric in PER_ITEM_KEYS: ``[M]`` per new item, NaN without test
            positives}.
        diversity: {"top20_jaccard_phase0": mean Jaccard of two new items' top-20 at phase 0}.
    """

    metrics: dict[str, dict[str, float]]
    per_item: dict[str, dict[str, list[float]]]
    diversity: dict[str, float]


def _nan_mean(values: np.ndarray) -> float:
    ok = values[np.isfinite(values)]
    return float(ok.mean()) if ok.size else float("nan")


def run_phases(method: Method, ctx: BenchContext) -> PhaseRun:
    """Phase 0, then each update phase: update with that batch only, evaluate on the test set.

    Per phase: the protocol's AUC/F1/item-AUC over the test rows (``score``), and the
    full-catalog ranking (``score_all``) of every candidate target (``ctx.candidate_mask``),
    the positives of the phase batches seen so far excluded, against each item's test
    positives. Test rows reach the method only through ``score`` and without labels.
    """
    test = ctx.rows(ctx.split.test)
    test_x = test.unlabelled()
    assert test.label is not None
    relevant = ctx.positive_matrix(test)  # [M, N]
    metrics: dict[str, dict[str, float]] = {}
    per_item: dict[str, dict[str, list[float]]] = {}
    diversity: dict[str, float] = {}

    def evaluate_phase(phase: str, state: Any, seen: Rows) -> None:
        row = evaluate(test.label, method.score(state, test_x), test.item)
        if not method.probabilistic:
            row["f1"] = float("nan")
        scores = np.asarray(method.score_all(state), dtype=np.float64)
        ranking = ranking_metrics(scores, relevant, ctx.positive_matrix(seen),
                                  ctx.candidate_mask)
        row.update({k: _nan_mean(ranking[k]) for k in RANKING_KEYS})
        metrics[phase] = row
        per_item[phase] = {k: [float(v) for v in ranking[k]] for k in PER_ITEM_KEYS}
        if phase == "0":
            diversity[f"top{DIVERSITY_K}_jaccard_phase0"] = top_k_jaccard(
                scores, ctx.candidate_mask, DIVERSITY_K)

    state = method.start()
    seen = Rows.empty()
    evaluate_phase("0", state, seen)
    for phase in PHASES[1:]:
        if phase not in ctx.split.phases:
            break
        batch = ctx.rows(ctx.split.phases[phase])
        seen = seen.concat(batch)
        state = method.update(state, batch, seen)
        evaluate_phase(phase, state, seen)
    return PhaseRun(metrics, per_item, diversity)


# ---- settings -----------------------------------------------------------------------------------
@dataclass
class BenchSettings:
    """What a benchmark run uses besides the methods' names."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def for_dataset(cls, name: str) -> BenchSettings:
        s = DATASET_SETTINGS.get(name, {})
        bb = dict(s.get("backbone", {}))
        if "hidden" in bb:
            bb["hidden"] = tuple(bb["hidden"])
        return cls(backbone=BackboneConfig(**bb),
                   method_overrides={k: dict(v) for k, v in s.get("methods", {}).items()})


def make_method(name: str, settings: BenchSettings) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}")
    return METHODS[name](**settings.method_overrides.get(name, {}))


def parse_methods(spec: str) -> list[str]:
    names = list(METHODS) if spec.strip() == "all" else [m.strip() for m in spec.split(",")
                                                         if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; registered: {', '.join(METHODS)}")
    return names


def _summary(values: Sequence[float]) -> dict[str, Any]:
    vals = [float(v) for v in values]
    arr = np.asarray(vals, dtype=np.float64)
    ok = arr[np.isfinite(arr)] if arr.size else arr
    return {"mean": float(ok.mean()) if ok.size else None,
            "std": float(ok.std(ddof=0)) if ok.size else None,
            "per_seed": [v if np.isfinite(v) else None for v in vals]}


@dataclass
class SeedResult:
    """One (method, seed) run as cached on disk: :class:`PhaseRun`'s blocks, timings, config."""

    phases: dict[str, dict[str, float]]
    timing_s: dict[str, float]
    config: dict[str, Any]
    per_item: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    diversity: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        phases = {p: {k: float(v) if np.isfinite(v) else None for k, v in m.items()}
                  for p, m in self.phases.items()}
        return {"phases": phases, "timing_s": self.timing_s, "config": self.config,
                "per_item": {p: {k: [_json_float(v) for v in vals] for k, vals in m.items()}
                             for p, m in self.per_item.items()},
                "diversity": self.diversity}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SeedResult:
        nan = float("nan")
        per_item = {p: {k: [nan if v is None else float(v) for v in vals]
                        for k, vals in m.items()}
                    for p, m in (doc.get("per_item") or {}).items()}
        phases = {p: {k: nan if v is None else float(v) for k, v in m.items()}
                  for p, m in doc["phases"].items()}
        return cls(phases, doc["timing_s"], doc["config"], per_item, doc.get("diversity") or {})


def _json_float(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def _per_item_block(items: Sequence[str], results: Sequence[SeedResult]) -> dict[str, Any]:
    """New item ids and the seed mean of each per-item metric per phase (None: no positives)."""
    out: dict[str, Any] = {"items": list(items)}
    for key in PER_ITEM_KEYS:
        out[key] = {}
        for phase in PHASES:
            runs = [r.per_item[phase][key] for r in results
                    if phase in r.per_item and key in r.per_item[phase]]
            if not runs:
                continue
            arr = np.asarray(runs, dtype=np.float64)  # [seeds, M]
            ok = np.isfinite(arr)
            n = ok.sum(0)
            mean = np.where(ok, arr, 0.0).sum(0) / np.maximum(n, 1)
            mean[n == 0] = np.nan
            out[key][phase] = [_json_float(v) for v in mean]
    return out


def run_bench(dataset: Dataset, protocol: ProtocolConfig, methods: Sequence[str],
              seeds: Sequence[int], *, out_dir: Path | None = None, cache_dir: Path | None = None,
              settings: BenchSettings | None = None, augment_path: Path | None = None,
              validation: bool = False, progress: Progress = _print, encoder: Any = None,
              split: Split | None = None) -> dict[str, dict]:
    """Run ``methods`` over ``seeds`` on ``dataset``; returns (and writes) one document per method.

    Args:
        validation: evaluate on the OLD-item validation split (for tuning) instead of the
            new items; result documents then carry ``"split_kind": "validation"`` and are not
            written to ``out_dir``.
        split: a precomputed split (default: ``split_dataset(dataset, protocol)``).
        encoder: an already loaded ``TextEncoder`` (tests); default loads one lazily.
    """
    settings = settings or BenchSettings()
    t_start = time.perf_counter()
    if split is None:
        split = split_dataset(dataset, protocol)
    if validation:
        split = validation_split(split, protocol)
    load_s = time.perf_counter() - t_start
    progress(f"{dataset.name}: {split.summary()}")
    augmented, llm, reason = load_augmentations(augment_path)
    item_fields = FieldEncoder.fit(dataset.items, dataset.item_features,
                                   settings.backbone.numeric_buckets, settings.backbone.max_multi)
    target_fields = FieldEncoder.fit(dataset.targets, dataset.target_features,
                                     settings.backbone.numeric_buckets, settings.backbone.max_multi)
    tables = make_tables(TrainingData(dataset, split), item_fields, target_fields)
    needed = np.concatenate([tables.item_pos.loc[[str(i) for i in split.old_items]].to_numpy(),
                             tables.item_pos.loc[[str(i) for i in split.new_items]].to_numpy()])
    texts = TextVectors(dataset, needed, cache_dir, settings.encoder, augmented, reason,
                        progress, encoder)
    run_key = _digest({"v": CACHE_VERSION, "dataset": dataset.name, "inputs": dataset.inputs,
                       "split": split.summary(), "validation": validation,
                       "backbone": settings.backbone.__dict__, "aug": _digest(
                           augmented.to_dict("list")) if augmented is not None else None})
    per_method: dict[str, list[SeedResult]] = {m: [] for m in methods}
    reused: dict[str, list[int]] = {m: [] for m in methods}
    not_run: dict[str, str] = {}
    shared_timing: dict[str, float] = {"load_split": load_s, "backbone": 0.0}
    for seed in seeds:
        config = PaperConfig(dataset=dataset.name, seed=int(seed), encoder=settings.encoder,
                             backbone=settings.backbone)
        progress(f"seed {seed}:")
        ctx: BenchContext | None = None
        for name in methods:
            if name in not_run:
                continue
            method = make_method(name, settings)
            key = _digest({"run": run_key, "method": name, "config": method.describe(),
                           "seed": int(seed)})
            done = cache_dir / "runs" / f"{dataset.name}-{name}-{key}.json" if cache_dir else None
            if done is not None and done.is_file():
                per_method[name].append(SeedResult.from_json(json.loads(done.read_text())))
                reused[name].append(int(seed))
                progress(f"  {name}: reused cached result (seed {seed})")
                continue
            if ctx is None:
                t0 = time.perf_counter()
                cpu0 = cpu_seconds()
                backbone, _ = pretrained_backbone(dataset, split, config, tables, item_fields,
                                                  target_fields, cache_dir, progress)
                shared_timing["backbone"] += time.perf_counter() - t0
                shared_timing["backbone_cpu"] = shared_timing.get("backbone_cpu", 0.0) + (
                    cpu_seconds() - cpu0)
                ctx = BenchContext(dataset=dataset, split=split, config=config, seed=int(seed),
                                   tables=tables, backbone=backbone, text_vectors=texts, llm=llm)
            t0 = time.perf_counter()
            cpu0 = cpu_seconds()
            enc0 = texts.seconds
            try:
                method.fit(ctx)
            except MethodNotAvailable as exc:
                not_run[name] = str(exc)
                progress(f"  {name}: not run ({exc})")
                continue
            t1 = time.perf_counter()
            run = run_phases(method, ctx)
            t2 = time.perf_counter()
            enc = texts.seconds - enc0
            timing = {"encode": enc, "fit": t1 - t0 - enc, "phases": t2 - t1,
                      "cpu": cpu_seconds() - cpu0}
            result = SeedResult(run.metrics, timing, method.describe(), run.per_item,
                                run.diversity)
            per_method[name].append(result)
            progress(f"  {name}: " + "  ".join(
                f"{p}: auc {m['auc']:.4f} ndcg@100 {m['ndcg@100']:.4f}"
                for p, m in run.metrics.items()) + f"  ({t2 - t0:.1f}s)")
            if done is not None:
                done.parent.mkdir(parents=True, exist_ok=True)
                done.write_text(json.dumps(result.to_json()))
    docs: dict[str, dict] = {}
    created = datetime.now(UTC).isoformat(timespec="seconds")
    split_info = split.summary()
    split_info["split_seed"] = int(protocol.seed)
    for name in methods:
        base_config = {"method": make_method(name, settings).describe(),
                       "backbone": settings.backbone.__dict__ | {"hidden": list(
                           settings.backbone.hidden)},
                       "encoder": settings.encoder.__dict__, "protocol": protocol.__dict__}
        doc: dict[str, Any] = {
            "dataset": dataset.name, "method": name, "seeds": [int(s) for s in seeds],
            "phases": {}, "split": split_info, "inputs": dict(dataset.inputs), "timing_s": {},
            "llm": llm if METHODS[name].uses_llm else None, "config": base_config,
            "backbone": METHODS[name].backbone, "probabilistic": METHODS[name].probabilistic,
            "machine": machine_description(), "created_at": created,
        }
        if validation:
            doc["split_kind"] = "validation"
        results = per_method[name]
        if name in not_run or not results:
            doc["status"] = "not run"
            doc["reason"] = not_run.get(name, "no seed finished")
            doc["llm"] = None
            doc["phases"] = {p: {k: _summary([]) for k in METRIC_KEYS} for p in PHASES}
            doc["ranking"] = {p: {k: _summary([]) for k in RANKING_KEYS} for p in PHASES}
            doc["per_item"] = None
            doc["diversity"] = {f"top{DIVERSITY_K}_jaccard_phase0": None}
        else:
            doc["status"] = "ok"
            ran = [p for p in PHASES if p in results[0].phases]
            doc["phases"] = {p: {k: _summary([r.phases[p][k] for r in results])
                                 for k in METRIC_KEYS} for p in ran}
            doc["ranking"] = {p: {k: _summary([r.phases[p].get(k, float("nan"))
                                               for r in results])
                                  for k in RANKING_KEYS} for p in ran}
            doc["per_item"] = _per_item_block([str(i) for i in split.new_items], results)
            div = [r.diversity.get(f"top{DIVERSITY_K}_jaccard_phase0", float("nan"))
                   for r in results]
            doc["diversity"] = {f"top{DIVERSITY_K}_jaccard_phase0": _summary(div)["mean"],
                                f"top{DIVERSITY_K}_jaccard_phase0_per_seed": _summary(div)[
                                    "per_seed"]}
            stages = sorted({s for r in results for s in r.timing_s})
            doc["timing_s"] = {f"{s}_per_seed": float(np.mean([r.timing_s.get(s, 0.0)
                                                             for r in results]))
                               for s in stages}
            doc["timing_s"].update({"shared_" + k: v / max(len(seeds), 1)
                                    for k, v in shared_timing.items()})
            doc["timing_s"]["peak_rss_mb"] = peak_memory_mb()
            # Per-seed stages of reused seeds are the original run's; the shared_* times and
            # peak RSS are this process's, so they do not cover those seeds.
            doc["timing_s"]["seeds_reused_from_cache"] = reused[name]
        docs[name] = doc
        if out_dir is not None and not validation:
            target = out_dir / dataset.name / f"{name}.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(doc, indent=1) + "\n")
    progress(f"done in {time.perf_counter() - t_start:.1f}s, peak RSS {peak_memory_mb():.0f} MB")
    return docs


def run_registered(name: str, methods: Sequence[str], seeds: Sequence[int], *,
                   data_root: Path | None = None, **kwargs: Any) -> dict[str, dict]:
    """:func:`run_bench` on a registered dataset with its tuned settings."""
    entry = get_dataset_entry(name)
    dataset = entry.load(data_root)
    kwargs.setdefault("settings", BenchSettings.for_dataset(name))
    kwargs.setdefault("augment_path", default_augment_path(name))
    return run_bench(dataset, entry.protocol, methods, seeds, **kwargs)


def phase_table(docs: Mapping[str, dict]) -> list[dict[str, Any]]:
    """Flat rows (method, phase, metric mean/std) of result documents."""
    rows = []
    for name, doc in docs.items():
        for phase, metrics in (doc.get("phases") or {}).items():
            for metric, s in metrics.items():
                rows.append({"method": name, "phase": phase, "metric": metric,
                             "mean": s.get("mean"), "std": s.get("std")})
    return rows


# ---- tuning on the old-item validation split -------------------------------------------------
#: Validation trials per method (the same budget for every method; protocol.md).
DEFAULT_TRIALS = 12
#: The tuning criterion: mean validation NDCG@100 over these phases.
TUNE_METRIC = "ndcg@100"


def grid_trials(grid: Mapping[str, Sequence[Any]], trials: int, seed: int = 0
                ) -> list[dict[str, Any]]:
    """``trials`` settings drawn without replacement from the product of ``grid``
    (deterministic for a seed; the whole grid, in order, when it has at most ``trials`` points).

    An empty grid gives one trial with no overrides (the method's defaults).
    """
    if trials <= 0:
        raise ValueError(f"grid_trials: trials must be > 0, got {trials}")
    keys = sorted(grid)
    points = [dict(zip(keys, values, strict=True))
              for values in itertools.product(*(tuple(grid[k]) for k in keys))]
    if len(points) <= trials:
        return points
    pick = np.sort(np.random.default_rng(seed).choice(len(points), size=trials, replace=False))
    return [points[i] for i in pick]


def tune(dataset: Dataset, protocol: ProtocolConfig, methods: Sequence[str], *,
         trials: int = DEFAULT_TRIALS, seed: int = 0, settings: BenchSettings | None = None,
         cache_dir: Path | None = None, progress: Progress = _print, encoder: Any = None
         ) -> dict[str, Any]:
    """Choose each method's settings on the OLD-item validation split (``validation_split``):
    held-out old items play the new items and the backbone is pretrained on the remaining old
    items only. New items are never touched.

    Every method gets the same budget: ``trials`` settings drawn by :func:`grid_trials` from
    its ``grid`` (methods with a smaller grid run all of it), each run through the phases once
    (a method is fitted once per distinct value of the settings ``fit`` reads; trials that
    differ only in ``phase_settings`` reuse that fit through ``Method.with_settings``).
    Criterion: mean validation NDCG@100 over phases 0..III (ties: Recall@100).

    Returns ``{method: {"best": {...}, "trials": [{"settings", "val": {phase: {metric}},
    "score"}]}}`` (not run methods: ``{"best": None, "reason": ...}``).
    """
    settings = settings or BenchSettings()
    split = validation_split(split_dataset(dataset, protocol), protocol)
    progress(f"{dataset.name} validation split: {split.summary()}")
    item_fields = FieldEncoder.fit(dataset.items, dataset.item_features,
                                   settings.backbone.numeric_buckets, settings.backbone.max_multi)
    target_fields = FieldEncoder.fit(dataset.targets, dataset.target_features,
                                     settings.backbone.numeric_buckets, settings.backbone.max_multi)
    tables = make_tables(TrainingData(dataset, split), item_fields, target_fields)
    needed = np.concatenate([tables.item_pos.loc[[str(i) for i in split.old_items]].to_numpy(),
                             tables.item_pos.loc[[str(i) for i in split.new_items]].to_numpy()])
    texts = TextVectors(dataset, needed, cache_dir, settings.encoder, None, "not used in tuning",
                        progress, encoder)
    config = PaperConfig(dataset=dataset.name, seed=seed, encoder=settings.encoder,
                         backbone=settings.backbone)
    backbone, _ = pretrained_backbone(dataset, split, config, tables, item_fields, target_fields,
                                      cache_dir, progress)
    ctx = BenchContext(dataset=dataset, split=split, config=config, seed=seed, tables=tables,
                       backbone=backbone, text_vectors=texts)
    out: dict[str, Any] = {}
    for name in methods:
        cls = METHODS[name]
        base = settings.method_overrides.get(name, {})
        records = []
        fitted: dict[str, Method] = {}  # one fit per distinct setting that fit reads
        try:
            for k, trial in enumerate(grid_trials(cls.grid, trials, seed)):
                t0 = time.perf_counter()
                full = {**base, **trial}
                phase_only = {s: v for s, v in full.items() if s in cls.phase_settings}
                fit_key = _digest({s: v for s, v in full.items()
                                   if s not in cls.phase_settings})
                if fit_key in fitted:
                    method = fitted[fit_key].with_settings(**phase_only)
                else:
                    method = cls(**full)
                    method.fit(ctx)
                    fitted[fit_key] = method
                run = run_phases(method, ctx)
                phases = list(run.metrics)
                score = float(np.nanmean([run.metrics[p][TUNE_METRIC] for p in phases]))
                tie = float(np.nanmean([run.metrics[p]["recall@100"] for p in phases]))
                records.append({
                    "settings": trial, "score": score, "tie_break_recall@100": tie,
                    "val": {p: {m: _json_float(v) for m, v in run.metrics[p].items()}
                            for p in phases},
                    "seconds": round(time.perf_counter() - t0, 2)})
                progress(f"  {name} trial {k + 1}: {trial} val NDCG@100 {score:.4f}")
        except MethodNotAvailable as exc:
            out[name] = {"best": None, "reason": str(exc), "trials": []}
            progress(f"  {name}: not tuned ({exc})")
            continue
        best = max(records, key=lambda t: (t["score"], t["tie_break_recall@100"]))
        progress(f"  {name}: best {best['settings']} val NDCG@100 {best['score']:.4f}")
        out[name] = {"best": best["settings"], "trials": records}
    return out
