"""Tuning on the OLD-item validation split: the same number of validation trials per method,
drawn from its ``grid``, chosen by validation NDCG@100 (protocol.md); the chosen settings live
in ``engine.tuned``.

Part of :mod:`engine.bench` (the benchmark's public import point).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.baselines import METHODS, BenchContext, Method, MethodNotAvailable
from engine.bench_results import _json_float
from engine.bench_runner import run_phases
from engine.bench_setup import (
    BenchSettings,
    Progress,
    TextVectors,
    _digest,
    _print,
    pretrained_backbone,
    split_tables,
)
from engine.config import PaperConfig
from engine.data.base import Dataset
from engine.data.protocol import (
    ProtocolConfig,
    small_item_split,
    split_dataset,
    validation_split,
)

#: Validation trials per method (the same budget for every method; protocol.md).
DEFAULT_TRIALS = 12

#: Validation sets :func:`tune` knows: held-out old items, or the items below the new-item
#: minimum (``small``).
VALIDATION_SETS: dict[str, str] = {
    "old": "validation (old items only)",
    "small": "validation (items below the new-item minimum, scored against all old items)",
}

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


def within_budget(settings: Mapping[str, Any], budget: Mapping[str, float] | None) -> bool:
    """Whether a trial's ``settings`` stay at or below every maximum of ``budget`` (a setting
    the trial does not set counts as within)."""
    return all(float(settings[k]) <= float(v) for k, v in (budget or {}).items()
               if k in settings)


def best_trial(records: Sequence[Mapping[str, Any]],
               budget: Mapping[str, float] | None = None) -> Mapping[str, Any]:
    """The trial with the best validation score (ties: the higher Recall@100) among those
    :func:`within_budget`.

    Raises:
        ValueError: no trial within the budget.
    """
    fits = [t for t in records if within_budget(t["settings"], budget)]
    if not fits:
        raise ValueError(f"no trial within the budget {dict(budget or {})}")
    return max(fits, key=lambda t: (t["score"], t["tie_break_recall@100"]))


def tune(dataset: Dataset, protocol: ProtocolConfig, methods: Sequence[str], *,
         trials: int = DEFAULT_TRIALS, seed: int = 0, settings: BenchSettings | None = None,
         cache_dir: Path | None = None, progress: Progress = _print, encoder: Any = None,
         validation: str = "old", budget: Mapping[str, float] | None = None
         ) -> dict[str, Any]:
    """Choose each method's settings on the OLD-item validation split (``validation_split``):
    held-out old items play the new items and the backbone is pretrained on the remaining old
    items only. New items are never touched.

    Every method gets the same budget: ``trials`` settings drawn by :func:`grid_trials` from
    its ``grid`` (methods with a smaller grid run all of it), each run through the phases once
    (a method is fitted once per distinct value of the settings ``fit`` reads; trials that
    differ only in ``phase_settings`` reuse that fit through ``Method.with_settings``).
    Criterion: mean validation NDCG@100 over phases 0..III (ties: Recall@100).

    ``validation="small"`` tunes on :func:`engine.data.protocol.small_item_split` instead: the
    items below the new-item minimum play the new items against ALL old items (phases 0..II);
    protocol.md allows them as validation tasks, and they resemble new items more than
    held-out old items do.

    ``budget``: maxima of settings a product must respect (the learned ranker's trees, which
    its build time grows with): every trial still runs and is recorded, ``best`` is the best
    trial within the budget and ``best_without_budget`` the overall best when they differ.

    Returns ``{method: {"best": {...}, "trials": [{"settings", "val": {phase: {metric}},
    "score"}]}}`` (not run methods: ``{"best": None, "reason": ...}``).

    Raises:
        ValueError: an unknown ``validation``.
    """
    settings = settings or BenchSettings()
    if validation not in VALIDATION_SETS:
        raise ValueError(f"unknown validation set {validation!r}; known: {list(VALIDATION_SETS)}")
    if validation == "small":
        split = small_item_split(dataset, protocol)
    else:
        split = validation_split(split_dataset(dataset, protocol), protocol)
    progress(f"{dataset.name} validation split: {split.summary()}")
    item_fields, target_fields, tables, needed = split_tables(dataset, split, settings.backbone)
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
        best = best_trial(records, budget)
        progress(f"  {name}: best {best['settings']} val NDCG@100 {best['score']:.4f}")
        out[name] = {"best": best["settings"], "trials": records}
        applies = {k: v for k, v in (budget or {}).items()
                   if any(k in t["settings"] for t in records)}
        if applies:
            out[name]["budget"] = applies
            unconstrained = best_trial(records)
            if unconstrained is not best:
                out[name]["best_without_budget"] = unconstrained["settings"]
                progress(f"  {name}: without the budget {unconstrained['settings']} "
                         f"val NDCG@100 {unconstrained['score']:.4f}")
    return out
