"""``emerflow bench``: run the protocol benchmark, or render its results (``bench report``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.data.registry import DATASETS


def _cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import default_cache_dir, parse_methods, run_registered
    from engine.bench_report import load_results, markdown_table, write_report

    if not args.dataset:
        print("error: --dataset is required", flush=True)
        return 2
    methods = parse_methods(args.methods)
    seeds = list(range(args.seeds)) if args.seed_list is None else [
        int(s) for s in args.seed_list.split(",")]
    cache = args.cache_dir or default_cache_dir()
    extra = {"augment_path": args.augmented} if args.augmented is not None else {}
    run_registered(args.dataset, methods, seeds, data_root=args.data_root, out_dir=args.out,
                   cache_dir=cache, validation=args.validation, **extra)
    if args.validation:
        return 0
    directory = args.out / args.dataset
    table, chart = write_report(directory)
    docs = load_results(directory)
    print(markdown_table({m: d for m, d in docs.items() if m in methods}))
    if chart:
        print(f"chart: {chart}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from engine.bench_report import write_report

    names = [args.dataset] if args.dataset else sorted(
        p.name for p in args.out.iterdir() if p.is_dir()) if args.out.is_dir() else []
    if not names:
        print(f"no results under {args.out}")
        return 1
    for name in names:
        table, chart = write_report(args.out / name)
        print(f"## {name}\n\n{table}\n")
        if chart:
            print(f"chart: {chart}\n")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark methods on a dataset (protocol.md)")
    p.add_argument("--dataset", choices=list(DATASETS), default=None)
    p.add_argument("--methods", default="all", help="comma-separated method names, or 'all'")
    p.add_argument("--seeds", type=int, default=3, help="run seeds 0..N-1")
    p.add_argument("--seed-list", default=None, help="explicit comma-separated seeds")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder with movielens-1m/ and disgenet/ (default: $EMERFLOW_DATA)")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="checkpoints, encodings, finished runs (default $EMERFLOW_HOME/bench-cache)")
    p.add_argument("--augmented", type=Path, default=None,
                   help="LLM augmentation CSV (default $EMERFLOW_HOME/augment/<dataset>.csv)")
    p.add_argument("--validation", action="store_true",
                   help="evaluate on the old-item validation split (tuning; writes no results)")
    p.set_defaults(func=_cmd_bench)
    sub = p.add_subparsers(dest="bench_command")
    r = sub.add_parser("report", help="markdown table + Altair chart from result files")
    r.add_argument("--dataset", default=None)
    r.add_argument("--out", type=Path, default=Path("results"))
    r.set_defaults(func=_cmd_report)
