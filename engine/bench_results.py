"""Result documents of the benchmark: per-seed results as cached on disk, their summary over
seeds, the per-item and diversity blocks, the machine and resource figures, and the JSON
written to ``results/<dataset>/<method>.json``.

Part of :mod:`engine.bench` (the benchmark's public import point).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.baselines import METHODS
from engine.data.base import Dataset
from engine.metrics import (
    METRIC_KEYS,
    RANKING_KEYS,
)
from engine.schema import PHASES

#: Per-item metrics kept (seed mean) in result files for the paired bootstrap.
PER_ITEM_KEYS: tuple[str, ...] = ("ndcg@100", "recall@100")

#: Top-k of the diversity measure (mean pairwise Jaccard of new items' top-k at phase 0).
DIVERSITY_K = 20


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
    cores = usable_cores()
    return (f"{model}, {cores} cores, torch {torch.__version__} ({torch.get_num_threads()} "
            f"threads), {platform.system()} {platform.release()}")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all threads)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_memory_mb() -> float:
    """Peak resident set size of this process or of its largest finished child process (the
    parallel benchmark's workers), so far (``getrusage`` maxrss, Linux KiB)."""
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024.0


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


def phase_table(docs: Mapping[str, dict]) -> list[dict[str, Any]]:
    """Flat rows (method, phase, metric mean/std) of result documents."""
    rows = []
    for name, doc in docs.items():
        for phase, metrics in (doc.get("phases") or {}).items():
            for metric, s in metrics.items():
                rows.append({"method": name, "phase": phase, "metric": metric,
                             "mean": s.get("mean"), "std": s.get("std")})
    return rows


def method_document(dataset: Dataset, name: str, *, seeds: Sequence[int],
                    split_info: dict[str, Any], config: dict[str, Any], llm: dict | None,
                    results: Sequence[SeedResult], not_run_reason: str | None,
                    new_items: Sequence[str], shared_timing: Mapping[str, float],
                    reused_seeds: Sequence[int], created: str, validation: bool
                    ) -> dict[str, Any]:
    """The result document of one method (``results/<dataset>/<method>.json``).

    Args:
        results: the method's finished seeds (cached or run now); none, or a
            ``not_run_reason``, makes a ``"status": "not run"`` document with null figures.
        shared_timing: seconds spent on work all methods share (load + split, backbone),
            summed over seeds; divided by the number of seeds here.
        reused_seeds: seeds whose result came from the cache (their per-seed stages are the
            original run's).
    """
    spec = METHODS[name]
    doc: dict[str, Any] = {
        "dataset": dataset.name, "method": name, "seeds": [int(s) for s in seeds],
        "phases": {}, "split": split_info, "inputs": dict(dataset.inputs), "timing_s": {},
        "llm": llm if spec.uses_llm else None, "config": config,
        "backbone": spec.backbone, "probabilistic": spec.probabilistic,
        "machine": machine_description(), "created_at": created,
    }
    if validation:
        doc["split_kind"] = "validation"
    if not_run_reason is not None or not results:
        doc["status"] = "not run"
        doc["reason"] = not_run_reason if not_run_reason is not None else "no seed finished"
        doc["llm"] = None
        doc["phases"] = {p: {k: _summary([]) for k in METRIC_KEYS} for p in PHASES}
        doc["ranking"] = {p: {k: _summary([]) for k in RANKING_KEYS} for p in PHASES}
        doc["per_item"] = None
        doc["diversity"] = {f"top{DIVERSITY_K}_jaccard_phase0": None}
        return doc
    doc["status"] = "ok"
    ran = [p for p in PHASES if p in results[0].phases]
    doc["phases"] = {p: {k: _summary([r.phases[p][k] for r in results])
                         for k in METRIC_KEYS} for p in ran}
    doc["ranking"] = {p: {k: _summary([r.phases[p].get(k, float("nan")) for r in results])
                          for k in RANKING_KEYS} for p in ran}
    doc["per_item"] = _per_item_block(new_items, results)
    div = [r.diversity.get(f"top{DIVERSITY_K}_jaccard_phase0", float("nan")) for r in results]
    doc["diversity"] = {f"top{DIVERSITY_K}_jaccard_phase0": _summary(div)["mean"],
                        f"top{DIVERSITY_K}_jaccard_phase0_per_seed": _summary(div)["per_seed"]}
    stages = sorted({s for r in results for s in r.timing_s})
    doc["timing_s"] = {f"{s}_per_seed": float(np.mean([r.timing_s.get(s, 0.0) for r in results]))
                       for s in stages}
    doc["timing_s"].update({"shared_" + k: v / max(len(seeds), 1)
                            for k, v in shared_timing.items()})
    doc["timing_s"]["peak_rss_mb"] = peak_memory_mb()
    # Per-seed stages of reused seeds are the original run's; the shared_* times and peak RSS
    # are this process's, so they do not cover those seeds.
    doc["timing_s"]["seeds_reused_from_cache"] = list(reused_seeds)
    return doc


def write_document(out_dir: Path, doc: Mapping[str, Any]) -> Path:
    """Write ``doc`` to ``out_dir/<dataset>/<method>.json``; returns that path."""
    target = out_dir / doc["dataset"] / f"{doc['method']}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(doc, indent=1) + "\n")
    return target
