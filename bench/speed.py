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
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

import engine  # noqa: F401  (first: sets the OpenMP defaults before torch loads)
from bench.speed_common import (  # noqa: F401  (re-exported: python -m bench.speed's names)
    DEFAULT_OUT,
    QUICK_DATASETS,
    REAL_DATASETS,
    SECTIONS,
    TARGETS,
    _git,
    get_workspace,
    loadavg,
    log,
    machine_info,
    new_item_features,
    product_ranker,
    ranker_kinds,
    settings_paths,
    uncache,
)
from bench.speed_latency import (  # noqa: F401
    EvidenceContext,
    ScoreCounter,
    bench_build,
    bench_feedback,
    bench_predict,
    decisions_for,
)
from bench.speed_report import evaluate, print_table, summary_rows  # noqa: F401
from bench.speed_scale import (  # noqa: F401
    bench_encode,
    bench_index,
    bench_scale_targets,
    synthetic_target_workspace,
    text_knn_recall,
)


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
