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

This module is the benchmark's import point; the code lives in one module per concern:
:mod:`engine.bench_setup` (settings, augmentations, text vectors, the cached backbone, the
split's tables), :mod:`engine.bench_runner` (the phases and the run over seeds),
:mod:`engine.bench_results` (per-seed results, summaries, the JSON documents) and
:mod:`engine.bench_tune` (validation tuning).
"""

from __future__ import annotations

from engine.bench_results import (
    DIVERSITY_K,
    PER_ITEM_KEYS,
    SeedResult,
    cpu_seconds,
    machine_description,
    method_document,
    peak_memory_mb,
    phase_table,
    write_document,
)
from engine.bench_runner import (
    PhaseRun,
    default_jobs,
    method_units,
    run_bench,
    run_phases,
    run_registered,
)
from engine.bench_setup import (
    CACHE_VERSION,
    BenchSettings,
    Progress,
    TextVectors,
    default_augment_path,
    default_cache_dir,
    load_augmentations,
    make_method,
    parse_methods,
    pretrained_backbone,
    split_tables,
)
from engine.bench_tune import DEFAULT_TRIALS, TUNE_METRIC, grid_trials, tune

# Re-exported for callers that imported the tuned settings from here (engine/build.py).
from engine.tuned import DATASET_SETTINGS, emerflow_workspace_config

__all__ = [
    "BenchSettings",
    "CACHE_VERSION",
    "DATASET_SETTINGS",
    "DEFAULT_TRIALS",
    "DIVERSITY_K",
    "PER_ITEM_KEYS",
    "PhaseRun",
    "Progress",
    "SeedResult",
    "TUNE_METRIC",
    "TextVectors",
    "cpu_seconds",
    "default_augment_path",
    "default_cache_dir",
    "default_jobs",
    "emerflow_workspace_config",
    "grid_trials",
    "load_augmentations",
    "machine_description",
    "make_method",
    "method_document",
    "method_units",
    "parse_methods",
    "phase_table",
    "peak_memory_mb",
    "pretrained_backbone",
    "run_bench",
    "run_phases",
    "run_registered",
    "split_tables",
    "tune",
    "write_document",
]
