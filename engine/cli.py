"""The ``emerflow`` command line. Subcommand modules register themselves on the parser."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.data.demo import DEMO_DATASETS
from engine.data.registry import DATASETS


def _print_progress(stage: str, frac: float, message: str) -> None:
    print(f"[{stage:8s} {frac * 100:5.1f}%] {message}", flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    from engine.build import build_dataset_workspace

    names = list(DEMO_DATASETS) if args.dataset == "demo" else [args.dataset]
    for name in names:
        ws = build_dataset_workspace(name, data_root=args.data_root, progress=_print_progress)
        print(
            f"built workspace {ws.name}: {ws.meta['split']} in "
            f"{sum(ws.meta['timings_s'].values()):.1f}s (model {ws.model_version})"
        )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.build import open_workspace

    for name in DEMO_DATASETS:
        ws = open_workspace(name, progress=_print_progress)
        print(f"{ws.dataset.label}: ready, model {ws.model_version}")
    if args.no_app:
        return 0
    return _run_app([])


def _run_app(extra: Sequence[str]) -> int:
    main = Path(__file__).resolve().parents[1] / "app" / "main.py"
    if not main.is_file():
        print(f"error: the app entry point {main} is missing", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "streamlit", "run", str(main), *extra]
    return subprocess.call(cmd)


def _cmd_app(args: argparse.Namespace) -> int:
    extra = ["--server.port", str(args.port), "--server.address", args.address]
    return _run_app(extra)


def _cmd_data_check(args: argparse.Namespace) -> int:
    from engine.data.check import check_data, format_report
    from engine.data.registry import data_root

    print(format_report(check_data(data_root(args.data_root))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emerflow", description="EmerFlow Studio")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the demo workspaces (first run) and open the app")
    p.add_argument("--no-app", action="store_true", help="only build/load the demo workspaces")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("app", help="open the dashboard")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=_cmd_app)

    p = sub.add_parser("build", help="train and save the workspace of a dataset")
    p.add_argument("--dataset", required=True, choices=[*DATASETS, "demo"])
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder with movielens-1m/ and disgenet/ (default: $EMERFLOW_DATA)",
    )
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("data", help="inspect datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    c = dsub.add_parser("check", help="what was found, counts and checksums")
    c.add_argument("--data-root", type=Path, default=None)
    c.set_defaults(func=_cmd_data_check)

    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction) -> None:
    """Subcommands contributed by other engine modules (augment, bench, ...)."""
    import importlib

    from engine.data.registry import get_dataset_entry

    def load_dataset(name: str):
        return get_dataset_entry(name).load(None)

    from engine.augment import cli as augment_cli

    augment_cli.register(sub, load_dataset)
    try:
        bench_cli = importlib.import_module("engine.bench_cli")
    except ModuleNotFoundError as exc:
        if exc.name != "engine.bench_cli":
            raise
    else:
        bench_cli.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
