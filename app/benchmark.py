"""Benchmark results from ``results/<dataset>/<method>.json`` as tables (no streamlit here).

Each file holds ``dataset``, ``method``, ``seeds``, ``phases{"0","I","II","III"}`` with
``auc``/``f1``/``item_auc`` as ``{mean, std, per_seed}``, and ``config``, ``machine``,
``created_at`` (and optionally ``command``). Unreadable files are reported, not fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.schema import PHASES
from engine.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
METRICS = ("auc", "f1", "item_auc")
COLUMNS = ["dataset", "method", "phase", "metric", "mean", "std", "n_seeds"]


def results_dir() -> Path:
    """``$EMERFLOW_RESULTS`` or ``results/`` in the repository."""
    return get_settings().results_dir(REPO_ROOT / "results")


@dataclass
class BenchmarkResults:
    table: pd.DataFrame
    runs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.table.empty


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def load_results(root: Path | None = None) -> BenchmarkResults:
    root = root or results_dir()
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in sorted(root.glob("*/*.json")) if root.is_dir() else []:
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            if doc.get("status") == "not run":
                doc["phases"] = {}
            if not isinstance(doc.get("phases"), dict):
                raise ValueError("no 'phases' object")
        except (OSError, ValueError) as exc:
            problems.append(f"{path.relative_to(root)}: {exc}")
            continue
        dataset = str(doc.get("dataset") or path.parent.name)
        method = str(doc.get("method") or path.stem)
        seeds = doc.get("seeds") or []
        cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        command = doc.get("command") or cfg.get("command") or (
            f"emerflow bench --dataset {dataset} --methods {method} --seeds {len(seeds) or 3}")
        runs.append({"dataset": dataset, "method": method,
                     "status": str(doc.get("status") or "ok")
                     + (f": {doc['reason']}" if doc.get("reason") else ""),
                     "seeds": ", ".join(map(str, seeds)) if isinstance(seeds, list) else seeds,
                     "created_at": doc.get("created_at", ""), "command": command,
                     "machine": json.dumps(doc.get("machine", ""))[:200],
                     "file": str(path.relative_to(root))})
        for phase in PHASES:
            metrics = doc["phases"].get(phase)
            if not isinstance(metrics, dict):
                continue
            for metric in METRICS:
                m = metrics.get(metric)
                if not isinstance(m, dict) or _num(m.get("mean")) is None:
                    continue
                per = m.get("per_seed")
                rows.append({"dataset": dataset, "method": method, "phase": phase,
                             "metric": metric, "mean": _num(m.get("mean")),
                             "std": _num(m.get("std")) or 0.0,
                             "n_seeds": len(per) if isinstance(per, list) else len(seeds or [])})
    return BenchmarkResults(pd.DataFrame(rows, columns=COLUMNS), runs, problems)


def wide_table(table: pd.DataFrame, dataset: str, metric: str) -> pd.DataFrame:
    """method x phase of ``mean ± std`` for one dataset and metric."""
    t = table[(table["dataset"] == dataset) & (table["metric"] == metric)]
    if t.empty:
        return pd.DataFrame()
    t = t.assign(cell=t["mean"].map("{:.4f}".format) + " ± " + t["std"].map("{:.4f}".format))
    out = t.pivot(index="method", columns="phase", values="cell")
    return out[[p for p in PHASES if p in out.columns]].reset_index()
