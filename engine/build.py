"""Build (or load) the workspace of a registered dataset under ``$EMERFLOW_HOME/workspaces``."""

from __future__ import annotations

from pathlib import Path

from engine.config import WorkspaceConfig
from engine.data.protocol import split_dataset
from engine.data.registry import get_dataset_entry
from engine.text.encoder import TextEncoder
from engine.workspace import Workspace
from engine.workspace_build import ProgressFn, build_workspace
from engine.workspace_store import (
    load_workspace,
    save_workspace,
    workspace_exists,
    workspaces_dir,
)


def workspace_dir(name: str, home: Path | None = None) -> Path:
    """Directory of the workspace for dataset ``name``."""
    return (home / "workspaces" if home else workspaces_dir()) / name


def build_dataset_workspace(
    name: str,
    *,
    config: WorkspaceConfig | None = None,
    data_root: Path | None = None,
    encoder: TextEncoder | None = None,
    progress: ProgressFn | None = None,
    home: Path | None = None,
) -> Workspace:
    """Load, split, train and save the workspace of a registered dataset."""
    entry = get_dataset_entry(name)
    if config is None:
        from engine.tuned import emerflow_workspace_config

        config = emerflow_workspace_config(name)
    if config.dataset != name:
        raise ValueError(f"config is for dataset {config.dataset!r}, not {name!r}")
    if progress:
        progress("load", 0.0, f"loading {name}")
    dataset = entry.load(data_root)
    split = split_dataset(dataset, entry.protocol)
    if progress:
        progress("load", 1.0, f"split: {split.summary()}")
    directory = workspace_dir(name, home)
    if encoder is None:
        directory.mkdir(parents=True, exist_ok=True)
        encoder = TextEncoder(config.encoder, cache_path=directory / "text_cache.npz")
    ws = build_workspace(dataset, split, config, encoder, progress)
    save_workspace(ws, directory)
    return ws


def open_workspace(
    name: str,
    *,
    build_if_missing: bool = True,
    data_root: Path | None = None,
    encoder: TextEncoder | None = None,
    progress: ProgressFn | None = None,
    home: Path | None = None,
) -> Workspace:
    """Load the saved workspace of ``name``; build it first when missing (if allowed)."""
    directory = workspace_dir(name, home)
    if workspace_exists(directory):
        return load_workspace(directory, encoder)
    if not build_if_missing:
        raise FileNotFoundError(f"workspace {name!r} not built yet ({directory})")
    return build_dataset_workspace(
        name, data_root=data_root, encoder=encoder, progress=progress, home=home
    )
