"""``emerflow data check``: load every real dataset found, report files, hashes and split counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.data.base import Dataset
from engine.data.disgenet import load_disgenet_dir
from engine.data.movielens import load_movielens
from engine.data.protocol import (
    DISGENET_PROTOCOL,
    MOVIELENS_PROTOCOL,
    ProtocolConfig,
    split_dataset,
)
from engine.schema import LABEL


def _known(root: Path) -> list[tuple[str, Path, Callable[[], Dataset], ProtocolConfig]]:
    """(folder label, folder, loader, protocol) of each dataset folder present under ``root``."""
    found = []
    if (root / "movielens-1m").is_dir():
        found.append(
            (
                "movielens",
                root / "movielens-1m",
                lambda: load_movielens(root / "movielens-1m"),
                MOVIELENS_PROTOCOL,
            )
        )
    if (root / "disgenet").is_dir():
        found.append(
            ("disgenet", root / "disgenet", lambda: load_disgenet_dir(root), DISGENET_PROTOCOL)
        )
    return found


def check_data(root: Path) -> list[dict[str, Any]]:
    """Load and split every dataset found under ``root`` (the ``shared/data`` layout).

    Returns:
        One dict per dataset folder found: ``dataset`` (name), ``folder``, ``ok``, and when it
        loaded: ``files`` (file name -> sha256), ``rows`` (items, targets, interactions,
        positives), ``split`` (:meth:`Split.summary`), ``timing_s`` (load, split); else
        ``error`` (the message). An absent ``root`` gives an empty list.
    """
    root = Path(root)
    rows: list[dict[str, Any]] = []
    if not root.is_dir():
        return rows
    for label, folder, loader, cfg in _known(root):
        row: dict[str, Any] = {"dataset": label, "folder": str(folder), "ok": False}
        try:
            start = time.perf_counter()
            ds = loader()
            loaded = time.perf_counter()
            split = split_dataset(ds, cfg)
            done = time.perf_counter()
        except (ValueError, OSError) as exc:
            row["error"] = str(exc)
            rows.append(row)
            continue
        row.update(
            dataset=ds.name,
            ok=True,
            files=dict(ds.inputs),
            rows={
                "items": len(ds.items),
                "targets": len(ds.targets),
                "interactions": len(ds.interactions),
                "positives": int(ds.interactions[LABEL].sum()),
            },
            split=split.summary(),
            timing_s={"load": round(loaded - start, 3), "split": round(done - loaded, 3)},
        )
        rows.append(row)
    return rows


def format_report(rows: list[dict[str, Any]]) -> str:
    """Plain-text report of :func:`check_data` rows."""
    if not rows:
        return "No datasets found (expected movielens-1m/ or disgenet/ under the data folder)."
    lines: list[str] = []
    for row in rows:
        lines.append(f"== {row['dataset']} ({row['folder']})")
        if not row.get("ok"):
            lines.append(f"   ERROR: {row.get('error', 'unknown error')}")
            continue
        for name, digest in row["files"].items():
            lines.append(f"   file  {name:<45} sha256 {digest}")
        lines.append("   rows  " + ", ".join(f"{k} {v:,}" for k, v in row["rows"].items()))
        lines.append("   split " + ", ".join(f"{k} {v:,}" for k, v in row["split"].items()))
        lines.append("   time  " + ", ".join(f"{k} {v:.2f}s" for k, v in row["timing_s"].items()))
    return "\n".join(lines)
