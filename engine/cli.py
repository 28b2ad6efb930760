"""The ``emerflow`` command line. Subcommand modules register themselves on the parser.

The dashboard is started with every server option passed explicitly: it binds 127.0.0.1
unless ``--address`` (or ``STREAMLIT_SERVER_ADDRESS``) says otherwise, listens on ``--port``,
else ``STREAMLIT_SERVER_PORT`` (checked: a bad value stops with one line), else 8501, runs
headless and shows users no tracebacks, from any directory. The same safe defaults sit in
``app/.streamlit/config.toml``, which Streamlit reads beside the script, so a plain
``streamlit run app/main.py`` from any directory binds 127.0.0.1 too. A failing command
(invalid ``EMERFLOW_*`` settings included) prints one ``error:`` line; the traceback goes to
``$EMERFLOW_HOME/logs/emerflow.log``.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import subprocess
import sys
import tomllib
import traceback
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
        try:
            ws = build_dataset_workspace(name, data_root=args.data_root,
                                         progress=_print_progress)
        except OSError as exc:
            print(f"error: workspace {name} not saved: {_os_reason(exc)}", file=sys.stderr)
            return 1
        print(
            f"built workspace {ws.name}: {ws.meta['split']} in "
            f"{sum(ws.meta['timings_s'].values()):.1f}s (model {ws.model_version})"
        )
    return 0


def _os_reason(exc: OSError) -> str:
    """One line for a storage failure (full disk, read-only folder, ...)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full — free some space and rerun ({exc.strerror or exc})"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the folder is not writable ({exc.filename or exc})"
    return str(exc)


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.build import open_workspace

    options = app_options(args.address, args.port)  # a bad port stops before the build
    for name in DEMO_DATASETS:
        ws = open_workspace(name, progress=_print_progress)
        print(f"{ws.dataset.label}: ready, model {ws.model_version}")
    if args.no_app:
        return 0
    return _run_app(options)


REPO_ROOT = Path(__file__).resolve().parents[1]
#: Options that make the dashboard safe wherever it is started (they win over config.toml).
SAFE_APP_OPTIONS: dict[str, str] = {
    "server.address": "127.0.0.1",
    "server.headless": "true",
    "server.runOnSave": "false",
    "server.fileWatcherType": "none",
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
    "browser.gatherUsageStats": "false",
}
DEFAULT_PORT = 8501
#: The app's Streamlit config (theme, safe server defaults), read by Streamlit beside the script.
APP_CONFIG = REPO_ROOT / "app" / ".streamlit" / "config.toml"


def _port(value: object, source: str) -> int:
    """``value`` as a TCP port (1-65535), else a one-line ValueError naming ``source``."""
    try:
        port = int(str(value).strip())
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError(f"{source} must be a port number from 1 to 65535, got {str(value)!r}")
    return port


def app_options(address: str | None = None, port: int | None = None,
                env: dict[str, str] | None = None) -> list[str]:
    """``streamlit run`` flags: the app's ``config.toml`` (theme...), then
    :data:`SAFE_APP_OPTIONS`, then the address and port asked for: ``address`` / ``port``
    when given, else ``STREAMLIT_SERVER_ADDRESS`` / ``STREAMLIT_SERVER_PORT`` from ``env``
    (default: the environment; Streamlit's own variables, honoured rather than silently
    overridden), else 127.0.0.1 and the config's port (8501).

    Raises:
        ValueError: a port that is not a number from 1 to 65535 (one line naming it).
    """
    env = dict(os.environ) if env is None else env
    opts: dict[str, str] = {}
    config = APP_CONFIG
    try:
        doc = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        doc = {}
    for section, values in doc.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if isinstance(value, bool):
                    value = str(value).lower()
                opts[f"{section}.{key}"] = str(value)
    opts.update(SAFE_APP_OPTIONS)
    if port is not None:
        opts["server.port"] = str(_port(port, "--port"))
    elif (env.get("STREAMLIT_SERVER_PORT") or "").strip():
        opts["server.port"] = str(_port(env["STREAMLIT_SERVER_PORT"], "STREAMLIT_SERVER_PORT"))
    else:
        opts["server.port"] = str(_port(opts.get("server.port", DEFAULT_PORT), str(config)))
    asked = (address or "").strip() or (env.get("STREAMLIT_SERVER_ADDRESS") or "").strip()
    if asked:
        opts["server.address"] = asked
    return [f"--{k}={v}" for k, v in opts.items()]


def _run_app(extra: Sequence[str]) -> int:
    main = REPO_ROOT / "app" / "main.py"
    if not main.is_file():
        print(f"error: the app entry point {main} is missing", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "streamlit", "run", str(main), *extra]
    return subprocess.call(cmd)


def _cmd_app(args: argparse.Namespace) -> int:
    return _run_app(app_options(args.address, args.port))


def _cmd_data_check(args: argparse.Namespace) -> int:
    from engine.data.check import check_data, format_report
    from engine.data.registry import data_root

    print(format_report(check_data(data_root(args.data_root))))
    return 0


def _cmd_rank(args: argparse.Namespace) -> int:
    from engine.batch import rank_items, read_items
    from engine.build import open_workspace
    from engine.knowledge import Knowledge, sources_from_env

    ws = open_workspace(args.workspace, build_if_missing=False)
    items = read_items(args.items)
    knowledge = Knowledge.load(sources_from_env(args.data_root))
    result = rank_items(ws, items, top=args.top, knowledge=knowledge, out=args.out,
                        progress=not args.quiet)
    n_ok = len(items) - len(result.errors)
    print(f"ranked {n_ok} of {len(items)} items ({result.resumed} from an earlier run) "
          f"-> {args.out} ({len(result.table)} rows)")
    for query, why in result.errors.items():
        print(f"skipped {query!r}: {why}", file=sys.stderr)
    return 0 if n_ok or not items else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emerflow", description="EmerFlow Studio")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the demo workspaces (first run) and open the app")
    p.add_argument("--no-app", action="store_true", help="only build/load the demo workspaces")
    _add_address(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("app", help="open the dashboard")
    _add_address(p)
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

    p = sub.add_parser("rank", help="rank the targets of many new items (batch; resumable)")
    p.add_argument("--workspace", required=True, help="workspace name, e.g. disgenet-curated")
    p.add_argument("--items", required=True, type=Path,
                   help="items file: .txt (one per line), .tsv/.csv (column item, optional "
                        "confirmed/rejected) or .json; names, CUIs, OMIM:/ORPHA:/MeSH ids or "
                        "movie titles")
    p.add_argument("--top", type=int, default=100, help="targets per item (default 100)")
    p.add_argument("--out", required=True, type=Path, help="output .tsv, .csv or .json")
    p.add_argument("--data-root", type=Path, default=None,
                   help="curated files for disease lookup and evidence (default: $EMERFLOW_DATA)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_rank)

    _register_optional(sub)
    return parser


def _add_address(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", default=None,
                   help=f"port (default $STREAMLIT_SERVER_PORT, else {DEFAULT_PORT})")
    p.add_argument("--address", default=None,
                   help="interface to listen on (default $STREAMLIT_SERVER_ADDRESS, else "
                        "127.0.0.1: this machine only)")


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


def _log_failure(exc: BaseException) -> Path | None:
    """Append the traceback to ``$EMERFLOW_HOME/logs/emerflow.log``; its path, or None."""
    try:
        from engine.settings import get_settings

        path = get_settings().home / "logs" / "emerflow.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except Exception:  # noqa: BLE001 - logging must never hide the original error
        return None


def main(argv: Sequence[str] | None = None) -> int:
    from engine.augment.providers import redact_text
    from engine.settings import get_settings

    try:  # first: building the parser reads the settings (default paths in the help)
        get_settings()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one readable line, details in the log
        logging.getLogger("emerflow").debug("command failed", exc_info=exc)
        where = _log_failure(exc)
        detail = f" (details in {where})" if where else ""
        print(f"error: {type(exc).__name__}: {redact_text(str(exc))[:300]}{detail}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
