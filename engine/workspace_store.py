"""Saving and loading a :class:`engine.workspace.Workspace`: ``state_dict`` files plus JSON.

A save is atomic (a temporary sibling directory renamed into place); a load uses
``weights_only=True`` and names what to do when a file is damaged.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path

import pandas as pd

from engine.config import WorkspaceConfig
from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.index import ItemIndex
from engine.ranking.registry import ranker_entry
from engine.schema import ITEM_ID, LABEL, ORDER, TARGET_ID, FeatureSpec
from engine.settings import emerflow_home
from engine.text.encoder import TextEncoder
from engine.training_data import TrainingData
from engine.workspace import Workspace

#: 2: one product ranker (``ranker`` block); 1 held the DeepFM backbone and aligner too.
FORMAT_VERSION = 2
_SPLIT_PARTS = ("train", "I", "II", "III", "test")


def workspaces_dir() -> Path:
    """``$EMERFLOW_HOME/workspaces``."""
    return emerflow_home() / "workspaces"


def workspace_exists(directory: Path) -> bool:
    """A saved workspace is there, or a complete previous copy that a save killed between
    its two renames left aside (:func:`load_workspace` puts it back)."""
    directory = Path(directory)
    if (directory / "workspace.json").is_file():
        return True
    return any((old / "workspace.json").is_file()
               for old in directory.parent.glob(f".{directory.name}.old-*"))


class WorkspaceDamagedError(ValueError):
    """A saved workspace cannot be read; the message says how to rebuild it."""


def _specs_to_json(specs: list[FeatureSpec]) -> list[dict]:
    return [{"name": s.name, "kind": s.kind, "descriptor": s.descriptor,
             "backbone": s.backbone, "text": s.text} for s in specs]


def _split_part(split: Split, part: str) -> pd.DataFrame:
    if part == "train":
        return split.train
    if part == "test":
        return split.test
    return split.phases[part]


def save_workspace(ws: Workspace, directory: Path) -> None:
    """Write the ranker's files, JSON config, tables and the index into ``directory``,
    atomically.

    Everything is written into a temporary sibling directory, flushed to disk, and then
    renamed into place (the previous workspace is renamed aside first and removed after),
    so a process killed at any moment leaves either the old or the new workspace complete;
    :func:`load_workspace` puts an old copy back if the kill fell between the two renames.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _recover_workspace(directory)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        _write_files(ws, tmp)
        _fsync_tree(tmp)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        _fsync_dir(directory.parent)
    except RuntimeError as exc:  # torch.save reports a failed write as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        if "write" in str(exc).lower():
            raise OSError(errno.ENOSPC, f"could not write the workspace into {directory.parent}"
                          " (disk full or failing); the previous copy is untouched") from exc
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_files(ws: Workspace, directory: Path) -> None:
    ranker_info = ws.ranker.save(directory)
    ws.dataset.items.to_parquet(directory / "items.parquet")
    ws.dataset.targets.to_parquet(directory / "targets.parquet")
    for part in _SPLIT_PARTS:
        _split_part(ws.split, part).to_parquet(directory / f"split_{part}.parquet")
    ws.index.save(directory / "index.faiss")
    ws.encoder.save_cache(directory / "text_cache.npz")
    doc = {
        "format_version": FORMAT_VERSION,
        "config": ws.config.to_dict(),
        "dataset": {
            "name": ws.dataset.name,
            "domain": ws.dataset.domain,
            "synthetic": ws.dataset.synthetic,
            "positives_only": ws.dataset.positives_only,
            "inputs": ws.dataset.inputs,
            "item_features": _specs_to_json(ws.dataset.item_features),
            "target_features": _specs_to_json(ws.dataset.target_features),
        },
        "split": {"old_items": list(ws.split.old_items), "new_items": list(ws.split.new_items)},
        "index_ids": ws.index.ids,
        "ranker": {"kind": ws.ranker.kind, **ranker_info},
        "meta": ws.meta,
    }
    (directory / "workspace.json").write_text(json.dumps(doc, indent=1))


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _recover_workspace(directory: Path) -> None:
    """Put back the previous copy of a workspace whose save was killed between its renames,
    and remove leftovers of killed saves."""
    parent = directory.parent
    if not parent.is_dir():
        return
    olds = sorted(parent.glob(f".{directory.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not (directory / "workspace.json").is_file():
        for old in reversed(olds):
            if (old / "workspace.json").is_file():
                if directory.exists():
                    shutil.rmtree(directory, ignore_errors=True)
                os.replace(old, directory)
                olds.remove(old)
                break
    for leftover in [*olds, *parent.glob(f".{directory.name}.tmp-*")]:
        prefix = f".{directory.name}.tmp-"
        if leftover.name.startswith(prefix):
            pid = leftover.name[len(prefix):].split("-")[0]
            if pid.isdigit() and _alive(int(pid)):
                continue  # another process is saving right now
        shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def load_workspace(directory: Path, encoder: TextEncoder | None = None) -> Workspace:
    """Load a workspace saved by :func:`save_workspace` (``weights_only=True``).

    Raises:
        FileNotFoundError: no workspace was saved in ``directory``.
        WorkspaceDamagedError: a file of it is missing, truncated or unreadable, or it was
            saved by an older version; the message says "rebuild with `emerflow build
            --dataset NAME`".
    """
    directory = Path(directory)
    try:
        _recover_workspace(directory)
    except OSError:
        pass  # a read-only home: load what is there
    doc_path = directory / "workspace.json"
    if not doc_path.is_file():
        raise FileNotFoundError(f"{doc_path}: no workspace here (build it first)")
    try:
        return _load_workspace_files(directory, doc_path, encoder)
    except Exception as exc:  # noqa: BLE001 - every way a file can be damaged
        raise WorkspaceDamagedError(
            f"workspace {directory.name} damaged ({type(exc).__name__}: "
            f"{str(exc)[:200]}) — rebuild with `emerflow build --dataset {directory.name}`"
        ) from exc


def _load_workspace_files(
    directory: Path, doc_path: Path, encoder: TextEncoder | None
) -> Workspace:
    doc = json.loads(doc_path.read_text())
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{doc_path}: format_version {doc.get('format_version')} was written "
                         f"by another version of EmerFlow Studio (this one reads "
                         f"{FORMAT_VERSION})")
    config = WorkspaceConfig.from_dict(doc["config"])
    d = doc["dataset"]
    parts = {p: pd.read_parquet(directory / f"split_{p}.parquet") for p in _SPLIT_PARTS}
    empty = pd.DataFrame(columns=[ITEM_ID, TARGET_ID, LABEL, ORDER])
    dataset = Dataset(
        name=d["name"],
        domain=d["domain"],
        items=pd.read_parquet(directory / "items.parquet"),
        targets=pd.read_parquet(directory / "targets.parquet"),
        interactions=empty,
        item_features=[FeatureSpec(**r) for r in d["item_features"]],
        target_features=[FeatureSpec(**r) for r in d["target_features"]],
        inputs=d.get("inputs", {}),
        synthetic=d["synthetic"],
        positives_only=d["positives_only"],
    )
    split = Split(
        old_items=doc["split"]["old_items"],
        new_items=doc["split"]["new_items"],
        train=parts["train"],
        phases={p: parts[p] for p in ("I", "II", "III")},
        test=parts["test"],
    )
    info = dict(doc["ranker"])
    ranker = ranker_entry(info.pop("kind")).load(directory, info, TrainingData(dataset, split))
    if encoder is None:
        encoder = TextEncoder(config.encoder, cache_path=directory / "text_cache.npz")
    index = ItemIndex.load(directory / "index.faiss", doc["index_ids"])
    return Workspace(config=config, dataset=dataset, split=split, encoder=encoder,
                     ranker=ranker, index=index, meta=doc.get("meta", {}))
