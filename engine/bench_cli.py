"""``emerflow bench``: run the protocol benchmark, or render its results (``bench report``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.data.registry import DATASETS


def _cmd_bench(args: argparse.Namespace) -> int:
    from engine.bench import default_cache_dir, default_jobs, parse_methods, run_registered
    from engine.bench_report import load_results, report_markdown, write_report

    if not args.dataset:
        print("error: --dataset is required", flush=True)
        return 2
    methods = parse_methods(args.methods)
    seeds = list(range(args.seeds)) if args.seed_list is None else [
        int(s) for s in args.seed_list.split(",")]
    cache = args.cache_dir or default_cache_dir()
    extra = {"augment_path": args.augmented} if args.augmented is not None else {}
    if args.augment:
        code = _augment_first(args)
        if code:
            return code
    if args.jobs is not None and args.jobs < 1:
        print(f"error: --jobs must be >= 1, got {args.jobs}", flush=True)
        return 2
    run_registered(args.dataset, methods, seeds, data_root=args.data_root, out_dir=args.out,
                   cache_dir=cache, validation=args.validation,
                   jobs=args.jobs if args.jobs is not None else default_jobs(), **extra)
    if args.validation:
        return 0
    directory = args.out / args.dataset
    table, chart = write_report(directory)
    docs = load_results(directory)
    print(report_markdown({m: d for m, d in docs.items() if m in methods}, args.dataset))
    if chart:
        print(f"chart: {chart}")
    return 0


def _augment_first(args: argparse.Namespace) -> int:
    """``bench --augment``: (re)augment the split's items with the configured LLM first.

    The LLM is whatever ``EMERFLOW_LLM_PROVIDER``/``EMERFLOW_LLM_MODEL``/``OPENAI_BASE_URL``
    name, so pointing those at a stronger model and rerunning this one command redoes the LLM
    variants. Answers already cached for that model are not asked again.
    """
    import sys

    from engine.augment import AugmentationError, JsonlCache, LLMSettings, make_provider
    from engine.augment.batch import augment_dataset
    from engine.augment.cli import default_cache_path, progress_printer
    from engine.bench_setup import augment_output_path
    from engine.data.registry import get_dataset_entry

    try:
        settings = LLMSettings.from_env()
        provider = make_provider(settings)
    except (ValueError, AugmentationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not provider.enabled:
        print("error: --augment needs an LLM provider (EMERFLOW_LLM_PROVIDER is 'none')",
              file=sys.stderr)
        return 2
    dataset = get_dataset_entry(args.dataset).load(args.data_root)
    out = args.augmented or augment_output_path(args.dataset)
    features = [f for f in args.features.split(",") if f.strip()] if args.features else None

    try:
        result = augment_dataset(provider, dataset, out, JsonlCache(default_cache_path()),
                                 settings=settings.public_dict(), features=features,
                                 n_suggest=args.n_suggest,
                                 progress=progress_printer("augmenting: "))
    except (AugmentationError, ValueError) as exc:
        print(f"\nerror: augmentation failed: {exc}", file=sys.stderr)
        return 2
    print(f"\naugmented {result.summary['items'] - result.failed}/{result.summary['items']} "
          f"items with {provider.name}:{provider.model} -> {out}", file=sys.stderr)
    return 0


def _cmd_save_augmentations(args: argparse.Namespace) -> int:
    """``bench save-augmentations``: copy ``$EMERFLOW_HOME/augment/<dataset>.csv`` (or
    ``--from``) to ``results/<dataset>/llm-augmentations.csv`` with its provenance sidecar, so
    the LLM variants rerun from the committed values on any machine. For a movie dataset each
    item's own title is blanked from its values (MovieLens forbids redistribution)."""
    import json

    from engine.bench_setup import (
        augment_output_path,
        committed_augment_path,
        save_augmentations,
    )
    from engine.data.registry import get_dataset_entry
    from engine.schema import MOVIE

    source = args.source or augment_output_path(args.dataset)
    dest = committed_augment_path(args.dataset, args.out)
    try:
        data = get_dataset_entry(args.dataset).load(args.data_root)
        doc = save_augmentations(args.dataset, source, dest, data.items,
                                 blank_titles=data.domain == MOVIE)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=1))
    print(f"wrote {dest} ({dest.stat().st_size} bytes) and {dest.with_suffix('.json').name}")
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
        if name.startswith("disgenet"):
            _phenotype_subsets(args.out / name)
    return 0


def _phenotype_subsets(folder: Path) -> None:
    """Append to ``report.md`` each EmerFlow result's Recall/NDCG@100 on the new diseases with
    HPO phenotypes (issue 12's comparison of emerflow-kb with emerflow-nollm), when the curated
    files are reachable through EMERFLOW_DATA. Computed from the result files' ``per_item``
    blocks, so it is a view of them, not a result file of its own."""
    import json

    from engine.baselines.kb import kb_data_root, phenotype_subset

    root = kb_data_root()
    if root is None:
        print("phenotype subset: skipped (set EMERFLOW_DATA to the folder with hpo/)")
        return
    rows = []
    for path in sorted(folder.glob("emerflow*.json")):
        doc = json.loads(path.read_text())
        if doc.get("status") != "ok" or not doc.get("per_item"):
            continue
        res = phenotype_subset(doc, root)
        ph0 = res["phases"].get("0", {})
        rows.append(f"| {doc['method']} | {res['n_with_phenotypes']}/{res['n_items']} | "
                    f"{ph0.get('recall@100', float('nan')):.4f} | "
                    f"{ph0.get('ndcg@100', float('nan')):.4f} | "
                    f"{ph0.get('recall@100 without phenotypes', float('nan')):.4f} |")
    if rows:
        table = ("\n### Phase 0 on the new diseases with HPO phenotypes\n\n"
                 "| method | items with phenotypes | Recall@100 | NDCG@100 | "
                 "Recall@100 (items without) |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
        report = folder / "report.md"
        report.write_text(report.read_text() + table if report.is_file() else table)
        print(table)

def parse_budget(text: str | None) -> dict[str, float]:
    """``"n_estimators=50,num_leaves=31"`` -> ``{"n_estimators": 50.0, "num_leaves": 31.0}``.

    Raises:
        ValueError: an entry that is not ``name=number``.
    """
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"expected name=number, got {part.strip()!r}") from None
    return out


def _cmd_tune(args: argparse.Namespace) -> int:
    import json

    from engine.bench import (
        TUNE_METRIC,
        BenchSettings,
        default_cache_dir,
        parse_methods,
        tune,
    )
    from engine.bench_tune import VALIDATION_SETS
    from engine.data.registry import get_dataset_entry

    if args.trials <= 0:
        print("error: --trials must be > 0", flush=True)
        return 2
    try:
        budget = parse_budget(args.budget)
    except ValueError as exc:
        print(f"error: --budget: {exc}", flush=True)
        return 2
    entry = get_dataset_entry(args.dataset)
    dataset = entry.load(args.data_root)
    methods = parse_methods(args.methods)
    result = tune(dataset, entry.protocol, methods, trials=args.trials, seed=args.seed,
                  settings=BenchSettings.for_dataset(args.dataset),
                  cache_dir=args.cache_dir or default_cache_dir(),
                  validation=args.validation_set, budget=budget)
    small = args.validation_set == "small"
    out = args.out / args.dataset / ("tuning-small.json" if small else "tuning.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": args.dataset, "split": VALIDATION_SETS[args.validation_set],
           "criterion": f"mean validation {TUNE_METRIC.upper()} over phases "
                        + ("0-II" if small else "0-III"),
           "trials_per_method": args.trials, "seed": args.seed,
           "command": "emerflow bench tune " + " ".join(
               [f"--dataset {args.dataset}", f"--methods {args.methods}",
                f"--trials {args.trials}", f"--seed {args.seed}"]
               + (["--validation-set small"] if small else [])
               + ([f"--budget {args.budget}"] if args.budget else [])),
           "methods": result}
    previous = {}
    if out.is_file():  # other methods' rounds under the same criterion and budget are kept
        try:
            old = json.loads(out.read_text())
            if (old.get("criterion"), old.get("trials_per_method")) == (
                    doc["criterion"], doc["trials_per_method"]):
                previous = old.get("methods", {})
        except (OSError, ValueError):
            previous = {}
    doc["methods"] = {**previous, **result}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    best = {m: r["best"] for m, r in result.items() if r.get("best") is not None}
    print("chosen settings (copy into engine/tuned.py DATASET_SETTINGS"
          f"[{args.dataset!r}]['methods']):")
    print(json.dumps(best, indent=1))
    print(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark methods on a dataset (protocol.md)",
                              allow_abbrev=False)  # `tune --seed` is not `bench --seeds`
    p.add_argument("--dataset", choices=list(DATASETS), default=None)
    p.add_argument("--methods", default="all", help="comma-separated method names, or 'all'")
    p.add_argument("--seeds", type=int, default=3, help="run seeds 0..N-1")
    p.add_argument("--seed-list", default=None, help="explicit comma-separated seeds")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder with movielens-1m/ and disgenet/ (default: $EMERFLOW_DATA)")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="checkpoints, encodings, finished runs "
                   "(default $EMERFLOW_HOME/bench-cache)")
    p.add_argument("--augmented", type=Path, default=None,
                   help="LLM augmentation CSV (default $EMERFLOW_HOME/augment/<dataset>.csv "
                   "when present, else the committed results/<dataset>/llm-augmentations.csv)")
    p.add_argument("--augment", action="store_true",
                   help="first augment the split's items with the configured LLM "
                   "($EMERFLOW_LLM_PROVIDER, $EMERFLOW_LLM_MODEL, $OPENAI_BASE_URL; cached)")
    p.add_argument("--features", default=None,
                   help="with --augment: comma-separated features to fill (default: the LLM "
                   "suggests them)")
    p.add_argument("--n-suggest", type=int, default=8,
                   help="with --augment: features the LLM is asked to suggest")
    p.add_argument("--validation", action="store_true",
                   help="evaluate on the old-item validation split (tuning; writes no results)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes over the methods' work units (default: 2 on 2 or 3 "
                   "cores, half the cores above; 1 runs everything in this process); the "
                   "results are the same")
    p.set_defaults(func=_cmd_bench)
    sub = p.add_subparsers(dest="bench_command")
    r = sub.add_parser("report", help="markdown table + Altair chart from result files")
    r.add_argument("--dataset", default=None)
    r.add_argument("--out", type=Path, default=Path("results"))
    r.set_defaults(func=_cmd_report)
    a = sub.add_parser("save-augmentations",
                       help="copy an `emerflow augment` output to results/<dataset>/"
                       "llm-augmentations.csv (+ .json provenance) for committing; movie "
                       "datasets: each item's own title is blanked from its values")
    a.add_argument("--dataset", choices=list(DATASETS), required=True)
    a.add_argument("--from", dest="source", type=Path, default=None,
                   help="augmentation CSV (default $EMERFLOW_HOME/augment/<dataset>.csv)")
    a.add_argument("--out", type=Path, default=Path("results"))
    a.add_argument("--data-root", type=Path, default=None,
                   help="the datasets (default $EMERFLOW_DATA): counts values copied from them")
    a.set_defaults(func=_cmd_save_augmentations)
    t = sub.add_parser("tune", help="choose every method's settings on the OLD-item validation "
                       "split (the same number of trials per method)")
    t.add_argument("--dataset", choices=list(DATASETS), required=True)
    t.add_argument("--methods", default="all", help="comma-separated method names, or 'all'")
    t.add_argument("--trials", type=int, default=12,
                   help="validation trials per method, drawn from its grid (default 12)")
    t.add_argument("--seed", type=int, default=0, help="backbone seed and trial draw seed")
    t.add_argument("--data-root", type=Path, default=None)
    t.add_argument("--out", type=Path, default=Path("results"))
    t.add_argument("--cache-dir", type=Path, default=None)
    t.add_argument("--validation-set", choices=("old", "small"), default="old",
                   help="old: held-out old items (default); small: the items below the "
                        "new-item minimum, scored against all old items")
    t.add_argument("--budget", default=None,
                   help="maxima of settings the choice must respect, e.g. n_estimators=50 "
                        "(every trial still runs and is recorded)")
    t.set_defaults(func=_cmd_tune)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.bench_cli bench ...``: the same commands without the full CLI."""
    parser = argparse.ArgumentParser(prog="emerflow")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from engine.settings import get_settings

    try:
        get_settings()  # an invalid environment value: one clear line, before any work
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
