"""Benchmark results from ``results/<dataset>/<method>.json`` as tables (no streamlit here).

Each result file holds ``dataset``, ``method``, ``seeds``, ``phases{"0","I","II","III"}`` with
``auc``/``f1``/``item_auc`` and ``ranking{phase}`` with ``recall@20``/``recall@100``/
``ndcg@100`` as ``{mean, std, per_seed}`` (F1 null for scores that are not probabilities),
``backbone``, ``config``, ``machine``, ``created_at`` (and optionally ``command``). Only result
files are read: other JSON files of the folder (``tuning.json``, ``results/speed/``) are not
results and are skipped silently; unreadable result files are reported, not fatal.
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
#: Metrics of the ``phases`` block and of the ``ranking`` block (full-catalog ranking).
METRICS = ("auc", "f1", "item_auc")
RANKING_METRICS = ("recall@20", "recall@100", "ndcg@100")
METRIC_LABELS = {"auc": "AUC", "f1": "F1", "item_auc": "item-AUC", "recall@20": "Recall@20",
                 "recall@100": "Recall@100", "ndcg@100": "NDCG@100"}
COLUMNS = ["dataset", "method", "phase", "metric", "mean", "std", "n_seeds"]
#: One colour per method on the Benchmark charts (the theme's 10 colours repeat with 21
#: methods): category20, then category20b's darker hues.
METHOD_COLOURS = ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
                  "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2",
                  "#7f7f7f", "#c7c7c7", "#bcbd22", "#dbdb8d", "#17becf", "#9edae5", "#393b79",
                  "#637939", "#843c39", "#7b4173", "#e7ba52", "#000000")
#: Folders of ``results/`` that hold no result files.
NON_RESULT_DIRS = frozenset({"speed", "suggest"})
#: What-to-test-next results (``bench/suggest.py``): ``results/suggest/<dataset>.json``.
SUGGEST_DIR = "suggest"
SUGGEST_COLUMNS = ["strategy", "round", "found", "cumulative"]


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


def _is_result_path(path: Path) -> bool:
    return path.parent.name not in NON_RESULT_DIRS and not path.name.startswith("tuning")


def load_results(root: Path | None = None) -> BenchmarkResults:
    """Every result file under ``root/<dataset>/*.json`` as one long table.

    Rows: one per (dataset, method, phase, metric) with a mean; metrics are ``METRICS`` and
    ``RANKING_METRICS``. ``runs``: one entry per file (status, seeds, backbone, command).
    """
    root = root or results_dir()
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    paths = sorted(root.glob("*/*.json")) if root.is_dir() else []
    for path in (p for p in paths if _is_result_path(p)):
        try:
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            if "method" not in doc and "phases" not in doc:
                continue  # some other JSON file (a tuning round, notes): not a result
            if doc.get("status") == "not run":
                doc["phases"] = {}
                doc["ranking"] = {}
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
        backbone = doc.get("backbone", "?")
        runs.append({"dataset": dataset, "method": method,
                     "status": str(doc.get("status") or "ok")
                     + (f": {doc['reason']}" if doc.get("reason") else ""),
                     "backbone": backbone if backbone else "—",
                     "seeds": ", ".join(map(str, seeds)) if isinstance(seeds, list) else seeds,
                     "created_at": doc.get("created_at", ""), "command": command,
                     "machine": json.dumps(doc.get("machine", ""))[:200],
                     "file": str(path.relative_to(root))})
        ranking = doc.get("ranking") if isinstance(doc.get("ranking"), dict) else {}
        for block, metrics in ((doc["phases"], METRICS), (ranking, RANKING_METRICS)):
            for phase in PHASES:
                values = block.get(phase)
                if not isinstance(values, dict):
                    continue
                for metric in metrics:
                    m = values.get(metric)
                    if not isinstance(m, dict) or _num(m.get("mean")) is None:
                        continue
                    per = m.get("per_seed")
                    rows.append({"dataset": dataset, "method": method, "phase": phase,
                                 "metric": metric, "mean": _num(m.get("mean")),
                                 "std": _num(m.get("std")) or 0.0,
                                 "n_seeds": len(per) if isinstance(per, list)
                                 else len(seeds or [])})
    return BenchmarkResults(pd.DataFrame(rows, columns=COLUMNS), runs, problems)


def methods_of(results: BenchmarkResults, dataset: str) -> list[str]:
    """Every method with a result file for ``dataset`` (ran or not), in registry order."""
    from engine.baselines import METHODS

    order = {name: i for i, name in enumerate(METHODS)}
    names = {r["method"] for r in results.runs if r["dataset"] == dataset}
    return sorted(names, key=lambda m: (order.get(m, len(order)), m))


def wide_table(table: pd.DataFrame, dataset: str, metric: str,
               methods: list[str] | None = None) -> pd.DataFrame:
    """method x phase of ``mean ± std`` for one dataset and metric; ``methods`` (default: those
    with a value) are all listed, "—" where a method has no value (F1 of non-probabilistic
    scores, methods not run)."""
    t = table[(table["dataset"] == dataset) & (table["metric"] == metric)]
    if t.empty and not methods:
        return pd.DataFrame()
    t = t.assign(cell=t["mean"].map("{:.4f}".format) + " ± " + t["std"].map("{:.4f}".format))
    out = t.pivot(index="method", columns="phase", values="cell")
    order = list(methods) if methods else list(dict.fromkeys(t["method"]))
    out = out.reindex(order).reindex(columns=list(PHASES))
    out.columns = [f"Phase-{p}" for p in out.columns]
    return out.fillna("—").rename_axis("method").reset_index()


def suggest_results(dataset: str, root: Path | None = None) -> dict[str, Any] | None:
    """The what-to-test-next benchmark of ``dataset`` (``results/suggest/<dataset>.json``),
    or None when absent or unreadable."""
    path = (root or results_dir()) / SUGGEST_DIR / f"{dataset}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("test_mean"), dict) else None


def suggest_rounds(doc: dict[str, Any]) -> pd.DataFrame:
    """True targets found per round (mean over new items and seeds) per strategy:
    :data:`SUGGEST_COLUMNS` (``cumulative``: found so far)."""
    rows = []
    for name, res in doc.get("test_mean", {}).items():
        total = 0.0
        for r, found in enumerate(res.get("found_per_round", []), start=1):
            total += float(found)
            rows.append({"strategy": name, "round": r, "found": float(found),
                         "cumulative": round(total, 4)})
    return pd.DataFrame(rows, columns=SUGGEST_COLUMNS)


def suggest_summary(doc: dict[str, Any]) -> pd.DataFrame:
    """Per strategy: found in all rounds, Recall@100 and NDCG@100 of the targets not found
    yet, and the seeds' spread of each (min..max)."""
    cut = doc.get("cutoff", 100)
    keys = [("found_total", "found in the rounds"),
            (f"recall@{cut}_remaining", f"Recall@{cut} of the rest"),
            (f"ndcg@{cut}_remaining", f"NDCG@{cut} of the rest")]
    rows = []
    for name, res in doc.get("test_mean", {}).items():
        row: dict[str, Any] = {"strategy": name}
        for key, label in keys:
            row[label] = res.get(key)
            per = [s.get(name, {}).get(key) for s in doc.get("test", {}).values()]
            per = [p for p in per if p is not None]
            row[f"{label} (seeds min..max)"] = (f"{min(per):.4f}..{max(per):.4f}" if per
                                                else "")
        rows.append(row)
    return pd.DataFrame(rows)
