"""The benchmark run of protocol.md: every method through phases 0..III on each seed, resumable
from the cache, one result document per method.

Part of :mod:`engine.bench` (the benchmark's public import point).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.baselines import METHODS, BenchContext, Method, MethodNotAvailable, Rows
from engine.bench_results import (
    DIVERSITY_K,
    PER_ITEM_KEYS,
    SeedResult,
    cpu_seconds,
    method_document,
    peak_memory_mb,
    usable_cores,
    write_document,
)
from engine.bench_setup import (
    BenchSettings,
    Progress,
    TextVectors,
    _digest,
    _print,
    default_augment_path,
    load_augmentations,
    make_method,
    pretrained_backbone,
    run_cache_key,
    split_tables,
)
from engine.config import PaperConfig
from engine.data.base import Dataset
from engine.data.protocol import ProtocolConfig, Split, split_dataset, validation_split
from engine.data.registry import get_dataset_entry
from engine.metrics import (
    RANKING_KEYS,
    evaluate,
    ranking_metrics,
    top_k_jaccard,
)
from engine.schema import PHASES


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


@dataclass
class MethodRuns:
    """What running some methods over the seeds produced (merged across parallel units)."""

    per_method: dict[str, list[SeedResult]]
    reused: dict[str, list[int]]
    not_run: dict[str, str]
    backbone_s: float = 0.0
    backbone_cpu_s: float = 0.0

    def merge(self, other: MethodRuns) -> None:
        self.per_method.update(other.per_method)
        self.reused.update(other.reused)
        self.not_run.update(other.not_run)
        self.backbone_s += other.backbone_s
        self.backbone_cpu_s += other.backbone_cpu_s


def method_units(methods: Sequence[str]) -> list[list[str]]:
    """The benchmark's parallel work units, heaviest first (by :attr:`Method.cost`): methods on
    one pretrained backbone (``deepfm``, ``twotower``) run in one unit and share it; a method
    without a backbone costing 10 s or more (the learned rankers) runs alone; the cheap ones
    (counting and neighbourhood baselines) share one unit. Order within a unit is the
    given order."""
    groups: dict[str, list[str]] = {}
    for name in methods:
        cls = METHODS[name]
        key = cls.backbone or (f"alone:{name}" if cls.cost >= 10 else "light")
        groups.setdefault(key, []).append(name)
    units = list(groups.values())
    return sorted(units, key=lambda u: -sum(METHODS[m].cost for m in u))


def _run_methods(dataset: Dataset, split: Split, methods: Sequence[str], seeds: Sequence[int],
                 settings: BenchSettings, augment_path: Path | None, cache_dir: Path | None,
                 validation: bool, progress: Progress, encoder: Any = None) -> MethodRuns:
    """Every method over every seed on ``split`` (one context per seed, built on first use,
    with the pretrained DeepFM backbone only when a method runs on it; finished runs reused
    from and written to ``cache_dir``)."""
    augmented, llm, reason = load_augmentations(augment_path)
    item_fields, target_fields, tables, needed = split_tables(dataset, split, settings.backbone)
    texts = TextVectors(dataset, needed, cache_dir, settings.encoder, augmented, reason,
                        progress, encoder)
    run_key = run_cache_key(dataset, split, settings.backbone, validation, augmented)
    runs = MethodRuns({m: [] for m in methods}, {m: [] for m in methods}, {})
    needs_deepfm = any(METHODS[m].backbone == "deepfm" for m in methods)
    per_method, reused, not_run = runs.per_method, runs.reused, runs.not_run
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
                backbone = None
                if needs_deepfm:
                    backbone, _ = pretrained_backbone(dataset, split, config, tables,
                                                      item_fields, target_fields, cache_dir,
                                                      progress)
                runs.backbone_s += time.perf_counter() - t0
                runs.backbone_cpu_s += cpu_seconds() - cpu0
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
    return runs


def default_jobs() -> int:
    """Worker processes of ``emerflow bench`` when ``--jobs`` is not given: 1 on one core, 2 on
    2-3 cores (each worker runs torch / LightGBM on 2 threads, and much of a method's time is
    single-threaded Python, so 2 workers fill 2 cores), half the cores above."""
    cores = usable_cores()
    return 1 if cores < 2 else max(2, cores // 2)


def _run_unit(kwargs: dict[str, Any]) -> MethodRuns:
    """A parallel worker's unit (top level, so a spawned process can import it); runs with the
    parent's torch thread count (float results depend on it)."""
    import torch

    kwargs = dict(kwargs)
    torch.set_num_threads(kwargs.pop("torch_threads"))
    label = ",".join(kwargs["methods"])

    def progress(msg: str) -> None:
        _print(f"[{label}] {msg}")

    return _run_methods(progress=progress, **kwargs)


def run_bench(dataset: Dataset, protocol: ProtocolConfig, methods: Sequence[str],
              seeds: Sequence[int], *, out_dir: Path | None = None, cache_dir: Path | None = None,
              settings: BenchSettings | None = None, augment_path: Path | None = None,
              validation: bool = False, progress: Progress = _print, encoder: Any = None,
              split: Split | None = None, jobs: int = 1) -> dict[str, dict]:
    """Run ``methods`` over ``seeds`` on ``dataset``; returns (and writes) one document per method.

    Args:
        validation: evaluate on the OLD-item validation split (for tuning) instead of the
            new items; result documents then carry ``"split_kind": "validation"`` and are not
            written to ``out_dir``.
        split: a precomputed split (default: ``split_dataset(dataset, protocol)``).
        encoder: an already loaded ``TextEncoder`` (tests); default loads one lazily (with
            ``jobs > 1`` it is pickled to each worker).
        jobs: worker processes; > 1 runs the :func:`method_units` in that many spawned
            processes (each method's result is the same as in one process: every method seeds
            itself and units never share state). Worker messages go to stdout, prefixed with
            their unit, not to ``progress``.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    settings = settings or BenchSettings()
    t_start = time.perf_counter()
    if split is None:
        split = split_dataset(dataset, protocol)
    if validation:
        split = validation_split(split, protocol)
    load_s = time.perf_counter() - t_start
    progress(f"{dataset.name}: {split.summary()}")
    _, llm, _ = load_augmentations(augment_path)
    common = {"dataset": dataset, "split": split, "seeds": list(seeds), "settings": settings,
              "augment_path": augment_path, "cache_dir": cache_dir, "validation": validation}
    units = method_units(methods)
    if jobs == 1 or len(units) == 1:
        runs = _run_methods(methods=list(methods), progress=progress, encoder=encoder, **common)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        import torch

        common["torch_threads"] = torch.get_num_threads()
        progress(f"{len(units)} work units on {min(jobs, len(units))} processes: "
                 + " | ".join(",".join(u) for u in units))
        runs = MethodRuns({}, {}, {})
        with ProcessPoolExecutor(min(jobs, len(units)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            for part in pool.map(_run_unit, [{"methods": u, "encoder": encoder, **common}
                                             for u in units]):
                runs.merge(part)
    shared_timing = {"load_split": load_s, "backbone": runs.backbone_s,
                     "backbone_cpu": runs.backbone_cpu_s}
    docs: dict[str, dict] = {}
    created = datetime.now(UTC).isoformat(timespec="seconds")
    split_info = split.summary()
    split_info["split_seed"] = int(protocol.seed)
    new_items = [str(i) for i in split.new_items]
    for name in methods:
        docs[name] = method_document(
            dataset, name, seeds=seeds, split_info=split_info, config=_run_config(
                name, settings, protocol), llm=llm, results=runs.per_method[name],
            not_run_reason=runs.not_run.get(name), new_items=new_items,
            shared_timing=shared_timing, reused_seeds=runs.reused[name], created=created,
            validation=validation)
        if out_dir is not None and not validation:
            write_document(out_dir, docs[name])
    progress(f"done in {time.perf_counter() - t_start:.1f}s, peak RSS {peak_memory_mb():.0f} MB")
    return docs


def _run_config(name: str, settings: BenchSettings, protocol: ProtocolConfig) -> dict[str, Any]:
    """The ``config`` block of a result document: method, backbone, encoder and protocol."""
    return {"method": make_method(name, settings).describe(),
            "backbone": settings.backbone.__dict__ | {"hidden": list(settings.backbone.hidden)},
            "encoder": settings.encoder.__dict__, "protocol": protocol.__dict__}


def run_registered(name: str, methods: Sequence[str], seeds: Sequence[int], *,
                   data_root: Path | None = None, **kwargs: Any) -> dict[str, dict]:
    """:func:`run_bench` on a registered dataset with its tuned settings."""
    entry = get_dataset_entry(name)
    dataset = entry.load(data_root)
    kwargs.setdefault("settings", BenchSettings.for_dataset(name))
    kwargs.setdefault("augment_path", default_augment_path(name))
    return run_bench(dataset, entry.protocol, methods, seeds, **kwargs)
